// ResourceQuota for pods: the admission check on pod create (also with dryRun=All) and the
// quota's status (what the resource quota controller keeps current).
// Admission, as the ResourceQuota plugin does it, for each quota of the namespace (by name):
// - a quota with `hard` on cpu or memory (`requests.cpu`, `requests.memory`, `limits.cpu`,
//   `limits.memory`, and `cpu`/`memory` meaning requests) needs every container and init
//   container to set that request or limit, else 403:
//     pods "NAME" is forbidden: failed quota: QUOTA: must specify limits.cpu for: a,b; requests.memory for: a
// - a pod that would take usage past `hard` is refused (403):
//     pods "NAME" is forbidden: exceeded quota: QUOTA, requested: pods=1, used: pods=2, limited: pods=2
// Usage counts the namespace's pods that are not terminal (phase Succeeded or Failed): `pods` and
// `count/pods` one each, requests and limits summed over the containers (or the largest init
// container, when larger). docs: concepts/policy/resource-quotas ("Compute Resource Quota",
// "Requests compared to Limits"); source: staging/src/k8s.io/apiserver/pkg/admission/plugin/
// resourcequota/controller.go (checkRequest, prettyPrint) and pkg/quota/v1/evaluator/core/pods.go
// (Constraints, enforcePodContainerConstraints, PodUsageFunc, QuotaV1Pod).
// Differences from a real cluster: the API server itself keeps `status.hard` and `status.used`
// current after every pod or quota change (keepQuotaStatus; there the quota admission adds a new
// pod's usage and the resource quota controller in kube-controller-manager recalculates), and
// admission counts usage from the stored pods, so the "status unknown for quota" refusal a brand
// new quota gives for a moment never happens; scopes and scopeSelector, object counts other than
// pods, storage, extended and hugepage resources, and pod-level resources are not modelled.
import type { V1Container, V1Pod, V1PodSpec, V1ResourceQuota } from '@kubernetes/client-node';
import type { PartialJson } from '../json.js';
import { addQuantity, formatQuantity, parseQuantity, ZERO, type Quantity } from './quantity.js';
import { ApiError } from './status.js';
import type { ObjectStore, Stored, StoredObject } from './store.js';

type Usage = Map<string, Quantity>;
type ContainerLike = PartialJson<V1Container>;

/** The resources a pod quota can name. */
const POD_RESOURCES = new Set(['pods', 'count/pods', 'cpu', 'memory', 'requests.cpu', 'requests.memory', 'limits.cpu', 'limits.memory']);
/** Those a container must set when a quota names them (the "validation set" of pods.go). */
const MUST_SPECIFY = new Set(['cpu', 'memory', 'requests.cpu', 'requests.memory', 'limits.cpu', 'limits.memory']);

/** The quota resources one container's requests and limits stand for (podComputeUsageHelper). */
function containerUsage(c: ContainerLike): Usage {
  const out: Usage = new Map();
  const requests = (c.resources?.requests ?? {}) as Record<string, unknown>;
  const limits = (c.resources?.limits ?? {}) as Record<string, unknown>;
  for (const r of ['cpu', 'memory']) {
    const req = parseQuantity(requests[r]);
    if (req) { out.set(r, req); out.set(`requests.${r}`, req); }
    const lim = parseQuantity(limits[r]);
    if (lim) out.set(`limits.${r}`, lim);
  }
  return out;
}

function add(a: Usage, b: Usage): Usage {
  const out = new Map(a);
  for (const [k, v] of b) out.set(k, addQuantity(out.get(k) ?? ZERO, v));
  return out;
}

function max(a: Usage, b: Usage): Usage {
  const out = new Map(a);
  for (const [k, v] of b) if (!out.has(k) || v.milli > out.get(k)!.milli) out.set(k, v);
  return out;
}

/** What a pod counts against a quota (PodUsageFunc): itself, and its requests and limits. */
export function podUsage(spec: PartialJson<V1PodSpec> | undefined): Usage {
  const regular = (spec?.containers ?? []).map(containerUsage).reduce(add, new Map() as Usage);
  const init = (spec?.initContainers ?? []).map(containerUsage).reduce(max, new Map() as Usage);
  const out = max(regular, init);
  out.set('pods', { milli: 1000, binary: false });
  out.set('count/pods', { milli: 1000, binary: false });
  return out;
}

/** Whether a stored pod still counts (QuotaV1Pod): not Succeeded or Failed. */
function counts(pod: Stored<V1Pod>): boolean {
  return pod.status?.phase !== 'Succeeded' && pod.status?.phase !== 'Failed';
}

/** The names of a quota's hard limits that pods count against. */
function podResourcesOf(hard: Record<string, string>): string[] {
  return Object.keys(hard).filter((k) => POD_RESOURCES.has(k)).sort();
}

/** A quota's usage now: every hard resource, summed over the namespace's counting pods (zero when none). */
export function quotaUsed(hard: Record<string, string>, pods: Stored<V1Pod>[]): Usage {
  const total = pods.filter(counts).map((p) => podUsage(p.spec)).reduce(add, new Map() as Usage);
  return new Map(Object.keys(hard).map((k) => [k, total.get(k) ?? { ...ZERO, binary: parseQuantity(hard[k])?.binary ?? false }]));
}

/** `key=value,key=value` in key order, as prettyPrint does. */
function prettyPrint(u: Usage, keys: string[]): string {
  return keys.map((k) => `${k}=${formatQuantity(u.get(k) ?? ZERO)}`).join(',');
}

/** The "must specify" refusal for a quota naming resources, or undefined when every container sets them. */
function missingResources(required: string[], spec: PartialJson<V1PodSpec>): string | undefined {
  const missing = new Map<string, Set<string>>();
  for (const c of [...(spec.containers ?? []), ...(spec.initContainers ?? [])]) {
    const have = containerUsage(c);
    for (const r of required) if (!have.has(r)) missing.set(r, (missing.get(r) ?? new Set()).add(c.name ?? ''));
  }
  if (!missing.size) return undefined;
  return [...missing.keys()].sort().map((r) => `${r} for: ${[...missing.get(r)!].sort().join(',')}`).join('; ');
}

/**
 * Refuses a new pod (403 Forbidden) that a quota of its namespace does not allow, with the
 * ResourceQuota admission plugin's wording; quotas and pods are the namespace's, as stored.
 */
export function admitPodQuota(quotas: Stored<V1ResourceQuota>[], pods: Stored<V1Pod>[], name: string, spec: PartialJson<V1PodSpec> | undefined): void {
  const forbid = (message: string) => new ApiError(403, 'Forbidden', `pods "${name}" is forbidden: ${message}`, { name, kind: 'pods' });
  const sorted = [...quotas].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  for (const q of sorted) {
    const hard = (q.spec?.hard ?? {}) as Record<string, string>;
    const required = podResourcesOf(hard).filter((r) => MUST_SPECIFY.has(r));
    const missing = missingResources(required, spec ?? {});
    if (missing) throw forbid(`failed quota: ${q.metadata.name}: must specify ${missing}`);
  }
  const requested = podUsage(spec);
  for (const q of sorted) {
    const hard = (q.spec?.hard ?? {}) as Record<string, string>;
    const keys = podResourcesOf(hard).filter((k) => requested.has(k));
    const used = quotaUsed(hard, pods);
    const exceeded = keys.filter((k) => (used.get(k)?.milli ?? 0) + requested.get(k)!.milli > (parseQuantity(hard[k])?.milli ?? Infinity));
    if (!exceeded.length) continue;
    const limited: Usage = new Map(exceeded.map((k) => [k, parseQuantity(hard[k])!]));
    throw forbid(`exceeded quota: ${q.metadata.name}, requested: ${prettyPrint(requested, exceeded)}, used: ${prettyPrint(used, exceeded)}, limited: ${prettyPrint(limited, exceeded)}`);
  }
}

/** The status a quota should show: `hard` as its spec says, `used` counted from the namespace's pods. */
export function quotaStatus(quota: Stored<V1ResourceQuota>, pods: Stored<V1Pod>[]): { hard: Record<string, string>; used: Record<string, string> } {
  const hard = { ...((quota.spec?.hard ?? {}) as Record<string, string>) };
  const used = quotaUsed(hard, pods);
  const usedText: Record<string, string> = {};
  for (const k of Object.keys(hard).sort()) if (POD_RESOURCES.has(k)) usedText[k] = formatQuantity(used.get(k)!);
  return { hard, used: usedText };
}

/**
 * Keeps every ResourceQuota's status current, as the resource quota controller does: after any
 * change to a pod or quota, the quotas of that namespace are recounted (writes only on change).
 * Returns the function that stops it.
 */
export function keepQuotaStatus(store: ObjectStore): () => void {
  const dirty = new Set<string>();
  let scheduled = false;
  const sync = () => {
    scheduled = false;
    const namespaces = [...dirty];
    dirty.clear();
    for (const ns of namespaces) {
      const pods = store.list('/pods', ns) as Stored<V1Pod>[];
      for (const q of store.list('/resourcequotas', ns) as Stored<V1ResourceQuota>[]) {
        const status = quotaStatus(q, pods);
        if (JSON.stringify(status) === JSON.stringify(q.status ?? {})) continue;
        store.put('/resourcequotas', { ...structuredClone(q), status } as StoredObject);
      }
    }
  };
  const mark = (ns: string | undefined) => {
    if (ns === undefined) return;
    dirty.add(ns);
    if (!scheduled) { scheduled = true; setImmediate(sync); }
  };
  for (const q of store.list('/resourcequotas')) mark(q.metadata.namespace);
  return store.subscribe((e) => {
    if (e.gr === '/pods' || e.gr === '/resourcequotas') mark(e.obj.metadata.namespace);
  });
}
