// Connecting to the cluster the kubectl flags point at. Kept apart from kubeflags.ts so that
// @kubernetes/client-node (over a second to load) is only loaded by commands that talk to a cluster.
import { kubeConfigFiles, loadKubeConfig, mergeKubeConfigFiles, type KubeConfigEnv, type KubeFlags } from '../kube/config.js';
import { createKubeContext, type KubeContext } from '../kube/client.js';
import { streamKeepalive, type StreamKeepaliveEnv } from '../kube/socket.js';
import { createLogger, type LogSink } from '../ui/log.js';
import { LAZY_CODE_CACHE_STATE_KEY } from '../version.js';
import { readDirEntries, type CompletionSources } from './completion.js';
import { kubeFlagsOf, verbosityOf, type GlobalKubeOptions } from './kubeflags.js';

/** Turns the parsed global options into a connected KubeContext (kubeconfig loaded, flags applied); -v 5 logs the choice. */
export function kubeContextFromOptions(opts: GlobalKubeOptions, env: KubeConfigEnv & StreamKeepaliveEnv = process.env, stderr: LogSink = process.stderr): KubeContext {
  const kube = createKubeContext(loadKubeConfig(kubeFlagsOf(opts), env), streamKeepalive(env));
  const server = kube.kubeConfig.getCurrentCluster()?.server;
  const log = createLogger(stderr, verbosityOf(opts));
  log.debug(5, `context "${kube.contextName}" server ${server} namespace "${kube.namespace}"`);
  // Set by the single executable's loader once it compiled the code this module is in.
  const codeCache = (globalThis as Record<symbol, unknown>)[Symbol.for(LAZY_CODE_CACHE_STATE_KEY)];
  if (typeof codeCache === 'string') log.debug(9, `code cache of the single executable's lazy chunk: ${codeCache}`);
  return kube;
}

/** Completion candidates from the cluster the typed flags point at (short timeout) and from local files. */
export function clusterCompletionSources(env: KubeConfigEnv = process.env): CompletionSources {
  const connect = (flags: KubeFlags) => createKubeContext(loadKubeConfig({ ...flags, requestTimeout: '5s' }, env));
  return {
    namespaces: async (flags) => (await connect(flags).core.listNamespace()).items.map((n) => n.metadata?.name ?? '').filter(Boolean),
    statefulSets: async (flags) => {
      const kube = connect(flags);
      const list = await kube.apps.listNamespacedStatefulSet({ namespace: kube.namespace });
      return list.items.map((s) => s.metadata?.name ?? '').filter(Boolean);
    },
    pods: async (flags) => {
      const kube = connect(flags);
      const list = await kube.core.listNamespacedPod({ namespace: kube.namespace });
      return list.items.map((p) => p.metadata?.name ?? '').filter(Boolean);
    },
    contexts: async (flags) => mergeKubeConfigFiles(kubeConfigFiles(flags, env), flags.kubeconfig !== undefined).contexts.map((c) => c.name),
    readDir: readDirEntries,
  };
}
