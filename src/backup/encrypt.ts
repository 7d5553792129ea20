/**
 * The encrypted leg of a backup: a verified plaintext snapshot (a 0600 file in the state dir) is
 * encrypted with age into the destination's partial file, and the ciphertext is then read back
 * and decrypted with the file key the encryption used: its plaintext must have the size and
 * sha256 of the verified snapshot, or nothing is committed. No identity is needed for that check.
 */
import { createReadStream } from 'node:fs';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { VerificationError } from '../errors.js';
import { decryptFailure, decryptStream, encryptStream, fileKeyIdentity } from '../crypt/age.js';
import { SnapshotDigester } from './digest.js';
import type { PartialFile } from './partial.js';

/** The ciphertext as stored (size and sha256 of the .age file). */
export interface StoredDigest {
  size: number;
  sha256: string;
}

/** Encrypts `plainPath` into `out` and checks that it decrypts to the expected plaintext; returns the ciphertext's digest. */
export async function encryptVerified(
  plainPath: string,
  out: PartialFile,
  recipients: string[],
  expected: { size: number; sha256: string },
  signal: AbortSignal,
): Promise<StoredDigest> {
  const enc = await encryptStream(createReadStream(plainPath, { highWaterMark: 1 << 20 }), recipients);
  // SnapshotDigester for its size and sha256 (the trailer it also checks means nothing for ciphertext)
  const stored = new SnapshotDigester();
  await pipeline(enc.output, stored, out.writable(), { signal });
  signal.throwIfAborted();
  out.syncAhead(); // the disk takes the ciphertext while it is read back below; commit waits for it
  const what = `the encrypted copy "${out.path}"`;
  const plain = await decryptStream(createReadStream(out.path, { highWaterMark: 1 << 20 }), [fileKeyIdentity(enc.fileKey())], what);
  const check = new SnapshotDigester();
  try {
    await pipeline(plain, check, new Writable({ write: (_c, _e, cb) => cb() }), { signal });
  } catch (err) {
    signal.throwIfAborted();
    throw decryptFailure(err, what);
  }
  const got = check.digest();
  if (got.size !== expected.size || got.sha256 !== expected.sha256) {
    throw new VerificationError(
      `${what} does not decrypt to the snapshot that was verified (${got.size} bytes, sha256 ${got.sha256.slice(0, 12)}…; expected ${expected.size}, ${expected.sha256.slice(0, 12)}…)`,
      'nothing was saved; check the disk, then run the backup again',
    );
  }
  const { size, sha256 } = stored.digest();
  return { size, sha256 };
}
