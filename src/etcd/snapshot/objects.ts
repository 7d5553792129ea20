import { decodeKeyValue, decodeRevision } from './mvcc.js';

/** Where a key lives in the Kubernetes layout /registry/<resource>/[<namespace>/]<name>. */
export type KeyPlace =
  | { kind: 'object'; resource: string; namespace: string | null; name: string }
  | { kind: 'other' };

// Resources whose storage path has two segments before namespace/name.
const TWO_SEGMENT = new Set(['services/specs', 'services/endpoints']);

/**
 * Classifies an etcd key. Groups other than core and a few built-ins store under
 * /registry/<group>/<resource>/…, recognisable by a dot in the first segment.
 */
export function classifyKey(key: string, prefix = '/registry/'): KeyPlace {
  if (!key.startsWith(prefix)) return { kind: 'other' };
  const parts = key.slice(prefix.length).split('/');
  let resourceParts = 1;
  if (parts.length >= 3 && (parts[0].includes('.') || TWO_SEGMENT.has(`${parts[0]}/${parts[1]}`))) resourceParts = 2;
  const resource = parts.slice(0, resourceParts).join('/');
  const rest = parts.slice(resourceParts);
  if (!resource || rest.some((p) => p === '')) return { kind: 'other' };
  if (rest.length === 1) return { kind: 'object', resource, namespace: null, name: rest[0] };
  if (rest.length === 2) return { kind: 'object', resource, namespace: rest[0], name: rest[1] };
  return { kind: 'other' };
}

/** Counts of the live (latest, not deleted) keys of a snapshot. */
export interface ObjectCounts {
  /** Live keys of any kind. */
  liveKeys: number;
  /** Entries of the "key" bucket: every stored revision, tombstones included. */
  revisions: number;
  /** Live keys under /registry/ in the Kubernetes layout. */
  objects: number;
  /** Live keys that are not Kubernetes objects. */
  other: number;
  /** Objects per resource, e.g. {"pods": 12, "apiextensions.k8s.io/customresourcedefinitions": 3}. */
  byResource: Record<string, number>;
  /** Objects per namespace, then per resource; cluster-scoped objects are under "". */
  byNamespace: Record<string, Record<string, number>>;
}

/**
 * Folds the "key" bucket (revision order) into the live key set. Memory grows with the number
 * of distinct keys, not with the file: one map entry per key.
 */
export class ObjectCounter {
  private readonly live = new Map<string, boolean>();
  private revisions = 0;

  /** Feeds one entry of the "key" bucket. */
  add(revisionKey: Buffer, value: Buffer): void {
    this.revisions++;
    // `etcdutl snapshot restore --bump-revision` marks the bumped revision with an entry whose
    // value is empty (no KeyValue, so no key): it is no key of the cluster. Every snapshot of a
    // cluster restored that way carries it.
    if (value.length === 0) return;
    const rev = decodeRevision(revisionKey);
    const key = decodeKeyValue(value).key.toString('latin1');
    if (rev.tombstone) this.live.delete(key);
    else this.live.set(key, true);
  }

  /** The counts for everything fed so far. */
  result(): ObjectCounts {
    const counts: ObjectCounts = { liveKeys: this.live.size, revisions: this.revisions, objects: 0, other: 0, byResource: {}, byNamespace: {} };
    for (const key of this.live.keys()) {
      const place = classifyKey(Buffer.from(key, 'latin1').toString('utf8'));
      if (place.kind === 'other') {
        counts.other++;
        continue;
      }
      counts.objects++;
      counts.byResource[place.resource] = (counts.byResource[place.resource] ?? 0) + 1;
      const ns = (counts.byNamespace[place.namespace ?? ''] ??= {});
      ns[place.resource] = (ns[place.resource] ?? 0) + 1;
    }
    return counts;
  }
}
