/**
 * Reading a backup from object storage: `inspect s3://BUCKET/KEY` walks the bbolt structure, which
 * needs random access, so the object is downloaded into a temporary file in the state dir (0600,
 * removed on every exit path as the plaintext copies are: crypt/plaintext.ts), checked against
 * the sha256 its record says was stored, and read from there.
 */
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { VerificationError } from '../errors.js';
import type { BackupRecord } from '../backup/record.js';
import { MAX_SIDECAR_BYTES } from '../backup/record.js';
import { TempPlaintext } from '../crypt/plaintext.js';
import { parseS3Url, s3Url } from './location.js';
import { openS3Store } from './s3.js';

export interface FetchOptions {
  endpoint?: string;
  stateDir: string;
  warn: (line: string) => void;
}

/** Downloads s3://BUCKET/KEY into a temporary file, checks it, runs `use` on it, removes it. */
export async function withStoredSnapshot<T>(url: string, opts: FetchOptions, use: (path: string, record: BackupRecord | undefined) => Promise<T>): Promise<T> {
  const { bucket, key } = parseS3Url(url);
  const store = await openS3Store({ bucket, ...(opts.endpoint ? { endpoint: opts.endpoint } : {}) });
  const { body } = await store.get(key); // a missing object or bucket, or no access: one line before anything else
  body.pause();
  let recordText: string | undefined;
  try {
    recordText = await store.getText(`${key}.json`, MAX_SIDECAR_BYTES);
  } catch (err) {
    body.destroy();
    throw err;
  }
  let record: BackupRecord | undefined;
  try {
    record = recordText === undefined ? undefined : (JSON.parse(recordText) as BackupRecord);
  } catch {
    record = undefined;
  }
  const expected = record?.stored ?? (record && !record.encryption ? { size: record.size, sha256: record.sha256 } : undefined);
  if (!expected) opts.warn(`${s3Url(bucket, key)} has no record beside it (${s3Url(bucket, `${key}.json`)}): the download is checked by its own trailer only`);
  let temp: TempPlaintext;
  try {
    temp = await TempPlaintext.create(opts.stateDir);
  } catch (err) {
    body.destroy();
    throw err;
  }
  try {
    const hash = createHash('sha256');
    let size = 0;
    const count = new Transform({
      transform(chunk: Buffer, _e, cb) {
        hash.update(chunk);
        size += chunk.length;
        cb(null, chunk);
      },
    });
    await pipeline(body, count, temp.file.writable());
    await temp.file.closeForReading();
    const sha256 = hash.digest('hex');
    if (expected && (expected.size !== size || expected.sha256 !== sha256)) {
      throw new VerificationError(
        `${url} is not what was stored: ${size} bytes with sha256 ${sha256.slice(0, 12)}…, its record says ${expected.size} bytes with sha256 ${expected.sha256.slice(0, 12)}…`,
        'the object was changed or damaged after the backup; use another backup',
      );
    }
    return await use(temp.path, record);
  } finally {
    body.destroy();
    await temp.remove();
  }
}
