/** Workload operations restore needs: scale (scale subresource), PDB delete / re-create, pod delete. */
import {
  PatchStrategy,
  setHeaderOptions,
  type AppsV1Api,
  type CoreV1Api,
  type PolicyV1Api,
  type V1PodDisruptionBudget,
  type V1Probe,
  type V1StatefulSet,
} from '@kubernetes/client-node';
import { NotFoundError, PluginError } from '../errors.js';
import { apiError, ConflictError } from './errors.js';
import { portablePdb } from './pdb.js';

export { portablePdb } from './pdb.js';

/** A scalable workload. */
export interface WorkloadRef {
  kind: 'StatefulSet' | 'Deployment';
  name: string;
  namespace: string;
}

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const jsonPatch = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);

function label(ref: WorkloadRef): string {
  return `${ref.kind.toLowerCase()} "${ref.name}" in namespace "${ref.namespace}"`;
}

/** Sets replicas through the scale subresource (as `kubectl scale` does); returns the previous count. */
export async function scaleWorkload(kube: { apps: AppsV1Api }, ref: WorkloadRef, replicas: number): Promise<number> {
  const { name, namespace } = ref;
  const body = { spec: { replicas } };
  try {
    if (ref.kind === 'StatefulSet') {
      const before = await kube.apps.readNamespacedStatefulSetScale({ name, namespace });
      await kube.apps.patchNamespacedStatefulSetScale({ name, namespace, body }, mergePatch);
      return before.spec?.replicas ?? 0;
    }
    const before = await kube.apps.readNamespacedDeploymentScale({ name, namespace });
    await kube.apps.patchNamespacedDeploymentScale({ name, namespace, body }, mergePatch);
    return before.spec?.replicas ?? 0;
  } catch (err) {
    throw apiError(err, `scale ${label(ref)}`);
  }
}

/** A StatefulSet's persistentVolumeClaimRetentionPolicy. */
export interface ClaimRetentionPolicy {
  whenScaled: 'Retain' | 'Delete';
  whenDeleted: 'Retain' | 'Delete';
}

/**
 * Sets a StatefulSet's persistentVolumeClaimRetentionPolicy (a merge patch of the spec) and waits
 * until its controller has observed that generation, so a scale that follows is judged by it.
 */
export async function setClaimRetentionPolicy(
  kube: { apps: AppsV1Api },
  ref: Omit<WorkloadRef, 'kind'>,
  policy: ClaimRetentionPolicy,
  timeoutMs: number,
): Promise<void> {
  const { name, namespace } = ref;
  const what = `statefulset "${name}" in namespace "${namespace}"`;
  let generation: number;
  try {
    const patched = await kube.apps.patchNamespacedStatefulSet({ name, namespace, body: { spec: { persistentVolumeClaimRetentionPolicy: policy } } }, mergePatch);
    generation = patched.metadata?.generation ?? 0;
  } catch (err) {
    throw apiError(err, `set the PVC retention policy of ${what}`);
  }
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let observed: number;
    try {
      observed = (await kube.apps.readNamespacedStatefulSet({ name, namespace })).status?.observedGeneration ?? 0;
    } catch (err) {
      throw apiError(err, `get ${what}`);
    }
    if (observed >= generation) return;
    if (Date.now() > deadline) {
      throw new PluginError(`timed out after ${Math.round(timeoutMs / 1000)}s waiting for the controller of ${what} to observe its new PVC retention policy`, `check the StatefulSet controller (kubectl get sts ${name} -n ${namespace} -o yaml)`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The probes of a container that setContainerProbes sets: a probe is put in place, null removes it, a key left out is left alone. */
export interface ContainerProbes {
  readinessProbe?: V1Probe | null;
  startupProbe?: V1Probe | null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Sets the readiness and startup probes of one container of a StatefulSet's pod template (a JSON
 * patch that first tests the container's name at its index, so a template changed meanwhile is
 * refused, not edited in the wrong place). Does nothing when they are already so, which makes it
 * idempotent. Returns true when the template changed.
 */
export async function setContainerProbes(kube: { apps: AppsV1Api }, ref: Omit<WorkloadRef, 'kind'>, container: string, probes: ContainerProbes): Promise<boolean> {
  const { name, namespace } = ref;
  const what = `statefulset "${name}" in namespace "${namespace}"`;
  let sts: V1StatefulSet;
  try {
    sts = await kube.apps.readNamespacedStatefulSet({ name, namespace });
  } catch (err) {
    throw apiError(err, `get ${what}`);
  }
  const containers = sts.spec?.template?.spec?.containers ?? [];
  const index = containers.findIndex((c) => c.name === container);
  if (index < 0) throw new PluginError(`${what} has no container "${container}" any more`, `check its pod template (kubectl get sts ${name} -n ${namespace} -o yaml)`);
  const base = `/spec/template/spec/containers/${index}`;
  const ops: object[] = [{ op: 'test', path: `${base}/name`, value: container }];
  for (const key of ['readinessProbe', 'startupProbe'] as const) {
    const want = probes[key];
    const have = containers[index]![key];
    if (want && JSON.stringify(want) !== JSON.stringify(have)) ops.push({ op: 'add', path: `${base}/${key}`, value: want });
    if (want === null && have) ops.push({ op: 'remove', path: `${base}/${key}` });
  }
  if (ops.length === 1) return false;
  try {
    await kube.apps.patchNamespacedStatefulSet({ name, namespace, body: ops }, jsonPatch);
  } catch (err) {
    throw apiError(err, `change the probes of container "${container}" of ${what}`);
  }
  return true;
}

/** Sets a Service's spec.publishNotReadyAddresses (a merge patch; the same value again changes nothing). */
export async function setPublishNotReadyAddresses(kube: { core: CoreV1Api }, ref: { name: string; namespace: string }, publish: boolean): Promise<void> {
  const { name, namespace } = ref;
  try {
    await kube.core.patchNamespacedService({ name, namespace, body: { spec: { publishNotReadyAddresses: publish } } }, mergePatch);
  } catch (err) {
    throw apiError(err, `set publishNotReadyAddresses of service "${name}" in namespace "${namespace}"`);
  }
}

/**
 * Waits until a StatefulSet runs its current template on every pod, all Ready. With RollingUpdate
 * its controller replaces the pods one at a time; with OnDelete nothing would, so the oldest-
 * template pod with the highest ordinal is deleted, one at a time, each only once every pod is
 * Ready (as the controller's rolling update does, keeping quorum).
 */
export async function waitRolledOut(kube: { apps: AppsV1Api; core: CoreV1Api }, ref: Omit<WorkloadRef, 'kind'>, timeoutMs: number): Promise<void> {
  const { name, namespace } = ref;
  const what = `statefulset "${name}" in namespace "${namespace}"`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let sts: V1StatefulSet;
    try {
      sts = await kube.apps.readNamespacedStatefulSet({ name, namespace });
    } catch (err) {
      throw apiError(err, `get ${what}`);
    }
    const st = sts.status;
    const want = sts.spec?.replicas ?? 1;
    const observed = (st?.observedGeneration ?? 0) >= (sts.metadata?.generation ?? 1);
    if (observed && st?.updateRevision && st.updatedReplicas === want && st.readyReplicas === want && (st.currentRevision === st.updateRevision || sts.spec?.updateStrategy?.type === 'OnDelete')) return;
    if (observed && sts.spec?.updateStrategy?.type === 'OnDelete' && st?.updateRevision) await replaceOneOutdatedPod(kube, sts, st.updateRevision);
    if (Date.now() > deadline) {
      throw new PluginError(`timed out after ${Math.round(timeoutMs / 1000)}s waiting for ${what} to run its pod template on every pod, all Ready (${st?.updatedReplicas ?? 0} of ${want} updated, ${st?.readyReplicas ?? 0} Ready)`,
        `check its pods (kubectl get pods -n ${namespace}; kubectl rollout status sts/${name} -n ${namespace}), then run \`kubectl etcd restore --resume\``);
    }
    await sleep(500);
  }
}

/** OnDelete: deletes the highest-ordinal pod not on updateRevision, when every pod is Ready. */
async function replaceOneOutdatedPod(kube: { core: CoreV1Api }, sts: V1StatefulSet, updateRevision: string): Promise<void> {
  const namespace = sts.metadata?.namespace ?? '';
  const name = sts.metadata?.name ?? '';
  const selector = Object.entries(sts.spec?.selector?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`).join(',');
  let pods;
  try {
    pods = (await kube.core.listNamespacedPod({ namespace, labelSelector: selector })).items;
  } catch (err) {
    throw apiError(err, `list pods of statefulset "${name}" in namespace "${namespace}"`);
  }
  const ordinal = (p: { metadata?: { name?: string } }) => Number(/-(\d+)$/.exec(p.metadata?.name ?? '')?.[1] ?? -1);
  const mine = pods.filter((p) => p.metadata?.ownerReferences?.some((o) => o.kind === 'StatefulSet' && o.name === name));
  const ready = (p: (typeof mine)[number]) => !p.metadata?.deletionTimestamp && (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
  if (mine.length < (sts.spec?.replicas ?? 1) || !mine.every(ready)) return;
  const outdated = mine.filter((p) => p.metadata?.labels?.['controller-revision-hash'] !== updateRevision).sort((a, b) => ordinal(b) - ordinal(a));
  if (!outdated.length) return;
  await deletePod(kube, namespace, outdated[0]!.metadata?.name ?? '');
}

/** Deletes a PDB; returns false when it was already gone. */
export async function deletePdb(kube: { policy: PolicyV1Api }, namespace: string, name: string): Promise<boolean> {
  try {
    await kube.policy.deleteNamespacedPodDisruptionBudget({ name, namespace });
    return true;
  } catch (err) {
    const mapped = apiError(err, `delete poddisruptionbudget "${name}" in namespace "${namespace}"`);
    if (mapped instanceof NotFoundError) return false;
    throw mapped;
  }
}

/** Creates a saved PDB again; returns false when one of that name already exists (idempotent). */
export async function recreatePdb(kube: { policy: PolicyV1Api }, saved: V1PodDisruptionBudget): Promise<boolean> {
  const namespace = saved.metadata?.namespace ?? '';
  try {
    await kube.policy.createNamespacedPodDisruptionBudget({ namespace, body: portablePdb(saved) });
    return true;
  } catch (err) {
    const mapped = apiError(err, `create poddisruptionbudget "${saved.metadata?.name}" in namespace "${namespace}"`);
    if (mapped instanceof ConflictError) return false;
    throw mapped;
  }
}

/**
 * Deletes a pod; returns its uid (to wait until that very pod is gone), or undefined when it did not
 * exist. With `uid`, only that very pod (a precondition): a new one its owner made meanwhile stays,
 * and undefined is returned.
 */
export async function deletePod(kube: { core: CoreV1Api }, namespace: string, name: string, gracePeriodSeconds?: number, uid?: string): Promise<string | undefined> {
  try {
    const pod = await kube.core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds, ...(uid ? { body: { preconditions: { uid } } } : {}) });
    return pod.metadata?.uid;
  } catch (err) {
    const mapped = apiError(err, `delete pod "${name}" in namespace "${namespace}"`);
    if (mapped instanceof NotFoundError || (uid && mapped instanceof ConflictError)) return undefined;
    throw mapped;
  }
}
