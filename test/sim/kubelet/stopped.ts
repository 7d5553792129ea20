// Which nodes' kubelets are stopped (fault `kubelet-stop`): the fault command writes
// DIR/kubelet-control/stopped.json, the kubelet applies it and copies it to stopped.ack.json, and
// the API server reads the acknowledged copy to refuse streams to those nodes (podstreams.ts).
// A node stopped `--for S` carries the time it starts again (`until`, ms since the epoch); the
// kubelet starts it then by itself, and every reader takes a past `until` as started.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const STOPPED = { dir: 'kubelet-control', request: 'stopped.json', ack: 'stopped.ack.json' } as const;

/** One request: each stopped node with the time it starts again (null: until `kubelet-start`). */
export interface StoppedRequest {
  seq: number;
  nodes: Record<string, number | null>;
  /** How long after the stop the node lifecycle controller marks the node Unknown (ms). */
  graceMs: number;
}

function read(file: string): StoppedRequest | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as StoppedRequest;
  } catch {
    return undefined;
  }
}

/** The request as written by the fault command (`ack`: as the kubelet applied it). */
export function readStopped(dir: string, ack = false): StoppedRequest | undefined {
  return read(join(dir, STOPPED.dir, ack ? STOPPED.ack : STOPPED.request));
}

/** The nodes of a request still stopped at `at`. */
export function stoppedAt(req: StoppedRequest | undefined, at = Date.now()): string[] {
  return Object.entries(req?.nodes ?? {}).filter(([, until]) => until === null || until > at).map(([n]) => n);
}
