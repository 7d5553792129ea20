/**
 * Chooses which etcd workload the user means: `--statefulset`, `--pod`, `-l`, or — with only a
 * namespace — the one etcd workload in it. Reads the cluster through a narrow lister so it runs
 * the same against plain objects in tests and the real API in the plugin.
 */
import type { V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { NotFoundError, UsageError } from '../../errors.js';
import { findEtcdContainer } from './command.js';
import { labelSelectorString, podFromStatefulSet } from './template.js';
import type { ClaimRetention, EtcdWorkload } from '../topology.js';

/** What selection needs from the cluster. */
export interface EtcdPodLister {
  listPods(namespace: string, labelSelector?: string): Promise<V1Pod[]>;
  getStatefulSet(namespace: string, name: string): Promise<V1StatefulSet | undefined>;
  listStatefulSets(namespace: string): Promise<V1StatefulSet[]>;
}

/** How the user pointed at the etcd cluster. */
export interface WorkloadSelection {
  namespace: string;
  statefulSet?: string;
  pod?: string;
  selector?: string;
  /** Container name, when auto-detection must be overridden. */
  container?: string;
  /**
   * Restore: every ordinal below the StatefulSet's replicas is a member, those whose pod is gone
   * (deleted and not yet re-created, or refused by admission) made from the template, so that no
   * member is left out of the restored cluster.
   */
  allOrdinals?: boolean;
}

/** The chosen workload and the pods of its members. */
export interface SelectedWorkload {
  namespace: string;
  workload: EtcdWorkload;
  pods: V1Pod[];
  statefulSet?: V1StatefulSet;
  /** Set when the user named a pod. */
  focusPod?: string;
  /** true when the pods were made from the StatefulSet template because none exist. */
  fromTemplate?: boolean;
  /** allOrdinals: the members whose pods were made from the template because theirs are gone. */
  templateMembers?: string[];
}

function ownerStatefulSet(pod: V1Pod): string | undefined {
  return pod.metadata?.ownerReferences?.find((o) => o.kind === 'StatefulSet' && o.controller !== false)?.name;
}

/**
 * The workload a pod belongs to (`kind/name` of its owner). A static pod's mirror is owned by its
 * Node (the kubelet sets that owner, kubelet pod/mirror_client.go; NodeRestriction requires it): the
 * static pods of kubeadm's members, one per node, are one workload, as pods without owner are.
 */
function ownerOf(pod: V1Pod): string | undefined {
  const o = pod.metadata?.ownerReferences?.find((r) => r.controller !== false) ?? pod.metadata?.ownerReferences?.[0];
  if (!o || (o.kind === 'Node' && o.apiVersion === 'v1')) return undefined;
  return `${o.kind.toLowerCase()}/${o.name}`;
}

/** The annotation kubeadm puts on the etcd static pod it writes (cmd/kubeadm/app/constants: EtcdAdvertiseClientUrlsAnnotationKey). */
const KUBEADM_ETCD_ANNOTATION = 'kubeadm.kubernetes.io/etcd.advertise-client-urls';

/** A kubelet's mirror of a static pod: its annotation, and its Node as owner (kubelet pod/mirror_client.go). */
export function isMirrorPod(pod: V1Pod): boolean {
  return pod.metadata?.annotations?.['kubernetes.io/config.mirror'] !== undefined
    && (pod.metadata?.ownerReferences ?? []).some((o) => o.kind === 'Node' && o.apiVersion === 'v1');
}

function byName(a: V1Pod, b: V1Pod): number {
  const an = a.metadata?.name ?? '';
  const bn = b.metadata?.name ?? '';
  return an.localeCompare(bn, 'en', { numeric: true });
}

/** A selector shared by bare pods: their common labels, preferring kubeadm's component=etcd. */
function commonSelector(pods: V1Pod[]): string | undefined {
  const first = pods[0]?.metadata?.labels ?? {};
  if (pods.every((p) => p.metadata?.labels?.['component'] === 'etcd')) return 'component=etcd';
  const shared = Object.entries(first).filter(([k, v]) => pods.every((p) => p.metadata?.labels?.[k] === v));
  return shared.length ? shared.map(([k, v]) => `${k}=${v}`).join(',') : undefined;
}

async function statefulSetWorkload(lister: EtcdPodLister, ns: string, sts: V1StatefulSet, container?: string, allOrdinals = false): Promise<SelectedWorkload> {
  const name = sts.metadata?.name ?? '';
  const selector = labelSelectorString(sts.spec?.selector);
  const pods = (await lister.listPods(ns, selector || undefined))
    .filter((p) => ownerStatefulSet(p) === name)
    .sort(byName);
  const replicas = sts.spec?.replicas ?? 1;
  const policy = sts.spec?.persistentVolumeClaimRetentionPolicy;
  const claimRetention: ClaimRetention | undefined = policy
    ? { whenScaled: policy.whenScaled === 'Delete' ? 'Delete' : 'Retain', whenDeleted: policy.whenDeleted === 'Delete' ? 'Delete' : 'Retain' }
    : undefined;
  const workload = { kind: 'StatefulSet' as const, name, ...(selector ? { selector } : {}), replicas, ...(claimRetention ? { claimRetention } : {}) };
  const start = sts.spec?.ordinals?.start ?? 0; // spec.ordinals.start (GA in 1.31): the first ordinal
  if (pods.length === 0) {
    const templatePods = Array.from({ length: replicas }, (_, i) => podFromStatefulSet(sts, start + i));
    if (!templatePods.length || !findEtcdContainer(templatePods[0]!, container)) {
      throw new NotFoundError(`statefulset "${name}" in namespace "${ns}" has no etcd pods`, 'pass --statefulset with the etcd workload or --container');
    }
    return { namespace: ns, workload, pods: templatePods, statefulSet: sts, fromTemplate: true };
  }
  if (!findEtcdContainer(pods[0]!, container)) {
    throw new NotFoundError(`statefulset "${name}" in namespace "${ns}" does not run etcd`, 'pass --statefulset with the etcd workload or --container');
  }
  if (allOrdinals) {
    // The StatefulSet controller re-creates a deleted pod only after it is gone from the API, and
    // not at all while admission refuses it (stateful_set_control.go): a member is not gone with its pod.
    const names = new Set(pods.map((p) => p.metadata?.name));
    const gone = Array.from({ length: replicas }, (_, i) => start + i).filter((i) => !names.has(`${name}-${i}`));
    if (gone.length) {
      const filled = [...pods, ...gone.map((i) => podFromStatefulSet(sts, i))].sort(byName);
      return { namespace: ns, workload, pods: filled, statefulSet: sts, templateMembers: gone.map((i) => `${name}-${i}`) };
    }
  }
  return { namespace: ns, workload, pods, statefulSet: sts };
}

async function groupWorkload(lister: EtcdPodLister, ns: string, pods: V1Pod[], what: string, container?: string, allOrdinals = false): Promise<SelectedWorkload> {
  const etcdPods = pods.filter((p) => findEtcdContainer(p, container));
  if (!etcdPods.length) {
    throw new NotFoundError(`no etcd pods found in namespace "${ns}"${what}`, 'pass -n or --statefulset');
  }
  const groups = new Map<string, V1Pod[]>();
  for (const p of etcdPods) {
    const sts = ownerStatefulSet(p);
    const key = sts ? `statefulset/${sts}` : ownerOf(p) ?? 'pods';
    groups.set(key, [...(groups.get(key) ?? []), p]);
  }
  if (groups.size > 1) {
    const names = [...groups.keys()].map((k) => (k === 'pods' ? 'pods without owner (or static pods)' : k)).join(', ');
    throw new UsageError(`found ${groups.size} etcd workloads in namespace "${ns}": ${names}`, 'pass --statefulset, --pod or -l to choose one');
  }
  const [key, members] = [...groups.entries()][0]!;
  if (key.startsWith('statefulset/')) {
    const name = key.slice('statefulset/'.length);
    const sts = await lister.getStatefulSet(ns, name);
    if (sts) return statefulSetWorkload(lister, ns, sts, container, allOrdinals);
    return { namespace: ns, workload: { kind: 'StatefulSet', name }, pods: members.sort(byName) };
  }
  const selector = commonSelector(members);
  const staticPods = members.every(isMirrorPod);
  const kubeadm = staticPods && members.every((p) => p.metadata?.annotations?.[KUBEADM_ETCD_ANNOTATION] !== undefined);
  return {
    namespace: ns,
    workload: { kind: 'Pods', name: selector ?? key, ...(selector ? { selector } : {}), replicas: members.length, ...(staticPods ? { staticPods } : {}), ...(kubeadm ? { kubeadm } : {}) },
    pods: members.sort(byName),
  };
}

/** Resolves the user's selection to one etcd workload and its member pods. */
export async function selectEtcdWorkload(lister: EtcdPodLister, sel: WorkloadSelection): Promise<SelectedWorkload> {
  const ns = sel.namespace;
  if ([sel.statefulSet, sel.pod, sel.selector].filter(Boolean).length > 1) {
    throw new UsageError('--statefulset, --pod and -l are mutually exclusive', 'pass only one of them');
  }
  if (sel.statefulSet) {
    const sts = await lister.getStatefulSet(ns, sel.statefulSet);
    if (!sts) {
      throw new NotFoundError(`statefulset "${sel.statefulSet}" not found in namespace "${ns}"`, 'pass -n or --statefulset');
    }
    return statefulSetWorkload(lister, ns, sts, sel.container, sel.allOrdinals);
  }
  if (sel.pod) {
    const pod = (await lister.listPods(ns)).find((p) => p.metadata?.name === sel.pod);
    if (!pod) throw new NotFoundError(`pod "${sel.pod}" not found in namespace "${ns}"`, 'pass -n or --pod');
    if (!findEtcdContainer(pod, sel.container)) {
      throw new NotFoundError(`pod "${sel.pod}" in namespace "${ns}" runs no etcd container`, 'pass --container or another --pod');
    }
    const stsName = ownerStatefulSet(pod);
    const sts = stsName ? await lister.getStatefulSet(ns, stsName) : undefined;
    const chosen = sts
      ? await statefulSetWorkload(lister, ns, sts, sel.container, sel.allOrdinals)
      : { namespace: ns, workload: { kind: 'Pods' as const, name: sel.pod, replicas: 1 }, pods: [pod] };
    return { ...chosen, focusPod: sel.pod };
  }
  if (sel.selector) {
    return groupWorkload(lister, ns, await lister.listPods(ns, sel.selector), ` matching "${sel.selector}"`, sel.container, sel.allOrdinals);
  }
  const pods = await lister.listPods(ns);
  if (!pods.length) {
    // A StatefulSet scaled to zero still describes its members.
    const candidates = (await lister.listStatefulSets(ns)).filter((s) => {
      const p = podFromStatefulSet(s, 0);
      return findEtcdContainer(p, sel.container) !== undefined;
    });
    if (candidates.length === 1) return statefulSetWorkload(lister, ns, candidates[0]!, sel.container, sel.allOrdinals);
    if (candidates.length > 1) {
      const names = candidates.map((s) => `statefulset/${s.metadata?.name}`).join(', ');
      throw new UsageError(`found ${candidates.length} etcd workloads in namespace "${ns}": ${names}`, 'pass --statefulset to choose one');
    }
  }
  return groupWorkload(lister, ns, pods, '', sel.container, sel.allOrdinals);
}
