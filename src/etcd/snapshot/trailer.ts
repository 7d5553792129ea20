import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';

/** Whether the file ends with the sha256 that `etcdctl snapshot save` appends, and whether it holds. */
export type TrailerOutcome = 'valid' | 'mismatch' | 'absent';

/** The trailer verdict plus the two hashes when there is a trailer. */
export interface TrailerCheck {
  trailer: TrailerOutcome;
  /** sha256 of the bytes before the trailer (hex), when there is one. */
  computedSha256?: string;
  /** The 32 bytes stored at the end (hex), when there is a trailer. */
  storedSha256?: string;
}

const SHA256_SIZE = 32;
const CHUNK = 1 << 20;
// Below this the hash costs less than starting a worker thread (about 30 ms): hash in this thread.
const WORKER_MIN = 32 << 20;

/**
 * True when a file of this size carries a trailer: bbolt files are whole pages (multiples of
 * 512), so etcd's restore uses `size % 512 == 32` to tell a saved snapshot from a raw db.
 */
export function hasTrailer(size: number): boolean {
  return size % 512 === SHA256_SIZE;
}

/**
 * Hashes the file with sha256 and compares against its last 32 bytes; memory stays flat (one
 * 1 MiB buffer). A large file is hashed on a worker thread, so the hash runs beside the bbolt
 * walk on another core rather than taking turns with it.
 */
export async function checkTrailer(fh: FileHandle, size: number): Promise<TrailerCheck> {
  if (!hasTrailer(size)) return { trailer: 'absent' };
  const { body, tail } = await sha256Parts(fh, size);
  return {
    trailer: body.equals(tail) ? 'valid' : 'mismatch',
    computedSha256: body.toString('hex'),
    storedSha256: tail.toString('hex'),
  };
}

/** One sha256 pass over a file, split at its last 32 bytes (where etcd's trailer sits). */
export interface Sha256Parts {
  /** sha256 of every byte but the last 32 (of nothing when the file is shorter). */
  body: Buffer;
  /** The last 32 bytes (fewer when the file is shorter). */
  tail: Buffer;
  /** sha256 of the whole file (hex), continued from the body's hash: no second pass. */
  whole: string;
}

/** Hashes the first `size` bytes of the file once, on a worker thread when they are many (see checkTrailer). */
export async function sha256Parts(fh: FileHandle, size: number): Promise<Sha256Parts> {
  const end = Math.max(0, size - SHA256_SIZE);
  const tail = Buffer.alloc(size - end);
  if (tail.length > 0) await fh.read(tail, 0, tail.length, end);
  const [body, whole] = end >= WORKER_MIN ? await sha256OnWorker(fh.fd, end, tail) : await sha256Here(fh, end, tail);
  return { body, tail, whole: whole.toString('hex') };
}

/** sha256 of the first `end` bytes of the file, and of those followed by `tail`, read in this thread. */
async function sha256Here(fh: FileHandle, end: number, tail: Buffer): Promise<[Buffer, Buffer]> {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(Math.max(1, Math.min(CHUNK, end)));
  for (let at = 0; at < end; ) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, end - at), at);
    if (bytesRead === 0) break; // the file shrank since stat: what is there cannot match
    hash.update(buf.subarray(0, bytesRead));
    at += bytesRead;
  }
  const whole = hash.copy().update(tail).digest();
  return [hash.digest(), whole];
}

// The worker's whole program, evaluated from source so it needs no file of its own (the
// single-executable build has none). Positional reads on the caller's descriptor, which the
// caller keeps open until the digests arrive.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { readSync } = require('node:fs');
const { fd, end, chunk, tail } = workerData;
const hash = createHash('sha256');
const buf = Buffer.allocUnsafe(Math.min(chunk, end));
for (let at = 0; at < end; ) {
  const n = readSync(fd, buf, 0, Math.min(buf.length, end - at), at);
  if (n === 0) break;
  hash.update(n === buf.length ? buf : buf.subarray(0, n));
  at += n;
}
const whole = hash.copy().update(tail).digest();
parentPort.postMessage([hash.digest(), whole]);
`;

/** sha256 of the first `end` bytes of descriptor fd, and of those followed by `tail`, computed on a worker thread. */
async function sha256OnWorker(fd: number, end: number, tail: Buffer): Promise<[Buffer, Buffer]> {
  // Loaded here, not at the top: node:worker_threads costs every start of the command line ~2 ms.
  const { Worker } = await import('node:worker_threads');
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { fd, end, chunk: CHUNK, tail } });
    let digests: [Buffer, Buffer] | undefined;
    worker.once('message', ([body, whole]: [Uint8Array, Uint8Array]) => (digests = [Buffer.from(body), Buffer.from(whole)]));
    worker.once('error', reject);
    worker.once('exit', (code) => (digests ? resolve(digests) : reject(new Error(`sha256 worker exited with code ${code} before its digest`))));
  });
}
