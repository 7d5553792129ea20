/**
 * KubeContext: the resolved kubeconfig, the namespace and the typed API clients the plugin uses,
 * with request timeouts applied to every plain API call (not to watches or streams).
 */
import {
  AppsV1Api,
  AuthorizationV1Api,
  BatchV1Api,
  CoreV1Api,
  KubeConfig,
  PolicyV1Api,
  ServerConfiguration,
  createConfiguration,
  type RequestContext,
} from '@kubernetes/client-node';
import { UsageError } from '../errors.js';
import type { ResolvedKubeConfig } from './config.js';
import type { StreamKeepalive } from './socket.js';

/** Everything the plugin needs to talk to one cluster; built once per command from the flags. */
export interface KubeContext {
  kubeConfig: KubeConfig;
  /** The namespace from -n, else the context's, else "default". */
  namespace: string;
  contextName: string;
  requestTimeoutMs?: number;
  /** How pod streams are kept alive; client-go's cadence when unset. */
  keepalive?: StreamKeepalive;
  core: CoreV1Api;
  apps: AppsV1Api;
  policy: PolicyV1Api;
  authz: AuthorizationV1Api;
  batch: BatchV1Api;
}

/** Creates the API clients for a resolved kubeconfig. */
export function createKubeContext(resolved: ResolvedKubeConfig, keepalive?: StreamKeepalive): KubeContext {
  const { kubeConfig, namespace, contextName, requestTimeoutMs } = resolved;
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster?.server) {
    throw new UsageError(`context "${contextName}" has no server`, 'pass --server or fix the cluster entry in your kubeconfig');
  }
  const auth = {
    getName: () => 'kubeconfig',
    applySecurityAuthentication: async (ctx: RequestContext) => {
      await kubeConfig.applySecurityAuthentication(ctx);
      if (requestTimeoutMs) ctx.setSignal(AbortSignal.timeout(requestTimeoutMs));
    },
  };
  const configuration = createConfiguration({
    baseServer: new ServerConfiguration(cluster.server.replace(/\/+$/, ''), {}),
    authMethods: { default: auth },
  });
  return {
    kubeConfig,
    namespace,
    contextName,
    requestTimeoutMs,
    keepalive,
    core: new CoreV1Api(configuration),
    apps: new AppsV1Api(configuration),
    policy: new PolicyV1Api(configuration),
    authz: new AuthorizationV1Api(configuration),
    batch: new BatchV1Api(configuration),
  };
}
