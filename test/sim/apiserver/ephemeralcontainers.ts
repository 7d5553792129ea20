// The pods/ephemeralcontainers subresource (GA in 1.25) and the rules around ephemeral containers.
// Sources (behaviour modelled, not code): Kubernetes docs, concepts/workloads/pods/ephemeral-containers
// and the EphemeralContainer API reference; kubernetes/kubernetes pkg/registry/core/pod/strategy.go
// (podEphemeralContainersStrategy: dropNonEphemeralContainerUpdates keeps the stored pod and takes
// only spec.ephemeralContainers from the request, metadata reset as for status) and
// pkg/apis/core/validation/validation.go (ValidatePodEphemeralContainersUpdate,
// validateEphemeralContainers, allowedEphemeralContainerFields, validateFieldAllowList,
// ValidatePodCreate, ValidatePodTemplateSpec); k8s.io/pod-security-admission admission.go
// (ValidatePod: `ephemeralcontainers` is not among the ignored pod subresources, and an update
// that adds an ephemeral container is significant, so the whole pod is evaluated again).
// What is modelled:
// - GET returns the Pod; PUT takes a whole Pod, PATCH a strategic merge, JSON merge or JSON patch
//   of the Pod; only spec.ephemeralContainers is taken from the result (anything else the body
//   changes is silently ignored); a stale metadata.resourceVersion is a 409; dryRun=All honoured;
// - API defaulting of each ephemeral container (imagePullPolicy, terminationMessagePath/Policy,
//   resources {}), as decoding a v1 Pod does;
// - validation, 422 Invalid with kube-apiserver's field paths and wording: name (required, DNS-1123
//   label, `Duplicate value` across containers, initContainers and ephemeralContainers), image
//   (required), imagePullPolicy and terminationMessagePolicy values, `targetContainerName` naming a
//   container or init container (`Not found`), volumeMounts naming pod volumes (`Not found`), with
//   a mountPath unique in the container; `subPath`/`subPathExpr` (refused for ephemeral containers:
//   their bind mounts would leak until the pod ends), and the fields outside the allow-list
//   (ports, resources, resizePolicy, restartPolicy, livenessProbe, readinessProbe, startupProbe,
//   lifecycle) are `Forbidden: cannot be set for an Ephemeral Container`; existing ones may not be
//   removed or changed (`existing ephemeral containers "X" may not be removed` / `... changed`,
//   the latter followed by a diff); static (mirror) pods refuse them;
// - a pod created with ephemeralContainers is refused (`cannot be set on create`), as is a pod
//   template carrying them (`ephemeral containers not allowed in pod template`);
// - Pod Security Admission evaluates the updated pod (enforce 403 with the pod wording; warn and
//   audit as for pods) when ephemeral containers were added or changed; LimitRanger and
//   ResourceQuota skip subresources, so they do not apply;
// - a terminal (Succeeded/Failed) or terminating pod is accepted as the real API accepts it; the
//   kubelet never starts the container (kubelet/podworker.ts).
// Differences from a real API server: the diff after `may not be changed` is a JSON rendering of
// the changed fields, not Go's cmp.Diff of the internal type; env/envFrom, securityContext and
// volumeDevices are not validated in depth; the apply patch type is answered 415 like elsewhere.
import type { V1Pod, V1PodSpec } from '@kubernetes/client-node';
import { isObject, type Json, type PartialJson } from '../json.js';
import { admitPod, type AdmissionNotes } from './podsecurity.js';
import { applyPatchOfType, type ResourceApi, type Target } from './rest.js';
import { badRequest, conflict, invalid } from './status.js';
import type { Stored, StoredObject } from './store.js';

type EphemeralJson = Record<string, unknown> & {
  name?: string; image?: string; targetContainerName?: string;
  imagePullPolicy?: string; terminationMessagePath?: string; terminationMessagePolicy?: string;
  volumeMounts?: Array<{ name?: string; mountPath?: string; subPath?: string; subPathExpr?: string }>;
};

/** One field error as invalid() takes it. */
export interface FieldError { field: string; message: string; reason?: string }

/**
 * EphemeralContainerCommon's fields outside allowedEphemeralContainerFields, in the Go struct's
 * order (so errors come out in the real order), by their JSON names.
 */
const FORBIDDEN_FIELDS = ['ports', 'resources', 'resizePolicy', 'restartPolicy', 'livenessProbe', 'readinessProbe', 'startupProbe', 'lifecycle'];

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** True when a JSON value is Go's zero value for its field (unset, empty list, empty object). */
function isZero(v: unknown): boolean {
  if (v === undefined || v === null) return true;
  if (Array.isArray(v)) return v.length === 0;
  if (isObject(v)) return Object.values(v).every(isZero);
  return v === '' || v === 0 || v === false;
}

/** API defaulting of ephemeral containers (as SetObjectDefaults_Pod does for them). Mutates spec. */
export function defaultEphemeralContainers(spec: { ephemeralContainers?: unknown[] } | undefined): void {
  for (const raw of spec?.ephemeralContainers ?? []) {
    if (!isObject(raw)) continue;
    const c = raw as EphemeralJson;
    const image = String(c.image ?? '');
    c.imagePullPolicy ??= image.endsWith(':latest') || (!image.includes(':') && !image.includes('@')) ? 'Always' : 'IfNotPresent';
    c.terminationMessagePath ??= '/dev/termination-log';
    c.terminationMessagePolicy ??= 'File';
    c.resources ??= {};
  }
}

/** The errors validateEphemeralContainers gives for a pod's spec (none when it has no ephemeral containers). */
export function ephemeralContainerErrors(spec: PartialJson<V1PodSpec> | undefined): FieldError[] {
  const list = (spec?.ephemeralContainers ?? []) as unknown[];
  const errs: FieldError[] = [];
  if (!list.length) return errs;
  const others = new Set<string>([...(spec?.containers ?? []), ...(spec?.initContainers ?? [])].map((c) => c.name ?? ''));
  const all = new Set(others);
  const volumes = new Set((spec?.volumes ?? []).map((v) => v.name));
  list.forEach((raw, i) => {
    const at = `spec.ephemeralContainers[${i}]`;
    const c = (isObject(raw) ? raw : {}) as EphemeralJson;
    const name = c.name ?? '';
    if (!name) errs.push({ field: `${at}.name`, message: 'Required value' });
    else if (name.length > 63 || !DNS1123_LABEL.test(name)) {
      errs.push({ field: `${at}.name`, reason: 'FieldValueInvalid',
        message: `Invalid value: ${JSON.stringify(name)}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')` });
    }
    if (!c.image) errs.push({ field: `${at}.image`, message: 'Required value' });
    const tmp = c.terminationMessagePolicy;
    if (!tmp) errs.push({ field: `${at}.terminationMessagePolicy`, message: 'Required value' });
    else if (tmp !== 'File' && tmp !== 'FallbackToLogsOnError') {
      errs.push({ field: `${at}.terminationMessagePolicy`, reason: 'FieldValueNotSupported', message: `Unsupported value: ${JSON.stringify(tmp)}: supported values: "File", "FallbackToLogsOnError"` });
    }
    const mountPaths = new Set<string>();
    (c.volumeMounts ?? []).forEach((m, j) => {
      const mp = `${at}.volumeMounts[${j}]`;
      if (!m.name) errs.push({ field: `${mp}.name`, message: 'Required value' });
      else if (!volumes.has(m.name)) errs.push({ field: `${mp}.name`, reason: 'FieldValueNotFound', message: `Not found: ${JSON.stringify(m.name)}` });
      if (!m.mountPath) errs.push({ field: `${mp}.mountPath`, message: 'Required value' });
      else if (mountPaths.has(m.mountPath)) errs.push({ field: `${mp}.mountPath`, reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(m.mountPath)}: must be unique` });
      else mountPaths.add(m.mountPath);
    });
    const ipp = c.imagePullPolicy;
    if (!ipp) errs.push({ field: `${at}.imagePullPolicy`, message: 'Required value' });
    else if (!['Always', 'IfNotPresent', 'Never'].includes(ipp)) {
      errs.push({ field: `${at}.imagePullPolicy`, reason: 'FieldValueNotSupported', message: `Unsupported value: ${JSON.stringify(ipp)}: supported values: "Always", "IfNotPresent", "Never"` });
    }
    if (name) {
      if (all.has(name)) errs.push({ field: `${at}.name`, reason: 'FieldValueDuplicate', message: `Duplicate value: ${JSON.stringify(name)}` });
      else all.add(name);
    }
    if (c.targetContainerName && !others.has(c.targetContainerName)) {
      errs.push({ field: `${at}.targetContainerName`, reason: 'FieldValueNotFound', message: `Not found: ${JSON.stringify(c.targetContainerName)}` });
    }
    for (const f of FORBIDDEN_FIELDS) {
      if (!isZero(c[f])) errs.push({ field: `${at}.${f}`, reason: 'FieldValueForbidden', message: 'Forbidden: cannot be set for an Ephemeral Container' });
    }
    (c.volumeMounts ?? []).forEach((m, j) => {
      for (const f of ['subPath', 'subPathExpr'] as const) {
        if (m[f]) errs.push({ field: `${at}.volumeMounts[${j}].${f}`, reason: 'FieldValueForbidden', message: 'Forbidden: cannot be set for an Ephemeral Container' });
      }
    });
  });
  return errs;
}

/** The create-time rule: ephemeral containers only come through the subresource. */
export function ephemeralOnCreateErrors(spec: PartialJson<V1PodSpec> | undefined): FieldError[] {
  return (spec?.ephemeralContainers ?? []).length
    ? [{ field: 'spec.ephemeralContainers', reason: 'FieldValueForbidden', message: 'Forbidden: cannot be set on create' }]
    : [];
}

/** Where each workload keeps its pod template spec, for the template rule. */
const TEMPLATE_SPECS: Record<string, string[]> = {
  'apps/StatefulSet': ['spec', 'template'], 'apps/Deployment': ['spec', 'template'], 'apps/ReplicaSet': ['spec', 'template'],
  'batch/Job': ['spec', 'template'], 'batch/CronJob': ['spec', 'jobTemplate', 'spec', 'template'],
};

/** A workload's pod template may not carry ephemeral containers (ValidatePodTemplateSpec). */
export function templateEphemeralErrors(group: string, kind: string, obj: Record<string, unknown>): FieldError[] {
  const path = TEMPLATE_SPECS[`${group}/${kind}`];
  if (!path) return [];
  let at: unknown = obj;
  for (const k of path) at = isObject(at) ? at[k] : undefined;
  const spec = isObject(at) ? at.spec : undefined;
  const list = isObject(spec) ? spec.ephemeralContainers : undefined;
  return Array.isArray(list) && list.length
    ? [{ field: `${path.join('.')}.spec.ephemeralContainers`, reason: 'FieldValueForbidden', message: 'Forbidden: ephemeral containers not allowed in pod template' }]
    : [];
}

/** A JSON rendering of what changed between two ephemeral containers, in the place of cmp.Diff. */
function diff(old: Record<string, unknown>, next: Record<string, unknown>): string {
  const lines = ['  core.EphemeralContainer{'];
  for (const k of [...new Set([...Object.keys(old), ...Object.keys(next)])].sort()) {
    const a = JSON.stringify(old[k]);
    const b = JSON.stringify(next[k]);
    if (a === b) continue;
    if (a !== undefined) lines.push(`- \t${k}: ${a},`);
    if (b !== undefined) lines.push(`+ \t${k}: ${b},`);
  }
  lines.push('  }');
  return lines.join('\n') + '\n';
}

/** The errors for replacing the old list of ephemeral containers by the new one (part 2 of ValidatePodEphemeralContainersUpdate). */
function updateErrors(old: EphemeralJson[], next: EphemeralJson[]): FieldError[] {
  const byName = new Map(next.map((c) => [c.name, c]));
  const errs: FieldError[] = [];
  for (const o of old) {
    const n = byName.get(o.name);
    if (!n) errs.push({ field: 'spec.ephemeralContainers', reason: 'FieldValueForbidden', message: `Forbidden: existing ephemeral containers ${JSON.stringify(o.name)} may not be removed\n` });
    else if (JSON.stringify(sortKeys(o)) !== JSON.stringify(sortKeys(n))) {
      errs.push({ field: 'spec.ephemeralContainers', reason: 'FieldValueForbidden', message: `Forbidden: existing ephemeral containers ${JSON.stringify(o.name)} may not be changed\n${diff(o, n)}` });
    }
  }
  return errs;
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (!isObject(v)) return v;
  return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])]).filter(([, x]) => !isZero(x)));
}

/**
 * PUT (patchType undefined) or PATCH of pods/NAME/ephemeralcontainers: takes only
 * spec.ephemeralContainers from the request's pod, validates, runs Pod Security Admission, stores
 * (unless dryRun) and returns the pod.
 */
export function updateEphemeralContainers(api: ResourceApi, t: Target, body: unknown, patchType: string | undefined,
  dryRun: boolean, notes: AdmissionNotes | undefined): StoredObject {
  const podT = { ...t, subresource: '' };
  const cur = api.get(podT) as Stored<V1Pod>;
  const sent = patchType ? applyPatchOfType(cur, body, patchType) : body;
  if (!isObject(sent)) throw badRequest('the request body must be a JSON object');
  const meta = isObject(sent.metadata) ? sent.metadata : {};
  if (!patchType && typeof meta.name === 'string' && meta.name && meta.name !== t.name) {
    throw badRequest(`the name of the object (${meta.name}) does not match the name on the URL (${t.name})`);
  }
  const rv = meta.resourceVersion;
  if (typeof rv === 'string' && rv && rv !== cur.metadata.resourceVersion) throw conflict('', 'pods', t.name);
  const sentSpec = isObject(sent.spec) ? sent.spec : {};
  const wanted = Array.isArray(sentSpec.ephemeralContainers) ? structuredClone(sentSpec.ephemeralContainers) as EphemeralJson[] : [];
  const next = structuredClone(cur);
  const spec = next.spec! as Omit<Json<V1PodSpec>, 'ephemeralContainers'> & { ephemeralContainers?: unknown[] }; // every stored pod has a spec
  if (wanted.length) spec.ephemeralContainers = wanted; else delete spec.ephemeralContainers;
  defaultEphemeralContainers(spec);
  const name = cur.metadata.name;
  if (cur.metadata.annotations?.['kubernetes.io/config.mirror'] !== undefined) {
    throw invalid('', 'Pod', name, [{ field: '', reason: 'FieldValueForbidden', message: 'Forbidden: static pods do not support ephemeral containers' }]);
  }
  const old = (cur.spec?.ephemeralContainers ?? []) as unknown as EphemeralJson[];
  const errs = [...ephemeralContainerErrors(spec as PartialJson<V1PodSpec>), ...updateErrors(old, (spec.ephemeralContainers ?? []) as EphemeralJson[])];
  if (errs.length) throw invalid('', 'Pod', name, errs);
  delete next.metadata.resourceVersion;
  if (JSON.stringify(sortKeys(old)) === JSON.stringify(sortKeys(spec.ephemeralContainers ?? []))) return cur;
  const ns = api.store.get('/namespaces', undefined, t.namespace);
  admitPod(ns?.metadata.labels, name, spec as Parameters<typeof admitPod>[2], notes);
  return api.store.put('/pods', next, dryRun);
}
