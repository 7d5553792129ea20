/**
 * The garbage collector: deletes objects all of whose owners are gone (background propagation),
 * drops dangling ownerReferences, and honours the `orphan` and `foregroundDeletion` finalizers
 * when the API server sets them on an owner being deleted.
 *
 * Like the real GC, which watches every resource, it acts on an owner's deletion at once for the
 * kinds the controller-manager watches (pods, claims, volumes, ConfigMaps, ReplicaSets,
 * ControllerRevisions, Jobs and the workloads themselves).
 *
 * Differs from the real GC: it only looks at dependents of those kinds, not every resource;
 * owners outside them are checked with a live GET each pass (results remembered for 30 s), so
 * their deletion is noticed only by the periodic pass; there is no dependency graph, just a full scan;
 * foreground deletion waits for the dependents to disappear but ignores blockOwnerDeletion.
 */
import type { KubernetesObject, V1OwnerReference } from '@kubernetes/client-node';
import { errLine, statusCode, type ClusterApi } from './api.js';
import { allCaches, type Caches } from './caches.js';
import type { LogFn } from './loop.js';
import { clone, isTerminating } from './objects.js';

/** Everything the garbage collector needs. */
export interface GcDeps {
  api: ClusterApi;
  caches: Caches;
  log: LogFn;
}

/** Returns the garbage collector's sync function. */
export function makeGarbageCollector({ api, caches, log }: GcDeps): () => Promise<void> {
  /** uid → when a live GET last found the owner. */
  const seenAlive = new Map<string, number>();

  async function ownerExists(ref: V1OwnerReference, dependent: KubernetesObject): Promise<boolean | undefined> {
    for (const cache of allCaches(caches)) {
      const hit = cache.byUid(ref.uid);
      if (hit) return true;
    }
    const seen = seenAlive.get(ref.uid);
    if (seen && Date.now() - seen < 30_000) return true;
    try {
      const live = await api.read(ref.apiVersion, ref.kind, dependent.metadata?.namespace, ref.name);
      const alive = live !== undefined && live.metadata?.uid === ref.uid;
      if (alive) seenAlive.set(ref.uid, Date.now());
      return alive;
    } catch (err) {
      if (/Unrecognized API version and kind/i.test(String((err as Error)?.message))) return undefined;
      throw err;
    }
  }

  async function collect(dependent: KubernetesObject): Promise<void> {
    const refs = dependent.metadata?.ownerReferences ?? [];
    if (refs.length === 0 || isTerminating(dependent)) return;
    const dangling: string[] = [];
    for (const ref of refs) {
      const exists = await ownerExists(ref, dependent);
      if (exists === undefined) return; // an owner kind we cannot check: leave it alone
      if (!exists) dangling.push(ref.uid);
    }
    if (dangling.length === 0) return;
    const what = `${dependent.kind} "${dependent.metadata?.namespace ?? ''}/${dependent.metadata?.name}"`;
    if (dangling.length === refs.length) {
      log(`gc: deleting ${what}: its owners are gone`);
      await api.remove(dependent, { uid: dependent.metadata?.uid, propagationPolicy: 'Background' });
      return;
    }
    const updated = clone(dependent);
    updated.metadata!.ownerReferences = refs.filter((r) => !dangling.includes(r.uid));
    await api.replace(updated);
  }

  async function finishOwner(owner: KubernetesObject, dependents: KubernetesObject[]): Promise<void> {
    const finalizers = owner.metadata?.finalizers ?? [];
    const uid = owner.metadata?.uid ?? '';
    const mine = dependents.filter((d) => d.metadata?.ownerReferences?.some((r) => r.uid === uid));
    if (finalizers.includes('orphan')) {
      for (const d of mine) {
        const updated = clone(d);
        updated.metadata!.ownerReferences = d.metadata?.ownerReferences?.filter((r) => r.uid !== uid);
        await api.replace(updated);
      }
      if (mine.length === 0) await dropFinalizer(owner, 'orphan');
      return;
    }
    if (finalizers.includes('foregroundDeletion')) {
      for (const d of mine) if (!isTerminating(d)) await api.remove(d, { uid: d.metadata?.uid, propagationPolicy: 'Foreground' });
      if (mine.length === 0) await dropFinalizer(owner, 'foregroundDeletion');
    }
  }

  async function dropFinalizer(owner: KubernetesObject, name: string): Promise<void> {
    const updated = clone(owner);
    updated.metadata!.finalizers = owner.metadata?.finalizers?.filter((f) => f !== name);
    await api.replace(updated);
  }

  return async function collectGarbage(): Promise<void> {
    const objects = allCaches(caches).flatMap((c) => c.list() as KubernetesObject[]);
    const now = Date.now();
    for (const [uid, at] of seenAlive) if (now - at > 30_000) seenAlive.delete(uid);
    let firstError: unknown;
    const attempt = async (obj: KubernetesObject, fn: () => Promise<void>): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        const code = statusCode(err);
        if (code === 404 || code === 409) return;
        log(`gc: ${obj.kind} "${obj.metadata?.name}": ${errLine(err)}`);
        firstError ??= err;
      }
    };
    for (const owner of objects) {
      const f = owner.metadata?.finalizers ?? [];
      if (isTerminating(owner) && (f.includes('orphan') || f.includes('foregroundDeletion'))) {
        await attempt(owner, () => finishOwner(owner, objects));
      }
    }
    for (const dependent of objects) await attempt(dependent, () => collect(dependent));
    if (firstError) throw firstError;
  };
}
