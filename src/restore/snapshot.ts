/**
 * What restore needs to know about the snapshot file before anything changes: integrity (bbolt
 * walk and sha256 trailer), revision, live key count, the sha256 of the whole file (to check the
 * copy in every utility pod) and the etcd version that wrote it. Streams; never buffers the file.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { VerificationError } from '../errors.js';
import { readSnapshotFacts } from '../etcd/snapshot/facts.js';
import { hasTrailer } from '../etcd/snapshot/trailer.js';
import { chooseMeta, readMeta } from '../etcd/snapshot/meta.js';
import { PageFile } from '../etcd/snapshot/pages.js';
import { computeStatus } from '../etcd/snapshot/status.js';
import type { PlannedSnapshot } from './plan.js';

/** Snapshot facts for the plan, plus where its etcd version came from. */
export interface RestoreSnapshotFacts extends PlannedSnapshot {
  /** Live keys (latest revision, not deleted): what `etcdctl get "" --prefix --count-only` shows after a restore. */
  liveKeys: number;
  /** "3.4", "3.5", or a full version from the backup's sidecar. */
  etcdVersion?: string;
  /** Where etcdVersion came from. */
  etcdVersionSource?: 'sidecar' | 'storage-version' | 'meta-bucket';
}

/** Reads and checks the snapshot; a corrupt file or a wrong trailer is refused here (exit code 3). */
export async function loadRestoreSnapshot(path: string, named: string = path): Promise<RestoreSnapshotFacts> {
  const facts = await readSnapshotFacts(path);
  if (facts.outcome !== 'valid' || !facts.status) {
    const why = facts.outcome === 'trailer-mismatch' ? 'its sha256 trailer does not match its contents' : facts.problems[0] ?? facts.outcome;
    throw new VerificationError(
      `snapshot "${named}" is ${facts.outcome === 'trailer-mismatch' ? 'damaged' : 'corrupt'}: ${why}`,
      `run \`kubectl etcd inspect ${named}\` for details and restore from another backup`,
    );
  }
  const sha256 = await fileSha256(path);
  const version = await snapshotEtcdVersion(path, named);
  return {
    path: named,
    size: facts.fileSize,
    sha256,
    revision: facts.status.revision,
    totalKey: facts.status.totalKey,
    hasTrailer: facts.trailer === 'valid',
    liveKeys: facts.objects?.liveKeys ?? 0,
    ...version,
  };
}

/** sha256 of the whole file (what `sha256sum` prints in the pod), streamed. */
export async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), new Writable({ write(chunk: Buffer, _e, cb) { hash.update(chunk); cb(); } }));
  return hash.digest('hex');
}

/**
 * The etcd version that wrote the snapshot. Source of truth, best first: the `.json` sidecar
 * `kubectl etcd backup --dir` writes (the live server's version); the storage version etcd 3.6
 * keeps in the "meta" bucket; the "meta" bucket's shape (3.5 adds "term" and "confState" to
 * "consistent_index"; 3.4 and older have only "consistent_index").
 */
export async function snapshotEtcdVersion(path: string, named: string = path): Promise<Pick<RestoreSnapshotFacts, 'etcdVersion' | 'etcdVersionSource'>> {
  try {
    const record = JSON.parse(await readFile(`${named}.json`, 'utf8')) as { etcdVersion?: unknown };
    if (typeof record.etcdVersion === 'string' && record.etcdVersion) return { etcdVersion: record.etcdVersion, etcdVersionSource: 'sidecar' };
  } catch {
    // no sidecar: read the database
  }
  const meta = await metaBucket(path);
  if (!meta) return {};
  const storage = meta.get('storageVersion');
  if (storage) return { etcdVersion: storage, etcdVersionSource: 'storage-version' };
  if (meta.has('term') || meta.has('confState')) return { etcdVersion: '3.5', etcdVersionSource: 'meta-bucket' };
  return { etcdVersion: '3.4', etcdVersionSource: 'meta-bucket' };
}

async function metaBucket(path: string): Promise<Map<string, string> | undefined> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    const dataSize = hasTrailer(size) ? size - 32 : size;
    const page0 = Buffer.alloc(4096);
    await fh.read(page0, 0, 4096, 0);
    const m0 = readMeta(page0);
    const pageSize = m0.outcome === 'valid' ? m0.meta.pageSize : 4096;
    const page1 = Buffer.alloc(pageSize);
    await fh.read(page1, 0, pageSize, pageSize);
    const choice = chooseMeta(m0, readMeta(page1));
    if (choice.outcome !== 'chosen') return undefined;
    const file = new PageFile(fh, choice.meta.pageSize, dataSize, choice.meta.pgid);
    const meta = new Map<string, string>();
    await computeStatus(file, { kind: 'paged', root: choice.meta.root }, (bucket, k, v) => {
      if (bucket === 'meta') meta.set(k.toString('latin1'), v.toString('latin1'));
    });
    return meta;
  } catch {
    return undefined;
  } finally {
    await fh.close();
  }
}

/** "3.4" from "3.4.23", "v3.4.23-0-gke.1" or "3.4"; undefined when there is no version in it. */
export function minorOf(version: string | undefined): string | undefined {
  const m = /(\d+)\.(\d+)(?:\.\d+)?/.exec(version ?? '');
  return m ? `${m[1]}.${m[2]}` : undefined;
}

/** The etcd version an image tag names (gcr.io/…/etcd:v3.4.23-0-gke.1 → 3.4.23), if it names one. */
export function imageTagVersion(image: string): string | undefined {
  const ref = image.replace(/@sha256:[0-9a-f]+$/i, '');
  const colon = ref.lastIndexOf(':');
  if (colon <= ref.lastIndexOf('/')) return undefined;
  const m = /^v?(\d+\.\d+(?:\.\d+)?)/.exec(ref.slice(colon + 1));
  return m?.[1];
}
