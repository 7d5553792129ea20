/**
 * Ephemeral containers (Kubernetes ≥ 1.25): a container added to a running pod through its
 * `pods/ephemeralcontainers` subresource. It shares the pod's network, UTS and volumes, runs once
 * and is never restarted, and stays in the pod's spec until the pod is deleted; it may not be
 * changed or removed, and it may not have ports, probes, lifecycle hooks or resources
 * (https://kubernetes.io/docs/concepts/workloads/pods/ephemeral-containers/).
 */
import type { CoreV1Api, V1EphemeralContainer, V1Pod } from '@kubernetes/client-node';
import { PluginError } from '../errors.js';
import { ConflictError, apiError } from './errors.js';
import { getPod } from './pods.js';

/** What an ephemeral container is doing, as the pod's status reports it. */
export type EphemeralState =
  | { kind: 'absent' }
  | { kind: 'waiting'; reason?: string; message?: string }
  | { kind: 'running' }
  | { kind: 'terminated'; exitCode: number; reason?: string; message?: string };

/** The state of the named ephemeral container in the pod's status ('waiting' while the kubelet has not reported it). */
export function ephemeralState(pod: V1Pod, name: string): EphemeralState {
  if (!(pod.spec?.ephemeralContainers ?? []).some((c) => c.name === name)) return { kind: 'absent' };
  const st = (pod.status?.ephemeralContainerStatuses ?? []).find((s) => s.name === name);
  const state = st?.state;
  if (state?.running) return { kind: 'running' };
  if (state?.terminated) return { kind: 'terminated', exitCode: state.terminated.exitCode, reason: state.terminated.reason, message: state.terminated.message };
  return { kind: 'waiting', reason: state?.waiting?.reason, message: state?.waiting?.message };
}

/**
 * Adds an ephemeral container to the pod as read (an update of the subresource: a pod changed
 * meanwhile is a conflict, not a blind write). Returns the pod as the server answered.
 */
export async function addEphemeralContainer(kube: { core: CoreV1Api }, pod: V1Pod, container: V1EphemeralContainer, dryRun = false): Promise<V1Pod> {
  const name = pod.metadata?.name ?? '';
  const namespace = pod.metadata?.namespace ?? '';
  const body: V1Pod = { ...pod, spec: { ...pod.spec!, ephemeralContainers: [...(pod.spec?.ephemeralContainers ?? []), container] } };
  try {
    return await kube.core.replaceNamespacedPodEphemeralcontainers({ name, namespace, body, ...(dryRun ? { dryRun: 'All' } : {}) });
  } catch (err) {
    const mapped = apiError(err, `add ephemeral container "${container.name}" to pod "${name}" in namespace "${namespace}"`);
    if (/404|not found/i.test(mapped.message) && !/pods? "/.test(mapped.message)) {
      throw new PluginError(`the API server does not serve ephemeral containers (pods/ephemeralcontainers)`, 'member replace needs Kubernetes 1.25 or later');
    }
    throw mapped;
  }
}

/**
 * Adds the ephemeral container `build` makes from the pod as read now, reading the pod again and
 * retrying on a conflict (a crash-looping pod's status changes often), up to five times. `build`
 * may throw to refuse the pod as it is. With `dryRun` the server only says whether it would admit it.
 */
export async function addEphemeralContainerRetrying(kube: { core: CoreV1Api }, namespace: string, podName: string, build: (pod: V1Pod) => V1EphemeralContainer, dryRun = false): Promise<V1Pod> {
  for (let attempt = 1; ; attempt++) {
    const pod = await getPod(kube, namespace, podName);
    try {
      return await addEphemeralContainer(kube, pod, build(pod), dryRun);
    } catch (err) {
      if (!(err instanceof ConflictError) || attempt >= 5) throw err;
    }
  }
}

/** Polls the pod until the ephemeral container is running or has ended, or fails after timeoutMs. */
export async function waitEphemeral(
  kube: { core: CoreV1Api },
  namespace: string,
  pod: string,
  name: string,
  until: (s: EphemeralState) => boolean,
  timeoutMs: number,
  sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms)),
): Promise<{ pod: V1Pod; state: EphemeralState }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const p = await getPod(kube, namespace, pod);
    const state = ephemeralState(p, name);
    if (until(state)) return { pod: p, state };
    if (Date.now() >= deadline) {
      const detail = state.kind === 'waiting' ? `waiting${state.reason ? ` (${state.reason}${state.message ? `: ${state.message}` : ''})` : ''}` : state.kind;
      throw new PluginError(`ephemeral container "${name}" of pod "${pod}" is still ${detail} after ${Math.round(timeoutMs / 1000)} s`, `kubectl describe pod ${pod} -n ${namespace} shows why`);
    }
    await sleep(1000);
  }
}

/** The last lines of a container's log (ephemeral or not); '' when it cannot be read. */
export async function containerLogTail(kube: { core: CoreV1Api }, namespace: string, pod: string, container: string, lines = 20): Promise<string> {
  try {
    return await kube.core.readNamespacedPodLog({ name: pod, namespace, container, tailLines: lines });
  } catch {
    return '';
  }
}
