/**
 * The restore's pod IO (RestorePodIO) over the kube seam: commands in the utility pods, and the
 * snapshot copied onto a member volume with `head -c SIZE` (no tar needed), given up and tried
 * again when it stalls. Both are retried while the API server is away; long commands run
 * detached (kube/detached.ts), so a cut stream never starts them twice.
 */
import { PassThrough, type Readable } from 'node:stream';
import { PluginError } from '../errors.js';
import type { KubeContext } from '../kube/client.js';
import { copyFileIntoPod } from '../kube/copy.js';
import { runDetached, settleRun } from '../kube/detached.js';
import { containerCommand } from '../kube/exec.js';
import { retrying } from '../kube/retry.js';
import type { RestorePodIO } from './runner.js';

const COPY_ATTEMPTS = 4;
const COPY_STALL_MS = 20_000;

/** A copy that made no progress (or did not finish after the last byte) for COPY_STALL_MS. */
class CopyStalled extends PluginError {}

/**
 * Copies a local file into a pod (`head -c SIZE`, no tar needed), giving up when it stalls: no
 * byte accepted, or the command not done, for COPY_STALL_MS. The caller checks the sha256.
 */
async function copyWatched(
  kube: KubeContext,
  o: { namespace: string; pod: string; container?: string; path: string; source: () => Readable; size: number },
): Promise<void> {
  const file = o.source();
  const feed = new PassThrough({ autoDestroy: false });
  file.on('error', (err) => feed.destroy(err));
  file.pipe(feed);
  let last = Date.now();
  const stalled = new CopyStalled(`copying the snapshot into pod "${o.pod}" stalled`, 'check the pod and the network, then run `kubectl etcd restore --resume`');
  const timer = setInterval(() => {
    if (Date.now() - last > COPY_STALL_MS) feed.destroy(stalled);
  }, 1000);
  try {
    await copyFileIntoPod(kube, {
      namespace: o.namespace, pod: o.pod, container: o.container, path: o.path, source: feed, size: o.size, mode: 0o600,
      onProgress: () => { last = Date.now(); },
    });
  } catch (err) {
    if (feed.destroyed && (feed as { errored?: unknown }).errored === stalled) throw stalled;
    throw err;
  } finally {
    clearInterval(timer);
    file.destroy();
  }
}

/** Commands and copy-in in utility pods, retried while the API server is away; long ones detached. */
export function kubeRestorePodIO(kube: KubeContext, onRetry?: (err: unknown) => void): RestorePodIO {
  const run = containerCommand(kube, { retry: { onRetry } });
  return {
    run,
    runLong: (target, argv, name) => runDetached(run, target, { name, argv }, { onRetry }),
    settleLong: (target, name) => settleRun(run, target, name, { onRetry }),
    async copyIn(target, path, source, size) {
      const { namespace, pod, container } = target;
      for (let attempt = 1; ; attempt++) {
        try {
          return await retrying(() => copyWatched(kube, { namespace, pod, container, path, source, size }), onRetry);
        } catch (err) {
          if (!(err instanceof CopyStalled) || attempt >= COPY_ATTEMPTS) throw err;
          onRetry?.(err);
        }
      }
    },
  };
}
