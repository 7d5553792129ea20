import type { Quota } from './quota.js';

/**
 * The shared picture of one etcd cluster running in Kubernetes, as discovery produces it and
 * backup, status and restore consume it. Paths are as seen inside the etcd container.
 */

/**
 * Where a member keeps its data directory. `subPath`: the folder of the volume mounted at
 * mountPath (the mount's subPath, or its subPathExpr expanded from the container's env), absent
 * when the volume root is; a pod that mounts the volume the same way sees the same paths.
 */
export type DataVolume = { volumeName: string; mountPath: string; subPath?: string } & (
  | {
    kind: 'pvc'; claimName: string;
    /** The claim's access modes include ReadWriteOncePod: one pod at a time may use it (the restore reads the claim). */
    readWriteOncePod?: boolean;
  }
  | { kind: 'hostPath'; hostPath: string }
  | { kind: 'emptyDir' }
);

/** A key of a Secret in the member's namespace. */
export interface SecretKeyRef {
  secretName: string;
  key: string;
}

/** Client TLS material, as file paths inside the container. */
export interface ClientTls {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

/** One etcd member, as read from its pod and confirmed against the live member list. */
export interface EtcdMember {
  pod: string;
  namespace: string;
  container: string;
  node?: string;
  /** StatefulSet ordinal, when the pod belongs to one. */
  ordinal?: number;
  /** etcd --name. */
  name: string;
  /** A client URL reachable from inside the pod itself, e.g. https://127.0.0.1:2379. */
  endpoint: string;
  clientPort: number;
  /** --initial-advertise-peer-urls (first one). */
  peerUrl: string;
  /** Every peer URL the member advertises, when it advertises more than one (peerUrl is the first). */
  peerUrls?: string[];
  dataDir: string;
  tls: ClientTls;
  /** true when the client URL is https. */
  clientTlsEnabled: boolean;
  initialCluster?: string;
  initialClusterToken?: string;
  dataVolume?: DataVolume;
  /**
   * The client TLS files (tls) that a Secret volume puts in the container, by their path as in
   * tls: the Secret keys that may be the file, the first one its Secret holds wins
   * (discovery/mounts.ts secretKeysAt: mount path, subPath, items, projected sources).
   */
  secretFiles?: Record<string, SecretKeyRef[]>;
  image: string;
  /** Effective user and group of the etcd process (securityContext), when set. */
  runAsUser?: number;
  runAsGroup?: number;
  fsGroup?: number;
  /** What a pod made to work on this member's volume takes from the member's pod (discovery/member.ts reads it; restore/manifests.ts uses it). */
  podFacts?: MemberPodFacts;
  /** The exec command of the container's preStop hook, when it has one. */
  preStop?: string[];
  /**
   * Start scripts of the image that act on the data dir (Bitnami's etcd image: a member found
   * removed is wiped and re-added, ETCD_DISASTER_RECOVERY restores /snapshots over the data).
   */
  startScripts?: { kind: 'bitnami'; disasterRecovery: false | string };
  /** The backend quota the pod spec gives etcd (quota.ts quotaOf; absent: etcd's default). */
  quota?: Quota;
  /** Member ID (hex) from the live member list, once confirmed. */
  memberId?: string;
  ready?: boolean;
  /** What discovery could not resolve from the pod spec (e.g. env from a Secret), one line each. */
  notes?: string[];
}

/**
 * The parts of a member's pod spec that a cluster's admission and scheduling judge, as plain JSON
 * (they travel in the restore journal): a utility pod that lacks them may be refused (Pod Security,
 * a quota) or never scheduled (taints) where the member runs.
 */
export interface MemberPodFacts {
  /** spec.securityContext of the pod. */
  podSecurityContext?: Record<string, unknown>;
  /** securityContext of the etcd container. */
  securityContext?: Record<string, unknown>;
  tolerations?: Array<Record<string, unknown>>;
  imagePullSecrets?: Array<{ name: string }>;
  priorityClassName?: string;
  /** resources of the etcd container. */
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
}

/** A StatefulSet's persistentVolumeClaimRetentionPolicy (both fields default to Retain). */
export interface ClaimRetention {
  whenScaled: 'Retain' | 'Delete';
  whenDeleted: 'Retain' | 'Delete';
}

/** The workload that runs the members. */
export interface EtcdWorkload {
  kind: 'StatefulSet' | 'Pods';
  /** StatefulSet name, or the label selector for static / bare pods. */
  name: string;
  selector?: string;
  replicas?: number;
  /** A StatefulSet's PVC retention policy, when it sets one. */
  claimRetention?: ClaimRetention;
  /** Pods: every member is a static pod (its pod is the kubelet's mirror, owned by its Node): kubeadm. */
  staticPods?: boolean;
  /** Static pods that kubeadm wrote (each carries its kubeadm.kubernetes.io/etcd.advertise-client-urls annotation). */
  kubeadm?: boolean;
}

/** An etcd cluster: the workload that runs it and its members, ordered by ordinal or name. */
export interface EtcdTopology {
  namespace: string;
  /** StatefulSet name, or the label selector for static / bare pods. */
  workload: EtcdWorkload;
  members: EtcdMember[];
  /** The shared --initial-cluster-token (discovered, or a flag). */
  initialClusterToken?: string;
  image: string;
  /** The pod the user named with --pod, when they did; backup takes the snapshot from it. */
  focusPod?: string;
  /** Restore: members whose pods are gone, read from the StatefulSet template (select.ts allOrdinals). */
  podless?: string[];
}

/** The container a member's etcd runs in, as the kube seam's exec names it. */
export function memberContainer(member: Pick<EtcdMember, 'namespace' | 'pod' | 'container'>): { namespace: string; pod: string; container: string } {
  return { namespace: member.namespace, pod: member.pod, container: member.container };
}
