// Defaults and validation applied when objects are created or changed, limited to what clients
// and the other simulator components rely on.
// Differences from a real API server: only a small part of each type's defaulting and validation
// is done (names, required workload fields, pod and workload defaults that kubectl and our
// controllers read); unknown fields are kept, not pruned; Service clusterIPs come from a simple
// counter over 10.96.0.0/16.
import { invalid } from './status.js';
import type { ResourceDef } from './registry.js';

const NAME_RE = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/** Kinds whose metadata.generation moves on every spec change. */
export function tracksGeneration(def: ResourceDef): boolean {
  return ['apps', 'batch', 'policy'].includes(def.group);
}

function defaultPodSpec(spec: any): void {
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
  for (const v of spec.volumes ?? []) {
    if (v.secret) v.secret.defaultMode ??= 420;
    if (v.configMap) v.configMap.defaultMode ??= 420;
  }
}

/** Fills the defaults of a new object of type def (mutates obj). */
export function applyCreateDefaults(def: ResourceDef, obj: any, nextClusterIP: () => string): void {
  const kind = def.kind;
  if (def.resource === 'pods') {
    defaultPodSpec(obj.spec ??= {});
    obj.spec.serviceAccountName ??= obj.spec.serviceAccount ?? 'default';
    obj.spec.serviceAccount ??= obj.spec.serviceAccountName;
    obj.spec.enableServiceLinks ??= true;
    obj.spec.priority ??= 0;
    obj.spec.tolerations ??= [];
    for (const key of ['node.kubernetes.io/not-ready', 'node.kubernetes.io/unreachable']) {
      if (!obj.spec.tolerations.some((t: any) => t.key === key)) {
        obj.spec.tolerations.push({ key, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 });
      }
    }
    obj.status = { phase: 'Pending', qosClass: 'BestEffort', ...(obj.status ?? {}) };
  } else if (kind === 'StatefulSet') {
    const s = (obj.spec ??= {});
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
    obj.status ??= { replicas: 0, availableReplicas: 0 };
  } else if (kind === 'Deployment') {
    const s = (obj.spec ??= {});
    s.replicas ??= 1;
    s.strategy ??= { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' } };
    s.revisionHistoryLimit ??= 10;
    s.progressDeadlineSeconds ??= 600;
    defaultPodSpec(s.template?.spec);
    obj.status ??= {};
  } else if (kind === 'ReplicaSet') {
    obj.spec ??= {};
    obj.spec.replicas ??= 1;
    defaultPodSpec(obj.spec.template?.spec);
    obj.status ??= { replicas: 0 };
  } else if (kind === 'Service') {
    const s = (obj.spec ??= {});
    s.type ??= 'ClusterIP';
    s.sessionAffinity ??= 'None';
    if (s.clusterIP === undefined || s.clusterIP === '') s.clusterIP = nextClusterIP();
    s.clusterIPs ??= [s.clusterIP];
    for (const p of s.ports ?? []) {
      p.protocol ??= 'TCP';
      p.targetPort ??= p.port;
    }
    obj.status ??= { loadBalancer: {} };
  } else if (kind === 'PersistentVolumeClaim') {
    obj.spec ??= {};
    obj.spec.volumeMode ??= 'Filesystem';
    obj.status = { phase: 'Pending', ...(obj.status ?? {}) };
  } else if (kind === 'PersistentVolume') {
    obj.spec ??= {};
    obj.spec.persistentVolumeReclaimPolicy ??= 'Retain';
    obj.spec.volumeMode ??= 'Filesystem';
    obj.status = { phase: 'Pending', ...(obj.status ?? {}) };
  } else if (kind === 'Namespace') {
    obj.spec = { finalizers: ['kubernetes'], ...(obj.spec ?? {}) };
    obj.status = { phase: 'Active' };
  } else if (kind === 'Job') {
    obj.spec ??= {};
    obj.spec.backoffLimit ??= 6;
    obj.spec.completions ??= 1;
    obj.spec.parallelism ??= 1;
    defaultPodSpec(obj.spec.template?.spec);
    obj.status ??= {};
  } else if (kind === 'CronJob') {
    obj.spec ??= {};
    obj.spec.concurrencyPolicy ??= 'Allow';
    obj.spec.suspend ??= false;
    obj.status ??= {};
  } else if (kind === 'PodDisruptionBudget') {
    obj.status ??= { disruptionsAllowed: 0, currentHealthy: 0, desiredHealthy: 0, expectedPods: 0 };
  } else if (kind === 'Secret') {
    obj.type ??= 'Opaque';
  }
}

/** Moves a Secret's write-only stringData into data (base64), as the real API server does on every write. */
export function mergeStringData(def: ResourceDef, obj: any): void {
  if (def.kind !== 'Secret' || !obj?.stringData) return;
  obj.data = { ...(obj.data ?? {}) };
  for (const [k, v] of Object.entries<string>(obj.stringData)) obj.data[k] = Buffer.from(String(v), 'utf8').toString('base64');
  delete obj.stringData;
}

/** Throws 422 Invalid when obj lacks what type def requires. */
export function validate(def: ResourceDef, obj: any): void {
  const name = obj.metadata?.name ?? '';
  const causes: { field: string; message: string; reason?: string }[] = [];
  if (!name) causes.push({ field: 'metadata.name', message: 'Required value: name or generateName is required' });
  else if (name.length > 253 || !NAME_RE.test(name)) {
    causes.push({ field: 'metadata.name', reason: 'FieldValueInvalid',
      message: `Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character` });
  }
  if (def.resource === 'pods' && !(obj.spec?.containers?.length)) {
    causes.push({ field: 'spec.containers', message: 'Required value' });
  }
  if (['StatefulSet', 'Deployment', 'ReplicaSet'].includes(def.kind) && def.group === 'apps') {
    if (!obj.spec?.selector) causes.push({ field: 'spec.selector', message: 'Required value' });
    if (!obj.spec?.template?.spec?.containers?.length) causes.push({ field: 'spec.template.spec.containers', message: 'Required value' });
  }
  for (const c of obj.spec?.containers ?? []) {
    if (!c.name) causes.push({ field: 'spec.containers[0].name', message: 'Required value' });
    if (!c.image) causes.push({ field: `spec.containers[0].image`, message: 'Required value' });
  }
  if (causes.length) throw invalid(def.group, def.kind, name, causes);
}
