/**
 * Copying one file out of / into a pod through exec, streamed end to end with backpressure
 * (never client-node's Cp, which resolves early and ignores exit codes).
 */
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { PassThrough, Writable, type Readable } from 'node:stream';
import tar from 'tar-stream';
import { PluginError } from '../errors.js';
import { execInPod } from './exec.js';
import type { KubeStreamAccess } from './socket.js';

/** Which file in which container. */
export interface PodFile {
  namespace: string;
  pod: string;
  container?: string;
  /** Absolute path inside the container. */
  path: string;
}

/** Options for copying a file out of a pod. */
export interface CopyOutOptions extends PodFile {
  destination: Writable;
  /** End the destination and wait for it to finish (default true). */
  end?: boolean;
  onProgress?: (bytes: number) => void;
  /** Aborting stops the copy: the exec WebSocket is terminated and the promise rejects. */
  signal?: AbortSignal;
  /** Hash the bytes (default true); false when the caller hashes them itself (backup's digester). */
  sha256?: boolean;
}

/** What arrived: size, the mode from the tar header, and the sha256 of the bytes written (unless not asked). */
export interface CopyOutResult {
  bytes: number;
  mode: number;
  sha256?: string;
}

/** What a copy may hold in memory between the pod and the destination, at most (twice: tar and the relay). */
const RELAY_BUFFER = 1 << 20;

/** Streams one regular file out of a pod (`tar cf - -C DIR BASE` parsed with tar-stream) into destination. */
export async function copyFileOutOfPod(kube: KubeStreamAccess, opts: CopyOutOptions): Promise<CopyOutResult> {
  const where = `"${opts.path}" in pod "${opts.namespace}/${opts.pod}"`;
  const dir = posix.dirname(opts.path);
  const base = posix.basename(opts.path);
  const hash = opts.sha256 === false ? undefined : createHash('sha256');
  const stderr = tailCollector(4096);
  // Room for a few of the API server's frames: at its 16 KiB default every frame paused the socket.
  const extract = tar.extract({ highWaterMark: RELAY_BUFFER } as Parameters<typeof tar.extract>[0]);
  let entries = 0;
  let bytes = 0;
  let mode = 0;
  let entryError: Error | undefined;
  let entryDone: Promise<void> = Promise.resolve();
  extract.on('entry', (header, stream, next) => {
    entries++;
    if (entries > 1 || header.type !== 'file') {
      entryError ??= new PluginError(`copying ${where}: expected one regular file, got ${header.type} "${header.name}"`, 'pass the path of a regular file, not a directory or link');
      stream.on('end', () => next());
      stream.resume();
      return;
    }
    mode = header.mode ?? 0;
    entryDone = relay(stream as unknown as Readable, opts.destination, opts.end !== false, (chunk) => {
      hash?.update(chunk);
      bytes += chunk.length;
      opts.onProgress?.(bytes);
    }).finally(() => next());
    // the destination failed or closed: stop reading the pod's tar stream (ends the exec)
    entryDone.catch((err: Error) => extract.destroy(err));
  });
  const { exitCode } = await execInPod(kube, {
    namespace: opts.namespace,
    pod: opts.pod,
    container: opts.container,
    command: ['tar', 'cf', '-', '-C', dir, base],
    stdout: extract as unknown as Writable,
    stderr,
    end: true,
    signal: opts.signal,
  });
  if (exitCode !== 0) {
    throw new PluginError(`copying ${where} failed: tar exited with ${exitCode}: ${stderr.text() || 'no message'}`, 'check the path and that the image has tar');
  }
  await entryDone;
  if (entryError) throw entryError;
  if (entries === 0) throw new PluginError(`copying ${where}: tar sent no file`, 'check the path');
  return { bytes, mode, ...(hash ? { sha256: hash.digest('hex') } : {}) };
}

/** Options for streaming a command's stdout into a destination that stays open. */
export interface StreamOutOptions {
  namespace: string;
  pod: string;
  container?: string;
  command: string[];
  /** Receives stdout; never ended here (the caller may append more). */
  destination: Writable;
  onChunk?: (chunk: Buffer) => void;
  signal?: AbortSignal;
}

/**
 * Runs a command and streams its stdout into `destination` with backpressure, leaving it open;
 * resolves once every byte is written, with the exit code and the end of stderr.
 */
export async function streamCommandOut(kube: KubeStreamAccess, opts: StreamOutOptions): Promise<{ exitCode: number; stderr: string }> {
  const stderr = tailCollector(4096);
  // Room for a few of the API server's frames, as for a copy (RELAY_BUFFER).
  const stdout = new PassThrough({ highWaterMark: RELAY_BUFFER });
  const relayed = relay(stdout, opts.destination, false, (chunk) => opts.onChunk?.(chunk));
  relayed.catch(() => {}); // awaited below, once the exec has ended
  try {
    const { exitCode } = await execInPod(kube, { namespace: opts.namespace, pod: opts.pod, container: opts.container, command: opts.command, stdout, stderr, end: true, signal: opts.signal });
    await relayed;
    return { exitCode, stderr: stderr.text() };
  } catch (err) {
    // with its error, so the relay lets go of the destination (which outlives this call)
    stdout.destroy(err as Error);
    throw err;
  }
}

/**
 * Pipes an entry stream into the destination with backpressure; resolves when the destination has
 * it all. Rejects (and destroys `from`, so nothing upstream waits for a 'drain' that never comes)
 * when either side errors or the destination closes early, e.g. destroyed by a signal handler.
 */
export function relay(from: Readable, to: Writable, end: boolean, onChunk: (chunk: Buffer) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const cleanup = () => {
      from.removeListener('data', onData);
      from.removeListener('error', onFromError);
      from.removeListener('end', onEnd);
      to.removeListener('error', onToError);
      to.removeListener('close', onToClose);
      to.removeListener('drain', onDrain);
      to.removeListener('finish', onFinish);
    };
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      cleanup();
      from.on('error', () => {}); // the error is reported through the promise
      from.destroy(err);
      reject(err);
    };
    const done = () => {
      if (settled) return;
      settled = true;
      cleanup();
      resolve();
    };
    const onToError = (err: Error) => fail(err);
    const onFromError = (err: Error) => fail(err);
    const onToClose = () => fail(to.errored ?? new Error('the destination closed before the copy finished'));
    let waiting = false;
    const onDrain = () => {
      waiting = false;
      from.resume();
    };
    const onFinish = () => done();
    const onData = (chunk: Buffer) => {
      if (to.destroyed || to.writableEnded) return onToClose();
      onChunk(chunk);
      // Waits for the destination only once it holds RELAY_BUFFER: waiting for each write of a
      // small buffer (a file's 16 KiB) turned every chunk into a round trip to the disk thread.
      if (!to.write(chunk) && !waiting && to.writableLength >= RELAY_BUFFER) {
        waiting = true;
        from.pause();
        to.once('drain', onDrain);
      }
    };
    const onEnd = () => {
      if (!end) return done();
      to.once('finish', onFinish);
      to.end();
    };
    if (to.destroyed || to.writableEnded) return onToClose();
    to.on('error', onToError);
    to.on('close', onToClose);
    from.on('error', onFromError);
    from.on('data', onData);
    from.once('end', onEnd);
    from.resume();
  });
}

/** Options for copying a stream into a file in a pod. */
export interface CopyInOptions extends PodFile {
  source: Readable;
  /** Exact byte count of source: `head -c` reads exactly this many. */
  size: number;
  /** File mode, e.g. 0o600. */
  mode: number;
  onProgress?: (bytes: number) => void;
}

/** What was sent: byte count and sha256 of the bytes, for the caller to verify against the pod if it wants. */
export interface CopyInResult {
  bytes: number;
  sha256: string;
}

/**
 * Streams source into a file in a pod with `head -c SIZE` (needs only sh and head; works over v4,
 * which cannot signal stdin EOF); fails with the command's stderr when it exits non-zero.
 */
export async function copyFileIntoPod(kube: KubeStreamAccess, opts: CopyInOptions): Promise<CopyInResult> {
  const where = `"${opts.path}" in pod "${opts.namespace}/${opts.pod}"`;
  const hash = createHash('sha256');
  let bytes = 0;
  const counted = opts.source;
  counted.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    bytes += chunk.length;
    opts.onProgress?.(bytes);
  });
  counted.pause();
  const mode = (opts.mode & 0o7777).toString(8);
  // umask first: the file holds a snapshot and must never exist readable by others, not even while it is written
  const command = ['sh', '-c', 'umask 077; head -c "$3" > "$1" && chmod "$2" "$1"', 'sh', opts.path, mode, String(opts.size)];
  const stderr = tailCollector(4096);
  const { exitCode } = await execInPod(kube, {
    namespace: opts.namespace,
    pod: opts.pod,
    container: opts.container,
    command,
    stdin: counted,
    stderr,
    end: true,
  });
  if (exitCode !== 0) {
    throw new PluginError(`copying into ${where} failed: ${command[0]} exited with ${exitCode}: ${stderr.text() || 'no message'}`, 'check the path, free space and that the image has the tools');
  }
  if (bytes !== opts.size) {
    throw new PluginError(`copying into ${where}: sent ${bytes} bytes, expected ${opts.size}`, 'check that the source file did not change during the copy');
  }
  return { bytes, sha256: hash.digest('hex') };
}

/** A Writable keeping only the last `max` bytes written (for error messages from stderr). */
function tailCollector(max: number): Writable & { text(): string } {
  let buf = Buffer.alloc(0);
  const w = new Writable({
    write(chunk: Buffer, _enc, cb) {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length > max) buf = buf.subarray(buf.length - max);
      cb();
    },
  });
  return Object.assign(w, { text: () => buf.toString('utf8').trim().split('\n').slice(-3).join('; ') });
}
