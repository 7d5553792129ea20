/**
 * The ReplicaSet controller: keeps `spec.replicas` active pods named `<rs>-<5 random>`.
 *
 * Differs from the real controller: no adoption or release by label (only pods whose controller
 * ownerReference is the ReplicaSet count), no slow-start batching, no minReadySeconds
 * (available = ready), and "expectations" are a simple 30 s memory of the pods it created or
 * deleted that the watch has not shown yet.
 */
import type { V1Pod, V1ReplicaSet, V1ReplicaSetStatus } from '@kubernetes/client-node';
import { errLine, statusCode, type ClusterApi } from './api.js';
import type { Caches } from './caches.js';
import type { EventRecorder } from './events.js';
import type { LogFn } from './loop.js';
import { clone, controllerRef, isActive, isControlledBy, isPodReady, randomSuffix, hasFields } from './objects.js';

/** Everything the ReplicaSet controller needs. */
export interface ReplicaSetDeps {
  api: ClusterApi;
  caches: Caches;
  events: EventRecorder;
  log: LogFn;
}

/** The order in which surplus pods are deleted: unscheduled, pending, not ready, then newest first. */
export function deletionOrder(a: V1Pod, b: V1Pod): number {
  const rank = (p: V1Pod): number =>
    (p.spec?.nodeName ? 0 : 4) + (p.status?.phase === 'Running' ? 0 : 2) + (isPodReady(p) ? 0 : 1);
  return rank(b) - rank(a) || String(b.metadata?.creationTimestamp).localeCompare(String(a.metadata?.creationTimestamp));
}

/** Returns the ReplicaSet controller's sync function. */
export function makeReplicaSetController({ api, caches, events, log }: ReplicaSetDeps): () => Promise<void> {
  /** rs uid → pod names created, and pod uids deleted, not yet seen by the watch. */
  const created = new Map<string, Map<string, number>>();
  const deleted = new Map<string, number>();

  async function syncSet(rs: V1ReplicaSet): Promise<void> {
    if (rs.metadata?.deletionTimestamp) return;
    const uid = rs.metadata?.uid ?? '';
    const ns = rs.metadata?.namespace ?? 'default';
    const now = Date.now();
    const owned = caches.pods.list(ns).filter((p) => isControlledBy(p, uid));
    const active = owned.filter((p) => isActive(p) && !deleted.has(p.metadata?.uid ?? ''));
    const pendingCreates = created.get(uid) ?? new Map<string, number>();
    for (const p of owned) pendingCreates.delete(p.metadata?.name ?? '');
    for (const [name, at] of pendingCreates) if (now - at > 30_000) pendingCreates.delete(name);
    created.set(uid, pendingCreates);

    await writeStatus(rs, active);
    if (pendingCreates.size > 0) return; // wait until the watch shows what we created

    const diff = (rs.spec?.replicas ?? 1) - active.length;
    if (diff > 0) {
      for (let i = 0; i < Math.min(diff, 50); i++) {
        const pod = newPod(rs);
        pendingCreates.set(pod.metadata?.name ?? '', now);
        try {
          await api.create(pod);
          events.record(rs, 'Normal', 'SuccessfulCreate', `Created pod: ${pod.metadata?.name}`);
        } catch (err) {
          pendingCreates.delete(pod.metadata?.name ?? '');
          throw err;
        }
      }
    } else if (diff < 0) {
      for (const pod of [...active].sort(deletionOrder).slice(0, -diff)) {
        deleted.set(pod.metadata?.uid ?? '', now);
        await api.remove(pod, { uid: pod.metadata?.uid });
        events.record(rs, 'Normal', 'SuccessfulDelete', `Deleted pod: ${pod.metadata?.name}`);
      }
    }
  }

  function newPod(rs: V1ReplicaSet): V1Pod {
    const t = clone(rs.spec?.template ?? {});
    return {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: `${rs.metadata?.name}-${randomSuffix()}`,
        namespace: rs.metadata?.namespace,
        labels: t.metadata?.labels,
        ...(t.metadata?.annotations ? { annotations: t.metadata.annotations } : {}),
        ownerReferences: [controllerRef(rs)],
      },
      spec: { ...t.spec, containers: t.spec?.containers ?? [] },
    };
  }

  async function writeStatus(rs: V1ReplicaSet, active: V1Pod[]): Promise<void> {
    const ready = active.filter(isPodReady).length;
    const status: V1ReplicaSetStatus = {
      replicas: active.length,
      fullyLabeledReplicas: active.length,
      readyReplicas: ready,
      availableReplicas: ready,
      observedGeneration: rs.metadata?.generation ?? 1,
    };
    if (hasFields(rs.status, status)) return;
    const updated = clone(rs);
    updated.status = { ...rs.status, ...status };
    await api.replaceStatus(updated);
  }

  return async function syncReplicaSets(): Promise<void> {
    const now = Date.now();
    for (const [uid, at] of deleted) if (now - at > 30_000 || !caches.pods.byUid(uid)) deleted.delete(uid);
    const live = new Set(caches.replicasets.list().map((r) => r.metadata?.uid));
    for (const uid of created.keys()) if (!live.has(uid)) created.delete(uid);
    let firstError: unknown;
    for (const rs of caches.replicasets.list()) {
      try {
        await syncSet(rs);
      } catch (err) {
        const code = statusCode(err);
        if (code === 409 || code === 404) continue;
        log(`replicaset "${rs.metadata?.namespace}/${rs.metadata?.name}": ${errLine(err)}`);
        firstError ??= err;
      }
    }
    if (firstError) throw firstError;
  };
}
