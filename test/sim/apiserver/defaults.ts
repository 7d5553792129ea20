// Defaults and validation applied when objects are created or changed, limited to what clients
// and the other simulator components rely on.
// Differences from a real API server: only a small part of each type's defaulting and validation
// is done (names, required workload fields, pod and workload defaults that kubectl and our
// controllers read); unknown fields are kept, not pruned; Service clusterIPs come from a simple
// counter over 10.96.0.0/16. Claims and volumes get their protection finalizers on create, as the
// StorageObjectInUseProtection admission plugin adds them (kubernetes.io/pvc-protection,
// kubernetes.io/pv-protection; docs: concepts/storage/persistent-volumes, "Storage Object in Use
// Protection"); controllers/protection.ts removes them.
import type {
  V1CronJob, V1Deployment, V1DeploymentSpec, V1Job, V1Namespace, V1PersistentVolume, V1PersistentVolumeClaim, V1Pod,
  V1PodDisruptionBudget, V1PodSpec, V1ReplicaSet, V1Secret, V1Service, V1StatefulSet,
} from '@kubernetes/client-node';
import { knownTimeZone, parseStandard } from '../cron.js';
import type { PartialJson } from '../json.js';
import { defaultEphemeralContainers, templateEphemeralErrors } from './ephemeralcontainers.js';
import { defaultLimitRangeItem, type LimitRangeJson } from './limitranger.js';
import { invalid } from './status.js';
import type { ResourceDef } from './registry.js';
import type { SentObject } from './rest.js';

const NAME_RE = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

function addFinalizer(obj: SentObject, finalizer: string): void {
  const meta = (obj.metadata ??= {});
  const list = meta.finalizers ?? [];
  if (!list.includes(finalizer)) meta.finalizers = [...list, finalizer];
}

/** Kinds whose metadata.generation moves on every spec change. */
export function tracksGeneration(def: ResourceDef): boolean {
  return ['apps', 'batch', 'policy'].includes(def.group);
}

/** The API defaults of a pod spec (or a pod template's spec), as decoding a v1 object fills them. */
export function defaultPodSpec(spec: PartialJson<V1PodSpec> | undefined): void {
  if (!spec) return;
  spec.restartPolicy ??= 'Always';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.schedulerName ??= 'default-scheduler';
  spec.securityContext ??= {};
  for (const c of [...(spec.containers ?? []), ...(spec.initContainers ?? [])]) {
    c.imagePullPolicy ??= String(c.image ?? '').endsWith(':latest') || !String(c.image ?? '').includes(':') ? 'Always' : 'IfNotPresent';
    c.terminationMessagePath ??= '/dev/termination-log';
    c.terminationMessagePolicy ??= 'File';
    c.resources ??= {};
    for (const p of c.ports ?? []) p.protocol ??= 'TCP';
  }
  defaultEphemeralContainers(spec);
  for (const v of spec.volumes ?? []) {
    if (v.secret) v.secret.defaultMode ??= 420;
    if (v.configMap) v.configMap.defaultMode ??= 420;
  }
}

/**
 * A container's requests default to its limits where it sets a limit and no request, as API
 * defaulting does for pods (pkg/apis/core/v1/defaults.go, SetDefaults_Pod) before any admission
 * plugin sees them; templates are not defaulted this way.
 */
export function defaultPodResources(spec: PartialJson<V1PodSpec> | undefined): void {
  for (const c of [...(spec?.containers ?? []), ...(spec?.initContainers ?? [])]) {
    const limits = c.resources?.limits;
    if (!limits || !Object.keys(limits).length) continue;
    const requests = (c.resources!.requests ??= {});
    for (const [k, v] of Object.entries(limits)) requests[k] ??= v;
  }
}

/** Fills the defaults of a new object of type def (mutates obj). */
export function applyCreateDefaults(def: ResourceDef, obj: SentObject, nextClusterIP: () => string): void {
  const kind = def.kind;
  if (def.resource === 'pods') {
    const pod = obj as PartialJson<V1Pod>;
    defaultPodSpec(pod.spec ??= {});
    // A mirror pod keeps none (the ServiceAccount admission plugin leaves it so: serviceaccount.ts).
    if (pod.metadata?.annotations?.['kubernetes.io/config.mirror'] === undefined) {
      pod.spec.serviceAccountName ??= pod.spec.serviceAccount ?? 'default';
      pod.spec.serviceAccount ??= pod.spec.serviceAccountName;
    }
    pod.spec.enableServiceLinks ??= true;
    pod.spec.priority ??= 0;
    const tolerations = (pod.spec.tolerations ??= []);
    for (const key of ['node.kubernetes.io/not-ready', 'node.kubernetes.io/unreachable']) {
      if (!tolerations.some((t) => t.key === key)) {
        tolerations.push({ key, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 });
      }
    }
    pod.status = { phase: 'Pending', qosClass: 'BestEffort', ...(pod.status ?? {}) };
  } else if (kind === 'StatefulSet') {
    const sts = obj as PartialJson<V1StatefulSet>;
    const s = (sts.spec ??= {});
    s.replicas ??= 1;
    s.podManagementPolicy ??= 'OrderedReady';
    s.updateStrategy ??= { type: 'RollingUpdate', rollingUpdate: { partition: 0 } };
    s.revisionHistoryLimit ??= 10;
    s.persistentVolumeClaimRetentionPolicy ??= { whenDeleted: 'Retain', whenScaled: 'Retain' };
    for (const t of s.volumeClaimTemplates ?? []) {
      t.apiVersion ??= 'v1';
      t.kind ??= 'PersistentVolumeClaim';
      t.spec ??= {};
      t.spec.volumeMode ??= 'Filesystem';
      t.status ??= { phase: 'Pending' };
    }
    defaultPodSpec(s.template?.spec);
    sts.status ??= { replicas: 0, availableReplicas: 0 };
  } else if (kind === 'Deployment') {
    const deploy = obj as PartialJson<V1Deployment>;
    const s = (deploy.spec ??= {});
    s.replicas ??= 1;
    s.strategy ??= { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' } };
    s.revisionHistoryLimit ??= 10;
    s.progressDeadlineSeconds ??= 600;
    defaultPodSpec(s.template?.spec);
    deploy.status ??= {};
  } else if (kind === 'ReplicaSet') {
    const rs = obj as PartialJson<V1ReplicaSet>;
    rs.spec ??= {};
    rs.spec.replicas ??= 1;
    defaultPodSpec(rs.spec.template?.spec);
    rs.status ??= { replicas: 0 };
  } else if (kind === 'Service') {
    const svc = obj as PartialJson<V1Service>;
    const s = (svc.spec ??= {});
    s.type ??= 'ClusterIP';
    s.sessionAffinity ??= 'None';
    if (s.clusterIP === undefined || s.clusterIP === '') s.clusterIP = nextClusterIP();
    s.clusterIPs ??= [s.clusterIP];
    for (const p of s.ports ?? []) {
      p.protocol ??= 'TCP';
      p.targetPort ??= p.port;
    }
    svc.status ??= { loadBalancer: {} };
  } else if (kind === 'PersistentVolumeClaim') {
    const pvc = obj as PartialJson<V1PersistentVolumeClaim>;
    pvc.spec ??= {};
    pvc.spec.volumeMode ??= 'Filesystem';
    pvc.status = { phase: 'Pending', ...(pvc.status ?? {}) };
    addFinalizer(obj, 'kubernetes.io/pvc-protection');
  } else if (kind === 'PersistentVolume') {
    const pv = obj as PartialJson<V1PersistentVolume>;
    pv.spec ??= {};
    pv.spec.persistentVolumeReclaimPolicy ??= 'Retain';
    pv.spec.volumeMode ??= 'Filesystem';
    pv.status = { phase: 'Pending', ...(pv.status ?? {}) };
    addFinalizer(obj, 'kubernetes.io/pv-protection');
  } else if (kind === 'Namespace') {
    const ns = obj as PartialJson<V1Namespace>;
    ns.spec = { finalizers: ['kubernetes'], ...(ns.spec ?? {}) };
    ns.status = { phase: 'Active' };
  } else if (kind === 'Job') {
    const job = obj as PartialJson<V1Job>;
    defaultJobSpec(job);
    generateJobSelector(job);
    job.status ??= {};
  } else if (kind === 'CronJob') {
    // SetDefaults_CronJob (pkg/apis/batch/v1/defaults.go); the job template's pod spec as a pod's.
    const cronJob = obj as PartialJson<V1CronJob>;
    cronJob.spec ??= {};
    cronJob.spec.concurrencyPolicy ||= 'Allow';
    cronJob.spec.suspend ??= false;
    cronJob.spec.successfulJobsHistoryLimit ??= 3;
    cronJob.spec.failedJobsHistoryLimit ??= 1;
    if (cronJob.spec.jobTemplate?.spec) defaultJobSpec({ spec: cronJob.spec.jobTemplate.spec });
    cronJob.status ??= {};
  } else if (kind === 'PodDisruptionBudget') {
    const pdb = obj as PartialJson<V1PodDisruptionBudget>;
    pdb.status ??= { disruptionsAllowed: 0, currentHealthy: 0, desiredHealthy: 0, expectedPods: 0 };
  } else if (kind === 'LimitRange') {
    for (const item of (obj as LimitRangeJson).spec?.limits ?? []) defaultLimitRangeItem(item);
  } else if (kind === 'Secret') {
    const secret = obj as PartialJson<V1Secret>;
    secret.type ??= 'Opaque';
  }
}

/**
 * SetDefaults_Job (pkg/apis/batch/v1/defaults.go, 1.29+): completions and parallelism 1 when both are
 * unset (parallelism alone 1 when only it is), backoffLimit 6 (the int32 maximum with
 * backoffLimitPerIndex), completionMode NonIndexed, suspend and manualSelector false,
 * podReplacementPolicy TerminatingOrFailed (Failed with a podFailurePolicy), the Job's labels from
 * its template's when it has none; the template's pod spec as a pod's.
 */
function defaultJobSpec(job: PartialJson<V1Job>): void {
  const spec = (job.spec ??= {});
  if (spec.completions == null && spec.parallelism == null) spec.completions = 1;
  spec.parallelism ??= 1;
  spec.backoffLimit ??= spec.backoffLimitPerIndex != null ? 2147483647 : 6;
  spec.completionMode ||= 'NonIndexed';
  spec.suspend ??= false;
  spec.manualSelector ??= false;
  spec.podReplacementPolicy ||= spec.podFailurePolicy ? 'Failed' : 'TerminatingOrFailed';
  defaultPodSpec(spec.template?.spec);
}

/**
 * The Job strategy's PrepareForCreate (pkg/registry/batch/job/strategy.go, generateSelector): unless
 * manualSelector, the template gets the labels job-name, batch.kubernetes.io/job-name,
 * controller-uid and batch.kubernetes.io/controller-uid, and spec.selector matches the last. A Job
 * without labels of its own shows its template's (defaulting shares the map, so it shows these too).
 */
function generateJobSelector(job: PartialJson<V1Job>): void {
  const spec = job.spec!;
  if (spec.manualSelector) return;
  const meta = (job.metadata ??= {});
  const template = (spec.template ??= {});
  const hadTemplateLabels = template.metadata?.labels != null;
  const labels = ((template.metadata ??= {}).labels ??= {});
  const uid = meta.uid ?? '';
  const name = meta.name ?? '';
  labels['job-name'] ??= name;
  labels['batch.kubernetes.io/job-name'] ??= name;
  labels['controller-uid'] ??= uid;
  labels['batch.kubernetes.io/controller-uid'] ??= uid;
  const selector = (spec.selector ??= {});
  (selector.matchLabels ??= {})['batch.kubernetes.io/controller-uid'] ??= uid;
  if (hadTemplateLabels && !Object.keys(meta.labels ?? {}).length) meta.labels = { ...labels };
}

/** ValidateCronJobCreate / ValidateCronJobSpec (pkg/apis/batch/validation/validation.go): what a CronJob must hold. */
function cronJobErrors(obj: PartialJson<V1CronJob>): { field: string; message: string; reason?: string }[] {
  const errs: { field: string; message: string; reason?: string }[] = [];
  const name = obj.metadata?.name ?? '';
  if (name.length > 52) errs.push({ field: 'metadata.name', reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(name)}: must be no more than 52 characters` });
  const spec = obj.spec ?? {};
  const schedule = spec.schedule ?? '';
  if (!schedule) errs.push({ field: 'spec.schedule', message: 'Required value' });
  else if (schedule.includes('TZ')) errs.push({ field: 'spec.schedule', reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(schedule)}: cannot use TZ or CRON_TZ in schedule, use timeZone field instead` });
  else {
    try { parseStandard(schedule); } catch (err) { errs.push({ field: 'spec.schedule', reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(schedule)}: ${(err as Error).message}` }); }
  }
  const tz = spec.timeZone;
  if (tz != null) {
    const bad = (why: string) => errs.push({ field: 'spec.timeZone', reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(tz)}: ${why}` });
    if (tz === '') bad('timeZone must be nil or non-empty string');
    else if (tz.toLowerCase() === 'local') bad('timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones');
    else if (!knownTimeZone(tz) || tz.split('/').some((p) => p === '.' || p === '..' || p.startsWith('-') || !/^[A-Za-z.\-_0-9+]{1,14}$/.test(p))) bad(`unknown time zone ${tz}`);
  }
  const policy = spec.concurrencyPolicy;
  if (policy && !['Allow', 'Forbid', 'Replace'].includes(policy)) {
    errs.push({ field: 'spec.concurrencyPolicy', reason: 'FieldValueNotSupported', message: `Unsupported value: ${JSON.stringify(policy)}: supported values: "Allow", "Forbid", "Replace"` });
  }
  for (const f of ['startingDeadlineSeconds', 'successfulJobsHistoryLimit', 'failedJobsHistoryLimit'] as const) {
    const v = spec[f];
    if (typeof v === 'number' && v < 0) errs.push({ field: `spec.${f}`, reason: 'FieldValueInvalid', message: `Invalid value: ${v}: must be greater than or equal to 0` });
  }
  if (spec.jobTemplate?.spec?.selector) errs.push({ field: 'spec.jobTemplate.spec.selector', reason: 'FieldValueInvalid', message: '`selector` will be auto-generated' });
  if (!spec.jobTemplate?.spec?.template?.spec?.containers?.length) errs.push({ field: 'spec.jobTemplate.spec.template.spec.containers', message: 'Required value' });
  return errs;
}

/** Moves a Secret's write-only stringData into data (base64), as the real API server does on every write. */
export function mergeStringData(def: ResourceDef, obj: SentObject): void {
  const secret = obj as PartialJson<V1Secret>;
  if (def.kind !== 'Secret' || !secret?.stringData) return;
  const data = (secret.data = { ...(secret.data ?? {}) });
  for (const [k, v] of Object.entries(secret.stringData)) data[k] = Buffer.from(String(v), 'utf8').toString('base64');
  delete secret.stringData;
}

/**
 * The StatefulSet spec fields an update may change; any other change is refused, as kube-apiserver
 * does (pkg/apis/apps/validation ValidateStatefulSetUpdate): podManagementPolicy, serviceName,
 * selector and volumeClaimTemplates are fixed once the set exists.
 */
const STATEFULSET_MUTABLE = ['replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy', 'minReadySeconds'];

/** Throws 422 Invalid when an update changes what kube-apiserver keeps fixed (a StatefulSet's spec beyond its mutable fields). */
export function validateUpdate(def: ResourceDef, cur: SentObject, next: SentObject): void {
  if (def.kind !== 'StatefulSet' || def.group !== 'apps') return;
  const before = (cur.spec ?? {}) as Record<string, unknown>;
  const after = (next.spec ?? {}) as Record<string, unknown>;
  // A field left out of the update is defaulted again to what it was (podManagementPolicy).
  const changed = Object.keys({ ...before, ...after })
    .filter((k) => !STATEFULSET_MUTABLE.includes(k) && after[k] !== undefined)
    .some((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]));
  if (changed) {
    throw invalid(def.group, def.kind, next.metadata?.name ?? '', [{ field: 'spec', reason: 'FieldValueForbidden',
      message: "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden" }]);
  }
}

/** The spec fields validate() checks: a pod's containers, a workload's selector and pod template. */
type CheckedSpec = PartialJson<Pick<V1PodSpec, 'containers'> & Pick<V1DeploymentSpec, 'selector' | 'template'>>;

/** Throws 422 Invalid when obj lacks what type def requires (a name, to begin with). */
export function validate(def: ResourceDef, obj: SentObject): asserts obj is SentObject & { metadata: { name: string } } {
  const name = obj.metadata?.name ?? '';
  const spec = obj.spec as CheckedSpec | undefined;
  const causes: { field: string; message: string; reason?: string }[] = [];
  if (!name) causes.push({ field: 'metadata.name', message: 'Required value: name or generateName is required' });
  else if (name.length > 253 || !NAME_RE.test(name)) {
    causes.push({ field: 'metadata.name', reason: 'FieldValueInvalid',
      message: `Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character` });
  }
  if (def.resource === 'pods' && !(spec?.containers?.length)) {
    causes.push({ field: 'spec.containers', message: 'Required value' });
  }
  if (['StatefulSet', 'Deployment', 'ReplicaSet'].includes(def.kind) && def.group === 'apps') {
    if (!spec?.selector) causes.push({ field: 'spec.selector', message: 'Required value' });
    if (!spec?.template?.spec?.containers?.length) causes.push({ field: 'spec.template.spec.containers', message: 'Required value' });
  }
  if (def.kind === 'CronJob' && def.group === 'batch') causes.push(...cronJobErrors(obj as PartialJson<V1CronJob>));
  causes.push(...templateEphemeralErrors(def.group, def.kind, obj));
  for (const c of spec?.containers ?? []) {
    if (!c.name) causes.push({ field: 'spec.containers[0].name', message: 'Required value' });
    if (!c.image) causes.push({ field: `spec.containers[0].image`, message: 'Required value' });
  }
  // A pod's volume mounts must name its volumes (ValidateVolumeMounts, field.NotFound). A
  // StatefulSet's template may also name its volumeClaimTemplates: only pods are checked.
  if (def.resource === 'pods' && !def.group) {
    const pod = obj.spec as PartialJson<V1PodSpec> | undefined;
    const volumes = new Set((pod?.volumes ?? []).map((v) => v.name));
    for (const [list, cs] of [['initContainers', pod?.initContainers], ['containers', pod?.containers]] as const) {
      (cs ?? []).forEach((c, i) => (c.volumeMounts ?? []).forEach((m, j) => {
        if (!volumes.has(m.name)) causes.push({ field: `spec.${list}[${i}].volumeMounts[${j}].name`, message: `Not found: "${m.name}"`, reason: 'FieldValueNotFound' });
      }));
    }
  }
  if (causes.length) throw invalid(def.group, def.kind, name, causes);
}
