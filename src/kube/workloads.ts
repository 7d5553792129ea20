/** Workload operations restore needs: scale (scale subresource), PDB delete / re-create, pod delete. */
import {
  PatchStrategy,
  setHeaderOptions,
  type AppsV1Api,
  type CoreV1Api,
  type PolicyV1Api,
  type V1PodDisruptionBudget,
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

/** Deletes a pod; returns its uid (to wait until that very pod is gone), or undefined when it did not exist. */
export async function deletePod(kube: { core: CoreV1Api }, namespace: string, name: string, gracePeriodSeconds?: number): Promise<string | undefined> {
  try {
    const pod = await kube.core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds });
    return pod.metadata?.uid;
  } catch (err) {
    const mapped = apiError(err, `delete pod "${name}" in namespace "${namespace}"`);
    if (mapped instanceof NotFoundError) return undefined;
    throw mapped;
  }
}
