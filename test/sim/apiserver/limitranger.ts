// The LimitRanger admission plugin for pods: on create (also with dryRun=All), the LimitRanges of
// the pod's namespace (items of `type: Container`) first fill each container's missing limits
// from `default` and missing requests from `defaultRequest`, recording what they set in the
// annotation `kubernetes.io/limit-ranger`; then `min` and `max` are enforced, and a pod breaking
// them is refused (403) with the real wording:
//   pods "NAME" is forbidden: maximum cpu usage per Container is 1, but limit is 2
//   pods "NAME" is forbidden: [minimum memory usage per Container is 64Mi, but request is 32Mi, ...]
// docs: concepts/policy/limit-range ("LimitRange and admission checks for Pods");
// source: plugin/pkg/admission/limitranger/admission.go (mergeContainerResources,
// minConstraint, maxConstraint, PodValidateLimitFunc) and pkg/apis/core/v1/defaults.go
// (SetDefaults_LimitRangeItem: `default` defaults to `max`, `defaultRequest` to `default`, then to
// `min`; applied when a LimitRange is written, see defaults.ts).
// Differences from a real API server: only `type: Container` items are applied (not `Pod` or
// `PersistentVolumeClaim`), `maxLimitRequestRatio` is not enforced, and pod updates (resize) are
// not checked.
import type { V1Container, V1PodSpec } from '@kubernetes/client-node';
import type { PartialJson } from '../json.js';
import { formatQuantity, parseQuantity } from './quantity.js';
import { ApiError } from './status.js';

type Resources = Record<string, string>;
type ContainerLike = PartialJson<V1Container>;
/** A LimitRange item as JSON carries it (client-node's model names `default` `_default`). */
export interface LimitRangeItemJson {
  type?: string;
  default?: Resources;
  defaultRequest?: Resources;
  max?: Resources;
  min?: Resources;
  maxLimitRequestRatio?: Resources;
}
/** A LimitRange as JSON carries it. */
export interface LimitRangeJson { spec?: { limits?: LimitRangeItemJson[] } }
type LimitRangeLike = LimitRangeJson;

/** The annotation LimitRanger writes on a pod it changed. */
export const LIMIT_RANGER_ANNOTATION = 'kubernetes.io/limit-ranger';

/** Fills the defaults an item of `type: Container` implies, as SetDefaults_LimitRangeItem does (mutates item). */
export function defaultLimitRangeItem(item: LimitRangeItemJson): void {
  if (item.type !== 'Container') return;
  const def = (item.default ??= {});
  const defReq = (item.defaultRequest ??= {});
  for (const [k, v] of Object.entries(item.max ?? {})) def[k] ??= v;
  for (const [k, v] of Object.entries(def)) defReq[k] ??= v;
  for (const [k, v] of Object.entries(item.min ?? {})) defReq[k] ??= v;
}

function containerItems(ranges: LimitRangeLike[]): LimitRangeItemJson[] {
  return ranges.flatMap((r) => (r.spec?.limits ?? []).map((i) => structuredClone(i)))
    .filter((i) => i.type === 'Container')
    .map((i) => { defaultLimitRangeItem(i); return i; });
}

/** Sets the missing requests and limits of one container; returns the annotation phrases for it. */
function mergeDefaults(c: ContainerLike, limits: Resources, requests: Resources, prefix: string): string[] {
  const res = (c.resources ??= {});
  const haveLimits = (res.limits ??= {});
  const haveRequests = (res.requests ??= {});
  const setLimits = Object.keys(limits).filter((k) => !(k in haveLimits)).sort();
  const setRequests = Object.keys(requests).filter((k) => !(k in haveRequests)).sort();
  for (const k of setLimits) haveLimits[k] = limits[k]!;
  for (const k of setRequests) haveRequests[k] = requests[k]!;
  if (!Object.keys(haveLimits).length) delete res.limits;
  if (!Object.keys(haveRequests).length) delete res.requests;
  return [
    ...(setRequests.length ? [`${setRequests.join(', ')} request for ${prefix} ${c.name}`] : []),
    ...(setLimits.length ? [`${setLimits.join(', ')} limit for ${prefix} ${c.name}`] : []),
  ];
}

function minViolation(resource: string, enforced: string, c: ContainerLike): string | undefined {
  const req = c.resources?.requests?.[resource];
  const lim = c.resources?.limits?.[resource];
  const want = parseQuantity(enforced)!;
  const shown = formatQuantity(want);
  if (req === undefined) return `minimum ${resource} usage per Container is ${shown}.  No request is specified`;
  const r = parseQuantity(req);
  if (r && r.milli < want.milli) return `minimum ${resource} usage per Container is ${shown}, but request is ${formatQuantity(r)}`;
  const l = lim === undefined ? undefined : parseQuantity(lim);
  if (l && l.milli < want.milli) return `minimum ${resource} usage per Container is ${shown}, but limit is ${formatQuantity(l)}`;
  return undefined;
}

function maxViolation(resource: string, enforced: string, c: ContainerLike): string | undefined {
  const req = c.resources?.requests?.[resource];
  const lim = c.resources?.limits?.[resource];
  const want = parseQuantity(enforced)!;
  const shown = formatQuantity(want);
  if (lim === undefined) return `maximum ${resource} usage per Container is ${shown}.  No limit is specified`;
  const l = parseQuantity(lim);
  if (l && l.milli > want.milli) return `maximum ${resource} usage per Container is ${shown}, but limit is ${formatQuantity(l)}`;
  const r = req === undefined ? undefined : parseQuantity(req);
  if (r && r.milli > want.milli) return `maximum ${resource} usage per Container is ${shown}, but request is ${formatQuantity(r)}`;
  return undefined;
}

/**
 * Applies the namespace's LimitRanges to a new pod as the LimitRanger plugin does: defaults first
 * (mutating spec and annotations), then min/max; throws 403 Forbidden on a violation.
 */
export function admitLimitRanges(ranges: LimitRangeLike[], name: string, meta: { annotations?: Record<string, string> },
  spec: PartialJson<V1PodSpec> | undefined): void {
  const items = containerItems(ranges);
  if (!items.length || !spec) return;
  const limits: Resources = {};
  const requests: Resources = {};
  for (const i of items) { // the first LimitRange to set a resource wins, as they are applied in turn
    for (const [k, v] of Object.entries(i.default ?? {})) limits[k] ??= v;
    for (const [k, v] of Object.entries(i.defaultRequest ?? {})) requests[k] ??= v;
  }
  const notes = [
    ...(spec.containers ?? []).flatMap((c) => mergeDefaults(c, limits, requests, 'container')),
    ...(spec.initContainers ?? []).flatMap((c) => mergeDefaults(c, limits, requests, 'init container')),
  ];
  if (notes.length) meta.annotations = { ...(meta.annotations ?? {}), [LIMIT_RANGER_ANNOTATION]: `LimitRanger plugin set: ${notes.join('; ')}` };

  const errors: string[] = [];
  for (const i of items) {
    for (const c of [...(spec.containers ?? []), ...(spec.initContainers ?? [])]) {
      for (const [k, v] of Object.entries(i.min ?? {}).sort()) {
        const e = minViolation(k, v, c);
        if (e) errors.push(e);
      }
      for (const [k, v] of Object.entries(i.max ?? {}).sort()) {
        const e = maxViolation(k, v, c);
        if (e) errors.push(e);
      }
    }
  }
  const unique = [...new Set(errors)];
  if (!unique.length) return;
  const message = unique.length === 1 ? unique[0] : `[${unique.join(', ')}]`;
  throw new ApiError(403, 'Forbidden', `pods "${name}" is forbidden: ${message}`, { name, kind: 'pods' });
}
