// The scale subresource (autoscaling/v1 Scale), pods/eviction with PodDisruptionBudgets, and
// SelfSubjectAccessReview.
// Differences from a real API server: eviction computes the budget itself from the pods that
// match each PDB (expected = matching pods, healthy = matching Ready pods not being deleted)
// instead of reading the disruption controller's status; more than one matching PDB is not an
// error; the unhealthyPodEvictionPolicy is always IfHealthyBudget.
import type { V1Eviction, V1LabelSelector, V1Pod, V1PodDisruptionBudget, V1SelfSubjectAccessReview } from '@kubernetes/client-node';
import type { Json, PartialJson } from '../json.js';
import { authorize, type UserInfo } from './auth.js';
import { applyPatchOfType, type ResourceApi, type Target } from './rest.js';
import { labelSelectorMatcher, labelSelectorString } from './selectors.js';
import { ApiError, badRequest, conflict, statusBody } from './status.js';
import type { Stored, StoredObject } from './store.js';

/** What the scale subresource reads and writes of a StatefulSet, Deployment or ReplicaSet. */
type Scalable = StoredObject & {
  spec?: { replicas?: number; selector?: Json<V1LabelSelector> };
  status?: { replicas?: number };
};

/** The autoscaling/v1 Scale as this module builds it. */
export interface Scale {
  kind: 'Scale';
  apiVersion: 'autoscaling/v1';
  metadata: { name: string; namespace?: string; uid?: string; resourceVersion?: string; creationTimestamp?: string };
  spec: { replicas: number };
  status: { replicas: number; selector: string };
}

/** The autoscaling/v1 Scale view of a workload. */
export function getScale(api: ResourceApi, t: Target): Scale {
  const obj = api.get(t) as Scalable;
  return {
    kind: 'Scale', apiVersion: 'autoscaling/v1',
    metadata: { name: obj.metadata.name, namespace: obj.metadata.namespace, uid: obj.metadata.uid,
      resourceVersion: obj.metadata.resourceVersion, creationTimestamp: obj.metadata.creationTimestamp },
    spec: { replicas: obj.spec?.replicas ?? 0 },
    status: { replicas: obj.status?.replicas ?? 0, selector: labelSelectorString(obj.spec?.selector) },
  };
}

/** Sets spec.replicas from a Scale (PUT) or a patch of the Scale (PATCH); returns the new Scale. */
export function updateScale(api: ResourceApi, t: Target, body: unknown, patchType: string | undefined, dryRun: boolean): Scale {
  const scale = getScale(api, t);
  // whatever the client sent (or the patch made): only spec.replicas and metadata.resourceVersion are read
  const next = (patchType ? applyPatchOfType(scale, body, patchType) : body) as PartialJson<Scale> | undefined;
  const replicas = next?.spec?.replicas;
  if (typeof replicas !== 'number' || replicas < 0 || !Number.isInteger(replicas)) {
    throw new ApiError(422, 'Invalid', `Scale.autoscaling "${t.name}" is invalid: spec.replicas: Invalid value: ${JSON.stringify(replicas)}: must be greater than or equal to 0`);
  }
  const rv = next!.metadata?.resourceVersion; // next is set: its spec.replicas is a number
  const obj = api.get({ ...t, subresource: '' }) as Scalable;
  if (rv && rv !== obj.metadata.resourceVersion) throw conflict(t.def.group, t.def.resource, t.name);
  obj.spec!.replicas = replicas; // (validation requires a workload's spec)
  delete obj.metadata.resourceVersion;
  api.update({ ...t, subresource: '' }, obj, dryRun);
  const out = getScale(api, { ...t, subresource: '' });
  if (dryRun) out.spec.replicas = replicas;
  return out;
}

function isReady(pod: Stored<V1Pod>): boolean {
  return (pod.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

function resolveIntOrPercent(v: unknown, total: number): number {
  if (typeof v === 'number') return v;
  const m = /^(\d+)%$/.exec(String(v));
  if (m) return Math.ceil((Number(m[1]) * total) / 100);
  return Number(v) || 0;
}

/** Evicts a pod unless a PodDisruptionBudget forbids it (429); returns the Success Status. */
export function evictPod(api: ResourceApi, t: Target, body: unknown, dryRun: boolean): Record<string, unknown> {
  const eviction = body as PartialJson<V1Eviction> | undefined;
  if (eviction?.metadata?.name && eviction.metadata.name !== t.name) throw badRequest(`name in URL does not match name in Eviction object`);
  const pod = api.get({ ...t, subresource: '' }) as Stored<V1Pod>;
  if (!pod.metadata.deletionTimestamp && isReady(pod)) {
    for (const pdb of api.store.list('policy/poddisruptionbudgets', t.namespace) as Stored<V1PodDisruptionBudget>[]) {
      const match = labelSelectorMatcher(pdb.spec?.selector);
      if (!match(pod)) continue;
      const pods = (api.store.list('/pods', t.namespace) as Stored<V1Pod>[]).filter(match);
      const healthy = pods.filter((p) => !p.metadata.deletionTimestamp && isReady(p)).length;
      const expected = pods.length;
      const desired = pdb.spec?.minAvailable !== undefined
        ? resolveIntOrPercent(pdb.spec.minAvailable, expected)
        : pdb.spec?.maxUnavailable !== undefined ? expected - resolveIntOrPercent(pdb.spec.maxUnavailable, expected) : 0;
      if (healthy - 1 < desired) {
        throw new ApiError(429, 'TooManyRequests', "Cannot evict pod as it would violate the pod's disruption budget.", {
          causes: [{ reason: 'DisruptionBudget', message: `The disruption budget ${pdb.metadata.name} needs ${desired} healthy pods and has ${healthy} currently` }],
        });
      }
    }
  }
  api.delete({ ...t, subresource: '' }, eviction?.deleteOptions ?? {}, dryRun);
  return statusBody(201, '', '');
}

/** Answers a SelfSubjectAccessReview for user. */
export function selfSubjectAccessReview(api: ResourceApi, user: UserInfo, body: unknown): Record<string, unknown> {
  const review = body as PartialJson<V1SelfSubjectAccessReview> | undefined;
  const ra = review?.spec?.resourceAttributes;
  const nra = review?.spec?.nonResourceAttributes;
  let allowed: boolean;
  if (ra) {
    allowed = authorize(api.store, user, {
      verb: ra.verb ?? '', apiGroup: ra.group ?? '', resource: ra.resource ?? '', subresource: ra.subresource ?? '',
      namespace: ra.namespace ?? '', name: ra.name ?? '',
    });
  } else if (nra) {
    allowed = true;
  } else {
    throw new ApiError(422, 'Invalid', 'SelfSubjectAccessReview.authorization.k8s.io "" is invalid: spec.resourceAttributes: Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes must be specified');
  }
  const reason = allowed ? (user.groups.includes('system:masters') ? '' : 'RBAC: allowed') : '';
  return {
    kind: 'SelfSubjectAccessReview', apiVersion: 'authorization.k8s.io/v1',
    metadata: { creationTimestamp: null }, spec: review!.spec, // set: ra or nra was found in it
    status: { allowed, ...(reason ? { reason } : {}) },
  };
}

