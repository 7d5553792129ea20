/**
 * The member and cluster IDs a `snapshot restore` gives a cluster, computed as etcd computes them
 * (etcd's membership package: computeMemberId and RaftCluster.genID, the same in 3.4 to 3.6): a
 * member's ID is the first 8 bytes, big-endian, of sha1(its sorted peer URLs joined, then the
 * --initial-cluster-token); the cluster's is the same of sha1(the sorted member IDs as 8-byte
 * big-endian words). A restore names no start time, so nothing else goes in. IDs are hex, as
 * etcdctl prints them.
 */
import { createHash } from 'node:crypto';

/** The IDs a restore with this --initial-cluster and --initial-cluster-token gives. */
export interface RestoredIds {
  /** Member name → member ID (hex). */
  members: Record<string, string>;
  clusterId: string;
}

function first64(data: Buffer | string): bigint {
  return createHash('sha1').update(data).digest().readBigUInt64BE(0);
}

/** The IDs of the members of `initialCluster` (`name=url,name=url`) restored with `token`. */
export function restoredIds(initialCluster: string, token: string): RestoredIds {
  const urls = new Map<string, string[]>();
  for (const part of initialCluster.split(',').map((p) => p.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    const name = part.slice(0, eq);
    // As etcd holds a URL (Go's url.URL.String()): the scheme lowercased, the rest as written.
    const url = part.slice(eq + 1).replace(/^[A-Za-z][A-Za-z0-9+.-]*:/, (scheme) => scheme.toLowerCase());
    urls.set(name, [...(urls.get(name) ?? []), url]);
  }
  const ids = new Map([...urls].map(([name, list]) => [name, first64([...list].sort().join('') + token)]));
  const sorted = [...ids.values()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const words = Buffer.alloc(8 * sorted.length);
  sorted.forEach((id, i) => words.writeBigUInt64BE(id, 8 * i));
  return {
    members: Object.fromEntries([...ids].map(([name, id]) => [name, id.toString(16)])),
    clusterId: first64(words).toString(16),
  };
}
