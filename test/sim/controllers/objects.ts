/**
 * Small helpers about pods and owner references shared by the controllers.
 *
 * Differs from k8s.io/kubernetes/pkg/api/v1/pod: minReadySeconds is not honoured ("available"
 * means "ready"), and random name suffixes use Math.random.
 */
import type { KubernetesObject, V1Job, V1JobCondition, V1OwnerReference, V1Pod } from '@kubernetes/client-node';

/** Whether the pod has condition Ready=True. */
export function isPodReady(pod: V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** Whether the pod is phase Running and Ready (the StatefulSet notion of healthy). */
export function isRunningAndReady(pod: V1Pod): boolean {
  return pod.status?.phase === 'Running' && isPodReady(pod);
}

/** Whether the object has been asked to go away. */
export function isTerminating(obj: KubernetesObject): boolean {
  return Boolean(obj.metadata?.deletionTimestamp);
}

/** Whether the pod finished for good (Succeeded or Failed). */
export function isFinished(pod: V1Pod): boolean {
  return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
}

/** Whether the pod counts toward a ReplicaSet's replicas (not finished, not terminating). */
export function isActive(pod: V1Pod): boolean {
  return !isFinished(pod) && !isTerminating(pod);
}

/** The ownerReference marked controller: true, if any. */
export function controllerOf(obj: KubernetesObject): V1OwnerReference | undefined {
  return obj.metadata?.ownerReferences?.find((r) => r.controller);
}

/** Whether `obj` is controlled by the owner with this uid. */
export function isControlledBy(obj: KubernetesObject, ownerUid: string | undefined): boolean {
  return Boolean(ownerUid) && controllerOf(obj)?.uid === ownerUid;
}

/** The controller ownerReference pointing at `owner`. */
export function controllerRef(owner: KubernetesObject): V1OwnerReference {
  return {
    apiVersion: owner.apiVersion ?? '',
    kind: owner.kind ?? '',
    name: owner.metadata?.name ?? '',
    uid: owner.metadata?.uid ?? '',
    controller: true,
    blockOwnerDeletion: true,
  };
}

const ALPHANUMS = 'bcdfghjklmnpqrstvwxz2456789';

/** Five random characters from the alphabet Kubernetes uses for generated names. */
export function randomSuffix(length = 5): string {
  let s = '';
  for (let i = 0; i < length; i++) s += ALPHANUMS[Math.floor(Math.random() * ALPHANUMS.length)];
  return s;
}

/** Stable JSON (sorted keys), for hashing and comparing specs. */
export function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** FNV-1a 32-bit of a string, rendered with the "safe" alphabet like Kubernetes' ComputeHash. */
export function shortHash(text: string): string {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return String(h)
    .split('')
    .map((d) => ALPHANUMS[Number(d)])
    .join('')
    .slice(0, 10);
}

/** Deep copy of a JSON object. */
export function clone<T>(obj: T): T {
  return JSON.parse(JSON.stringify(obj)) as T;
}

/**
 * Whether `old` already holds every field of `wanted` (missing numbers count as 0 and missing
 * strings as '', as Go's omitempty would drop them), so that a status write can be skipped.
 */
export function hasFields(old: object | undefined, wanted: object): boolean {
  const o = (old ?? {}) as Record<string, unknown>;
  return Object.entries(wanted).every(([k, v]) => {
    if (v === undefined) return true;
    if (typeof v === 'number') return (o[k] ?? 0) === v;
    if (typeof v === 'string') return (o[k] ?? '') === v;
    return stableJson(o[k] ?? null) === stableJson(v);
  });
}

/** A Job's finishing condition (Complete or Failed, status True), if it has ended. */
export function finishedCondition(job: V1Job): V1JobCondition | undefined {
  return job.status?.conditions?.find((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
}
