import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';

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
  const stored = Buffer.alloc(SHA256_SIZE);
  await fh.read(stored, 0, SHA256_SIZE, size - SHA256_SIZE);
  const end = size - SHA256_SIZE;
  const computed = end >= WORKER_MIN ? await sha256OnWorker(fh.fd, end) : await sha256Here(fh, end);
  return {
    trailer: computed.equals(stored) ? 'valid' : 'mismatch',
    computedSha256: computed.toString('hex'),
    storedSha256: stored.toString('hex'),
  };
}

/** sha256 of the first `end` bytes of the file, read in this thread. */
async function sha256Here(fh: FileHandle, end: number): Promise<Buffer> {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(Math.min(CHUNK, end));
  for (let at = 0; at < end; ) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, end - at), at);
    if (bytesRead === 0) break; // the file shrank since stat: what is there cannot match
    hash.update(buf.subarray(0, bytesRead));
    at += bytesRead;
  }
  return hash.digest();
}

// The worker's whole program, evaluated from source so it needs no file of its own (the
// single-executable build has none). Positional reads on the caller's descriptor, which the
// caller keeps open until the digest arrives.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { readSync } = require('node:fs');
const { fd, end, chunk } = workerData;
const hash = createHash('sha256');
const buf = Buffer.allocUnsafe(Math.min(chunk, end));
for (let at = 0; at < end; ) {
  const n = readSync(fd, buf, 0, Math.min(buf.length, end - at), at);
  if (n === 0) break;
  hash.update(n === buf.length ? buf : buf.subarray(0, n));
  at += n;
}
parentPort.postMessage(hash.digest());
`;

/** sha256 of the first `end` bytes of descriptor fd, computed on a worker thread. */
function sha256OnWorker(fd: number, end: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { fd, end, chunk: CHUNK } });
    let digest: Buffer | undefined;
    worker.once('message', (bytes: Uint8Array) => (digest = Buffer.from(bytes)));
    worker.once('error', reject);
    worker.once('exit', (code) => (digest ? resolve(digest) : reject(new Error(`sha256 worker exited with code ${code} before its digest`))));
  });
}
