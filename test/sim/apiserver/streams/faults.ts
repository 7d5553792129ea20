// Stream faults read from DIR/faults.json at the start of every pod stream (contract in
// test/sim/README.md, "Stream faults"). Only the "streams" key is read here; other keys belong to
// other fault kinds.
// Differences from a real API server: a real one has no fault injection at all.
import { readFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * What the stream does: `cut` or `stall` once `afterBytes` payload bytes have gone to the client;
 * `idle` cuts it once no byte went either way (data, pings, pongs) for `idleSeconds`, as a load
 * balancer does; `blackhole` sends nothing (no data, status or pong) and reads nothing from the
 * upgrade on, and stays open. An exec'd process outlives its cut stream (see exec.ts).
 */
export interface StreamFault {
  action: 'cut' | 'stall' | 'idle' | 'blackhole';
  afterBytes: number;
  idleSeconds?: number;
  pod?: string;
  kind?: 'exec' | 'portforward' | 'log' | 'attach';
}

/** The first fault in DIR/faults.json matching this stream, if any. */
export async function findStreamFault(dir: string, kind: string, namespace: string, pod: string): Promise<StreamFault | undefined> {
  let text: string;
  try {
    text = await readFile(path.join(dir, 'faults.json'), 'utf8');
  } catch {
    return undefined;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined; // a half-written file: no fault this time
  }
  const streams = (parsed as { streams?: unknown })?.streams;
  if (!Array.isArray(streams)) return undefined;
  for (const f of streams as Partial<StreamFault>[]) {
    if (f.action !== 'cut' && f.action !== 'stall' && f.action !== 'idle' && f.action !== 'blackhole') continue;
    if (f.kind && f.kind !== kind) continue;
    if (f.pod && f.pod !== `${namespace}/${pod}`) continue;
    const idleSeconds = Number(f.idleSeconds);
    if (f.action === 'idle' && !(idleSeconds > 0)) continue;
    return {
      action: f.action,
      afterBytes: f.action === 'idle' || f.action === 'blackhole' ? Infinity : Math.max(0, Number(f.afterBytes ?? 0)),
      ...(f.action === 'idle' ? { idleSeconds } : {}),
      pod: f.pod,
      kind: f.kind,
    };
  }
  return undefined;
}
