import { open, stat } from 'node:fs/promises';
import { Crc32c } from './crc32c.js';
import { readMetas } from './facts.js';
import { BUCKET_LEAF_FLAG, BoltCorruption } from './layout.js';
import { decodeKeyValue, decodeRevision, type Revision } from './mvcc.js';
import { bucketRef, forEachElement, PageFile, type BucketRef } from './pages.js';
import { hasTrailer } from './trailer.js';

/** What a member started on this snapshot reports from `HashKV` at the snapshot's revision, computed offline. */
export interface KvHash {
  /** CRC-32C (Castagnoli) over the "key" bucket as etcd's kvHasher writes it. */
  hash: number;
  /** The compaction revision etcd starts with (-1: never compacted). */
  compactRevision: number;
  /** The revision a member starts at: the last entry's of the "key" bucket, or the compaction's when that is later (a compaction at a delete removes the top entries). */
  revision: number;
  /** Keys whose latest revision is not a delete (what `etcdctl get --prefix "" --count-only` counts). */
  liveKeys: number;
  /** etcd authentication is on in the snapshot (its "auth" bucket): reading it needs a user. */
  authEnabled: boolean;
}

/** How the member that answers hashes: from etcd 3.4.34 and 3.5.16 on, a delete at exactly the compaction revision is left out (etcd keeps it since; older releases deleted it). */
export interface HashRules {
  skipsTombstoneAtCompaction: boolean;
}

/** The hash rules of an etcd release ("3.5.16"). */
export function hashRulesOf(version: string): HashRules {
  const [major, minor, patch] = version.split('.').map((n) => Number.parseInt(n, 10));
  return { skipsTombstoneAtCompaction: major > 3 || (major === 3 && (minor >= 6 || (minor === 5 && patch >= 16) || (minor === 4 && patch >= 34))) };
}

/*
 * etcd's HashKV (mvcc hash.go kvHasher, 3.4's kvstore.go HashByRev, identical for these inputs):
 * CRC-32C over the bucket name "key", then over the key and value of every entry of the "key"
 * bucket (revision order) with main ≤ rev, where an entry at or below the compaction revision
 * counts only if it is in `keep` — the revision each live key would keep if compacted at rev: its
 * latest revision, unless that is a delete (key_index.go keep/doCompact) — and only when keep is
 * not empty. The compaction revision is what a member starts with: finishedCompactRev of the
 * "meta" bucket, or scheduledCompactRev when a compaction was scheduled but not finished (the
 * member finishes it on start). etcd 3.4.34 and 3.5.16 (etcd #18274) also leave out a delete at
 * exactly the compaction revision, which compactions since keep: HashRules says which rule the
 * member that is compared follows.
 * Two passes over the bucket: the first finds each key's latest revision (memory grows with the
 * number of keys, as inspect's counts do), the second hashes. The snapshot is never in memory.
 */

/** Computes the HashKV a member started on the snapshot file at `path` answers at its last revision. */
export async function computeKvHash(path: string, rules: HashRules): Promise<KvHash> {
  const size = (await stat(path)).size;
  const fh = await open(path, 'r');
  try {
    const dataSize = hasTrailer(size) ? size - 32 : size;
    const metas = await readMetas(fh, dataSize);
    if (metas.outcome !== 'chosen') throw new BoltCorruption(metas.problems[0] ?? 'no valid bbolt meta page');
    const { meta } = metas;
    const file = new PageFile(fh, meta.pageSize, dataSize, meta.pgid);
    const root: BucketRef = { kind: 'paged', root: meta.root };
    const keyBucket = await findBucket(file, root, 'key');
    const metaBucket = await findBucket(file, root, 'meta');
    const compactRevision = metaBucket ? await readCompactRevision(file, metaBucket) : -1;
    const authBucket = await findBucket(file, root, 'auth');
    const authEnabled = authBucket ? await readAuthEnabled(file, authBucket) : false;

    const latest = new Map<string, string>();
    let revision = 0;
    if (keyBucket) {
      await forEachElement(file, keyBucket, (e) => {
        const rev = decodeRevision(e.key);
        revision = rev.main;
        latest.set(keyOf(e.value), rev.tombstone ? DELETED : revisionId(rev));
      });
    }
    let liveKeys = 0;
    let keepIsEmpty = true;
    for (const [key, rev] of latest) {
      if (rev === DELETED) continue;
      keepIsEmpty = false;
      if (key !== '') liveKeys++;
    }

    const crc = new Crc32c();
    crc.update(Buffer.from('key'));
    if (keyBucket) {
      await forEachElement(file, keyBucket, (e) => {
        const rev = decodeRevision(e.key);
        if (rev.main <= compactRevision && !keepIsEmpty && (rev.tombstone || latest.get(keyOf(e.value)) !== revisionId(rev))) return;
        if (rules.skipsTombstoneAtCompaction && rev.tombstone && rev.main === compactRevision) return;
        crc.update(e.key);
        crc.update(e.value);
      });
    }
    return { hash: crc.digest(), compactRevision, revision: Math.max(revision, compactRevision), liveKeys, authEnabled };
  } finally {
    await fh.close();
  }
}

const DELETED = 'deleted';

function revisionId(rev: Revision): string {
  return `${rev.main}_${rev.sub}`;
}

// The key of an entry. An empty value (the revision mark `etcdutl --bump-revision` leaves) decodes
// to the empty key, as etcd's unmarshalling of it does; inspect does not count it as a key.
function keyOf(value: Buffer): string {
  return value.length === 0 ? '' : decodeKeyValue(value).key.toString('latin1');
}

/** The top-level bucket `name`, or undefined when the snapshot has none. */
async function findBucket(file: PageFile, root: BucketRef, name: string): Promise<BucketRef | undefined> {
  let found: BucketRef | undefined;
  await forEachElement(file, root, (e) => {
    if (found || e.key.toString('latin1') !== name) return;
    if (!(e.flags & BUCKET_LEAF_FLAG)) throw new BoltCorruption(`"${name}" is not a bucket`);
    found = bucketRef(e.value);
  });
  return found;
}

async function readAuthEnabled(file: PageFile, authBucket: BucketRef): Promise<boolean> {
  let enabled = false;
  await forEachElement(file, authBucket, (e) => {
    if (e.key.toString('latin1') === 'authEnabled') enabled = e.value.length === 1 && e.value[0] === 1;
  });
  return enabled;
}

async function readCompactRevision(file: PageFile, metaBucket: BucketRef): Promise<number> {
  let finished = -1;
  let scheduled = -1;
  await forEachElement(file, metaBucket, (e) => {
    const name = e.key.toString('latin1');
    if (name === 'finishedCompactRev') finished = decodeRevision(e.value).main;
    else if (name === 'scheduledCompactRev') scheduled = decodeRevision(e.value).main;
  });
  return Math.max(finished, scheduled);
}
