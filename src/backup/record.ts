import { open, writeFile, type FileHandle } from 'node:fs/promises';
import { PluginError } from '../errors.js';
import type { TransportKind } from './transport.js';
import type { DrillReport, PodDrillReport } from '../verify/drill.js';

/** What one backup produced: printed with -o json|yaml and written as the `<file>.json` sidecar. */
export interface BackupRecord {
  /** Absolute path of the snapshot, or "-" for stdout. */
  file: string;
  size: number;
  sha256: string;
  revision?: number;
  totalKeys?: number;
  hash?: number;
  etcdVersion?: string;
  clusterId?: string;
  memberId?: string;
  namespace: string;
  workload: string;
  sourcePod: string;
  sourceMember: string;
  transport: TransportKind;
  startedAt: string;
  time: string;
  pluginVersion: string;
  /** Which checks passed; with -f - the bbolt check cannot run. `decrypts`: the stored ciphertext was read back and decrypted to the verified snapshot. */
  verified: { size: boolean; sha256Trailer: boolean; bbolt: boolean; decrypts?: boolean };
  /** Set when the file is age-encrypted: `size` and `sha256` above are the plaintext snapshot's, `stored` the file's. */
  encryption?: { format: 'age'; recipients: string[] };
  stored?: { size: number; sha256: string };
  /** Restore drills of this backup (`kubectl etcd verify --restore`), newest last. */
  drills?: Array<DrillReport | PodDrillReport>;
}

/** Writes the sidecar `<snapshot>.json` (mode 0600). */
export async function writeSidecar(snapshotPath: string, record: BackupRecord): Promise<string> {
  const path = `${snapshotPath}.json`;
  try {
    await writeFile(path, JSON.stringify(record, null, 2) + '\n', { mode: 0o600 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new PluginError(`cannot write the sidecar "${path}": ${code}`, `the snapshot "${snapshotPath}" is saved; free space or fix the directory's permissions`);
  }
  return path;
}

/** Whose backup a file is, as its sidecar says. */
export interface BackupOwner {
  namespace: string;
  workload: string;
}

/** Sidecars are small; anything bigger is not one of ours. */
export const MAX_SIDECAR_BYTES = 1 << 20;

/**
 * The text of a `<snapshot>.json` sidecar: undefined when there is none, or when it is too big to
 * be one of ours (never read past that, so a device cannot make it read for ever); throws when it
 * is there but cannot be read (EACCES, EISDIR …).
 */
export async function readSidecarText(path: string): Promise<string | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    // At most one byte past the cap is read, whatever the file is (a device never ends).
    const buf = Buffer.allocUnsafe(MAX_SIDECAR_BYTES + 1);
    let got = 0;
    for (let n = -1; n !== 0 && got < buf.length; got += n) n = (await handle.read(buf, got, buf.length - got, got)).bytesRead;
    return got > MAX_SIDECAR_BYTES ? undefined : buf.subarray(0, got).toString('utf8');
  } finally {
    await handle.close();
  }
}

/** Reads namespace and workload from a `<snapshot>.json` sidecar; undefined when it is missing, too big or not a backup record. */
export async function readSidecarOwner(path: string): Promise<BackupOwner | undefined> {
  // An unreadable sidecar does not prove the file ours either: it is kept.
  const text = await readSidecarText(path).catch(() => undefined);
  return text === undefined ? undefined : ownerOfRecord(text);
}

/** Namespace and workload from a record's text; undefined when it is not a backup record. */
export function ownerOfRecord(text: string): BackupOwner | undefined {
  try {
    const r = JSON.parse(text) as Partial<BackupRecord>;
    if (typeof r.namespace !== 'string' || typeof r.workload !== 'string') return undefined;
    return { namespace: r.namespace, workload: r.workload };
  } catch {
    return undefined;
  }
}
