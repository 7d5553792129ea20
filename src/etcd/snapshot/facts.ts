import { open, stat, type FileHandle } from 'node:fs/promises';
import { NotFoundError, UsageError } from '../../errors.js';
import { PageChecker } from './check.js';
import { BoltCorruption, NO_FREELIST, PageFlag } from './layout.js';
import { chooseMeta, readMeta, type BoltMeta } from './meta.js';
import { ObjectCounter, type ObjectCounts } from './objects.js';
import { PageFile } from './pages.js';
import { computeStatus, type EtcdSnapshotStatus } from './status.js';
import { checkTrailer, hasTrailer, type TrailerOutcome } from './trailer.js';

/** Overall verdict on a snapshot file. */
export type SnapshotOutcome = 'valid' | 'trailer-mismatch' | 'corrupt';

/** Everything `inspect` reports about a snapshot file, read offline. */
export interface SnapshotFacts {
  path: string;
  fileSize: number;
  outcome: SnapshotOutcome;
  trailer: TrailerOutcome;
  /** sha256 of the database part (hex), when the file has a trailer. */
  sha256?: string;
  /** What is wrong, first problem first; empty when the bbolt file is sound. */
  problems: string[];
  /** bbolt page size and transaction id of the meta page in use, when a meta page is valid. */
  bolt?: BoltShape;
  /** Same numbers as `etcdctl snapshot status -w json`, when the bbolt file could be walked. */
  status?: EtcdSnapshotStatus;
  /** Live keys and Kubernetes objects, when the bbolt file could be walked. */
  objects?: ObjectCounts;
}

/** Shape of the bbolt file: what the reader walked (branch/leaf/overflow pages, tree depth). */
export interface BoltShape {
  pageSize: number;
  txid: number;
  /** High-water page id (meta.pgid). */
  highWater: number;
  /** "persisted" when a freelist page exists; etcd may skip it (NoFreelistSync), and bbolt then rebuilds it. */
  freelist: 'persisted' | 'rebuilt';
  branchPages: number;
  leafPages: number;
  /** Pages taken by values that do not fit one page. */
  overflowPages: number;
  /** Deepest page below a bucket root (0 = the root is a leaf). */
  maxDepth: number;
}

const OS_PAGE_SIZE = 4096;

/** Reads a snapshot (or a raw member/snap/db) with positional reads and one sha256 pass beside the walk. */
export async function readSnapshotFacts(path: string): Promise<SnapshotFacts> {
  const size = await statSnapshot(path);
  const fh = await open(path, 'r');
  try {
    // Both read through fh (the hash perhaps on a worker thread): settle both before closing it.
    const [trailerRead, boltRead] = await Promise.allSettled([checkTrailer(fh, size), readBolt(fh, size)]);
    if (trailerRead.status === 'rejected') throw trailerRead.reason;
    if (boltRead.status === 'rejected') throw boltRead.reason;
    const [trailer, bolt] = [trailerRead.value, boltRead.value];
    const outcome: SnapshotOutcome = bolt.problems.length > 0 ? 'corrupt' : trailer.trailer === 'mismatch' ? 'trailer-mismatch' : 'valid';
    return { path, fileSize: size, outcome, trailer: trailer.trailer, sha256: trailer.computedSha256, ...bolt };
  } finally {
    await fh.close();
  }
}

/**
 * The bbolt half of readSnapshotFacts alone (problems, shape, etcd status), for a caller that
 * checks the sha256 trailer itself: a backup hashes the file it wrote on its own. Kubernetes
 * objects are not counted: a backup does not report them, and the count keeps every live key in
 * memory (a map entry each), which for a cluster of many small objects is the walk's largest cost.
 */
export async function readBoltFacts(path: string): Promise<Pick<SnapshotFacts, 'problems' | 'bolt' | 'status'>> {
  const size = await statSnapshot(path);
  const fh = await open(path, 'r');
  try {
    return await readBolt(fh, size, false);
  } finally {
    await fh.close();
  }
}

async function statSnapshot(path: string): Promise<number> {
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new UsageError(`snapshot "${path}" is not a regular file`, 'pass the path of a snapshot file');
    return st.size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new NotFoundError(`snapshot "${path}" not found`, 'check the path');
    }
    throw err;
  }
}

type BoltPart = Pick<SnapshotFacts, 'problems' | 'bolt' | 'status' | 'objects'>;

async function readBolt(fh: FileHandle, fileSize: number, countObjects = true): Promise<BoltPart> {
  if (fileSize === 0) return { problems: ['file is empty'] };
  const dataSize = hasTrailer(fileSize) ? fileSize - 32 : fileSize;
  const metas = await readMetas(fh, dataSize);
  if (metas.outcome === 'none-valid') return { problems: metas.problems.length ? metas.problems : ['no valid bbolt meta page'] };
  const { meta } = metas;
  const problems = [...metas.problems];
  const bolt: BoltShape = {
    pageSize: meta.pageSize,
    txid: Number(meta.txid),
    highWater: meta.pgid,
    freelist: meta.freelist === NO_FREELIST ? 'rebuilt' : 'persisted',
    branchPages: 0,
    leafPages: 0,
    overflowPages: 0,
    maxDepth: 0,
  };
  if (meta.pgid * meta.pageSize > dataSize) {
    problems.push(`truncated: the database needs ${meta.pgid * meta.pageSize} bytes but the file holds ${dataSize}`);
    return { problems, bolt };
  }
  try {
    const checker = new PageChecker(meta);
    const file = new PageFile(fh, meta.pageSize, dataSize, meta.pgid, (header, depth) => {
      checker.onPage(header);
      if (header.flags & PageFlag.branch) bolt.branchPages++;
      else bolt.leafPages++;
      bolt.overflowPages += header.overflow;
      bolt.maxDepth = Math.max(bolt.maxDepth, depth);
    });
    await checker.loadFreelist(file);
    const counter = countObjects ? new ObjectCounter() : undefined;
    const status = await computeStatus(file, { kind: 'paged', root: meta.root }, (bucket, k, v) => {
      if (bucket === 'key') counter?.add(k, v);
    });
    problems.push(...checker.finish());
    return { problems, bolt, status, ...(counter ? { objects: counter.result() } : {}) };
  } catch (err) {
    if (err instanceof BoltCorruption) return { problems: [...problems, err.message], bolt };
    throw err;
  }
}

type Metas = { outcome: 'chosen'; meta: BoltMeta; problems: string[] } | { outcome: 'none-valid'; problems: string[] };

// bbolt takes the page size from meta 0 and falls back to the OS page size when meta 0 is bad.
export async function readMetas(fh: FileHandle, dataSize: number): Promise<Metas> {
  const page0 = await readAt(fh, 0, Math.min(OS_PAGE_SIZE, dataSize));
  const m0 = readMeta(page0);
  const pageSize = m0.outcome === 'valid' ? m0.meta.pageSize : OS_PAGE_SIZE;
  if (pageSize < 512 || pageSize > 1 << 20 || (pageSize & (pageSize - 1)) !== 0) {
    return { outcome: 'none-valid', problems: [`meta page 0: page size ${pageSize} is not a power of two between 512 and 1 MiB`] };
  }
  if (dataSize < pageSize * 2) return { outcome: 'none-valid', problems: [`file size ${dataSize} is too small for a bbolt database`] };
  const m1 = readMeta(await readAt(fh, pageSize, pageSize));
  const choice = chooseMeta(m0, m1);
  if (choice.outcome === 'chosen' && choice.meta.pageSize !== pageSize) {
    choice.problems.push(`meta page ${choice.index}: page size ${choice.meta.pageSize} differs from ${pageSize}`);
  }
  return choice;
}

async function readAt(fh: FileHandle, offset: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  const { bytesRead } = await fh.read(buf, 0, length, offset);
  return buf.subarray(0, bytesRead);
}

