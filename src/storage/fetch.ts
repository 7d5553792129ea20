/**
 * Reading a backup from object storage. The bbolt walk needs random access, and a restore reads
 * the snapshot once per member and again on --resume, so the object is downloaded into the state
 * dir, checked against the size and sha256 its record says were stored, and read from there:
 * - `inspect s3://…`: into a temporary file (0600, removed on every exit path as the plaintext
 *   copies are: crypt/plaintext.ts);
 * - `restore s3://…`: into `<state>/downloads/<tag>-<name>` (0600; written as a temporary file and
 *   renamed once checked), kept while the restore runs or its journal names it (`--resume` reads it
 *   again), then removed (restore/downloads.ts).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Transform, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PluginError, VerificationError } from '../errors.js';
import type { BackupRecord } from '../backup/record.js';
import { MAX_SIDECAR_BYTES } from '../backup/record.js';
import { TempPlaintext } from '../crypt/plaintext.js';
import { downloadsDirOf, leaseDownload } from '../restore/downloads.js';
import { parseS3Url, s3Url, type ObjectStore } from './location.js';
import { openS3Store } from './s3.js';

export interface FetchOptions {
  endpoint?: string;
  stateDir: string;
  warn: (line: string) => void;
}

/** An object opened for download, with what its record says was stored. */
interface Opened {
  url: string;
  body: Readable;
  record?: BackupRecord;
  expected?: { size: number; sha256: string };
}

/** Opens the object (a missing one, a missing bucket or no access: one line first) and reads its record. */
async function openObject(url: string, opts: FetchOptions): Promise<Opened> {
  const { bucket, key } = parseS3Url(url);
  const store: ObjectStore = await openS3Store({ bucket, ...(opts.endpoint ? { endpoint: opts.endpoint } : {}) });
  const { body } = await store.get(key);
  body.pause();
  let text: string | undefined;
  try {
    text = await store.getText(`${key}.json`, MAX_SIDECAR_BYTES);
  } catch (err) {
    body.destroy();
    throw err;
  }
  let record: BackupRecord | undefined;
  try {
    record = text === undefined ? undefined : (JSON.parse(text) as BackupRecord);
  } catch {
    record = undefined;
  }
  const expected = storedAs(record);
  if (!expected) opts.warn(`${url} has no record beside it (${s3Url(bucket, `${key}.json`)}): the download is checked by the snapshot's own trailer only`);
  return { url, body, ...(record ? { record } : {}), ...(expected ? { expected } : {}) };
}

/** Copies the object into `out`, hashing it; refuses a copy that is not what its record says was stored. */
async function download(o: Opened, out: Writable): Promise<void> {
  const hash = createHash('sha256');
  let size = 0;
  const count = new Transform({
    transform(chunk: Buffer, _e, cb) {
      hash.update(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
  });
  try {
    await pipeline(o.body, count, out);
  } catch (err) {
    if (err instanceof PluginError) throw err; // a local write error names its file
    throw new PluginError(`the download of ${o.url} broke: ${(err as Error).message.split('\n')[0]}`, 'run the command again');
  }
  const sha256 = hash.digest('hex');
  if (o.expected && (o.expected.size !== size || o.expected.sha256 !== sha256)) {
    throw new VerificationError(
      `${o.url} is not what was stored: ${size} bytes with sha256 ${sha256.slice(0, 12)}…, its record says ${o.expected.size} bytes with sha256 ${o.expected.sha256.slice(0, 12)}…`,
      'the object was changed or damaged after the backup; use another backup',
    );
  }
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return h.digest('hex');
}

/**
 * Downloads the opened object into a temporary file in the state dir (removed on every exit path,
 * signals included), checks it, and runs `keep` on it before the file is removed.
 */
async function viaTempFile<T>(o: Opened, stateDir: string, keep: (temp: TempPlaintext) => Promise<T>): Promise<T> {
  let temp: TempPlaintext;
  try {
    temp = await TempPlaintext.create(stateDir);
  } catch (err) {
    o.body.destroy();
    throw err;
  }
  try {
    await download(o, temp.file.writable());
    return await keep(temp);
  } finally {
    o.body.destroy();
    await temp.remove();
  }
}

/** Downloads s3://BUCKET/KEY into a temporary file, checks it, runs `use` on it, removes it. */
export async function withStoredSnapshot<T>(url: string, opts: FetchOptions, use: (path: string, record: BackupRecord | undefined) => Promise<T>): Promise<T> {
  const o = await openObject(url, opts);
  return viaTempFile(o, opts.stateDir, async (temp) => {
    await temp.file.closeForReading();
    return use(temp.path, o.record);
  });
}

/**
 * Downloads s3://BUCKET/KEY into `<stateDir>/downloads/<tag>-<name>` for a restore (leased until
 * the restore ends; kept while its journal names it); a copy already there that matches the record
 * is used as it is. Returns its path.
 */
export async function downloadForRestore(url: string, opts: FetchOptions): Promise<string> {
  await downloadsDir(opts.stateDir); // before the store is asked anything
  const o = await openObject(url, opts);
  return keepForRestore({ url, name: basename(parseS3Url(url).key), expected: o.expected, open: () => o.body, close: () => o.body.destroy() }, opts);
}

/** What a record says was stored (the encrypted file's own size and hash for an encrypted backup), when it says so. */
export function storedAs(record: BackupRecord | undefined): { size: number; sha256: string } | undefined {
  return record?.stored ?? (record && !record.encryption && typeof record.sha256 === 'string' ? { size: record.size, sha256: record.sha256 } : undefined);
}

/**
 * As downloadForRestore, for a backup read from elsewhere (a schedule's volume, through a pod):
 * `open` is called only when no checked copy is there already. Returns the kept file's path.
 */
export async function readForRestore(src: { url: string; name: string; record?: BackupRecord; open: () => Readable }, opts: FetchOptions): Promise<string> {
  const expected = storedAs(src.record);
  if (!expected) opts.warn(`${src.url} has no record beside it: the copy is checked by the snapshot's own trailer only`);
  let body: Readable | undefined;
  return keepForRestore({ url: src.url, name: src.name, expected, open: () => (body = src.open()), close: () => body?.destroy() }, opts);
}

/** `<stateDir>/downloads` (0700), made when missing. */
async function downloadsDir(stateDir: string): Promise<string> {
  const dir = downloadsDirOf(stateDir);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new PluginError(`cannot create "${dir}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'pass a --state-dir you can write to');
  }
  return dir;
}

/** The kept copy at `<stateDir>/downloads/<tag>-<name>`: reused when it matches, else copied (checked) into place. */
async function keepForRestore(src: { url: string; name: string; expected?: { size: number; sha256: string }; open: () => Readable; close: () => void }, opts: FetchOptions): Promise<string> {
  let dir: string;
  try {
    dir = await downloadsDir(opts.stateDir);
  } catch (err) {
    src.close();
    throw err;
  }
  // One file per URL: two objects of the same name under other prefixes never share a download.
  const tag = createHash('sha256').update(src.url).digest('hex').slice(0, 12);
  const dest = join(dir, `${tag}-${src.name || 'snapshot.db'}`);
  // Held until the restore ends: no other restore's sweep removes it meanwhile (restore/downloads.ts).
  try {
    await leaseDownload(dest);
  } catch (err) {
    src.close();
    throw new PluginError(`cannot write in "${dir}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'pass a --state-dir you can write to');
  }
  const there = await stat(dest).catch(() => undefined);
  if (there && src.expected && there.size === src.expected.size && (await sha256File(dest)) === src.expected.sha256) {
    src.close();
    return dest;
  }
  const o: Opened = { url: src.url, body: src.open(), ...(src.expected ? { expected: src.expected } : {}) };
  // Renamed into place once checked.
  return viaTempFile(o, opts.stateDir, async (temp) => {
    await temp.file.commit(dest);
    return dest;
  });
}
