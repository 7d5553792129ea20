// `sim fault`: fault injection. The API server faults live here (restart-apiserver, stream cut
// or stall, clear); every other kind (kill-container, node-not-ready, node-ready, kubelet-stop, kubelet-start, fill-volume)
// is handed to test/sim/kubelet/fault.ts, whose functions tests may also call directly.
// Stream faults are written to DIR/faults.json as
// {"streams":[{action,afterBytes,idleSeconds?,pod?,kind?}]}, which the pod stream
// handler reads at the start of each stream (test/sim/apiserver/streams/faults.ts).
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { clientConfig } from './apiserver/clusterfiles.js';
import { waitApiReady } from './apiserver/lifecycle.js';
import { runningPid, startComponent, stopComponent } from './apiserver/procs.js';
import { runKubeletFault } from './kubelet/fault.js';

/** One stream fault as faults.json holds it. */
export interface StreamFaultSpec {
  action: 'cut' | 'stall' | 'idle' | 'blackhole';
  afterBytes: number;
  /** idle: cut once no byte went either way for this many seconds. */
  idleSeconds?: number;
  /** An exec'd process goes on after its stream is cut (as in a real cluster). */
  pod?: string;
  kind?: string;
}

const STREAM_KINDS = ['exec', 'portforward', 'log', 'attach'];

function readFaults(dir: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(join(dir, 'faults.json'), 'utf8')) as Record<string, unknown>;
  } catch {
    return {};
  }
}

function writeFaults(dir: string, faults: Record<string, unknown>): void {
  const file = join(dir, 'faults.json');
  writeFileSync(`${file}.tmp`, JSON.stringify(faults, null, 2) + '\n');
  renameSync(`${file}.tmp`, file);
}

/** Kills the API server (SIGKILL) and starts it again on the same port; resolves when it is ready. */
export async function restartApiServer(dirArg: string): Promise<void> {
  const dir = resolve(dirArg);
  if (!runningPid(dir, 'apiserver')) throw new Error(`no apiserver is running in "${dir}"; run \`npm run sim -- up --dir ${dir}\``);
  await stopComponent(dir, 'apiserver', 0, 'SIGKILL');
  startComponent(dir, 'apiserver', 'test/sim/apiserver/main.ts');
  await waitApiReady(clientConfig(dir), dir, 30_000);
}

/**
 * Parses `stream --cut-after BYTES|--stall [--after BYTES]|--idle-timeout SECONDS|--blackhole
 * [--pod NS/NAME] [--kind K]` into a fault.
 */
export function parseStreamFault(args: string[]): StreamFaultSpec {
  const val = (flag: string) => { const i = args.indexOf(flag); return i >= 0 ? args[i + 1] : undefined; };
  const cut = val('--cut-after');
  const stall = args.includes('--stall');
  const idle = val('--idle-timeout');
  const blackhole = args.includes('--blackhole');
  if ([cut !== undefined, stall, idle !== undefined, blackhole].filter(Boolean).length !== 1) {
    throw new Error('fault stream needs exactly one of --cut-after BYTES, --stall, --idle-timeout SECONDS or --blackhole');
  }
  let fault: StreamFaultSpec;
  if (blackhole) {
    fault = { action: 'blackhole', afterBytes: 0 };
  } else if (idle !== undefined) {
    if (!/^\d+(\.\d+)?$/.test(idle) || !(Number(idle) > 0)) throw new Error(`invalid idle timeout "${idle}"; pass a number of seconds above 0`);
    fault = { action: 'idle', afterBytes: 0, idleSeconds: Number(idle) };
  } else {
    const raw = stall ? val('--after') ?? '0' : cut!;
    if (!/^\d+$/.test(raw)) throw new Error(`invalid byte count "${raw}"; pass a whole number of bytes`);
    fault = { action: stall ? 'stall' : 'cut', afterBytes: Number(raw) };
  }
  const pod = val('--pod');
  const kind = val('--kind');
  if (pod && !/^[^/\s]+\/[^/\s]+$/.test(pod)) throw new Error(`pod "${pod}" must be given as NAMESPACE/NAME`);
  if (kind && !STREAM_KINDS.includes(kind)) throw new Error(`unknown stream kind "${kind}"; use one of ${STREAM_KINDS.join(', ')}`);
  if (pod) fault.pod = pod;
  if (kind) fault.kind = kind;
  return fault;
}

/** Runs `sim fault --dir DIR KIND ARGS...`; returns a line saying what was done. */
export async function runFault(dir: string, kind: string, args: string[]): Promise<string> {
  switch (kind) {
    case 'restart-apiserver':
      await restartApiServer(dir);
      return 'apiserver restarted';
    case 'stream':
      return `stream fault added: ${JSON.stringify(addStreamFault(dir, parseStreamFault(args)))}`;
    case 'clear':
      clearStreamFaults(dir);
      return `stream faults cleared; ${await runKubeletFault(dir, ['clear'])}`;
    default:
      return runKubeletFault(dir, [kind, ...args]);
  }
}

/** Adds a stream fault to DIR/faults.json; it applies to streams opened from now on. */
export function addStreamFault(dir: string, fault: StreamFaultSpec): StreamFaultSpec {
  const faults = readFaults(dir);
  const streams = Array.isArray(faults.streams) ? faults.streams : [];
  writeFaults(dir, { ...faults, streams: [...streams, fault] });
  return fault;
}

/** Removes every stream fault. */
export function clearStreamFaults(dir: string): void {
  writeFaults(dir, { ...readFaults(dir), streams: [] });
}
