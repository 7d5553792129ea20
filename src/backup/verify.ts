import { VerificationError } from '../errors.js';
import { digestFile, type StreamDigest } from './digest.js';

/** The snapshot facts backup needs from the offline reader (src/etcd/snapshot). */
export interface SnapshotSummary {
  revision: number;
  totalKeys: number;
  /** The hash `etcdctl snapshot status` reports, when the reader computes it. */
  hash?: number;
}

/** Reads facts from a snapshot file; rejects when bbolt cannot read it. */
export type SnapshotSummaryReader = (path: string) => Promise<SnapshotSummary>;

/** Named verification outcomes, so callers and tests can tell failures apart. */
export type VerificationOutcome =
  | { kind: 'ok'; summary: SnapshotSummary }
  | { kind: 'size-mismatch'; expected: number; actual: number }
  | { kind: 'trailer-mismatch' }
  | { kind: 'unreadable'; reason: string };

/** Checks a written snapshot: the size the source reported, the sha256 trailer, then bbolt readability. */
export async function verifySnapshot(
  path: string,
  digest: StreamDigest,
  expectedSize: number | undefined,
  read: SnapshotSummaryReader,
): Promise<VerificationOutcome> {
  if (expectedSize !== undefined && expectedSize !== digest.size) {
    return { kind: 'size-mismatch', expected: expectedSize, actual: digest.size };
  }
  if (!digest.trailerValid) return { kind: 'trailer-mismatch' };
  try {
    return { kind: 'ok', summary: await read(path) };
  } catch (err) {
    return { kind: 'unreadable', reason: (err as Error).message.split('\n')[0] ?? 'unknown error' };
  }
}

/**
 * Checks a snapshot written to a local file from the file itself: its size (against the bytes
 * that were written and the size the source reported), its sha256 trailer, then bbolt
 * readability. The hash (digestFile, on a worker thread) and the bbolt walk (here) run at once;
 * the outcome names the first failure in that order. Returns the file's digest with the outcome.
 */
export async function verifyWrittenFile(
  path: string,
  written: number,
  expectedSize: number | undefined,
  read: SnapshotSummaryReader,
): Promise<{ outcome: VerificationOutcome; digest: StreamDigest }> {
  const reading = read(path);
  reading.catch(() => {}); // settled below, after the digest
  const digest = await digestFile(path);
  if (digest.size !== written) return { outcome: { kind: 'size-mismatch', expected: written, actual: digest.size }, digest };
  const outcome = await verifySnapshot(path, digest, expectedSize, () => reading);
  return { outcome, digest };
}

/** Returns the summary of an ok outcome, or throws a VerificationError describing the failure. */
export function requireVerified(outcome: VerificationOutcome, source: string): SnapshotSummary {
  switch (outcome.kind) {
    case 'ok':
      return outcome.summary;
    case 'size-mismatch':
      throw new VerificationError(
        `snapshot from ${source} is ${outcome.actual} bytes but ${outcome.expected} were expected`,
        'the copy was cut short; run the backup again',
      );
    case 'trailer-mismatch':
      throw new VerificationError(
        `snapshot from ${source} failed its sha256 trailer check`,
        'the data was corrupted in transit; run the backup again',
      );
    case 'unreadable':
      throw new VerificationError(
        `snapshot from ${source} is not a readable bbolt database (${outcome.reason})`,
        'run the backup again, or from another member with --member',
      );
  }
}
