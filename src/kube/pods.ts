/** Pod lookups and watch-based waiting (ready / gone) with a timeout. */
import { Watch, type CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { PluginError } from '../errors.js';
import { apiError } from './errors.js';

/** The part of a KubeContext pod lookups need. */
export interface PodApiAccess {
  core: CoreV1Api;
}

/** The part of a KubeContext waiting needs (list + watch). */
export interface PodWatchAccess extends PodApiAccess {
  kubeConfig: KubeConfig;
}

/** Reads one pod; a missing pod is a NotFoundError. */
export async function getPod(kube: PodApiAccess, namespace: string, name: string): Promise<V1Pod> {
  try {
    return await kube.core.readNamespacedPod({ name, namespace });
  } catch (err) {
    throw apiError(err, `get pod "${name}" in namespace "${namespace}"`);
  }
}

/** Lists pods by label selector (empty selector = all pods of the namespace). */
export async function listPods(kube: PodApiAccess, namespace: string, labelSelector?: string): Promise<V1Pod[]> {
  try {
    const list = await kube.core.listNamespacedPod({ namespace, labelSelector: labelSelector || undefined });
    return list.items;
  } catch (err) {
    throw apiError(err, `list pods in namespace "${namespace}"`);
  }
}

/** True when the pod's Ready condition is True and it is not being deleted. */
export function isPodReady(pod: V1Pod): boolean {
  if (pod.metadata?.deletionTimestamp) return false;
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** What to wait for: pods matching the selectors (and names, if given) until `until` holds. */
export interface WaitForPodsOptions {
  namespace: string;
  labelSelector?: string;
  /** Only these pod names count (filtered client-side). */
  names?: string[];
  timeoutMs: number;
  /** Decides from the current pods whether the wait is over. */
  until: (pods: V1Pod[]) => boolean;
  /** For the timeout message, e.g. `pods "kube-etcd-0" to be ready`. */
  what: string;
}

/** Lists, then watches from that resourceVersion (re-listing when a watch ends) until `until` holds or time runs out. */
export async function waitForPods(kube: PodWatchAccess, opts: WaitForPodsOptions): Promise<V1Pod[]> {
  const deadline = Date.now() + opts.timeoutMs;
  const wanted = opts.names ? new Set(opts.names) : undefined;
  const keep = (p: V1Pod) => !wanted || wanted.has(p.metadata?.name ?? '');
  const watch = new Watch(kube.kubeConfig);
  const path = `/api/v1/namespaces/${encodeURIComponent(opts.namespace)}/pods`;
  for (;;) {
    let list;
    try {
      list = await kube.core.listNamespacedPod({ namespace: opts.namespace, labelSelector: opts.labelSelector || undefined });
    } catch (err) {
      throw apiError(err, `list pods in namespace "${opts.namespace}"`);
    }
    const pods = new Map(list.items.filter(keep).map((p) => [p.metadata!.name!, p]));
    if (opts.until([...pods.values()])) return [...pods.values()];
    const remaining = deadline - Date.now();
    if (remaining <= 0) throw timeout(opts);
    const done = await new Promise<'met' | 'ended' | 'timeout'>((resolve) => {
      let controller: AbortController | undefined;
      let finished = false;
      const finish = (how: 'met' | 'ended' | 'timeout') => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        controller?.abort();
        resolve(how);
      };
      const timer = setTimeout(() => finish('timeout'), remaining);
      const query: Record<string, string | boolean> = { resourceVersion: list.metadata?.resourceVersion ?? '', allowWatchBookmarks: true };
      if (opts.labelSelector) query.labelSelector = opts.labelSelector;
      watch
        .watch(
          path,
          query,
          (type, obj: V1Pod) => {
            const name = obj?.metadata?.name;
            if (!name || !keep(obj) || type === 'BOOKMARK') return;
            if (type === 'DELETED') pods.delete(name);
            else if (type === 'ADDED' || type === 'MODIFIED') pods.set(name, obj);
            else if (type === 'ERROR') return finish('ended');
            if (opts.until([...pods.values()])) finish('met');
          },
          () => finish('ended'),
        )
        .then(
          (c) => {
            controller = c;
            if (finished) c.abort();
          },
          () => finish('ended'),
        );
    });
    if (done === 'met') return [...pods.values()];
    if (done === 'timeout') throw timeout(opts);
    await new Promise((r) => setTimeout(r, Math.min(250, Math.max(0, deadline - Date.now()))));
  }
}

/** A wait for pods that ran out of time (not a failed request). */
export class PodWaitTimeout extends PluginError {}

function timeout(opts: WaitForPodsOptions): PluginError {
  return new PodWaitTimeout(
    `timed out after ${Math.round(opts.timeoutMs / 1000)}s waiting for ${opts.what} in namespace "${opts.namespace}"`,
    `check \`kubectl get pods -n ${opts.namespace}\` and \`kubectl describe pod\``,
  );
}

/** Waits until every named pod exists and is Ready. */
export function waitForPodsReady(kube: PodWatchAccess, namespace: string, names: string[], timeoutMs: number): Promise<V1Pod[]> {
  return waitForPods(kube, {
    namespace,
    names,
    timeoutMs,
    what: `pods ${names.map((n) => `"${n}"`).join(', ')} to be ready`,
    until: (pods) => names.every((n) => pods.some((p) => p.metadata?.name === n && isPodReady(p))),
  });
}

/** Waits until the pod is gone; with `uid`, a new pod of the same name (StatefulSet recreate) counts as gone. */
export async function waitForPodGone(kube: PodWatchAccess, namespace: string, name: string, timeoutMs: number, uid?: string): Promise<void> {
  await waitForPods(kube, {
    namespace,
    names: [name],
    timeoutMs,
    what: `pod "${name}" to be deleted`,
    until: (pods) => !pods.some((p) => p.metadata?.name === name && (!uid || p.metadata?.uid === uid)),
  });
}
