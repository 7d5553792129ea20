/**
 * The scheduler: binds pending pods (default scheduler, no spec.nodeName) to a node.
 *
 * Differs from kube-scheduler: see scheduling.ts for the filters and score. Pods are scheduled
 * one pass at a time in creation order; unbound claims are not reserved — the pod is bound
 * first and the PV binder then provisions or binds the claim on the pod's node (the effect of
 * WaitForFirstConsumer). Pods whose spec.nodeName the user set are left alone entirely.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { errLine, statusCode, type ClusterApi } from './api.js';
import type { Caches } from './caches.js';
import type { EventRecorder } from './events.js';
import type { LogFn } from './loop.js';
import { clone, isFinished, isTerminating } from './objects.js';
import { chooseNode, withHostnameLabel, type VolumeLookup } from './scheduling.js';

/** Everything the scheduler needs. */
export interface SchedulerDeps {
  api: ClusterApi;
  caches: Caches;
  events: EventRecorder;
  log: LogFn;
}

/** Returns the scheduler's sync function (one pass over all pending pods). */
export function makeScheduler({ api, caches, events, log }: SchedulerDeps): () => Promise<void> {
  /** Pods bound by us whose binding the cache has not shown yet: uid → node. */
  const assumed = new Map<string, { node: string; at: number }>();

  const vols: VolumeLookup = {
    claim: (ns, name) => caches.claims.get(ns, name),
    volume: (name) => caches.volumes.get('', name),
    volumes: () => caches.volumes.list(),
    storageClass: (name) => caches.classes.get('', name),
    claimUsers: (ns, name, exceptUid) => caches.pods.list().filter((p) => p.metadata?.namespace === ns && p.metadata?.uid !== exceptUid &&
      !isFinished(p) && (p.spec?.nodeName || assumed.has(p.metadata?.uid ?? '')) &&
      (p.spec?.volumes ?? []).some((v) => v.persistentVolumeClaim?.claimName === name)).length,
  };

  return async function schedule(): Promise<void> {
    const pods = caches.pods.list();
    const counts = new Map<string, number>();
    for (const p of pods) {
      const node = p.spec?.nodeName ?? assumed.get(p.metadata?.uid ?? '')?.node;
      if (node && !isFinished(p)) counts.set(node, (counts.get(node) ?? 0) + 1);
    }
    const now = Date.now();
    for (const [uid, a] of assumed) if (now - a.at > 30_000) assumed.delete(uid);

    const pending = pods
      .filter((p) => !p.spec?.nodeName && !isTerminating(p) && !isFinished(p))
      .filter((p) => (p.spec?.schedulerName ?? 'default-scheduler') === 'default-scheduler')
      .filter((p) => !assumed.has(p.metadata?.uid ?? ''))
      .sort((a, b) => String(a.metadata?.creationTimestamp).localeCompare(String(b.metadata?.creationTimestamp)));
    if (pending.length === 0) return;
    const nodes = caches.nodes.list().map(withHostnameLabel);

    for (const pod of pending) {
      const placement = chooseNode(pod, nodes, (n) => counts.get(n) ?? 0, vols);
      const ns = pod.metadata?.namespace ?? 'default';
      const name = pod.metadata?.name ?? '';
      if (placement.node === undefined) {
        await markUnschedulable(pod, placement.message);
        continue;
      }
      try {
        await api.bindPod(ns, name, pod.metadata?.uid, placement.node);
      } catch (err) {
        const code = statusCode(err);
        if (code === 404 || code === 409) continue; // gone, or bound meanwhile: the cache will tell
        log(`scheduler: binding pod "${ns}/${name}" to "${placement.node}": ${errLine(err)}`);
        throw err;
      }
      assumed.set(pod.metadata?.uid ?? '', { node: placement.node, at: now });
      counts.set(placement.node, (counts.get(placement.node) ?? 0) + 1);
      events.record(pod, 'Normal', 'Scheduled', `Successfully assigned ${ns}/${name} to ${placement.node}`);
    }
  };

  async function markUnschedulable(pod: V1Pod, message: string): Promise<void> {
    const existing = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
    if (existing?.status === 'False' && existing.reason === 'Unschedulable' && existing.message === message) return;
    events.record(pod, 'Warning', 'FailedScheduling', message);
    const updated = clone(pod);
    const conditions = (updated.status?.conditions ?? []).filter((c) => c.type !== 'PodScheduled');
    conditions.push({
      type: 'PodScheduled',
      status: 'False',
      reason: 'Unschedulable',
      message,
      lastTransitionTime: new Date().toISOString() as unknown as Date,
    });
    updated.status = { ...updated.status, phase: updated.status?.phase ?? 'Pending', conditions };
    try {
      await api.replaceStatus(updated);
    } catch (err) {
      const code = statusCode(err);
      if (code !== 404 && code !== 409) log(`scheduler: status of pod "${pod.metadata?.name}": ${errLine(err)}`);
    }
  }
}
