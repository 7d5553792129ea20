/**
 * One list+watch cache per resource type the controllers read, all on the same kubeconfig.
 *
 * Differs from a shared informer factory: every cache is started eagerly (even for resources a
 * given test never uses) and each resource has exactly one watch.
 */
import type {
  KubeConfig,
  V1ConfigMap,
  V1ControllerRevision,
  V1CronJob,
  V1Deployment,
  V1Job,
  V1Node,
  V1PersistentVolume,
  V1PersistentVolumeClaim,
  V1Pod,
  V1ReplicaSet,
  V1StatefulSet,
  V1StorageClass,
  KubernetesObject,
} from '@kubernetes/client-node';
import type { ClusterApi } from './api.js';
import { ResourceCache } from './informer.js';
import type { LogFn } from './loop.js';

/** Every cache the controllers share. */
export interface Caches {
  pods: ResourceCache<V1Pod>;
  nodes: ResourceCache<V1Node>;
  claims: ResourceCache<V1PersistentVolumeClaim>;
  volumes: ResourceCache<V1PersistentVolume>;
  classes: ResourceCache<V1StorageClass>;
  statefulsets: ResourceCache<V1StatefulSet>;
  deployments: ResourceCache<V1Deployment>;
  replicasets: ResourceCache<V1ReplicaSet>;
  revisions: ResourceCache<V1ControllerRevision>;
  jobs: ResourceCache<V1Job>;
  cronjobs: ResourceCache<V1CronJob>;
  /** Read by no controller but the garbage collector: ConfigMaps own pods (a restore's journal owns its utility pods). */
  configmaps: ResourceCache<V1ConfigMap>;
}

/** Creates (but does not start) the caches. */
export function makeCaches(kc: KubeConfig, api: ClusterApi, log: LogFn): Caches {
  const make = <T extends KubernetesObject>(apiVersion: string, kind: string, path: string): ResourceCache<T> =>
    new ResourceCache<T>(apiVersion, kind, kc, path, () => api.list<T>(apiVersion, kind), log);
  return {
    pods: make('v1', 'Pod', '/api/v1/pods'),
    nodes: make('v1', 'Node', '/api/v1/nodes'),
    claims: make('v1', 'PersistentVolumeClaim', '/api/v1/persistentvolumeclaims'),
    volumes: make('v1', 'PersistentVolume', '/api/v1/persistentvolumes'),
    classes: make('storage.k8s.io/v1', 'StorageClass', '/apis/storage.k8s.io/v1/storageclasses'),
    statefulsets: make('apps/v1', 'StatefulSet', '/apis/apps/v1/statefulsets'),
    deployments: make('apps/v1', 'Deployment', '/apis/apps/v1/deployments'),
    replicasets: make('apps/v1', 'ReplicaSet', '/apis/apps/v1/replicasets'),
    revisions: make('apps/v1', 'ControllerRevision', '/apis/apps/v1/controllerrevisions'),
    jobs: make('batch/v1', 'Job', '/apis/batch/v1/jobs'),
    cronjobs: make('batch/v1', 'CronJob', '/apis/batch/v1/cronjobs'),
    configmaps: make('v1', 'ConfigMap', '/api/v1/configmaps'),
  };
}

/** All caches as a list, for starting, stopping and waiting. */
export function allCaches(c: Caches): Array<ResourceCache<KubernetesObject>> {
  return Object.values(c) as Array<ResourceCache<KubernetesObject>>;
}
