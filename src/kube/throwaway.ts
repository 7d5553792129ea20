/**
 * A throwaway pod of ours (a schedule's reader pod, a drill pod): created, waited for until every
 * container runs, and deleted on every way out — return, error, and SIGINT/SIGTERM/SIGHUP/SIGQUIT
 * (deleted, then the plugin exits 128+N). Except on a signal, the command waits until the pod is
 * gone, its emptyDir (which may hold a snapshot) with it. A pod the plugin could not delete
 * (SIGKILL) must end by itself: its manifest sets activeDeadlineSeconds.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { PluginError } from '../errors.js';
import type { KubeContext } from './client.js';
import { apiError } from './errors.js';
import { PodWaitTimeout, waitForPodGone } from './pods.js';

/** How the pod is named in messages, and what to tell a user whose pod does not start. */
export interface ThrowawayPodOptions {
  /** e.g. `the drill pod "kubectl-etcd-drill-1a2b3c"` */
  what: string;
  /** The hint when the pod does not start. */
  startHint: string;
  timeoutMs: number;
  /** Warnings (a pod that could not be deleted). */
  warn(line: string): void;
}

/** How long a deleted pod may take to be gone (its grace period is a few seconds) before a warning. */
const GONE_TIMEOUT_MS = 60_000;
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];
const EXIT_CODES: Record<string, number> = { SIGHUP: 129, SIGINT: 130, SIGQUIT: 131, SIGTERM: 143 };

/** Creates the pod, runs `use` once its containers run, and deletes it on every way out. */
export async function withThrowawayPod<T>(kube: KubeContext, manifest: V1Pod, opts: ThrowawayPodOptions, use: () => Promise<T>): Promise<T> {
  const name = manifest.metadata!.name!;
  const namespace = manifest.metadata!.namespace!;
  let made = false;
  // wait: until the pod is gone (its emptyDir, which may hold a snapshot, with it); not on a signal.
  const close = async (wait: boolean) => {
    if (!made) return;
    made = false;
    // Its own grace period (short, in the manifest): its emptyDir goes with it.
    const deleted = await kube.core.deleteNamespacedPod({ name, namespace }).then((p) => p as V1Pod | undefined, (err: unknown) => {
      if ((err as { code?: number }).code === 404) return undefined;
      opts.warn(`could not delete ${opts.what}: ${apiError(err, `pod "${name}"`).message}; kubectl delete pod ${name} -n ${namespace} does (it ends by itself within an hour)`);
      return undefined;
    });
    if (!wait || !deleted) return;
    await waitForPodGone(kube, namespace, name, GONE_TIMEOUT_MS, deleted.metadata?.uid).catch((err: unknown) => {
      opts.warn(err instanceof PodWaitTimeout
        ? `${opts.what} is deleted but not gone after ${GONE_TIMEOUT_MS / 1000} s; kubectl get pod ${name} -n ${namespace} shows it`
        : `could not see ${opts.what} go: ${apiError(err, `pod "${name}"`).message}; kubectl get pod ${name} -n ${namespace} shows it`);
    });
  };
  const onSignal = (sig: NodeJS.Signals) => {
    void close(false).finally(() => process.exit(EXIT_CODES[sig] ?? 1));
  };
  for (const sig of SIGNALS) process.once(sig, onSignal);
  try {
    // Counted as made before the request: a signal while it is under way still deletes it (a 404 is fine).
    made = true;
    try {
      await kube.core.createNamespacedPod({ namespace, body: manifest });
    } catch (err) {
      made = false;
      throw apiError(err, opts.what);
    }
    await waitRunning(kube, manifest, opts);
    return await use();
  } finally {
    for (const sig of SIGNALS) process.off(sig, onSignal);
    await close(true);
  }
}

/** Waits until every container of the pod runs; a pod that cannot start (or a container that ended) is an error with the reason. */
async function waitRunning(kube: KubeContext, manifest: V1Pod, opts: ThrowawayPodOptions): Promise<void> {
  const name = manifest.metadata!.name!;
  const namespace = manifest.metadata!.namespace!;
  const containers = manifest.spec?.containers.length ?? 1;
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    const p = await kube.core.readNamespacedPod({ name, namespace }).catch((err: unknown) => { throw apiError(err, opts.what); });
    const statuses = p.status?.containerStatuses ?? [];
    if (statuses.length === containers && statuses.every((s) => s.state?.running)) return;
    const waiting = statuses.find((s) => s.state?.waiting?.reason && !['ContainerCreating', 'PodInitializing'].includes(s.state.waiting.reason));
    const ended = statuses.find((s) => s.state?.terminated);
    const late = Date.now() > deadline;
    if (p.status?.phase === 'Failed' || p.status?.phase === 'Succeeded' || waiting || ended || late) {
      const why = ended ? `container "${ended.name}" ended (${ended.state!.terminated!.reason ?? `exit code ${ended.state!.terminated!.exitCode}`})`
        : waiting ? `${waiting.state!.waiting!.reason}${waiting.state!.waiting!.message ? `: ${waiting.state!.waiting!.message}` : ''}`
          : p.status?.conditions?.find((c) => c.status === 'False' && c.message)?.message ?? p.status?.phase ?? 'no status';
      throw new PluginError(`${opts.what} did not start${late ? ` within ${Math.round(opts.timeoutMs / 1000)} s` : ''}: ${why}`, opts.startHint);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}
