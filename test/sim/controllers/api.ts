/**
 * The controller-manager's only door to the cluster: create / replace / delete / read any kind
 * through client-node's KubernetesObjectApi, plus the status and binding subresources through the
 * typed APIs.
 *
 * Differs from client-go: no rate limiter, no retries here (the loops retry on their next pass);
 * when the API server lacks a `status` subresource the whole object is replaced instead, and when
 * it lacks `pods/binding` the pod's spec.nodeName is set by an update.
 */
import {
  AppsV1Api,
  BatchV1Api,
  CoreV1Api,
  KubernetesObjectApi,
  type KubeConfig,
  type KubernetesObject,
} from '@kubernetes/client-node';
import type { ListResult } from './informer.js';

/** The API operations the controllers use; declared here so tests may hand in a fake. */
export interface ClusterApi {
  create<T extends KubernetesObject>(obj: T): Promise<T>;
  replace<T extends KubernetesObject>(obj: T): Promise<T>;
  replaceStatus<T extends KubernetesObject>(obj: T): Promise<T>;
  remove(obj: KubernetesObject, opts?: { propagationPolicy?: string; uid?: string }): Promise<void>;
  /** undefined when the object does not exist. */
  read(apiVersion: string, kind: string, namespace: string | undefined, name: string): Promise<KubernetesObject | undefined>;
  list<T extends KubernetesObject>(apiVersion: string, kind: string): Promise<ListResult<T>>;
  bindPod(namespace: string, name: string, uid: string | undefined, node: string): Promise<void>;
}

/** HTTP status code of an API error, or undefined for other failures. */
export function statusCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown; statusCode?: unknown })?.code ?? (err as { statusCode?: unknown })?.statusCode;
  return typeof code === 'number' ? code : undefined;
}

/** First line of an error, for logs. */
export function errLine(err: unknown): string {
  const e = err as { code?: number; body?: unknown; message?: string };
  if (typeof e?.code === 'number' && e.body !== undefined) {
    const body = typeof e.body === 'string' ? safeJson(e.body) : e.body;
    const msg = (body as { message?: string })?.message;
    return `HTTP ${e.code}${msg ? `: ${msg}` : ''}`;
  }
  return String(e?.message ?? err).split('\n')[0];
}

/** The Status message of an API error (what Go's `%v` of a StatusError prints), else its first line. */
export function statusMessage(err: unknown): string {
  const e = err as { code?: number; body?: unknown };
  if (typeof e?.code === 'number' && e.body !== undefined) {
    const body = typeof e.body === 'string' ? safeJson(e.body) : e.body;
    const msg = (body as { message?: string })?.message;
    if (msg) return msg;
  }
  return errLine(err);
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return { message: s };
  }
}

/** Builds the real ClusterApi on a kubeconfig. */
export function makeClusterApi(kc: KubeConfig): ClusterApi {
  const objects = KubernetesObjectApi.makeApiClient(kc);
  const core = kc.makeApiClient(CoreV1Api);
  const apps = kc.makeApiClient(AppsV1Api);
  const batch = kc.makeApiClient(BatchV1Api);
  const noStatusSubresource = new Set<string>();
  let noBindingSubresource = false;

  // Each writer gets an object of its kind (replaceStatus picks it by obj.kind), read from the API
  // and so with a name and, for namespaced kinds, a namespace.
  const nameOf = (o: KubernetesObject) => o.metadata!.name!;
  const namespaceOf = (o: KubernetesObject) => o.metadata!.namespace!;
  const statusWriters: Record<string, (o: KubernetesObject) => Promise<unknown>> = {
    Pod: (o) => core.replaceNamespacedPodStatus({ name: nameOf(o), namespace: namespaceOf(o), body: o }),
    PersistentVolume: (o) => core.replacePersistentVolumeStatus({ name: nameOf(o), body: o }),
    PersistentVolumeClaim: (o) =>
      core.replaceNamespacedPersistentVolumeClaimStatus({ name: nameOf(o), namespace: namespaceOf(o), body: o }),
    StatefulSet: (o) => apps.replaceNamespacedStatefulSetStatus({ name: nameOf(o), namespace: namespaceOf(o), body: o }),
    Deployment: (o) => apps.replaceNamespacedDeploymentStatus({ name: nameOf(o), namespace: namespaceOf(o), body: o }),
    ReplicaSet: (o) => apps.replaceNamespacedReplicaSetStatus({ name: nameOf(o), namespace: namespaceOf(o), body: o }),
    Job: (o) => batch.replaceNamespacedJobStatus({ name: nameOf(o), namespace: namespaceOf(o), body: o }),
    CronJob: (o) => batch.replaceNamespacedCronJobStatus({ name: nameOf(o), namespace: namespaceOf(o), body: o }),
  };

  return {
    create: (obj) => objects.create(obj),
    replace: (obj) => objects.replace(obj),
    async replaceStatus(obj) {
      const kind = obj.kind ?? '';
      const writer = statusWriters[kind];
      if (!writer || noStatusSubresource.has(kind)) return objects.replace(obj);
      try {
        return (await writer(obj)) as typeof obj;
      } catch (err) {
        const code = statusCode(err);
        if (code !== 404 && code !== 405) throw err;
        const replaced = await objects.replace(obj);
        noStatusSubresource.add(kind);
        return replaced;
      }
    },
    async remove(obj, opts = {}) {
      const body = {
        propagationPolicy: opts.propagationPolicy ?? 'Background',
        ...(opts.uid ? { preconditions: { uid: opts.uid } } : {}),
      };
      try {
        await objects.delete(
          { apiVersion: obj.apiVersion, kind: obj.kind, metadata: { name: obj.metadata?.name, namespace: obj.metadata?.namespace } },
          undefined,
          undefined,
          undefined,
          undefined,
          body.propagationPolicy,
          body,
        );
      } catch (err) {
        if (statusCode(err) !== 404) throw err;
      }
    },
    async read(apiVersion, kind, namespace, name) {
      try {
        return await objects.read({ apiVersion, kind, metadata: { name, namespace } });
      } catch (err) {
        if (statusCode(err) === 404) return undefined;
        throw err;
      }
    },
    async list<T extends KubernetesObject>(apiVersion: string, kind: string) {
      try {
        return (await objects.list(apiVersion, kind)) as unknown as ListResult<T>;
      } catch (err) {
        if (/Unrecognized API version and kind/i.test(String((err as Error)?.message))) {
          throw Object.assign(new Error(`${kind} not served`), { code: 404 });
        }
        throw err;
      }
    },
    async bindPod(namespace, name, uid, node) {
      if (!noBindingSubresource) {
        try {
          await core.createNamespacedPodBinding({
            name,
            namespace,
            body: {
              apiVersion: 'v1',
              kind: 'Binding',
              metadata: { name, namespace, ...(uid ? { uid } : {}) },
              target: { apiVersion: 'v1', kind: 'Node', name: node },
            },
          });
          return;
        } catch (err) {
          const code = statusCode(err);
          if (code !== 404 && code !== 405) throw err;
          const exists = await this.read('v1', 'Pod', namespace, name);
          if (!exists) throw err;
          noBindingSubresource = true;
        }
      }
      const pod = (await this.read('v1', 'Pod', namespace, name)) as KubernetesObject & { spec?: { nodeName?: string } };
      if (!pod) throw Object.assign(new Error(`pod "${name}" is gone`), { code: 404 });
      if (pod.spec?.nodeName) throw Object.assign(new Error(`pod "${name}" is already assigned`), { code: 409 });
      pod.spec = { ...pod.spec, nodeName: node };
      await objects.replace({ ...pod, apiVersion: 'v1', kind: 'Pod' });
    },
  };
}
