/**
 * The restore runner's cluster operations (RestoreCluster) over the kube seam, within one
 * namespace, and the node of a member whose pod is gone. Every call is retried while the API
 * server is unreachable (kube/retry.ts): every restore step is idempotent, so a repeat is safe.
 */
import type { V1OwnerReference, V1Pod } from '@kubernetes/client-node';
import { ForbiddenError, NotFoundError, PluginError } from '../errors.js';
import { labelSelectorString } from '../etcd/discovery/index.js';
import type { EtcdMember } from '../etcd/topology.js';
import type { KubeContext } from '../kube/client.js';
import { apiError, ConflictError, readOrUndefined } from '../kube/errors.js';
import { containerCommand, type CommandResult } from '../kube/exec.js';
import { getPod, isPodReady, waitForPodGone, waitForPods, waitForPodsReady } from '../kube/pods.js';
import { retrying } from '../kube/retry.js';
import { deletePdb, deletePod, recreatePdb, scaleWorkload, setClaimRetentionPolicy, setContainerProbes, setPublishNotReadyAddresses, waitRolledOut } from '../kube/workloads.js';
import { TOOLS_CONTAINER } from './manifests.js';
import type { RestoreCluster, WorkloadKind } from './runner.js';

/** How long to wait for pods to start, stop or become Ready. */
export const POD_TIMEOUT_MS = 5 * 60_000;
/** How long a rolling update of the members may take (each member restarts and catches up in turn). */
const ROLLOUT_TIMEOUT_MS = 15 * 60_000;

async function selectorOf(kube: KubeContext, namespace: string, kind: WorkloadKind, name: string): Promise<string> {
  try {
    const w = kind === 'StatefulSet'
      ? await kube.apps.readNamespacedStatefulSet({ name, namespace })
      : await kube.apps.readNamespacedDeployment({ name, namespace });
    return labelSelectorString(w.spec?.selector);
  } catch (err) {
    throw apiError(err, `get ${kind.toLowerCase()} "${name}" in namespace "${namespace}"`);
  }
}

/** How long preflight waits for someone else's terminating pod that holds a utility pod's name. */
const TERMINATING_WAIT_MS = 2 * 60_000;

const RESTORE_LABELS = ['kubectl-etcd/restore', 'kubectl-etcd/member'] as const;

function labelsOf(pod: { metadata?: { labels?: Record<string, string> } } | undefined): Record<string, string> {
  return pod?.metadata?.labels ?? {};
}

/** Whether a manifest is a restore's utility pod (labelled with its restore and member). */
function isRestorePod(manifest: object): boolean {
  const want = labelsOf(manifest);
  return RESTORE_LABELS.every((k) => !!want[k]);
}

/** Whether an existing pod is the utility pod `manifest` describes: same restore, same member. */
function partOfRestore(manifest: object, existing: V1Pod): boolean {
  const want = labelsOf(manifest);
  const have = labelsOf(existing);
  return RESTORE_LABELS.every((k) => !!want[k] && have[k] === want[k]);
}

/**
 * A dry-run create of `manifest` met a pod of the same name. True when that is admitted as it is:
 * a member pod (its running member holds the name), or this restore's own utility pod from an
 * earlier attempt (used again). False once the name is free to ask again: the pod went, or someone
 * else's terminating pod (a manual attempt's, say) was waited out. Someone else's live pod is
 * refused: it is never used or deleted, and createPodAndWait would stop there, after etcd was stopped.
 */
async function admitTakenName(kube: KubeContext, namespace: string, manifest: { metadata: { name: string } }): Promise<boolean> {
  if (!isRestorePod(manifest)) return true;
  const name = manifest.metadata.name;
  const existing = await readOrUndefined(() => kube.core.readNamespacedPod({ name, namespace }), `get pod "${name}" in namespace "${namespace}"`);
  if (!existing) return false;
  if (partOfRestore(manifest, existing)) return true;
  if (!existing.metadata?.deletionTimestamp) {
    throw new PluginError(
      `pod "${name}" already exists in namespace "${namespace}" and is not part of this restore (the restore needs that name for a utility pod)`,
      `delete it (kubectl delete pod ${name} -n ${namespace}) and restore again; nothing was changed`,
    );
  }
  await waitForPodGone(kube, namespace, name, TERMINATING_WAIT_MS, existing.metadata.uid).catch((waited: unknown) => {
    throw new PluginError(
      `pod "${name}" in namespace "${namespace}" is not part of this restore and is still terminating (${(waited as Error).message})`,
      `wait until it is gone (kubectl wait --for=delete pod/${name} -n ${namespace}; check its finalizers) and restore again; nothing was changed`,
    );
  });
  return false;
}

function podRunning(pod: V1Pod | undefined): boolean {
  return !!pod && !pod.metadata?.deletionTimestamp && pod.status?.phase === 'Running' &&
    (pod.status?.containerStatuses ?? []).every((c) => c.ready || c.state?.running);
}

/** The cluster operations of a restore, over the kube seam. */
export function kubeRestoreCluster(kube: KubeContext, namespace: string, onRetry?: (err: unknown) => void): RestoreCluster {
  const r = <T>(fn: () => Promise<T>) => retrying(fn, onRetry);
  const run = containerCommand(kube, { retry: {} });
  /** Waits until the workload's pods (by its selector) satisfy `until`. */
  const waitWorkloadPods = async (kind: WorkloadKind, name: string, what: string, until: (pods: V1Pod[]) => boolean) => {
    const labelSelector = await r(() => selectorOf(kube, namespace, kind, name));
    await r(() => waitForPods(kube, { namespace, labelSelector, timeoutMs: POD_TIMEOUT_MS, what, until }));
  };
  return {
    getReplicas: (kind, name) => r(async () => {
      try {
        const s = kind === 'StatefulSet'
          ? await kube.apps.readNamespacedStatefulSetScale({ name, namespace })
          : await kube.apps.readNamespacedDeploymentScale({ name, namespace });
        return s.spec?.replicas ?? 0;
      } catch (err) {
        throw apiError(err, `get ${kind.toLowerCase()} "${name}" in namespace "${namespace}"`);
      }
    }),
    async scale(kind, name, replicas, wait) {
      await r(() => scaleWorkload(kube, { kind, name, namespace }, replicas));
      if (!wait) return;
      const what = replicas === 0 ? `the pods of ${kind.toLowerCase()} "${name}" to be gone` : `${replicas} ready pods of ${kind.toLowerCase()} "${name}"`;
      await waitWorkloadPods(kind, name, what, (pods) => replicas === 0 ? pods.length === 0 : pods.filter(isPodReady).length >= replicas);
    },
    async scaleDown(statefulSet, replicas) {
      await r(() => scaleWorkload(kube, { kind: 'StatefulSet', name: statefulSet, namespace }, replicas));
      await waitWorkloadPods('StatefulSet', statefulSet, `statefulset "${statefulSet}" to be down to ${replicas} pod${replicas === 1 ? '' : 's'}`, (pods) => pods.length <= replicas);
    },
    async createPodAndWait(manifest, opts = {}) {
      const name = manifest.metadata.name;
      const owner = opts.ownerConfigMap ? await r(() => configMapOwner(kube, namespace, opts.ownerConfigMap!)) : undefined;
      const body = (owner ? { ...manifest, metadata: { ...manifest.metadata, ownerReferences: [owner] } } : manifest) as V1Pod;
      await r(async () => {
        try {
          await kube.core.createNamespacedPod({ namespace, body });
        } catch (err) {
          const e = apiError(err, `create pod "${name}" in namespace "${namespace}"`);
          if (!(e instanceof ConflictError)) throw e;
          // Ours from an earlier attempt: keep it if it runs, replace it if it ended. A pod of the
          // same name that lacks this restore's labels is someone else's: never exec into it.
          const existing = await getPod(kube, namespace, name);
          if (!partOfRestore(manifest, existing)) {
            throw new PluginError(
              `pod "${name}" already exists in namespace "${namespace}" and is not part of this restore`,
              `delete it (kubectl delete pod ${name} -n ${namespace}) and run \`kubectl etcd restore --resume\``,
            );
          }
          if (existing.metadata?.deletionTimestamp || ['Failed', 'Succeeded'].includes(existing.status?.phase ?? '')) {
            const uid = await deletePod(kube, namespace, name, 0);
            await waitForPodGone(kube, namespace, name, POD_TIMEOUT_MS, uid);
            await kube.core.createNamespacedPod({ namespace, body });
          }
        }
      });
      await r(() => waitForPods(kube, {
        namespace, names: [name], timeoutMs: POD_TIMEOUT_MS, what: `utility pod "${name}" to run`,
        until: (pods) => {
          const p = pods.find((x) => x.metadata?.name === name);
          if (p?.status?.phase === 'Failed') throw new PluginError(`utility pod "${name}" failed: ${p.status.message ?? p.status.reason ?? 'unknown'}`, `check \`kubectl describe pod ${name} -n ${namespace}\``);
          return podRunning(p);
        },
      }));
      // Only act once every container answers from inside its own root: a runtime may report a
      // container running a moment before its filesystem is in place.
      for (const c of (manifest as { spec?: { containers?: Array<{ name?: string }> } }).spec?.containers ?? []) {
        const container = c.name ?? '';
        // etcd-tools runs a distroless etcd image (no cat): its etcd answering shows its root is in place.
        const target = { namespace, pod: name, container };
        const probe = container === TOOLS_CONTAINER
          ? () => run(target, ['etcd', '--version']).then((r) => (r.exitCode === 0 ? { ...r, stdout: name } : r))
          : () => run(target, ['cat', '/etc/hostname']);
        await insideContainer(probe, { namespace, pod: name, container, probe: container === TOOLS_CONTAINER ? 'etcd --version' : 'cat /etc/hostname' });
      }
    },
    admitPod: (manifest) => r(async () => {
      for (;;) {
        try {
          await kube.core.createNamespacedPod({ namespace, body: manifest as V1Pod, dryRun: 'All' });
          return undefined;
        } catch (err) {
          const e = apiError(err, `create pod "${manifest.metadata.name}" (dry run) in namespace "${namespace}"`);
          if (e instanceof ConflictError) {
            if (await admitTakenName(kube, namespace, manifest)) return undefined;
            continue;
          }
          const code = (err as { code?: unknown }).code;
          if (code === 403 || code === 422 || code === 400) return e.message;
          throw e;
        }
      }
    }),
    async deletePodAndWait(name) {
      // Its own grace period (utility containers stop on SIGTERM at once), never a forced delete.
      const uid = await r(() => deletePod(kube, namespace, name));
      if (uid) await r(() => waitForPodGone(kube, namespace, name, POD_TIMEOUT_MS, uid));
    },
    async podStatus(name) {
      // One try, no retry: asked while the API server may be away by design (kubeadm's window).
      try {
        const pod = await getPod(kube, namespace, name);
        return { phase: pod.status?.phase ?? 'Pending', annotations: pod.metadata?.annotations ?? {} };
      } catch {
        return undefined;
      }
    },
    async recreatePods(names) {
      // The pods' own grace period, never a forced delete: a forced delete drops the pod object at
      // once, and the StatefulSet would start a new member on the same volume while the old
      // process may still run. etcd stops on SIGTERM without writing a new file.
      const uids = await Promise.all(names.map((name) => r(() => deletePod(kube, namespace, name))));
      await Promise.all(names.map((name, i) => (uids[i] ? r(() => waitForPodGone(kube, namespace, name, POD_TIMEOUT_MS, uids[i])) : undefined)));
    },
    waitPodsReady: (names) => r(() => waitForPodsReady(kube, namespace, names, POD_TIMEOUT_MS).then(() => undefined)),
    setProbes: (name, container, probes) => r(() => setContainerProbes(kube, { name, namespace }, container, probes).then(() => undefined)),
    setPublishNotReady: (name, publish) => r(() => setPublishNotReadyAddresses(kube, { name, namespace }, publish)),
    waitRolledOut: (name) => r(() => waitRolledOut(kube, { name, namespace }, ROLLOUT_TIMEOUT_MS)),
    setClaimRetention: (name, policy) => r(() => setClaimRetentionPolicy(kube, { name, namespace }, policy, POD_TIMEOUT_MS)),
    async claimsAtRisk(claims) {
      const atRisk: string[] = [];
      for (const name of claims) {
        const claim = await r(() => readOrUndefined(
          () => kube.core.readNamespacedPersistentVolumeClaim({ name, namespace }),
          `get persistentvolumeclaim "${name}" in namespace "${namespace}"`,
        ));
        const podOwned = (claim?.metadata?.ownerReferences ?? []).some((o) => o.kind === 'Pod');
        if (!claim || claim.metadata?.deletionTimestamp || podOwned) atRisk.push(name);
      }
      return atRisk;
    },
    deletePdb: (name) => r(() => deletePdb(kube, namespace, name).then(() => undefined)),
    createPdb: (manifest) => r(() => recreatePdb(kube, manifest as never).then(() => undefined)),
  };
}

/** An ownerReference to a ConfigMap (not a controller, blocking nothing); undefined when it is gone. */
async function configMapOwner(kube: KubeContext, namespace: string, name: string): Promise<V1OwnerReference | undefined> {
  const cm = await readOrUndefined(() => kube.core.readNamespacedConfigMap({ name, namespace }), `get configmap "${name}" in namespace "${namespace}"`);
  return cm?.metadata?.uid ? { apiVersion: 'v1', kind: 'ConfigMap', name, uid: cm.metadata.uid } : undefined;
}

/**
 * Waits until an exec in the container sees the pod's own hostname (its root filesystem is in
 * place). Failures that waiting cannot cure (no permission to exec, the pod gone) are thrown at
 * once; others (the runtime still setting the container up) are retried, and the last one is
 * named if the container never answers.
 */
export async function insideContainer(
  exec: () => Promise<CommandResult>,
  where: { namespace: string; pod: string; container: string; /** the probe's command, for messages */ probe?: string },
  waitMs = 60_000,
): Promise<void> {
  const { namespace, pod, container } = where;
  const deadline = Date.now() + waitMs;
  for (;;) {
    let last: string;
    try {
      const r = await exec();
      if (r.exitCode === 0 && r.stdout.trim() === pod) return;
      last = `${where.probe ?? 'cat /etc/hostname'} gave exit code ${r.exitCode}${r.exitCode === 0 ? ` and "${r.stdout.trim()}"` : `: ${(r.stderr.trim().split('\n').pop() ?? '')}`}`;
    } catch (err) {
      if (err instanceof ForbiddenError) {
        throw new ForbiddenError(`cannot exec into utility pod "${pod}" in namespace "${namespace}": ${err.message}`, `ask a cluster admin for pods/exec permission in namespace "${namespace}", then run \`kubectl etcd restore --resume\``);
      }
      if (err instanceof NotFoundError) {
        throw new NotFoundError(`utility pod "${pod}" in namespace "${namespace}" went away while starting: ${err.message}`, `check \`kubectl get events -n ${namespace}\`, then run \`kubectl etcd restore --resume\``);
      }
      last = (err as Error).message.split('\n')[0] ?? String(err);
    }
    if (Date.now() > deadline) {
      throw new PluginError(`container "${container}" of utility pod "${pod}" does not answer from inside the pod (${last})`, `check \`kubectl describe pod ${pod} -n ${namespace}\`, then run \`kubectl etcd restore --resume\``);
    }
    await new Promise((res) => setTimeout(res, 500));
  }
}

/**
 * The node whose kubernetes.io/hostname label is `hostname`. A local volume's node affinity names
 * the label's value, which is the node's name on most clusters but not on all (clouds label the
 * short hostname): the node of that name is taken when its label agrees, else the node that
 * carries the label; undefined when none does.
 */
async function nodeByHostname(kube: KubeContext, hostname: string): Promise<string | undefined> {
  const label = 'kubernetes.io/hostname';
  try {
    const node = await retrying(() => kube.core.readNode({ name: hostname }));
    if ((node.metadata?.labels?.[label] ?? hostname) === hostname) return hostname;
  } catch (err) {
    if (!(apiError(err, `get node "${hostname}"`) instanceof NotFoundError)) throw err;
  }
  const nodes = await retrying(() => kube.core.listNode({ labelSelector: `${label}=${hostname}` }));
  return nodes.items[0]?.metadata?.name;
}

/** For members whose pod is gone: the node their local volume is pinned to (PVC → PV node affinity). */
export async function nodeOfClaim(kube: KubeContext, member: EtcdMember): Promise<string | undefined> {
  if (member.dataVolume?.kind !== 'pvc') return undefined;
  try {
    const claimName = member.dataVolume.claimName;
    const pvc = await retrying(() => kube.core.readNamespacedPersistentVolumeClaim({ name: claimName, namespace: member.namespace }));
    const pvName = pvc.spec?.volumeName;
    if (!pvName) return undefined;
    const pv = await retrying(() => kube.core.readPersistentVolume({ name: pvName }));
    for (const term of pv.spec?.nodeAffinity?.required?.nodeSelectorTerms ?? []) {
      for (const e of term.matchExpressions ?? []) {
        if (e.key === 'kubernetes.io/hostname' && e.operator === 'In' && e.values?.length === 1) return await nodeByHostname(kube, e.values[0]!);
      }
    }
  } catch (err) {
    const e = apiError(err, `find the node of persistentvolumeclaim "${member.dataVolume.claimName}" in namespace "${member.namespace}"`);
    // A claim or volume that is gone leaves the node unknown (preflight reports the member); a
    // refusal or a failure must not pass for that.
    if (e instanceof NotFoundError) return undefined;
    if (e instanceof ForbiddenError) {
      throw new ForbiddenError(
        `cannot find the node of member "${member.name}" (its pod is gone): ${e.message}`,
        `ask a cluster admin for get permission on persistentvolumeclaims in namespace "${member.namespace}" and on persistentvolumes and nodes (list nodes too), or start the member's pod again`,
      );
    }
    throw e;
  }
  return undefined;
}
