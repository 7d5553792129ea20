// Pod Security Admission, enforce mode: a pod created in a namespace labelled
// `pod-security.kubernetes.io/enforce: baseline|restricted` is refused (403 Forbidden) when it
// breaks that level of the Pod Security Standards, with the real server's message:
//   pods "NAME" is forbidden: violates PodSecurity "restricted:latest": REASON (DETAIL), ...
// (docs: concepts/security/pod-security-admission and pod-security-standards; the reasons and
// details are worded as in k8s.io/pod-security-admission/policy, checks in the order of their IDs).
// dryRun=All requests are checked too, as admission runs before the dry-run stops the write.
// Differences from a real API server:
// - only `enforce` is modelled: `warn` and `audit` (Warning headers, audit annotations, and the
//   checks of workload pod templates) are not;
// - the checks modelled are those a utility or etcd pod meets: allowPrivilegeEscalation,
//   capabilities (baseline and restricted), host namespaces, hostPath volumes, hostPorts,
//   privileged, restricted volume types, runAsNonRoot, runAsUser, seccompProfile (baseline and
//   restricted). Not modelled: AppArmor, SELinux options, procMount, sysctls, Windows pods;
// - every `enforce-version` is evaluated as `latest` (the label's value is only echoed);
// - pod updates are not checked (a real server checks the few mutable fields), nor are exemptions.
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

/** The level a namespace's labels enforce (no label, or an unknown value: privileged). */
export function enforcedLevel(labels: Record<string, string> | undefined): { level: PodSecurityLevel; version: string } {
  const level = labels?.['pod-security.kubernetes.io/enforce'];
  const version = labels?.['pod-security.kubernetes.io/enforce-version'] || 'latest';
  return { level: level === 'baseline' || level === 'restricted' ? level : 'privileged', version };
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

/** Refuses a pod that breaks the level its namespace enforces, as the PodSecurity admission plugin does. */
export function admitPod(namespaceLabels: Record<string, string> | undefined, name: string, spec: PodSpecLike | undefined): void {
  const { level, version } = enforcedLevel(namespaceLabels);
  const violations = podSecurityViolations(level, spec ?? {});
  if (!violations.length) return;
  throw new ApiError(403, 'Forbidden', `pods "${name}" is forbidden: violates PodSecurity "${level}:${version}": ${violations.join(', ')}`,
    { name, kind: 'pods' });
}
