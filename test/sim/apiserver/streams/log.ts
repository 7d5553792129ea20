// pods/log from the container log the kubelet writes (DIR/runtime/pods/NS/POD/CONTAINER.log, raw
// stdout+stderr bytes): `container`, `tailLines`, `limitBytes`, `follow` (streams appended bytes
// until the container stops or the client goes), with backpressure on the HTTP response.
// `previous` serves the last terminated instance, as the kubelet does from the container status'
// lastState.terminated: while the container waits to restart (back-off) that is still
// CONTAINER.log, once the next instance has started it is CONTAINER.previous.log (the kubelet
// renames the log when it starts an instance); without lastState.terminated it is the
// "previous terminated container … not found" error (400).
// Differences from a real API server + kubelet: the log file carries no timestamps, so
// `timestamps` and `sinceSeconds`/`sinceTime` are ignored; only one earlier instance is kept;
// the choice of file follows the pod status the apiserver holds, so in the moment between the
// kubelet starting a new instance and reporting it, `previous` may serve the new instance's log.
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import type { PodStreamContext } from '../podstreams.js';
import { queryBool } from './exec.js';
import { findStreamFault, type StreamFault } from './faults.js';
import { chooseContainer, containerLogPath, isAlive, readContainerRuntime } from './runtime.js';

const POLL_MS = 200;

/** Serves GET pods/NAME/log. Resolves when the response has ended. */
export async function serveLog(ctx: PodStreamContext): Promise<void> {
  const q = ctx.query;
  const podName: string = ctx.pod?.metadata?.name ?? '';
  const chosen = chooseContainer(ctx.pod, q.get('container'));
  if (typeof chosen === 'string') return ctx.sendStatus(400, 'BadRequest', chosen);
  const name = chosen.name;
  const status = [...(ctx.pod?.status?.containerStatuses ?? []), ...(ctx.pod?.status?.initContainerStatuses ?? []),
    ...(ctx.pod?.status?.ephemeralContainerStatuses ?? [])]
    .find((s) => s.name === name);
  const previous = queryBool(q.get('previous'));
  const current = containerLogPath(ctx.dir, ctx.namespace, podName, name);
  let file = current;
  if (previous) {
    // the instance in back-off has not been replaced yet: its log is still the current file
    file = status?.state?.waiting ? current : current.replace(/\.log$/, '.previous.log');
  }
  const size = previous && !status?.lastState?.terminated ? undefined : await stat(file).then((s) => s.size, () => undefined);
  if (size === undefined) {
    if (previous) return ctx.sendStatus(400, 'BadRequest', `previous terminated container "${name}" in pod "${podName}" not found`);
    const waiting = status?.state?.waiting?.reason ?? 'ContainerCreating';
    return ctx.sendStatus(400, 'BadRequest', `container "${name}" in pod "${podName}" is waiting to start: ${waiting}`);
  }
  if (!ctx.res) return ctx.sendStatus(400, 'BadRequest', 'pods/log is a plain GET, not an upgrade');
  const res = ctx.res;
  const tail = q.get('tailLines');
  const limit = q.get('limitBytes');
  const start = tail !== null ? await tailOffset(file, size, Math.max(0, Number(tail))) : 0;
  const out = new LimitedWriter(res, limit !== null ? Number(limit) : Infinity, await findStreamFault(ctx.dir, 'log', ctx.namespace, podName));
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Cache-Control': 'no-cache, private' });
  res.flushHeaders();
  let gone = false;
  res.on('close', () => { gone = true; });

  let offset = await copyRange(file, start, size, out);
  if (queryBool(q.get('follow')) && !previous) { // a terminated instance's log never grows
    while (!gone && !out.full) {
      const now = await stat(file).then((s) => s.size, () => offset);
      if (now < offset) offset = 0; // replaced by a restarted container
      if (now > offset) { offset = await copyRange(file, offset, now, out); continue; }
      const c = await readContainerRuntime(ctx.dir, ctx.namespace, podName, name);
      if (!c || !isAlive(c.pid)) {
        const last = await stat(file).then((s) => s.size, () => offset);
        if (last > offset) await copyRange(file, offset, last, out);
        break;
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }
  out.end();
}

/** Byte offset where the last `lines` lines of the file begin. */
export async function tailOffset(file: string, size: number, lines: number): Promise<number> {
  if (lines === 0) return size;
  const fh = await open(file, 'r');
  try {
    const block = Buffer.alloc(64 * 1024);
    let pos = size;
    let seen = 0;
    // a final line without "\n" counts as a line; a trailing "\n" does not start a new one
    let skipLast = true;
    while (pos > 0) {
      const len = Math.min(block.length, pos);
      pos -= len;
      await fh.read(block, 0, len, pos);
      for (let i = len - 1; i >= 0; i--) {
        if (block[i] !== 0x0a) { skipLast = false; continue; }
        if (skipLast) { skipLast = false; continue; }
        if (++seen === lines) return pos + i + 1;
      }
    }
    return 0;
  } finally {
    await fh.close();
  }
}

async function copyRange(file: string, from: number, to: number, out: LimitedWriter): Promise<number> {
  if (to <= from || out.full) return to;
  for await (const chunk of createReadStream(file, { start: from, end: to - 1 })) {
    if (!(await out.write(chunk as Buffer))) break;
  }
  return to;
}

/** Writes to the response with backpressure, honouring limitBytes and stream faults. */
class LimitedWriter {
  private written = 0;
  full = false;

  constructor(private readonly res: ServerResponse, private readonly limit: number, private readonly fault?: StreamFault) {}

  async write(chunk: Buffer): Promise<boolean> {
    if (this.full || this.res.destroyed) return false;
    let data = chunk.subarray(0, Math.max(0, this.limit - this.written));
    const faultAt = this.fault ? this.fault.afterBytes - this.written : Infinity;
    if (data.length >= faultAt) data = data.subarray(0, faultAt);
    this.written += data.length;
    const ok = data.length ? this.res.write(data) : true;
    if (this.fault && this.written >= this.fault.afterBytes) {
      this.full = true;
      if (this.fault.action === 'cut') this.res.socket?.end(() => this.res.destroy()); // after the bytes before the cut
      else await new Promise<void>((r) => this.res.once('close', () => r()));
      return false;
    }
    if (this.written >= this.limit) { this.full = true; return false; }
    if (!ok) await new Promise<void>((r) => { this.res.once('drain', r); this.res.once('close', r); });
    return !this.res.destroyed;
  }

  end(): void {
    if (!this.res.destroyed && !this.res.writableEnded && !(this.fault && this.full && this.written >= this.fault.afterBytes)) this.res.end();
  }
}
