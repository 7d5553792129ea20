/**
 * Utility pod manifests, as the manual runbook writes them by hand: one pod per member, pinned to
 * the member's node, mounting its data volume at the same path and subPath as etcd does (not its certificates:
 * nothing in the pod talks to etcd),
 * tolerating not-ready / unreachable / unschedulable nodes, doing nothing until we exec into it.
 */
import type { EtcdMember, MemberPodFacts } from '../etcd/topology.js';

/** Labels every object the restore creates carries. */
export const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'kubectl-etcd' } as const;

/** A v1 Pod manifest (only the fields we set). */
export interface UtilityPodManifest {
  apiVersion: 'v1';
  kind: 'Pod';
  metadata: { name: string; namespace: string; labels: Record<string, string> };
  spec: Record<string, unknown> & { containers: Array<Record<string, unknown>> };
}

/** The utility pod's container that runs the etcd image itself (a distroless etcd image). */
export const TOOLS_CONTAINER = 'etcd-tools';

// The runbook's idle loop, which also stops at once on SIGTERM (a shell as PID 1 ignores it otherwise,
// and a graceful delete would wait out the grace period).
export const IDLE_COMMAND = ['/bin/sh', '-ec', "trap 'exit 0' TERM; while :; do echo '.'; sleep 5 & wait $!; done"];

/** Where the throwaway etcd of the `etcd-tools` container keeps its data (an emptyDir, gone with the pod). */
export const TOOLS_SCRATCH_DIR = '/kubectl-etcd-tools';
const TOOLS_SCRATCH_VOLUME = 'etcd-tools-scratch';
/** The argument by which restoreCommand finds the etcd of the `etcd-tools` container. */
const TOOLS_ETCD_NAME = '--name=kubectl-etcd-tools';

/**
 * What keeps the `etcd-tools` container alive: a single-member etcd that listens on loopback
 * ports no etcd member uses (the pod has its own network namespace) and serves nobody.
 */
export function toolsIdleCommand(): string[] {
  return [
    'etcd', TOOLS_ETCD_NAME, `--data-dir=${TOOLS_SCRATCH_DIR}/etcd`,
    '--listen-client-urls=http://127.0.0.1:32379', '--advertise-client-urls=http://127.0.0.1:32379',
    '--listen-peer-urls=http://127.0.0.1:32380', '--initial-advertise-peer-urls=http://127.0.0.1:32380',
    '--initial-cluster=kubectl-etcd-tools=http://127.0.0.1:32380',
  ];
}

/** Kubernetes object names: lowercase, at most 63 characters for a pod's hostname. */
export function utilityPodName(member: EtcdMember): string {
  const suffix = member.ordinal !== undefined ? String(member.ordinal) : member.name;
  return `etcd-utility-${suffix}`.toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 63).replace(/-+$/, '');
}

/** The tolerations every utility pod has: it must run on a member's node that is in trouble. */
const OWN_TOLERATIONS: Array<Record<string, unknown>> = [
  { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
  { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
  { key: 'node.kubernetes.io/unschedulable', operator: 'Exists', effect: 'NoSchedule' },
];

/** The member's tolerations (the taints of its node it was let onto), then ours that it lacks. */
export function utilityTolerations(member: Array<Record<string, unknown>>): Array<Record<string, unknown>> {
  const same = (a: Record<string, unknown>, b: Record<string, unknown>) => a['key'] === b['key'] && (a['effect'] ?? '') === (b['effect'] ?? '');
  return [...member, ...OWN_TOLERATIONS.filter((t) => !member.some((m) => same(m, t)))];
}

/** True when the member's etcd runs as a user other than root (its uid set, or runAsNonRoot). */
export function memberRunsAsNonRoot(member: EtcdMember): boolean {
  const f = member.podFacts ?? {};
  const uid = member.runAsUser;
  if (uid !== undefined) return uid !== 0;
  return f.securityContext?.['runAsNonRoot'] === true || f.podSecurityContext?.['runAsNonRoot'] === true;
}

/**
 * Who the utility pod's processes run as. A member that runs as a non-root user gets a utility pod
 * that runs as that same user with the member's own pod and container security contexts: the
 * restored files are then the member's from the start (the group from fsGroup, which the kubelet
 * gave the volume), no chown as root is needed, and the pod passes whatever Pod Security level
 * the member passes. Otherwise (a root member, or a distroless image whose tool is reached by
 * chroot, which needs root) root, keeping the member's seccomp profile and SELinux options.
 */
export function utilityRunsAsMember(member: EtcdMember, chroot: boolean): boolean {
  return memberRunsAsNonRoot(member) && !chroot;
}

/** The security contexts of the utility pod (utilityRunsAsMember says whose user). */
export function utilityUser(member: EtcdMember, chroot: boolean): { pod?: Record<string, unknown>; container: Record<string, unknown> } {
  const f = member.podFacts ?? {};
  if (utilityRunsAsMember(member, chroot)) {
    const ids = { ...(member.runAsUser !== undefined ? { runAsUser: member.runAsUser } : {}), ...(member.runAsGroup !== undefined ? { runAsGroup: member.runAsGroup } : {}) };
    return { ...(f.podSecurityContext ? { pod: f.podSecurityContext } : {}), container: { ...(f.securityContext ?? {}), ...ids } };
  }
  const keep = (sc: Record<string, unknown> | undefined) => Object.fromEntries(Object.entries(sc ?? {}).filter(([k]) => k === 'seccompProfile' || k === 'seLinuxOptions'));
  const pod = keep(f.podSecurityContext);
  return { ...(Object.keys(pod).length ? { pod } : {}), container: { ...keep(f.securityContext), runAsUser: 0, runAsGroup: 0 } };
}

/**
 * The utility pod for one member. With `etcdToolsImage` (a distroless etcd image: no shell, no
 * `cp`, so nothing can copy its binaries out) the pod has two containers: `etcd-utility` (the
 * shell image, for copy, sha256sum, swap and chown) and `etcd-tools` (the etcd image itself).
 * The etcd image's only long-running program is etcd, so `etcd-tools` runs a throwaway etcd on
 * the pod's loopback, its data in an emptyDir. The pod shares one process namespace, so the
 * shell container runs the image's own `etcdctl`/`etcdutl snapshot restore` detached
 * (restoreCommand): the restore tool is always the cluster's own version.
 */
export function utilityPodManifest(opts: {
  member: EtcdMember;
  image: string;
  etcdToolsImage?: string;
  stamp: string;
}): { manifest: UtilityPodManifest; shellContainer: string; toolContainer: string } {
  const { member, stamp } = opts;
  const volumes: Array<Record<string, unknown>> = [];
  const mounts: Array<Record<string, unknown>> = [];
  const data = member.dataVolume;
  if (data) {
    const volumeName = 'etcd-data';
    if (data.kind === 'pvc') volumes.push({ name: volumeName, persistentVolumeClaim: { claimName: data.claimName } });
    else if (data.kind === 'hostPath') volumes.push({ name: volumeName, hostPath: { path: data.hostPath, type: 'Directory' } });
    else volumes.push({ name: volumeName, emptyDir: {} });
    // The member's subPath too: the pod sees the volume exactly as etcd does, so the data dir and
    // every path beside it (snapshot copy, restore dir, kept copy) are the same folders of the volume.
    mounts.push({ name: volumeName, mountPath: data.mountPath, ...(data.subPath ? { subPath: data.subPath } : {}) });
  }
  const facts = member.podFacts ?? {};
  const user = utilityUser(member, Boolean(opts.etcdToolsImage));
  const resources = facts.resources ? { resources: facts.resources } : {};
  // No certificate volume (the manual runbook mounts it): nothing here talks to etcd, and the
  // member's client key has no business in a pod that runs a pulled shell image.
  const containers: Array<Record<string, unknown>> = [
    { name: 'etcd-utility', image: opts.image, command: IDLE_COMMAND, securityContext: user.container, ...resources, volumeMounts: mounts },
  ];
  if (opts.etcdToolsImage) {
    volumes.push({ name: TOOLS_SCRATCH_VOLUME, emptyDir: {} });
    containers.push({
      name: TOOLS_CONTAINER,
      image: opts.etcdToolsImage,
      command: toolsIdleCommand(),
      securityContext: user.container,
      ...resources,
      volumeMounts: [...mounts, { name: TOOLS_SCRATCH_VOLUME, mountPath: TOOLS_SCRATCH_DIR }],
    });
  }
  const manifest: UtilityPodManifest = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: utilityPodName(member),
      namespace: member.namespace,
      labels: { ...MANAGED_BY, 'kubectl-etcd/restore': stamp, 'kubectl-etcd/member': member.name.slice(0, 63) },
    },
    spec: {
      restartPolicy: 'Never',
      // The shell container reaches the etcd-tools container's files through its processes (restoreCommand).
      ...(opts.etcdToolsImage ? { shareProcessNamespace: true } : {}),
      terminationGracePeriodSeconds: 5,
      // Pinned by the node's name, as the DaemonSet controller pins its pods: a node's
      // kubernetes.io/hostname label need not be its name (clouds label the short hostname).
      ...(member.node ? { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [member.node] }] }] } } } } : {}),
      ...(user.pod ? { securityContext: user.pod } : {}),
      tolerations: utilityTolerations(facts.tolerations ?? []),
      ...(facts.imagePullSecrets ? { imagePullSecrets: facts.imagePullSecrets } : {}),
      ...(facts.priorityClassName ? { priorityClassName: facts.priorityClassName } : {}),
      containers,
      volumes,
    },
  };
  return {
    manifest,
    shellContainer: 'etcd-utility',
    toolContainer: opts.etcdToolsImage ? TOOLS_CONTAINER : 'etcd-utility',
  };
}

// Finds this pod's etcd-tools etcd: a process in the same network namespace (this pod; /proc may
// show more where pods share a PID namespace), whose program is etcd and which has
// TOOLS_ETCD_NAME as a whole argument (the shells running this script have it only inside a
// longer one, and `sh` as their program); `p` is its pid, `c` this container's chroot.
const FIND_TOOLS = [
  'me=$(readlink /proc/self/ns/net); p=',
  'for f in /proc/[0-9]*; do',
  '  [ "$(readlink "$f/ns/net" 2>/dev/null)" = "$me" ] || continue',
  '  a=$(tr \'\\0\' \'\\n\' <"$f/cmdline" 2>/dev/null) || continue',
  '  case "${a%%\n*}" in etcd|*/etcd) ;; *) continue;; esac',
  `  case "\n$a\n" in *"\n${TOOLS_ETCD_NAME}\n"*) p=\${f#/proc/}; break;; esac`,
  'done',
  `[ -n "$p" ] || { echo "no etcd of container ${TOOLS_CONTAINER} runs in this pod; it must share the pod's process namespace (shareProcessNamespace: true)" >&2; exit 96; }`,
  'path=$(tr \'\\0\' \'\\n\' <"/proc/$p/environ" | grep "^PATH=") || path=',
  // chroot is found on this container's PATH, before PATH becomes the other container's.
  'c=$(command -v chroot) || { echo "the shell image has no chroot; pass --utility-image with one that has" >&2; exit 95; }',
];
// The tool runs in the etcd-tools container's own root (its binary, its libraries, its PATH);
// the volumes are mounted there at the same paths as here.
const EXEC_IN_TOOLS = 'PATH=${path#PATH=}; PATH=${PATH:-/usr/local/bin:/usr/bin:/bin} exec "$c" "/proc/$p/root" "$@"';

// $1: the restore dir; the rest: the restore argv.
const VIA_TOOLS = ['d=$1; shift', ...FIND_TOOLS, 'rm -rf "$d"', EXEC_IN_TOOLS].join('\n');

/**
 * The argv prefix that runs a program of the etcd image in the pod's `etcd-tools` container, from
 * a shell container of the same pod (shared process namespace, run as root for chroot): e.g.
 * `[...toolsExec(), 'etcdctl', 'version']`.
 */
export function toolsExec(): string[] {
  return ['sh', '-c', [...FIND_TOOLS, EXEC_IN_TOOLS].join('\n'), 'sh'];
}

/**
 * What the shell container runs, detached (kube/detached.ts), for a member's `snapshot restore`:
 * the restore dir cleared, then the tool — so a cut exec stream or a --resume joins that run and
 * never starts a second one beside it. With the `etcd-tools` container (a distroless etcd image,
 * where no shell can watch a run), the tool is that container's own binary, reached through the
 * pod's shared process namespace at /proc/PID/root (Kubernetes docs, "Share Process Namespace
 * between Containers in a Pod": container filesystems are visible to the other containers there).
 */
export function restoreCommand(restoreDir: string, restoreArgv: string[], viaTools: boolean): string[] {
  const script = viaTools ? VIA_TOOLS : 'rm -rf "$1" && shift && exec "$@"';
  return ['sh', '-c', script, 'sh', restoreDir, ...restoreArgv];
}

/**
 * The members' resources without ephemeral-storage, for a pod that works in an emptyDir (a drill
 * pod, a schedule's pod): that limit covers the emptyDir too, which holds a snapshot and its
 * restored copy, far more than a member (its data on a PVC) writes locally.
 */
export function withoutEphemeralStorage(r: MemberPodFacts['resources']): MemberPodFacts['resources'] {
  if (!r) return undefined;
  const strip = (m?: Record<string, string>) => (m ? Object.fromEntries(Object.entries(m).filter(([k]) => k !== 'ephemeral-storage')) : undefined);
  const requests = strip(r.requests);
  const limits = strip(r.limits);
  const out = { ...(requests && Object.keys(requests).length ? { requests } : {}), ...(limits && Object.keys(limits).length ? { limits } : {}) };
  return Object.keys(out).length ? out : undefined;
}
