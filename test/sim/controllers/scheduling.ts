/**
 * Pure scheduling decisions: does a pod fit a node, and which node gets it.
 *
 * Differs from kube-scheduler: filters are unschedulable, nodeName, taints (NoSchedule/NoExecute;
 * not-ready and unschedulable become implicit taints), nodeSelector, required node affinity and
 * volume placement only (in the scheduler's order; the first failing one is a node's reason) — no resource requests, ports, pod (anti-)affinity or topology spread; the score
 * is just "fewest pods, then node name". No preemption.
 */
import type {
  V1Node,
  V1PersistentVolume,
  V1PersistentVolumeClaim,
  V1Pod,
  V1StorageClass,
  V1Taint,
} from '@kubernetes/client-node';
import { matchesMap, matchesNodeSelectorTerms, untoleratedTaint } from './selectors.js';
import { bestVolumeFor, claimClass, PROVISIONER, volumeFitsNode } from './volumes.js';

/** What the scheduler may look up about volumes. */
export interface VolumeLookup {
  claim(namespace: string, name: string): V1PersistentVolumeClaim | undefined;
  volume(name: string): V1PersistentVolume | undefined;
  volumes(): V1PersistentVolume[];
  storageClass(name: string): V1StorageClass | undefined;
  /** How many bound (or assumed), unfinished pods other than `exceptUid` use the claim. */
  claimUsers(namespace: string, name: string, exceptUid: string | undefined): number;
}

/**
 * The VolumeRestrictions plugin's reason when another pod already uses one of the pod's
 * ReadWriteOncePod claims (pkg/scheduler/framework/plugins/volumerestrictions; docs:
 * concepts/storage/persistent-volumes#access-modes). It holds on every node, and unlike the other
 * reasons here preemption could resolve it (by evicting that pod), so the preemption verdict for
 * such a node is "No preemption victims found for incoming pod" (the simulator's pods all have
 * priority 0, so there never are victims).
 */
export const RWOP_CONFLICT = 'node has pod using PersistentVolumeClaim with the same name and ReadWriteOncePod access mode';

/** Whether another pod already uses one of pod's ReadWriteOncePod claims. */
function readWriteOncePodConflict(pod: V1Pod, vols: VolumeLookup): boolean {
  const ns = pod.metadata?.namespace ?? 'default';
  return (pod.spec?.volumes ?? []).some((v) => {
    const name = v.persistentVolumeClaim?.claimName;
    if (!name) return false;
    const claim = vols.claim(ns, name);
    return !!claim?.spec?.accessModes?.includes('ReadWriteOncePod') && vols.claimUsers(ns, name, pod.metadata?.uid) > 0;
  });
}

/** A pod-wide reason nothing can fit (e.g. a missing claim), or undefined. */
export function podLevelFailure(pod: V1Pod, vols: VolumeLookup): string | undefined {
  const ns = pod.metadata?.namespace ?? 'default';
  for (const v of pod.spec?.volumes ?? []) {
    const claimName = v.persistentVolumeClaim?.claimName;
    if (!claimName) continue;
    const claim = vols.claim(ns, claimName);
    if (!claim) return `persistentvolumeclaim "${claimName}" not found`;
    if (claim.metadata?.deletionTimestamp) return `persistentvolumeclaim "${claimName}" is being deleted`;
    const bound = claim.spec?.volumeName;
    if (bound && !vols.volume(bound)) return `persistentvolumeclaim "${claimName}" bound to non-existent persistentvolume "${bound}"`;
  }
  return undefined;
}

/** The node's taints plus the implicit ones for NotReady and unschedulable nodes. */
export function effectiveTaints(node: V1Node): V1Taint[] {
  const taints = [...(node.spec?.taints ?? [])];
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
  if (!ready && !taints.some((t) => t.key === 'node.kubernetes.io/not-ready')) {
    taints.push({ key: 'node.kubernetes.io/not-ready', effect: 'NoSchedule' });
  }
  if (node.spec?.unschedulable && !taints.some((t) => t.key === 'node.kubernetes.io/unschedulable')) {
    taints.push({ key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' });
  }
  return taints;
}

/**
 * Why `pod` cannot go to `node` (a phrase for the FailedScheduling message), or undefined if it
 * fits. The first failing filter names the node's reason, in kube-scheduler's filter order
 * (NodeUnschedulable, NodeName, TaintToleration, NodeAffinity, then the volume plugins).
 */
export function nodeFitFailure(pod: V1Pod, node: V1Node, vols: VolumeLookup): string | undefined {
  const spec = pod.spec ?? { containers: [] };
  const taint = untoleratedTaint(effectiveTaints(node), spec.tolerations);
  if (taint?.key === 'node.kubernetes.io/unschedulable') return 'were unschedulable';
  if (spec.nodeName && spec.nodeName !== node.metadata?.name) return "didn't match the requested node name";
  if (taint) return `had untolerated taint {${taint.key}: ${taint.value ?? ''}}`;
  if (!matchesMap(spec.nodeSelector, node.metadata?.labels)) return "didn't match Pod's node affinity/selector";
  const terms = spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
  if (terms && !matchesNodeSelectorTerms(terms, node)) return "didn't match Pod's node affinity/selector";
  if (readWriteOncePodConflict(pod, vols)) return RWOP_CONFLICT;
  const ns = pod.metadata?.namespace ?? 'default';
  for (const v of spec.volumes ?? []) {
    const claimName = v.persistentVolumeClaim?.claimName;
    if (!claimName) continue;
    const claim = vols.claim(ns, claimName);
    if (!claim) return `persistentvolumeclaim "${claimName}" not found`;
    const bound = claim.spec?.volumeName;
    if (bound) {
      const pv = vols.volume(bound);
      if (!pv || !volumeFitsNode(pv, node)) return 'had volume node affinity conflict';
      continue;
    }
    if (bestVolumeFor(claim, vols.volumes(), node)) continue;
    const cls = vols.storageClass(claimClass(claim));
    if (cls?.provisioner === PROVISIONER) continue;
    return "didn't find available persistent volumes to bind";
  }
  return undefined;
}

/** The outcome of scheduling one pod. */
export type Placement = { node: string } | { node?: undefined; message: string };

/**
 * Picks the node for `pod`: among the nodes it fits, the one with the fewest pods (then by name).
 * On failure returns kube-scheduler's message (FitError.Error: the "N node(s) REASON" strings
 * sorted, then the preemption attempt's verdict, which is never helpful for these reasons), e.g.
 * "0/3 nodes are available: 3 node(s) were unschedulable. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
 */
export function chooseNode(pod: V1Pod, nodes: V1Node[], podsOnNode: (node: string) => number, vols: VolumeLookup): Placement {
  const podFailure = podLevelFailure(pod, vols);
  if (podFailure) return { message: `0/${nodes.length} nodes are available: ${podFailure}. preemption: 0/${nodes.length} nodes are available: ${nodes.length} Preemption is not helpful for scheduling.` };
  const reasons = new Map<string, number>();
  const fits: string[] = [];
  for (const node of nodes) {
    const why = nodeFitFailure(pod, node, vols);
    if (why) reasons.set(why, (reasons.get(why) ?? 0) + 1);
    else fits.push(node.metadata?.name ?? '');
  }
  if (fits.length === 0) {
    const parts = [...reasons.entries()].map(([why, n]) => (why === RWOP_CONFLICT ? `${n} ${why}` : `${n} node(s) ${why}`)).sort();
    const noVictims = reasons.get(RWOP_CONFLICT) ?? 0;
    const verdicts = [
      ...(noVictims ? [`${noVictims} No preemption victims found for incoming pod`] : []),
      ...(nodes.length - noVictims ? [`${nodes.length - noVictims} Preemption is not helpful for scheduling`] : []),
    ].sort();
    return { message: `0/${nodes.length} nodes are available${parts.length ? `: ${parts.join(', ')}` : ''}. preemption: 0/${nodes.length} nodes are available: ${verdicts.join(', ')}.` };
  }
  fits.sort((a, b) => podsOnNode(a) - podsOnNode(b) || a.localeCompare(b));
  return { node: fits[0] };
}

/** The node with `kubernetes.io/hostname` set to its name when the kubelet left it out. */
export function withHostnameLabel(node: V1Node): V1Node {
  const labels = node.metadata?.labels ?? {};
  if (labels['kubernetes.io/hostname']) return node;
  return { ...node, metadata: { ...node.metadata, labels: { ...labels, 'kubernetes.io/hostname': node.metadata?.name ?? '' } } };
}
