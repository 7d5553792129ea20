/**
 * The plan of a kubeadm restore (issue 18): pure data built from the discovered static etcd pods
 * (mirror pods `etcd-<node>` in kube-system) and the snapshot's facts, so `--dry-run` can print it
 * and tests can check it. Per control-plane node it names the member, the node's paths (data dir,
 * kubelet manifest folder, the work dir where the snapshot goes, where the old data and the
 * manifests are kept) and two pods:
 *
 *   installer  an API pod pinned to the node (before the window, while the API serves): it pulls
 *              both images on the node (a static pod cannot name pull secrets), proves the etcd
 *              image can hand out its tools, takes the snapshot and checks its sha256 there, and
 *              writes the agent's static pod file;
 *   agent      a static pod (a file in the kubelet's manifest folder, not an API object): it runs
 *              the node agent (agent.ts) by itself while the API is gone. A static pod, because the
 *              API comes back from the restored store, which does not know a pod made after the
 *              snapshot: the kubelet would stop an API-made agent mid-way.
 *
 * Both mount the node's /etc/kubernetes (manifests and certificates) and the member's data
 * hostPath at the paths the etcd pod sees, so every path the member's pod spec names is the same
 * file in the agent. The agent's container is the shell image; an init container of the etcd
 * image copies its etcdctl/etcdutl into an emptyDir first (the restore tool is the cluster's own
 * version, and kubeadm's etcd image has sh and cp but no mv or tail).
 */
import { createHash } from 'node:crypto';
import { initialClusterOf } from '../../etcd/etcdctl.js';
import type { EtcdMember, EtcdTopology } from '../../etcd/topology.js';
import { keptCopiesDirOf, keptCopyPath } from '../kept.js';
import { MANAGED_BY, type UtilityPodManifest } from '../manifests.js';
import { restoreArgvFor, restoreClusterToken, type PlannedSnapshot, type RestoreTool } from '../plan.js';
import { KUBEADM_CONFIG_DIR } from '../../etcd/kubeadm-layout.js';
import { agentArgv, agentRestoreDir, agentWorkDir, type AgentOptions } from './agent.js';

/** kubeadm's staticPodPath (KubeletConfiguration), where etcd.yaml and kube-apiserver.yaml live. */
export const KUBEADM_MANIFEST_DIR = '/etc/kubernetes/manifests';
/** The file of the agent's static pod in the manifest folder. */
export const AGENT_MANIFEST_FILE = 'kubectl-etcd-agent.yaml';
/** Where the agent finds the etcd image's tools (an emptyDir the init container fills). */
export const AGENT_TOOLS_DIR = '/kubectl-etcd-tools';
const TOOLS_VOLUME = 'kubectl-etcd-tools';
const AGENT_PATH = `${AGENT_TOOLS_DIR}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`;
/** How long the agent waits for etcd to stop once its manifest is out, and to answer once back (s). */
const STOP_TIMEOUT_S = 120;
const START_TIMEOUT_S = 300;

/**
 * Copies the etcd image's etcdctl and etcdutl (3.5+) into DIR; fails without etcdctl. Runs in the
 * etcd image (sh and cp, nothing else assumed); the tool paths are found on its PATH.
 */
const COPY_TOOLS_SCRIPT = [
  'dir="$1"',
  'for t in etcdctl etcdutl; do',
  '  p=$(command -v "$t") || continue',
  '  cp "$p" "$dir/$t" || exit 1',
  'done',
  '[ -x "$dir/etcdctl" ] || { echo "the etcd image has no etcdctl on its PATH" >&2; exit 1; }',
].join('\n');

/** One control-plane node's part. Paths are the node's own (the pods mount them at the same place). */
export interface KubeadmNodePlan {
  member: EtcdMember;
  node: string;
  /** The member's data dir and the kubelet's static pod folder. */
  dataDir: string;
  manifestDir: string;
  /** The agent's work dir (snapshot, restore, log, outcome), on the data dir's filesystem. */
  workDir: string;
  snapshotPath: string;
  /** Where the old member dir is kept, and where etcd.yaml and kube-apiserver.yaml wait while out. */
  asideDir: string;
  keepDir: string;
  /** The agent's options (restore mode; --abort runs the same with mode rollback). */
  agent: AgentOptions;
  installerPod: UtilityPodManifest;
  /** The agent's static pod, as written to manifestDir/AGENT_MANIFEST_FILE. */
  agentPod: UtilityPodManifest;
}

/** The complete kubeadm restore plan. */
export interface KubeadmRestorePlan {
  kind: 'kubeadm';
  namespace: string;
  workload: EtcdTopology['workload'];
  snapshot: PlannedSnapshot;
  initialCluster: string;
  initialClusterToken: string;
  tool: RestoreTool;
  stamp: string;
  shellImage: string;
  etcdImage: string;
  nodes: KubeadmNodePlan[];
  steps: string[];
  warnings: string[];
}

export interface KubeadmPlanInput {
  topology: EtcdTopology;
  snapshot: PlannedSnapshot;
  tool: RestoreTool;
  /** The image with a shell the agent runs in (busybox unless --utility-image). */
  shellImage: string;
  stamp: string;
  safetyBackup: boolean;
}

/** The member's data dir as a path on its node (the hostPath volume that holds it). */
export function hostDataDir(member: EtcdMember): string | undefined {
  const v = member.dataVolume;
  if (v?.kind !== 'hostPath' || v.subPath) return undefined;
  const mount = v.mountPath.replace(/\/+$/, '');
  if (member.dataDir !== mount && !member.dataDir.startsWith(`${mount}/`)) return undefined;
  return `${v.hostPath.replace(/\/+$/, '')}${member.dataDir.slice(mount.length)}`;
}

/**
 * Pod names a node's pods get: `kubectl-etcd-install-STAMP-NODE`, lowercase; a node name too long
 * for the 63 characters of a label value is cut and followed by a hash of the whole name, so two
 * nodes that differ only at the end still get two pods.
 */
function podName(kind: string, stamp: string, node: string): string {
  const clean = (x: string) => x.toLowerCase().replace(/[^a-z0-9-]/g, '-');
  const full = clean(`kubectl-etcd-${kind}-${stamp}-${node}`);
  if (full.length <= 63) return full.replace(/-+$/, '');
  const hash = createHash('sha256').update(node).digest('hex').slice(0, 8);
  return `${full.slice(0, 63 - 9).replace(/-+$/, '')}-${hash}`;
}

/** Builds the plan; throws nothing (preflight refuses what cannot work). */
export function buildKubeadmPlan(input: KubeadmPlanInput): KubeadmRestorePlan {
  const { topology, snapshot, stamp, tool } = input;
  const members = topology.members;
  const initialCluster = initialClusterOf(members);
  const clusterToken = topology.initialClusterToken ?? members[0]?.initialClusterToken ?? 'etcd-cluster';
  const initialClusterToken = restoreClusterToken(clusterToken, stamp);
  const warnings: string[] = [];
  if (!tool.bumpRevision) {
    warnings.push(`${tool.binary === 'etcdctl' ? 'the etcd image has no etcdutl (etcd < 3.5)' : 'the etcdutl of the etcd image has no --bump-revision (etcd < 3.5.10)'}: `
      + 'the restored revision is not bumped; the kube-apiservers restart with the restore, but restart the scheduler, controller-manager and kubelets too, so that no cache is ahead of the snapshot');
  }
  const nodes = members.map((member): KubeadmNodePlan => {
    const node = member.node ?? '';
    const dataDir = member.dataDir.replace(/\/+$/, '');
    const workDir = agentWorkDir(dataDir, stamp);
    const snapshotPath = `${workDir}/snapshot.db`;
    const asideDir = keptCopyPath(member, stamp);
    const agent: AgentOptions = {
      mode: 'restore', stamp, run: 'restore-1', dataDir, manifestDir: KUBEADM_MANIFEST_DIR, snapshot: snapshotPath, asideDir,
      restoredAsideDir: `${keptCopiesDirOf(member).replace(/\/+$/, '')}/member.restored-${stamp}`,
      restoreArgv: restoreArgvFor(member, {
        snapshotPath, restoreDir: agentRestoreDir(dataDir, stamp), initialCluster, token: initialClusterToken, tool, skipHashCheck: !snapshot.hasTrailer,
      }),
      endpoint: member.endpoint, tls: member.tls, stopTimeoutSeconds: STOP_TIMEOUT_S, startTimeoutSeconds: START_TIMEOUT_S,
    };
    const pods = nodePods({ member, node, stamp, shellImage: input.shellImage, etcdImage: member.image, agent });
    return {
      member, node, dataDir, manifestDir: KUBEADM_MANIFEST_DIR, workDir, snapshotPath, asideDir,
      keepDir: `${KUBEADM_CONFIG_DIR}/kubectl-etcd-restore-${stamp}`, agent, ...pods,
    };
  });
  const names = nodes.map((n) => n.node).join(', ');
  const steps = [
    ...(input.safetyBackup ? ['take a safety backup of the current cluster'] : []),
    `start an installer pod on every control-plane node (${names}): it pulls the agent's images there`,
    'check free space on every node, copy the snapshot there and check its sha256 there',
    `write the agent's static pod (${KUBEADM_MANIFEST_DIR}/${AGENT_MANIFEST_FILE}) on every node; from here the API server goes away`,
    'each agent, by itself: kube-apiserver.yaml and etcd.yaml out, wait for etcd to stop, restore the snapshot, old data aside, restored data in, manifests back',
    'wait for the API server to answer again',
    'read every agent\'s outcome on its node',
    'verify: every member healthy, one leader, each on this restore\'s data (member and cluster IDs), the revision not below the snapshot\'s',
    'remove the agents\' static pod files, the snapshot copies and the installer pods (old data, the manifests\' copies and the agents\' logs stay on the nodes)',
  ];
  return {
    kind: 'kubeadm', namespace: topology.namespace, workload: topology.workload, snapshot, initialCluster, initialClusterToken, tool, stamp,
    shellImage: input.shellImage, etcdImage: members[0]?.image ?? topology.image, nodes, steps, warnings,
  };
}

/** The installer (API) pod and the agent (static) pod of one node. */
function nodePods(o: { member: EtcdMember; node: string; stamp: string; shellImage: string; etcdImage: string; agent: AgentOptions }): Pick<KubeadmNodePlan, 'installerPod' | 'agentPod'> {
  const { member, node, stamp } = o;
  const data = member.dataVolume!;
  const hostData = data.kind === 'hostPath' ? data.hostPath : member.dataDir;
  const volumes = [
    { name: 'kubernetes', hostPath: { path: KUBEADM_CONFIG_DIR, type: 'Directory' } },
    { name: 'etcd-data', hostPath: { path: hostData, type: 'Directory' } },
    { name: TOOLS_VOLUME, emptyDir: {} },
  ];
  const mounts = [
    { name: 'kubernetes', mountPath: KUBEADM_CONFIG_DIR },
    { name: 'etcd-data', mountPath: data.mountPath },
  ];
  const toolsMount = { name: TOOLS_VOLUME, mountPath: AGENT_TOOLS_DIR };
  // Root: the files it moves are root's (kubeadm's manifests, certificates and data dir).
  const root = { runAsUser: 0, runAsGroup: 0 };
  const copyTools = {
    name: 'etcd-tools', image: o.etcdImage, imagePullPolicy: 'IfNotPresent',
    command: ['sh', '-c', COPY_TOOLS_SCRIPT, 'sh', AGENT_TOOLS_DIR], securityContext: root, volumeMounts: [toolsMount],
  };
  const labels = { ...MANAGED_BY, 'kubectl-etcd/restore': stamp, 'kubectl-etcd/member': member.name.slice(0, 63) };
  const installerPod: UtilityPodManifest = {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name: podName('install', stamp, node), namespace: member.namespace, labels },
    spec: {
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 5,
      nodeName: node,
      tolerations: [{ operator: 'Exists' }],
      ...(member.podFacts?.priorityClassName ? { priorityClassName: member.podFacts.priorityClassName } : {}),
      ...(member.podFacts?.imagePullSecrets ? { imagePullSecrets: member.podFacts.imagePullSecrets } : {}),
      initContainers: [copyTools],
      containers: [{
        name: 'installer', image: o.shellImage, imagePullPolicy: 'IfNotPresent',
        command: ['/bin/sh', '-ec', "trap 'exit 0' TERM; while :; do sleep 5 & wait $!; done"],
        env: [{ name: 'PATH', value: AGENT_PATH }], securityContext: root, volumeMounts: [...mounts, toolsMount],
      }],
      volumes,
    },
  };
  // A static pod names no API object (no pull secret, ServiceAccount, ConfigMap or Secret): the
  // installer pulled its images on this node, so IfNotPresent finds them without the API.
  const agentPod: UtilityPodManifest = {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name: `kubectl-etcd-agent-${stamp}`.toLowerCase(), namespace: member.namespace, labels },
    spec: {
      restartPolicy: 'Never',
      hostNetwork: true,
      priorityClassName: 'system-node-critical',
      terminationGracePeriodSeconds: 5,
      initContainers: [copyTools],
      containers: [{
        name: 'agent', image: o.shellImage, imagePullPolicy: 'IfNotPresent',
        command: agentArgv(o.agent), env: [{ name: 'PATH', value: AGENT_PATH }], securityContext: root,
        volumeMounts: [...mounts, toolsMount],
      }],
      volumes,
    },
  };
  return { installerPod, agentPod };
}
