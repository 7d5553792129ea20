// The credentials a pod's image pulls may use: the Secrets its `spec.imagePullSecrets` names, in
// its namespace, of type `kubernetes.io/dockerconfigjson` (`.dockerconfigjson`: {"auths": {REGISTRY: …}})
// or the legacy `kubernetes.io/dockercfg` (`.dockercfg`: {REGISTRY: …}). A registry key matches an
// image whose repository is that host, or that host and path prefix; the scheme and a trailing
// `/v1/` or `/v2/` are ignored, and `index.docker.io` is docker.io. A named Secret that is missing
// gets the kubelet's `FailedToRetrieveImagePullSecret` warning and the pull goes on without it.
// docs: concepts/containers/images#specifying-imagepullsecrets-on-a-pod and
// concepts/configuration/secret#docker-config-secrets; source: pkg/credentialprovider/keyring.go
// (BasicDockerKeyring.Add, Lookup, URLsMatch) and pkg/kubelet/kuberuntime/kuberuntime_image.go.
// Differences from a real kubelet: no node-wide credentials (config.json, credential provider
// plugins), no glob (`*.example.com`) keys, and credentials are never checked: any entry for the
// registry counts.
import type { V1Pod, V1Secret } from '@kubernetes/client-node';
import type { Json } from '../json.js';
import { ApiError, type ApiClient } from './api.js';

/** A registry key as the keyring stores it: host (docker.io for Docker Hub) and path prefix. */
function normalizeKey(key: string): string {
  let k = key.trim().replace(/^[a-z]+:\/\//i, '').replace(/\/+$/, '').replace(/\/v[12]$/, '');
  if (k === 'index.docker.io' || k.startsWith('index.docker.io/')) k = `docker.io${k.slice('index.docker.io'.length)}`;
  return k;
}

/** The registry keys of one pull Secret (none when its type or data does not hold any). */
function registryKeys(secret: Json<V1Secret>): string[] {
  const decode = (k: string) => {
    const b64 = secret.data?.[k];
    if (!b64) return undefined;
    try { return JSON.parse(Buffer.from(b64, 'base64').toString('utf8')) as Record<string, unknown>; } catch { return undefined; }
  };
  if (secret.type === 'kubernetes.io/dockerconfigjson') {
    const auths = decode('.dockerconfigjson')?.['auths'];
    return auths && typeof auths === 'object' ? Object.keys(auths) : [];
  }
  if (secret.type === 'kubernetes.io/dockercfg') return Object.keys(decode('.dockercfg') ?? {});
  return [];
}

/**
 * Reads the pod's pull Secrets and returns whether they hold credentials for an image repository
 * (normalized, e.g. `registry.private.example/bitnami/etcd`). `warn` gets the kubelet's event text
 * for Secrets that could not be read.
 */
export async function pullCredentials(api: ApiClient, pod: Json<V1Pod>, warn: (message: string) => void): Promise<(repository: string) => boolean> {
  const ns = pod.metadata?.namespace ?? 'default';
  const keys: string[] = [];
  const missing: string[] = [];
  for (const ref of pod.spec?.imagePullSecrets ?? []) {
    if (!ref.name) continue;
    try {
      const secret = await api.request<Json<V1Secret>>('GET', `/api/v1/namespaces/${ns}/secrets/${ref.name}`);
      keys.push(...registryKeys(secret).map(normalizeKey));
    } catch (err) {
      if (!(err instanceof ApiError && err.code === 404)) throw err;
      missing.push(ref.name);
    }
  }
  if (missing.length) warn(`Unable to retrieve some image pull secrets (${missing.join(', ')}); attempting to pull the image may not succeed.`);
  return (repository) => keys.some((k) => repository === k || repository.startsWith(`${k}/`));
}
