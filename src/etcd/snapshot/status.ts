import { Crc32c } from './crc32c.js';
import { BUCKET_LEAF_FLAG, BoltCorruption, readElement } from './layout.js';
import { decodeRevision } from './mvcc.js';
import { bucketRef, forEachElement, type BucketRef, type PageFile } from './pages.js';

/** What `etcdctl snapshot status -w json` prints, field for field. */
export interface EtcdSnapshotStatus {
  hash: number;
  revision: number;
  totalKey: number;
  totalSize: number;
}

/** Receives every entry of every top-level bucket, in the order status visits them; key and value are valid only during the call. */
export type EntrySink = (bucket: string, key: Buffer, value: Buffer) => void;

/*
 * etcd 3.4 (clientv3/snapshot v3Manager.Status, what `etcdctl snapshot status` runs):
 *   - runs bbolt's tx.Check() first and fails on any problem;
 *   - totalSize = tx.Size() = meta.pgid × pageSize (not the file size, which adds the trailer);
 *   - walks the root bucket's keys in order; each must be a bucket; hashes its name, then for
 *     every entry (bucket.ForEach: nested buckets yield a nil value) the key and the value,
 *     with CRC-32C; totalKey counts those entries across all buckets (not just "key");
 *   - revision = main revision of the last entry of the "key" bucket, tombstones included
 *     (it is 0 when that bucket is empty).
 * etcd 3.5 moved this to `etcdutl snapshot status` (etcdctl's copy is deprecated) with the same
 * algorithm and JSON fields, so these numbers match both. etcd 3.6 adds a "version" field (the
 * storage version kept in the "meta" bucket), which we do not report. Checked against etcdctl
 * 3.4.23 (test/e2e/inspect.test.ts) and etcdutl 3.5.16 (test/e2e/restore-etcd35.test.ts).
 */

/** Computes etcd's snapshot status from a bbolt tree, streaming every entry to sink as it goes. */
export async function computeStatus(file: PageFile, root: BucketRef, sink: EntrySink): Promise<EtcdSnapshotStatus> {
  const crc = new Crc32c();
  let totalKey = 0;
  let revision = 0;
  const nested: BucketRef[] = [];
  for await (const page of file.leaves(root)) {
    for (let i = 0; i < page.header.count; i++) {
      const bucket = readElement(page.buf, page.header.flags, i);
      if (!(bucket.flags & BUCKET_LEAF_FLAG)) throw new BoltCorruption(`cannot get hash of bucket ${bucket.key.toString()}`);
      const name = bucket.key.toString('latin1');
      const isKeyBucket = name === 'key';
      crc.update(bucket.key);
      await forEachElement(file, bucketRef(bucket.value), (e) => {
        const isBucket = (e.flags & BUCKET_LEAF_FLAG) !== 0;
        crc.update(e.key);
        if (isBucket) nested.push(bucketRef(e.value));
        else crc.update(e.value);
        if (isKeyBucket) revision = decodeRevision(e.key).main;
        totalKey++;
        sink(name, e.key, isBucket ? EMPTY : e.value);
      });
    }
    file.release(page);
  }
  // Nested buckets are not hashed by status, but bbolt's Check walks them: so do we.
  while (nested.length > 0) {
    await forEachElement(file, nested.pop()!, (e) => {
      if (e.flags & BUCKET_LEAF_FLAG) nested.push(bucketRef(e.value));
    });
  }
  return { hash: crc.digest(), revision, totalKey, totalSize: file.highWater * file.pageSize };
}

const EMPTY = Buffer.alloc(0);
