// Pod Security Admission (docs: concepts/security/pod-security-admission and
// pod-security-standards), as k8s.io/pod-security-admission's admission.go (ValidatePod,
// ValidatePodController, EvaluatePod) and api/helpers.go (PolicyToEvaluate) do it. A namespace's
// labels set three modes, each to its own level and evaluated on its own:
// - `pod-security.kubernetes.io/enforce` (and `enforce-version`): a pod that breaks the level is
//   refused (403 Forbidden) with the real server's message:
//     pods "NAME" is forbidden: violates PodSecurity "restricted:latest": REASON (DETAIL), ...
//   Workloads are never refused by it (only the pods their controllers create);
// - `pod-security.kubernetes.io/warn` (and `warn-version`): a pod, or the pod template of a
//   workload (Deployment, StatefulSet, ReplicaSet, Job: spec.template; CronJob:
//   spec.jobTemplate.spec.template; on create and update), that breaks the level is admitted with
//   the warning `would violate PodSecurity "restricted:latest": REASON (DETAIL), ...` (the same
//   words for a workload: the warning does not name it); no warning on a request enforce refuses;
// - `pod-security.kubernetes.io/audit` (and `audit-version`): the same text in the request's
//   audit annotation `pod-security.kubernetes.io/audit-violations`.
// A pod's request is also annotated `pod-security.kubernetes.io/enforce-policy: LEVEL:VERSION`
// unless every mode is privileged (the plugin's short cut). The reasons and details are worded as
// in k8s.io/pod-security-admission/policy, checks in the order of their IDs. dryRun=All requests
// are evaluated too, as admission runs before the dry-run stops the write.
// Differences from a real API server:
// - the checks modelled are those a utility or etcd pod meets: allowPrivilegeEscalation,
//   capabilities (baseline and restricted), host namespaces, hostPath volumes, hostPorts,
//   privileged, restricted volume types, runAsNonRoot, runAsUser, seccompProfile (baseline and
//   restricted). Not modelled: AppArmor, SELinux options, procMount, sysctls, Windows pods;
// - every version label is evaluated as `latest` (its value is only echoed); a label of an unknown
//   level counts as privileged (a real server refuses it on the namespace, and fails closed to
//   restricted for enforce);
// - pod updates are not checked (a real server checks the few mutable fields; an update of
//   pods/ephemeralcontainers is, ephemeralcontainers.ts), nor are
//   exemptions (usernames, namespaces, runtime classes); relabelling a namespace does not warn
//   about its existing pods; the sim serves no DaemonSets, ReplicationControllers or PodTemplates.
import { isObject } from '../json.js';
import { ApiError } from './status.js';

export type PodSecurityLevel = 'privileged' | 'baseline' | 'restricted';

interface SecurityContext {
  privileged?: boolean;
  allowPrivilegeEscalation?: boolean;
  runAsNonRoot?: boolean;
  runAsUser?: number;
  capabilities?: { add?: string[]; drop?: string[] };
  seccompProfile?: { type?: string };
}
interface Container { name: string; securityContext?: SecurityContext; ports?: Array<{ hostPort?: number }> }
interface PodSpecLike {
  containers?: Container[];
  initContainers?: Container[];
  ephemeralContainers?: Container[];
  hostNetwork?: boolean;
  hostPID?: boolean;
  hostIPC?: boolean;
  securityContext?: SecurityContext;
  volumes?: Array<Record<string, unknown> & { name: string }>;
}

/** Capabilities baseline allows to be added (pod-security-standards, "Capabilities"). */
const BASELINE_CAPABILITIES = new Set([
  'AUDIT_WRITE', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'MKNOD', 'NET_BIND_SERVICE',
  'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT',
]);
/** Volume types restricted allows. */
const RESTRICTED_VOLUMES = new Set(['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret']);

/** `container "a"` or `containers "a", "b"`. */
function containersPhrase(names: string[], prefix = ''): string {
  const quoted = names.map((n) => `"${n}"`).join(', ');
  return `${prefix}${names.length === 1 ? 'container' : 'containers'} ${quoted}`;
}

/** A level and the version of the standards it is evaluated at, as a namespace label pair sets it. */
export interface LevelVersion {
  level: PodSecurityLevel;
  version: string;
}

/** The three modes of a namespace's policy (api.Policy). */
export interface PodSecurityPolicy {
  enforce: LevelVersion;
  audit: LevelVersion;
  warn: LevelVersion;
}

/** How the messages name a level: "restricted:latest". */
function policyName(lv: LevelVersion): string {
  return `${lv.level}:${lv.version}`;
}

/** The policy a namespace's labels set; a mode without a label (or of an unknown level) is privileged. */
export function namespacePolicy(labels: Record<string, string> | undefined): PodSecurityPolicy {
  const mode = (name: string): LevelVersion => {
    const level = labels?.[`pod-security.kubernetes.io/${name}`];
    const version = labels?.[`pod-security.kubernetes.io/${name}-version`] || 'latest';
    return { level: level === 'baseline' || level === 'restricted' ? level : 'privileged', version };
  };
  return { enforce: mode('enforce'), audit: mode('audit'), warn: mode('warn') };
}

/** The violations of `level` by a pod spec, each "REASON (DETAIL)", in the real server's order. */
export function podSecurityViolations(level: PodSecurityLevel, spec: PodSpecLike): string[] {
  if (level === 'privileged') return [];
  const restricted = level === 'restricted';
  const all = [...(spec.initContainers ?? []), ...(spec.containers ?? []), ...(spec.ephemeralContainers ?? [])];
  const pod = spec.securityContext ?? {};
  const out: string[] = [];

  // allowPrivilegeEscalation (restricted)
  if (restricted) {
    const bad = all.filter((c) => c.securityContext?.allowPrivilegeEscalation !== false).map((c) => c.name);
    if (bad.length) out.push(`allowPrivilegeEscalation != false (${containersPhrase(bad)} must set securityContext.allowPrivilegeEscalation=false)`);
  }
  // capabilities_baseline (restricted replaces it with capabilities_restricted)
  if (!restricted) {
    const details: string[] = [];
    for (const c of all) {
      const added = (c.securityContext?.capabilities?.add ?? []).filter((cap) => !BASELINE_CAPABILITIES.has(cap));
      if (added.length) details.push(`${containersPhrase([c.name])} must not include ${added.map((a) => `"${a}"`).join(', ')} in securityContext.capabilities.add`);
    }
    if (details.length) out.push(`non-default capabilities (${details.join('; ')})`);
  }
  // capabilities_restricted
  if (restricted) {
    const noDrop = all.filter((c) => !(c.securityContext?.capabilities?.drop ?? []).includes('ALL')).map((c) => c.name);
    const details: string[] = [];
    if (noDrop.length) details.push(`${containersPhrase(noDrop)} must set securityContext.capabilities.drop=["ALL"]`);
    for (const c of all) {
      const added = (c.securityContext?.capabilities?.add ?? []).filter((cap) => cap !== 'NET_BIND_SERVICE');
      if (added.length) details.push(`${containersPhrase([c.name])} must not include ${added.map((a) => `"${a}"`).join(', ')} in securityContext.capabilities.add`);
    }
    if (details.length) out.push(`unrestricted capabilities (${details.join('; ')})`);
  }
  // hostNamespaces
  {
    const set = [spec.hostNetwork && 'hostNetwork=true', spec.hostPID && 'hostPID=true', spec.hostIPC && 'hostIPC=true'].filter(Boolean);
    if (set.length) out.push(`host namespaces (${set.join(', ')})`);
  }
  // hostPathVolumes (baseline; restricted reports it as a restricted volume type)
  const hostPaths = (spec.volumes ?? []).filter((v) => v['hostPath']).map((v) => v.name);
  if (hostPaths.length && !restricted) out.push(`hostPath volumes (${hostPaths.length === 1 ? 'volume' : 'volumes'} ${hostPaths.map((n) => `"${n}"`).join(', ')})`);
  // hostPorts
  {
    const details: string[] = [];
    for (const c of all) {
      const ports = (c.ports ?? []).map((p) => p.hostPort).filter((p): p is number => !!p);
      if (ports.length) details.push(`${containersPhrase([c.name])} uses ${ports.length === 1 ? 'hostPort' : 'hostPorts'} ${ports.join(', ')}`);
    }
    if (details.length) out.push(`hostPort (${details.join('; ')})`);
  }
  // privileged
  {
    const bad = all.filter((c) => c.securityContext?.privileged === true).map((c) => c.name);
    if (bad.length) out.push(`privileged (${containersPhrase(bad)} must not set securityContext.privileged=true)`);
  }
  // restrictedVolumes
  if (restricted) {
    const details: string[] = [];
    for (const v of spec.volumes ?? []) {
      const type = Object.keys(v).find((k) => k !== 'name');
      if (type && !RESTRICTED_VOLUMES.has(type)) details.push(`volume "${v.name}" uses restricted volume type "${type}"`);
    }
    if (details.length) out.push(`restricted volume types (${details.join(', ')})`);
  }
  // runAsNonRoot (restricted)
  if (restricted) {
    const details: string[] = [];
    if (pod.runAsNonRoot === false) details.push('pod must not set securityContext.runAsNonRoot=false');
    const explicitFalse = all.filter((c) => c.securityContext?.runAsNonRoot === false).map((c) => c.name);
    if (explicitFalse.length) details.push(`${containersPhrase(explicitFalse)} must not set securityContext.runAsNonRoot=false`);
    if (pod.runAsNonRoot !== true) {
      const unset = all.filter((c) => c.securityContext?.runAsNonRoot === undefined).map((c) => c.name);
      if (unset.length) details.push(`${containersPhrase(unset, 'pod or ')} must set securityContext.runAsNonRoot=true`);
    }
    if (details.length) out.push(`runAsNonRoot != true (${details.join('; ')})`);
  }
  // runAsUser (restricted)
  if (restricted) {
    const details: string[] = [];
    if (pod.runAsUser === 0) details.push('pod must not set runAsUser=0');
    const root = all.filter((c) => c.securityContext?.runAsUser === 0).map((c) => c.name);
    if (root.length) details.push(`${containersPhrase(root)} must not set runAsUser=0`);
    if (details.length) out.push(`runAsUser=0 (${details.join('; ')})`);
  }
  // seccompProfile_baseline / seccompProfile_restricted
  {
    const ok = (t: string | undefined) => t === 'RuntimeDefault' || t === 'Localhost';
    const details: string[] = [];
    const podType = pod.seccompProfile?.type;
    if (podType === 'Unconfined' || (restricted && podType !== undefined && !ok(podType))) details.push(`pod must not set securityContext.seccompProfile.type to "${podType}"`);
    for (const c of all) {
      const t = c.securityContext?.seccompProfile?.type;
      if (t === 'Unconfined' || (restricted && t !== undefined && !ok(t))) details.push(`${containersPhrase([c.name])} must not set securityContext.seccompProfile.type to "${t}"`);
    }
    if (restricted && !ok(podType)) {
      const unset = all.filter((c) => c.securityContext?.seccompProfile?.type === undefined).map((c) => c.name);
      if (unset.length) details.push(`${containersPhrase(unset, 'pod or ')} must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"`);
    }
    if (details.length) out.push(`seccompProfile (${details.join('; ')})`);
  }
  return out;
}

/** What Pod Security Admission decided about one pod or pod template. */
export interface PodSecurityVerdict {
  /** `violates PodSecurity "LEVEL:VERSION": ...` when enforce refuses the pod. */
  refusal?: string;
  /** For the client's Warning headers. */
  warnings: string[];
  /** For the request's audit line, keys prefixed `pod-security.kubernetes.io/` as the plugin adds them. */
  auditAnnotations: Record<string, string>;
}

/**
 * Evaluates a pod (enforce, audit and warn) or a workload's pod template (audit and warn only), as
 * EvaluatePod does; privileged modes, and every mode but enforce for a pod template, are skipped.
 */
export function evaluatePodSecurity(policy: PodSecurityPolicy, spec: PodSpecLike, what: 'pod' | 'template'): PodSecurityVerdict {
  const verdict: PodSecurityVerdict = { warnings: [], auditAnnotations: {} };
  const enforce = what === 'pod';
  const checked = enforce ? [policy.enforce, policy.audit, policy.warn] : [policy.audit, policy.warn];
  if (checked.every((lv) => lv.level === 'privileged')) return verdict;
  const detail = (lv: LevelVersion) => podSecurityViolations(lv.level, spec).join(', ');
  if (enforce) {
    verdict.auditAnnotations['pod-security.kubernetes.io/enforce-policy'] = policyName(policy.enforce);
    const refused = detail(policy.enforce);
    if (refused) verdict.refusal = `violates PodSecurity "${policyName(policy.enforce)}": ${refused}`;
  }
  const audited = detail(policy.audit);
  if (audited) verdict.auditAnnotations['pod-security.kubernetes.io/audit-violations'] = `would violate PodSecurity "${policyName(policy.audit)}": ${audited}`;
  // no warnings on a request that is refused anyway
  const warned = verdict.refusal ? '' : detail(policy.warn);
  if (warned) verdict.warnings.push(`would violate PodSecurity "${policyName(policy.warn)}": ${warned}`);
  return verdict;
}

/** Where admission records what it adds to a request besides its answer (notes.ts). */
export interface AdmissionNotes {
  warn(text: string): void;
  annotate(key: string, value: string): void;
}

function record(notes: AdmissionNotes | undefined, verdict: PodSecurityVerdict): void {
  for (const [k, v] of Object.entries(verdict.auditAnnotations)) notes?.annotate(k, v);
  for (const w of verdict.warnings) notes?.warn(w);
}

/** Admits a new pod as the PodSecurity admission plugin does: 403 Forbidden when enforce refuses it; warnings and audit annotations to notes. */
export function admitPod(namespaceLabels: Record<string, string> | undefined, name: string, spec: PodSpecLike | undefined, notes?: AdmissionNotes): void {
  const verdict = evaluatePodSecurity(namespacePolicy(namespaceLabels), spec ?? {}, 'pod');
  record(notes, verdict);
  if (verdict.refusal) throw new ApiError(403, 'Forbidden', `pods "${name}" is forbidden: ${verdict.refusal}`, { name, kind: 'pods' });
}

/** Where PodSpecExtractor finds the pod spec of each workload the sim serves, by "group/resource". */
const POD_TEMPLATE_PATHS: Record<string, string[]> = {
  'apps/deployments': ['spec', 'template', 'spec'],
  'apps/statefulsets': ['spec', 'template', 'spec'],
  'apps/replicasets': ['spec', 'template', 'spec'],
  'batch/jobs': ['spec', 'template', 'spec'],
  'batch/cronjobs': ['spec', 'jobTemplate', 'spec', 'template', 'spec'],
};

/** Whether objects of the type have a pod template PodSecurity evaluates. */
export function hasPodTemplate(group: string, resource: string): boolean {
  return `${group}/${resource}` in POD_TEMPLATE_PATHS;
}

/** The pod spec of a workload's template, or undefined when it has none (nothing to evaluate). */
export function workloadPodSpec(group: string, resource: string, obj: Record<string, unknown>): PodSpecLike | undefined {
  const path = POD_TEMPLATE_PATHS[`${group}/${resource}`];
  if (!path) return undefined;
  let at: unknown = obj;
  for (const key of path) at = isObject(at) ? at[key] : undefined;
  return isObject(at) ? at as PodSpecLike : undefined;
}

/** Evaluates a workload's pod template on its create or update: never refuses; warnings and audit annotations to notes. */
export function admitWorkload(namespaceLabels: Record<string, string> | undefined, group: string, resource: string,
  obj: Record<string, unknown>, notes: AdmissionNotes): void {
  const spec = workloadPodSpec(group, resource, obj);
  if (spec) record(notes, evaluatePodSecurity(namespacePolicy(namespaceLabels), spec, 'template'));
}
