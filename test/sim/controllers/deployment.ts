/**
 * The Deployment controller: one ReplicaSet per pod template (`<deploy>-<pod-template-hash>`),
 * rolling or recreate updates between them, revision history and status/conditions.
 *
 * Differs from the real controller: no adoption by label, no proportional scaling of several
 * old ReplicaSets during a rollout (the newest old set is scaled down first), no
 * progressDeadlineSeconds (Progressing never times out), no paused deployments or rollback via
 * spec.rollbackTo; the template hash is our own FNV of the template, not client-go's.
 */
import type {
  V1Deployment,
  V1DeploymentCondition,
  V1DeploymentStatus,
  V1ReplicaSet,
} from '@kubernetes/client-node';
import { errLine, statusCode, type ClusterApi } from './api.js';
import type { Caches } from './caches.js';
import type { EventRecorder } from './events.js';
import type { LogFn } from './loop.js';
import { clone, controllerRef, isActive, hasFields, isControlledBy, isTerminating, shortHash, stableJson } from './objects.js';

/** Everything the Deployment controller needs. */
export interface DeploymentDeps {
  api: ClusterApi;
  caches: Caches;
  events: EventRecorder;
  log: LogFn;
}

const HASH_LABEL = 'pod-template-hash';
const REVISION = 'deployment.kubernetes.io/revision';

/** maxSurge / maxUnavailable: an int or a percentage of `total` (rounded up or down). */
export function resolveIntOrPercent(value: number | string | undefined, fallback: string, total: number, roundUp: boolean): number {
  const v = value ?? fallback;
  if (typeof v === 'number') return v;
  const m = /^(\d+)%$/.exec(v);
  if (!m) return Number(v) || 0;
  const exact = (Number(m[1]) * total) / 100;
  return roundUp ? Math.ceil(exact) : Math.floor(exact);
}

const revisionOf = (rs: V1ReplicaSet): number => Number(rs.metadata?.annotations?.[REVISION] ?? 0);

/** Returns the Deployment controller's sync function. */
export function makeDeploymentController({ api, caches, events, log }: DeploymentDeps): () => Promise<void> {
  async function scale(d: V1Deployment, rs: V1ReplicaSet, replicas: number): Promise<void> {
    if ((rs.spec?.replicas ?? 1) === replicas) return;
    const updated = clone(rs);
    updated.spec = { ...updated.spec!, replicas };
    updated.metadata = {
      ...updated.metadata,
      annotations: { ...updated.metadata?.annotations, 'deployment.kubernetes.io/desired-replicas': String(d.spec?.replicas ?? 1) },
    };
    await api.replace(updated);
    const verb = replicas > (rs.spec?.replicas ?? 1) ? 'up' : 'down';
    events.record(d, 'Normal', 'ScalingReplicaSet', `Scaled ${verb} replica set ${rs.metadata?.name} from ${rs.spec?.replicas ?? 1} to ${replicas}`);
  }

  async function syncDeployment(d: V1Deployment): Promise<void> {
    if (isTerminating(d)) return;
    const ns = d.metadata?.namespace ?? 'default';
    const name = d.metadata?.name ?? '';
    const desired = d.spec?.replicas ?? 1;
    const hash = shortHash(stableJson(d.spec?.template ?? {}));
    const owned = caches.replicasets.list(ns).filter((rs) => isControlledBy(rs, d.metadata?.uid));
    const newRS = owned.find((rs) => rs.metadata?.labels?.[HASH_LABEL] === hash);
    const old = owned.filter((rs) => rs !== newRS).sort((a, b) => revisionOf(b) - revisionOf(a));
    const recreate = d.spec?.strategy?.type === 'Recreate';
    const maxSurge = recreate ? 0 : resolveIntOrPercent(d.spec?.strategy?.rollingUpdate?.maxSurge, '25%', desired, true);
    let maxUnavailable = recreate ? 0 : resolveIntOrPercent(d.spec?.strategy?.rollingUpdate?.maxUnavailable, '25%', desired, false);
    if (!recreate && maxSurge === 0 && maxUnavailable === 0) maxUnavailable = 1;

    await writeStatus(d, newRS, owned, desired, maxUnavailable);

    if (!newRS) {
      const oldTotal = old.reduce((n, rs) => n + (rs.spec?.replicas ?? 0), 0);
      const initial = recreate ? 0 : Math.max(0, Math.min(desired, desired + maxSurge - oldTotal));
      await createReplicaSet(d, hash, initial, Math.max(0, ...owned.map(revisionOf)) + 1);
      return;
    }
    const oldWithReplicas = old.filter((rs) => (rs.spec?.replicas ?? 0) > 0);
    if (recreate) {
      for (const rs of oldWithReplicas) await scale(d, rs, 0);
      const oldPods = caches.pods.list(ns).filter((p) => isActive(p) && old.some((rs) => isControlledBy(p, rs.metadata?.uid)));
      if (oldWithReplicas.length === 0 && oldPods.length === 0) await scale(d, newRS, desired);
      await cleanup(d, old);
      return;
    }
    if (oldWithReplicas.length === 0) {
      await scale(d, newRS, desired);
      await cleanup(d, old);
      return;
    }
    // Scale the new set up within maxSurge.
    const total = owned.reduce((n, rs) => n + (rs.spec?.replicas ?? 0), 0);
    const newReplicas = newRS.spec?.replicas ?? 0;
    if (newReplicas > desired) await scale(d, newRS, desired);
    else if (newReplicas < desired) {
      const up = Math.min(desired + maxSurge - total, desired - newReplicas);
      if (up > 0) await scale(d, newRS, newReplicas + up);
    }
    // Scale old sets down while keeping desired - maxUnavailable pods available.
    const available = owned.reduce((n, rs) => n + (rs.status?.availableReplicas ?? 0), 0);
    let budget = available - (desired - maxUnavailable);
    for (const rs of oldWithReplicas) {
      const replicas = rs.spec?.replicas ?? 0;
      const unhealthy = Math.max(0, replicas - (rs.status?.availableReplicas ?? 0));
      const remove = Math.min(replicas, unhealthy + Math.max(0, budget));
      if (remove <= 0) continue;
      budget -= remove - unhealthy;
      await scale(d, rs, replicas - remove);
    }
  }

  async function createReplicaSet(d: V1Deployment, hash: string, replicas: number, revision: number): Promise<void> {
    const t = clone(d.spec?.template ?? {});
    const labels = { ...t.metadata?.labels, [HASH_LABEL]: hash };
    const rs: V1ReplicaSet = {
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: {
        name: `${d.metadata?.name}-${hash}`,
        namespace: d.metadata?.namespace,
        labels,
        annotations: {
          [REVISION]: String(revision),
          'deployment.kubernetes.io/desired-replicas': String(d.spec?.replicas ?? 1),
        },
        ownerReferences: [controllerRef(d)],
      },
      spec: {
        replicas,
        minReadySeconds: d.spec?.minReadySeconds,
        selector: { ...d.spec?.selector, matchLabels: { ...d.spec?.selector?.matchLabels, [HASH_LABEL]: hash } },
        template: { ...t, metadata: { ...t.metadata, labels } },
      },
    };
    try {
      await api.create(rs);
      events.record(d, 'Normal', 'ScalingReplicaSet', `Scaled up replica set ${rs.metadata?.name} from 0 to ${replicas}`);
    } catch (err) {
      if (statusCode(err) !== 409) throw err;
    }
  }

  /** Deletes empty old sets beyond revisionHistoryLimit, oldest first. */
  async function cleanup(d: V1Deployment, old: V1ReplicaSet[]): Promise<void> {
    const limit = d.spec?.revisionHistoryLimit ?? 10;
    const empty = old.filter((rs) => (rs.spec?.replicas ?? 0) === 0 && (rs.status?.replicas ?? 0) === 0 && !isTerminating(rs));
    const surplus = empty.sort((a, b) => revisionOf(a) - revisionOf(b)).slice(0, Math.max(0, empty.length - limit));
    for (const rs of surplus) await api.remove(rs);
  }

  async function writeStatus(
    d: V1Deployment,
    newRS: V1ReplicaSet | undefined,
    owned: V1ReplicaSet[],
    desired: number,
    maxUnavailable: number,
  ): Promise<void> {
    const sum = (f: (rs: V1ReplicaSet) => number | undefined): number => owned.reduce((n, rs) => n + (f(rs) ?? 0), 0);
    const status: V1DeploymentStatus = {
      observedGeneration: d.metadata?.generation ?? 1,
      replicas: sum((rs) => rs.status?.replicas),
      updatedReplicas: newRS?.status?.replicas ?? 0,
      readyReplicas: sum((rs) => rs.status?.readyReplicas),
      availableReplicas: sum((rs) => rs.status?.availableReplicas),
    };
    const unavailable = desired - (status.availableReplicas ?? 0);
    if (unavailable > 0) status.unavailableReplicas = unavailable;
    const complete =
      newRS !== undefined &&
      status.updatedReplicas === desired &&
      status.replicas === desired &&
      status.availableReplicas === desired;
    const rsName = newRS?.metadata?.name ?? `${d.metadata?.name}`;
    const wanted: V1DeploymentCondition[] = [
      (status.availableReplicas ?? 0) >= desired - maxUnavailable
        ? { type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable', message: 'Deployment has minimum availability.' }
        : { type: 'Available', status: 'False', reason: 'MinimumReplicasUnavailable', message: 'Deployment does not have minimum availability.' },
      complete
        ? { type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable', message: `ReplicaSet "${rsName}" has successfully progressed.` }
        : { type: 'Progressing', status: 'True', reason: 'ReplicaSetUpdated', message: `ReplicaSet "${rsName}" is progressing.` },
    ];
    const now = new Date().toISOString() as unknown as Date;
    status.conditions = wanted.map((c) => {
      const prev = d.status?.conditions?.find((p) => p.type === c.type);
      if (prev && prev.status === c.status && prev.reason === c.reason && prev.message === c.message) return prev;
      return { ...c, lastUpdateTime: now, lastTransitionTime: prev && prev.status === c.status ? prev.lastTransitionTime : now };
    });
    if (hasFields(d.status, status) && (status.unavailableReplicas || !d.status?.unavailableReplicas)) return;
    const updated = clone(d);
    updated.status = { ...d.status, ...status };
    if (!status.unavailableReplicas) delete updated.status.unavailableReplicas;
    await api.replaceStatus(updated);
  }

  return async function syncDeployments(): Promise<void> {
    let firstError: unknown;
    for (const d of caches.deployments.list()) {
      try {
        await syncDeployment(d);
      } catch (err) {
        const code = statusCode(err);
        if (code === 409 || code === 404) continue;
        log(`deployment "${d.metadata?.namespace}/${d.metadata?.name}": ${errLine(err)}`);
        firstError ??= err;
      }
    }
    if (firstError) throw firstError;
  };
}
