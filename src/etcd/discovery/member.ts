/**
 * One etcd member read from its pod spec: name, endpoint, peer URL, data dir, TLS files,
 * initial cluster and token, the volume behind the data dir, the Secret keys behind the TLS
 * files, node, ordinal, image and identity. Pure: the pod object is the only input.
 */
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import type { DataVolume, EtcdMember, MemberPodFacts, SecretKeyRef } from '../topology.js';
import { etcdBoolSetting, etcdSetting, parseEtcdFlags, splitUrls } from '../flags.js';
import { etcdArgs, findEtcdContainer } from './command.js';
import { containerEnv, expandKubeVars } from './env.js';
import { secretKeysAt, volumeForPath } from './mounts.js';
import { quotaOf } from '../quota.js';

/** Options for reading one member. */
export interface MemberReadOptions {
  /** Container name to use instead of auto-detection. */
  container?: string;
  /** Name of the owning StatefulSet, to compute the ordinal and PVC names. */
  statefulSet?: string;
  /** volumeClaimTemplates names of the owning StatefulSet (for pods whose PVC volumes are implied). */
  claimTemplates?: string[];
}

/** The client URL to use from inside the pod: a loopback or wildcard listener becomes 127.0.0.1. */
export function localClientEndpoint(listenUrls: string[]): { endpoint: string; port: number } | undefined {
  const parsed = listenUrls.flatMap((u) => {
    try {
      const url = new URL(u);
      return url.protocol === 'http:' || url.protocol === 'https:' ? [url] : [];
    } catch {
      return [];
    }
  });
  const local = ['127.0.0.1', 'localhost', '0.0.0.0', '[::]', '[::1]', ''];
  const pick = parsed.find((u) => local.includes(u.hostname)) ?? parsed[0];
  if (!pick) return undefined;
  const port = Number(pick.port || (pick.protocol === 'https:' ? 443 : 80));
  const host = local.includes(pick.hostname) ? '127.0.0.1' : pick.hostname;
  return { endpoint: `${pick.protocol}//${host}:${port}`, port };
}

function dataVolumeOf(pod: V1Pod, container: V1Container, dataDir: string, opts: MemberReadOptions, vars: ReadonlyMap<string, string>, notes: string[], ordinal?: number): DataVolume | undefined {
  const found = volumeForPath(pod, container, dataDir);
  if (!found) return undefined;
  const { volume, name: volumeName, mountPath } = found;
  // subPathExpr expands $(VAR) from the etcd container's env, as the kubelet does: the member pod's
  // own values (its name, say), which a utility pod would not have.
  const subPath = found.subPathExpr ? expandKubeVars(found.subPathExpr, vars) : found.subPath;
  if (found.subPathExpr && subPath && /\$\(/.test(subPath)) notes.push(`subPathExpr "${found.subPathExpr}" of the data volume has an unresolved variable`);
  const base = { volumeName, mountPath, ...(subPath ? { subPath: subPath.replace(/^\/+|\/+$/g, '') } : {}) };
  if (volume?.persistentVolumeClaim) return { kind: 'pvc', ...base, claimName: volume.persistentVolumeClaim.claimName };
  if (volume?.hostPath) return { kind: 'hostPath', ...base, hostPath: volume.hostPath.path };
  if (volume?.emptyDir) return { kind: 'emptyDir', ...base };
  if (!volume && opts.statefulSet && ordinal !== undefined && opts.claimTemplates?.includes(volumeName)) {
    return { kind: 'pvc', ...base, claimName: `${volumeName}-${opts.statefulSet}-${ordinal}` };
  }
  return undefined;
}

/** The Secret keys behind each TLS file, by its path as etcd is given it (relative paths from the working dir). */
function secretFilesOf(pod: V1Pod, container: V1Container, files: Array<string | undefined>, vars: ReadonlyMap<string, string>): Record<string, SecretKeyRef[]> | undefined {
  const entries = files.flatMap((f) => {
    const refs = f ? secretKeysAt(pod, container, resolvePath(f, container.workingDir), vars) : [];
    return f && refs.length ? [[f, refs] as const] : [];
  });
  return entries.length ? Object.fromEntries(entries) : undefined;
}

/**
 * A setting's value when Bitnami's scripts take it as on, else false: their is_boolean_yes
 * (libvalidations.sh) matches `1`, or `yes` or `true` in any case (bash nocasematch), and nothing
 * else (no trimming, no `on`).
 */
function bitnamiOn(value: string | undefined): false | string {
  return value !== undefined && (value === '1' || /^(yes|true)$/i.test(value)) ? value : false;
}

/** The StatefulSet ordinal encoded in a pod name `<sts>-<N>`. */
export function ordinalOf(podName: string, statefulSet: string | undefined): number | undefined {
  if (!statefulSet || !podName.startsWith(`${statefulSet}-`)) return undefined;
  const rest = podName.slice(statefulSet.length + 1);
  return /^\d+$/.test(rest) ? Number(rest) : undefined;
}

function resolvePath(path: string, workingDir: string | undefined): string {
  if (path.startsWith('/')) return path;
  const wd = workingDir && workingDir.startsWith('/') ? workingDir : '/';
  return `${wd.replace(/\/$/, '')}/${path.replace(/^\.\//, '')}`;
}

/** A JSON copy without undefined fields (the client's objects may carry them), or undefined when empty. */
function plain<T>(value: T | undefined): T | undefined {
  if (value === undefined || value === null) return undefined;
  const copy = JSON.parse(JSON.stringify(value)) as T;
  if (Array.isArray(copy) ? copy.length === 0 : typeof copy === 'object' && Object.keys(copy as object).length === 0) return undefined;
  return copy;
}

/** What a utility pod takes from the member's pod (see MemberPodFacts), or undefined when it has none of it. */
function podFactsOf(pod: V1Pod, container: V1Container): MemberPodFacts | undefined {
  const facts: MemberPodFacts = {};
  const podSc = plain(pod.spec?.securityContext as Record<string, unknown> | undefined);
  if (podSc) facts.podSecurityContext = podSc;
  const sc = plain(container.securityContext as Record<string, unknown> | undefined);
  if (sc) facts.securityContext = sc;
  const tolerations = plain(pod.spec?.tolerations as Array<Record<string, unknown>> | undefined);
  if (tolerations) facts.tolerations = tolerations;
  const pullSecrets = (pod.spec?.imagePullSecrets ?? []).filter((s) => s.name).map((s) => ({ name: s.name! }));
  if (pullSecrets.length) facts.imagePullSecrets = pullSecrets;
  if (pod.spec?.priorityClassName) facts.priorityClassName = pod.spec.priorityClassName;
  const resources = plain({
    ...(plain(container.resources?.requests) ? { requests: plain(container.resources?.requests)! } : {}),
    ...(plain(container.resources?.limits) ? { limits: plain(container.resources?.limits)! } : {}),
  });
  if (resources) facts.resources = resources;
  return Object.keys(facts).length ? facts : undefined;
}

/** Reads the member a pod runs, or undefined when the pod runs no etcd container. */
export function readMember(pod: V1Pod, opts: MemberReadOptions = {}): EtcdMember | undefined {
  const found = findEtcdContainer(pod, opts.container);
  if (!found) return undefined;
  const { container } = found;
  const podName = pod.metadata?.name ?? '';
  const { vars, unresolved } = containerEnv(pod, container);
  const shellEnv = new Map(vars);
  if (!shellEnv.has('HOSTNAME')) shellEnv.set('HOSTNAME', pod.spec?.hostname ?? podName);
  const args = etcdArgs(container, vars, shellEnv).map((a) => expandKubeVars(a, shellEnv));
  const flags = parseEtcdFlags(args);
  const get = (flag: string): string | undefined => etcdSetting(flags, vars, flag);
  const notes = [...unresolved];
  const name = get('name') ?? 'default';
  const dataDir = resolvePath(get('data-dir') ?? `${name}.etcd`, container.workingDir);
  const listen = splitUrls(get('listen-client-urls') ?? 'http://localhost:2379');
  const client = localClientEndpoint(listen) ?? { endpoint: 'http://127.0.0.1:2379', port: 2379 };
  const peerUrls = splitUrls(get('initial-advertise-peer-urls') ?? 'http://localhost:2380');
  const peerUrl = peerUrls[0] ?? 'http://localhost:2380';
  const ordinal = ordinalOf(podName, opts.statefulSet);
  const caFile = get('trusted-ca-file');
  const certFile = get('cert-file');
  const keyFile = get('key-file');
  for (const [k, v] of [['name', name], ['data-dir', dataDir], ['endpoint', client.endpoint], ['peer URL', peerUrl]] as const) {
    if (/\$\(|\$\{|\$[A-Za-z_]/.test(v)) notes.push(`${k} "${v}" has an unresolved variable`);
  }
  if (client.endpoint.startsWith('https:') && !caFile) notes.push('client URL is https but no --trusted-ca-file is set');
  if (etcdBoolSetting(flags, vars, 'client-cert-auth') && (!certFile || !keyFile)) notes.push('--client-cert-auth is on but no client certificate is known');
  const podSc = pod.spec?.securityContext;
  const sc = container.securityContext;
  const runAsUser = sc?.runAsUser ?? podSc?.runAsUser;
  const runAsGroup = sc?.runAsGroup ?? podSc?.runAsGroup;
  const fsGroup = podSc?.fsGroup;
  const podFacts = podFactsOf(pod, container);
  const dataVolume = dataVolumeOf(pod, container, dataDir, opts, vars, notes, ordinal);
  const secretFiles = secretFilesOf(pod, container, [caFile, certFile, keyFile], vars);
  const ready = pod.status?.conditions?.find((c) => c.type === 'Ready');
  // etcd's own defaults: the member alone at its advertised peer URLs, token "etcd-cluster".
  const initialCluster = get('initial-cluster') ?? splitUrls(get('initial-advertise-peer-urls') ?? peerUrl).map((u) => `${name}=${u}`).join(',');
  const initialClusterToken = get('initial-cluster-token') ?? 'etcd-cluster';
  const preStop = container.lifecycle?.preStop?.exec?.command;
  // ETCD_QUOTA_BACKEND_BYTES from a ConfigMap or Secret key (Bitnami's extraEnvVarsCM), or envFrom, is not read.
  const quotaHidden = !vars.has('ETCD_QUOTA_BACKEND_BYTES') && unresolved.some((u) => u.startsWith('envFrom ') || u.startsWith('env ETCD_QUOTA_BACKEND_BYTES '));
  const quota = quotaOf(get('quota-backend-bytes'), get('config-file'), quotaHidden);
  if (quota.source === 'unknown') {
    notes.push(get('config-file') ? 'etcd reads a --config-file: its quota is not known'
      : get('quota-backend-bytes') !== undefined ? `--quota-backend-bytes "${get('quota-backend-bytes')}" is not a number`
        : 'the quota may come from an env var discovery cannot read: it is not known');
  }
  // Bitnami's image (or its chart, which sets ETCD_ON_K8S) starts etcd through scripts that act on the data dir.
  const bitnami = /(^|\/)bitnami\/etcd([:@]|$)/.test(container.image ?? '') || vars.has('ETCD_ON_K8S');
  return {
    pod: podName,
    namespace: pod.metadata?.namespace ?? '',
    container: container.name,
    ...(pod.spec?.nodeName ? { node: pod.spec.nodeName } : {}),
    ...(ordinal !== undefined ? { ordinal } : {}),
    name,
    endpoint: client.endpoint,
    clientPort: client.port,
    peerUrl,
    ...(peerUrls.length > 1 ? { peerUrls } : {}),
    dataDir,
    tls: { ...(caFile ? { caFile } : {}), ...(certFile ? { certFile } : {}), ...(keyFile ? { keyFile } : {}) },
    clientTlsEnabled: client.endpoint.startsWith('https:'),
    initialCluster,
    initialClusterToken,
    ...(dataVolume ? { dataVolume } : {}),
    ...(secretFiles ? { secretFiles } : {}),
    image: container.image ?? '',
    ...(runAsUser !== undefined ? { runAsUser } : {}),
    ...(runAsGroup !== undefined ? { runAsGroup } : {}),
    ...(fsGroup !== undefined ? { fsGroup } : {}),
    ...(podFacts ? { podFacts } : {}),
    ...(ready ? { ready: ready.status === 'True' } : {}),
    ...(preStop?.length ? { preStop } : {}),
    quota,
    ...(bitnami ? { startScripts: { kind: 'bitnami' as const, disasterRecovery: bitnamiOn(vars.get('ETCD_DISASTER_RECOVERY')) } } : {}),
    ...(notes.length ? { notes } : {}),
  };
}
