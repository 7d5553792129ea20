import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
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

/**
 * True when a file of this size carries a trailer: bbolt files are whole pages (multiples of
 * 512), so etcd's restore uses `size % 512 == 32` to tell a saved snapshot from a raw db.
 */
export function hasTrailer(size: number): boolean {
  return size % 512 === SHA256_SIZE;
}

/** Streams the file through sha256 and compares against its last 32 bytes; memory stays flat. */
export async function checkTrailer(path: string, fh: FileHandle, size: number): Promise<TrailerCheck> {
  if (!hasTrailer(size)) return { trailer: 'absent' };
  const stored = Buffer.alloc(SHA256_SIZE);
  await fh.read(stored, 0, SHA256_SIZE, size - SHA256_SIZE);
  const hash = createHash('sha256');
  if (size > SHA256_SIZE) {
    for await (const chunk of createReadStream(path, { start: 0, end: size - SHA256_SIZE - 1, highWaterMark: 1 << 20 })) {
      hash.update(chunk as Buffer);
    }
  }
  const computed = hash.digest();
  return {
    trailer: computed.equals(stored) ? 'valid' : 'mismatch',
    computedSha256: computed.toString('hex'),
    storedSha256: stored.toString('hex'),
  };
}
