/**
 * The taint eviction controller (the "taint manager"): a pod bound to a node with a NoExecute
 * taint it does not tolerate is deleted at once; one that tolerates every such taint, some with
 * `tolerationSeconds`, is deleted once the smallest of those has passed since the taint appeared;
 * a toleration without `tolerationSeconds` keeps the pod forever. Before deleting, the pod gets the
 * condition DisruptionTarget=True (reason DeletionByTaintManager), and an event
 * `TaintManagerEviction` "Marking for deletion Pod NS/NAME"; a taint removed in time cancels it
 * ("Cancelling deletion of Pod NS/NAME").
 * docs: concepts/scheduling-eviction/taint-and-toleration ("Taint based Evictions": "pods that
 * tolerate the taint with tolerationSeconds remain bound for the specified amount of time");
 * source: pkg/controller/tainteviction/taint_eviction.go (processPodOnNode, getMinTolerationTime,
 * addConditionAndDeletePod).
 *
 * Differs from kube-controller-manager: the time a taint appeared is its `timeAdded` (or when this
 * controller first saw it, for a taint without one), where the real controller counts from when it
 * saw the node change; deletion uses the pod's own grace period.
 */
import type { V1Node, V1Pod, V1Taint, V1Toleration } from '@kubernetes/client-node';
import { errLine, statusCode, type ClusterApi } from './api.js';
import type { Caches } from './caches.js';
import type { EventRecorder } from './events.js';
import type { LogFn } from './loop.js';
import { clone, isFinished, isTerminating } from './objects.js';
import { tolerates } from './selectors.js';

/** Everything the controller needs; `wake` asks for a sync after ms (a toleration running out). */
export interface TaintEvictionDeps {
  api: ClusterApi;
  caches: Pick<Caches, 'pods' | 'nodes'>;
  events: EventRecorder;
  log: LogFn;
  wake(ms: number): void;
}

/** When a pod on a node with NoExecute taints must go: now, at a time (ms since epoch), or never. */
export type EvictionDue = 'now' | number | 'never';

/** The eviction deadline of a pod with these tolerations under these NoExecute taints (each with the time it appeared). */
export function evictionDue(taints: Array<{ taint: V1Taint; since: number }>, tolerations: V1Toleration[] | undefined): EvictionDue {
  let due: EvictionDue = 'never';
  for (const { taint, since } of taints) {
    const matching = (tolerations ?? []).filter((t) => tolerates(t, taint));
    if (!matching.length) return 'now';
    if (matching.some((t) => t.tolerationSeconds === undefined || t.tolerationSeconds === null)) continue;
    const seconds = Math.max(0, Math.min(...matching.map((t) => Number(t.tolerationSeconds))));
    const at = since + seconds * 1000;
    due = due === 'never' ? at : Math.min(due, at);
  }
  return due;
}

/** Returns the controller's sync function (one pass over the pods bound to tainted nodes). */
export function makeTaintEvictionController({ api, caches, events, log, wake }: TaintEvictionDeps): () => Promise<void> {
  /** First sight of taints without timeAdded: "node\0key\0value" → ms. */
  const firstSeen = new Map<string, number>();
  /** Pods marked for deletion (uid), to report a cancellation. */
  const marked = new Set<string>();

  const noExecuteTaints = (node: V1Node, now: number) => (node.spec?.taints ?? []).filter((t) => t.effect === 'NoExecute').map((taint) => {
    const key = `${node.metadata?.name}\0${taint.key}\0${taint.value ?? ''}`;
    const added = taint.timeAdded ? Date.parse(String(taint.timeAdded)) : NaN;
    if (!firstSeen.has(key)) firstSeen.set(key, Number.isNaN(added) ? now : added);
    return { taint, since: Number.isNaN(added) ? firstSeen.get(key)! : added };
  });

  async function evict(pod: V1Pod): Promise<void> {
    const ns = pod.metadata?.namespace ?? 'default';
    const name = pod.metadata?.name ?? '';
    events.record(pod, 'Normal', 'TaintManagerEviction', `Marking for deletion Pod ${ns}/${name}`);
    const updated = clone(pod);
    const conditions = (updated.status?.conditions ?? []).filter((c) => c.type !== 'DisruptionTarget');
    conditions.push({ type: 'DisruptionTarget', status: 'True', reason: 'DeletionByTaintManager',
      message: 'Taint manager: deleting due to NoExecute taint', lastTransitionTime: new Date().toISOString() as unknown as Date });
    updated.status = { ...updated.status, conditions };
    try {
      await api.replaceStatus(updated);
      await api.remove(pod, { uid: pod.metadata?.uid });
      log(`taint-eviction: deleted pod "${ns}/${name}" from node "${pod.spec?.nodeName}"`);
    } catch (err) {
      const code = statusCode(err);
      if (code !== 404 && code !== 409) throw new Error(`evicting pod "${ns}/${name}": ${errLine(err)}`);
    }
  }

  return async function sync(): Promise<void> {
    const now = Date.now();
    const taintsByNode = new Map<string, Array<{ taint: V1Taint; since: number }>>();
    for (const node of caches.nodes.list()) {
      const taints = noExecuteTaints(node, now);
      if (taints.length) taintsByNode.set(node.metadata?.name ?? '', taints);
    }
    for (const key of firstSeen.keys()) if (!taintsByNode.has(key.split('\0')[0]!)) firstSeen.delete(key);
    let next = Infinity;
    for (const pod of caches.pods.list()) {
      const uid = pod.metadata?.uid ?? '';
      const node = pod.spec?.nodeName;
      if (!node || isTerminating(pod) || isFinished(pod)) continue;
      const due = evictionDue(taintsByNode.get(node) ?? [], pod.spec?.tolerations);
      if (due === 'never') {
        if (marked.delete(uid)) events.record(pod, 'Normal', 'TaintManagerEviction', `Cancelling deletion of Pod ${pod.metadata?.namespace}/${pod.metadata?.name}`);
        continue;
      }
      if (due === 'now' || due <= now) {
        marked.add(uid);
        await evict(pod);
        continue;
      }
      if (!marked.has(uid)) {
        marked.add(uid);
        events.record(pod, 'Normal', 'TaintManagerEviction', `Marking for deletion Pod ${pod.metadata?.namespace}/${pod.metadata?.name}`);
      }
      next = Math.min(next, due);
    }
    if (next !== Infinity) wake(Math.max(50, next - Date.now()));
  };
}
