/**
 * The pvc-protection and pv-protection controllers: a claim that is deleted while a pod uses it
 * stays Terminating until no pod does; a volume that is deleted while bound stays until it is not.
 * (kubernetes docs, concepts/storage/persistent-volumes "Storage Object in Use Protection";
 * kubernetes pkg/controller/volume/pvcprotection and pvprotection.)
 *
 * "In use" as the real controller judges it: a pod object that exists, is scheduled to a node
 * (spec.nodeName set) and names the claim in its volumes, in any phase — a Succeeded or Failed pod
 * still counts until it is deleted. A volume is in use while its phase is Bound.
 *
 * Differs from the real controllers: they check the API server once more before removing the
 * finalizer (the cache may lag); here a live GET of the pods list does the same; generic ephemeral
 * volumes are not modelled.
 */
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import { errLine, statusCode, type ClusterApi } from './api.js';
import type { Caches } from './caches.js';
import type { LogFn } from './loop.js';
import { clone, isTerminating } from './objects.js';

/** The finalizers the API server adds on create (apiserver/defaults.ts). */
export const PVC_PROTECTION = 'kubernetes.io/pvc-protection';
export const PV_PROTECTION = 'kubernetes.io/pv-protection';

/** Everything the protection controllers need. */
export interface ProtectionDeps {
  api: ClusterApi;
  caches: Caches;
  log: LogFn;
}

/** True when a scheduled pod names the claim in its volumes (any phase). */
export function podUsesClaim(pod: V1Pod, claim: string): boolean {
  return !!pod.spec?.nodeName && (pod.spec.volumes ?? []).some((v) => v.persistentVolumeClaim?.claimName === claim);
}

/** Returns the sync function of both protection controllers. */
export function makeProtectionController({ api, caches, log }: ProtectionDeps): () => Promise<void> {
  async function claimInUse(claim: V1PersistentVolumeClaim, livePods: () => Promise<V1Pod[]>): Promise<boolean> {
    const ns = claim.metadata?.namespace ?? 'default';
    const name = claim.metadata?.name ?? '';
    if (caches.pods.list(ns).some((p) => podUsesClaim(p, name))) return true;
    // The cache may not have seen a pod created a moment ago: ask the API server before letting go.
    return (await livePods()).some((p) => p.metadata?.namespace === ns && podUsesClaim(p, name));
  }

  async function release<T extends V1PersistentVolumeClaim | V1PersistentVolume>(obj: T, finalizer: string): Promise<void> {
    const updated = clone(obj);
    updated.metadata = { ...updated.metadata, finalizers: (updated.metadata?.finalizers ?? []).filter((f) => f !== finalizer) };
    await api.replace(updated);
    log(`protection: removed ${finalizer} from ${obj.kind ?? 'object'} "${obj.metadata?.namespace ? `${obj.metadata.namespace}/` : ''}${obj.metadata?.name}"`);
  }

  return async function syncProtection(): Promise<void> {
    let firstError: unknown;
    const run = async (fn: () => Promise<void>): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        const code = statusCode(err);
        if (code === 409 || code === 404) return;
        log(`protection: ${errLine(err)}`);
        firstError ??= err;
      }
    };
    // One live list of pods per pass, and only when a claim is waiting to go.
    let live: Promise<V1Pod[]> | undefined;
    const livePods = () => (live ??= api.list<V1Pod>('v1', 'Pod').then((l) => l.items));
    for (const claim of caches.claims.list()) {
      if (!isTerminating(claim) || !(claim.metadata?.finalizers ?? []).includes(PVC_PROTECTION)) continue;
      await run(async () => {
        if (!(await claimInUse(claim, livePods))) await release({ ...claim, kind: 'PersistentVolumeClaim', apiVersion: 'v1' }, PVC_PROTECTION);
      });
    }
    for (const pv of caches.volumes.list()) {
      if (!isTerminating(pv) || !(pv.metadata?.finalizers ?? []).includes(PV_PROTECTION)) continue;
      if (pv.status?.phase === 'Bound') continue;
      await run(() => release({ ...pv, kind: 'PersistentVolume', apiVersion: 'v1' }, PV_PROTECTION));
    }
    if (firstError) throw firstError;
  };
}
