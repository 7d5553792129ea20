/**
 * The restore's collaborators over the live cluster (the kube seam, the etcd members, the local
 * terminal), built for `kubectl etcd restore`. Loaded on use by src/cli/restore.ts so that
 * --help does not load @kubernetes/client-node.
 */
import { ask } from '../ui/ask.js';
import { createReadStream } from 'node:fs';
import { openDecrypted } from '../crypt/plaintext.js';
import { kubeBackupDeps } from '../backup/cluster.js';
import { runBackup } from '../backup/run.js';
import { discoverTopology } from '../etcd/discovery/index.js';
import { nodeAddressesOf } from '../etcd/kubeadm-layout.js';
import { apiPodLister } from '../etcd/discovery/lister.js';
import { podFromStatefulSet } from '../etcd/discovery/template.js';
import type { EtcdTopology } from '../etcd/topology.js';
import type { V1PersistentVolumeClaim, V1Service, V1StatefulSet } from '@kubernetes/client-node';
import { ForbiddenError, NoHealthyMemberError, PluginError } from '../errors.js';
import { checkAccess } from '../kube/access.js';
import type { KubeContext } from '../kube/client.js';
import { apiError, KubeletUnreachableError, readOrUndefined } from '../kube/errors.js';
import { containerCommand } from '../kube/exec.js';
import { schedulingTaints } from '../kube/taints.js';
import type { Logger } from '../ui/log.js';
import { kubeRestoreCluster, nodeOfClaim } from './cluster.js';
import { coldStartHold } from './cold-start.js';
import type { RestoreDeps } from './command.js';
import type { UtilityPodManifest } from './manifests.js';
import { kubeConfigMaps } from './journal-configmaps.js';
import { kubeRestorePodIO } from './pod-io.js';
import { etcdRestoreVerifier } from './verify.js';
import { quantityBytes } from './preflight.js';

/** What a retry says: the failure itself when a node's kubelet did not answer (it names the pod), else that the API server did not. */
function retryWhy(err: unknown): string {
  const first = (err as Error).message.split('\n')[0];
  return err instanceof KubeletUnreachableError ? first! : `the API server did not answer (${first})`;
}

/** The etcd image of a StatefulSet's pod template (the discovered image when the set or container is gone). */
function imageOf(sts: V1StatefulSet | undefined, topology: EtcdTopology): string {
  const container = topology.members[0]?.container;
  return sts?.spec?.template?.spec?.containers?.find((c) => c.name === container)?.image ?? topology.image;
}

/** Builds the restore's collaborators over the kube seam, as the backup CLI does. */
export function restoreDeps(kube: KubeContext, log: Logger): RestoreDeps {
  const lister = apiPodLister(kube);
  // Each member claim is read once per run: its access mode, its capacity and its volume all come from the same read.
  const claims = new Map<string, Promise<V1PersistentVolumeClaim | undefined>>();
  const readClaim = (namespace: string, name: string) => {
    const key = `${namespace}/${name}`;
    if (!claims.has(key)) claims.set(key, readOrUndefined(() => kube.core.readNamespacedPersistentVolumeClaim({ name, namespace }), `get persistentvolumeclaim "${name}" in namespace "${namespace}"`));
    return claims.get(key)!;
  };
  const onRetry = (err: unknown) => log.warn(`${retryWhy(err)}; retrying`);
  return {
    discover: (namespace, statefulSet, allOrdinals) => discoverTopology(lister, { namespace, statefulSet, ...(allOrdinals ? { allOrdinals } : {}) }),
    async templateImage(topology) {
      return imageOf(await lister.getStatefulSet(topology.namespace, topology.workload.name), topology);
    },
    async templateFacts(topology) {
      const sts = await lister.getStatefulSet(topology.namespace, topology.workload.name);
      const image = imageOf(sts, topology);
      const container = topology.members[0]?.container;
      if (!sts || !container) return { image };
      const memberPod = memberPodOf(sts, topology);
      const serviceName = sts.spec?.serviceName;
      let service: V1Service | undefined;
      if (serviceName) {
        try {
          service = await readOrUndefined(() => kube.core.readNamespacedService({ name: serviceName, namespace: topology.namespace }), `get service "${serviceName}" in namespace "${topology.namespace}"`);
        } catch (err) {
          if (!(err instanceof ForbiddenError)) throw err;
          const hold = coldStartHold(sts, container, undefined);
          return { image, memberPod, ...(hold ? { hold } : {}), warning: `cannot read Service "${serviceName}" (${err.message}); if it does not publish not-ready addresses, members that start together cannot find each other until Ready` };
        }
      }
      const hold = coldStartHold(sts, container, service);
      return { image, memberPod, ...(hold ? { hold } : {}) };
    },
    async listWorkloads(namespace) {
      try {
        const [sts, deps, pdbs] = await Promise.all([
          kube.apps.listNamespacedStatefulSet({ namespace }),
          kube.apps.listNamespacedDeployment({ namespace }),
          kube.policy.listNamespacedPodDisruptionBudget({ namespace }),
        ]);
        return { statefulSets: sts.items, deployments: deps.items, pdbs: pdbs.items };
      } catch (err) {
        throw apiError(err, `list workloads in namespace "${namespace}"`);
      }
    },
    async resolveNodes(topology) {
      for (const m of topology.members) {
        if (!m.node) m.node = await nodeOfClaim(kube, m);
        const vol = m.dataVolume;
        if (vol?.kind !== 'pvc') continue;
        const claim = await readClaim(m.namespace, vol.claimName);
        if (claim?.spec?.accessModes?.includes('ReadWriteOncePod')) vol.readWriteOncePod = true;
      }
    },
    preflight: {
      checkAccess: (checks) => checkAccess(kube, checks),
      async readNode(node) {
        try {
          const n = await kube.core.readNode({ name: node });
          const c = n.status?.conditions?.find((x) => x.type === 'Ready');
          return {
            ready: c?.status === 'True', reason: c?.status === 'True' ? undefined : c?.reason ?? c?.message, taints: schedulingTaints(n as Parameters<typeof schedulingTaints>[0]),
            addresses: nodeAddressesOf(n),
          };
        } catch {
          return undefined;
        }
      },
      async dataPinnedToNode(m) {
        const vol = m.dataVolume;
        if (vol?.kind === 'hostPath') return true;
        if (vol?.kind !== 'pvc') return false;
        try {
          const pvName = (await readClaim(m.namespace, vol.claimName))?.spec?.volumeName;
          if (!pvName) return undefined;
          const pv = await kube.core.readPersistentVolume({ name: pvName });
          // A local volume (or any whose node affinity names single hosts) cannot follow its pod.
          const terms = pv.spec?.nodeAffinity?.required?.nodeSelectorTerms ?? [];
          return terms.length > 0 && terms.every((t) => [...(t.matchExpressions ?? []), ...(t.matchFields ?? [])].some((e) => e.key === 'kubernetes.io/hostname' || e.key === 'metadata.name'));
        } catch {
          return undefined;
        }
      },
      run: containerCommand(kube),
      async claimCapacity(m) {
        if (m.dataVolume?.kind !== 'pvc') return undefined;
        try {
          const pvc = await readClaim(m.namespace, m.dataVolume.claimName);
          if (!pvc) return undefined;
          return quantityBytes(pvc.status?.capacity?.['storage'] ?? pvc.spec?.resources?.requests?.['storage']);
        } catch {
          return undefined;
        }
      },
    },
    configMaps: kubeConfigMaps(kube),
    cluster: (namespace) => kubeRestoreCluster(kube, namespace, onRetry),
    // once: the kubeadm restore's polls while the API is away by design; the poll tries again.
    pods: (_namespace, opts) => (opts?.once ? { ...kubeRestorePodIO(kube, onRetry), run: containerCommand(kube) } : kubeRestorePodIO(kube, onRetry)),
    verifier: (plan) => etcdRestoreVerifier(containerCommand(kube, { retry: {} }), { liveKeys: plan.snapshot.liveKeys }),
    openSnapshot: (path, identities) => (identities ? openDecrypted(path, identities) : () => createReadStream(path)),
    async safetyBackup(topology, dir, encrypt) {
      try {
        const record = await runBackup({ topology, destination: { kind: 'dir', dir }, ...(encrypt ? { encryptTo: encrypt.to, stateDir: encrypt.stateDir } : {}) }, kubeBackupDeps(kube, {}, log));
        return record.file;
      } catch (err) {
        if (err instanceof NoHealthyMemberError) return undefined;
        throw new PluginError(`the safety backup failed: ${(err as Error).message}`, 'fix the cause, or pass --no-safety-backup if the current data does not matter');
      }
    },
    ask,
    log,
    stdout: process.stdout,
    stderr: process.stderr,
    now: () => new Date(),
  };
}

/**
 * The pod the StatefulSet's controller would create for its first member, claim volumes and all
 * (a pod whose mounts name no volume is refused as invalid: the dry run would say nothing of admission).
 */
function memberPodOf(sts: V1StatefulSet, topology: EtcdTopology): UtilityPodManifest {
  return podFromStatefulSet(sts, topology.members[0]?.ordinal ?? 0) as unknown as UtilityPodManifest;
}
