// The resource types the simulated API server serves, with what discovery reports about them.
// Differences from a real API server: a fixed, built-in list (no CRDs, no aggregated APIs); only
// the preferred version of each group is served; categories are reported only for "all".

/** One served resource type (a group/version/resource) and how discovery describes it. */
export interface ResourceDef {
  group: string;
  version: string;
  resource: string;
  singular: string;
  kind: string;
  namespaced: boolean;
  shortNames?: string[];
  subresources: string[];
  /** Verbs for the main resource; defaults to the full CRUD set. */
  verbs?: string[];
  categories?: string[];
}

const CRUD = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

function def(group: string, version: string, resource: string, kind: string, namespaced: boolean,
  opts: Partial<ResourceDef> = {}): ResourceDef {
  return { group, version, resource, kind, namespaced, subresources: [], singular: kind.toLowerCase(), ...opts };
}

/** Every resource type the simulator serves. */
export function builtinResources(): ResourceDef[] {
  const all = ['all'];
  return [
    def('', 'v1', 'namespaces', 'Namespace', false, { shortNames: ['ns'], subresources: ['status', 'finalize'] }),
    def('', 'v1', 'nodes', 'Node', false, { shortNames: ['no'], subresources: ['status'] }),
    def('', 'v1', 'pods', 'Pod', true, { shortNames: ['po'], categories: all,
      subresources: ['status', 'exec', 'portforward', 'attach', 'log', 'eviction', 'binding', 'ephemeralcontainers'] }),
    def('', 'v1', 'secrets', 'Secret', true),
    def('', 'v1', 'configmaps', 'ConfigMap', true, { shortNames: ['cm'] }),
    def('', 'v1', 'services', 'Service', true, { shortNames: ['svc'], categories: all, subresources: ['status'] }),
    def('', 'v1', 'endpoints', 'Endpoints', true, { shortNames: ['ep'], singular: 'endpoints' }),
    def('', 'v1', 'serviceaccounts', 'ServiceAccount', true, { shortNames: ['sa'] }),
    def('', 'v1', 'persistentvolumeclaims', 'PersistentVolumeClaim', true, { shortNames: ['pvc'], subresources: ['status'] }),
    def('', 'v1', 'persistentvolumes', 'PersistentVolume', false, { shortNames: ['pv'], subresources: ['status'] }),
    def('', 'v1', 'events', 'Event', true, { shortNames: ['ev'] }),
    def('', 'v1', 'resourcequotas', 'ResourceQuota', true, { shortNames: ['quota'], subresources: ['status'] }),
    def('', 'v1', 'limitranges', 'LimitRange', true, { shortNames: ['limits'] }),
    def('events.k8s.io', 'v1', 'events', 'Event', true, { shortNames: ['ev'] }),
    def('apps', 'v1', 'statefulsets', 'StatefulSet', true, { shortNames: ['sts'], categories: all, subresources: ['status', 'scale'] }),
    def('apps', 'v1', 'deployments', 'Deployment', true, { shortNames: ['deploy'], categories: all, subresources: ['status', 'scale'] }),
    def('apps', 'v1', 'replicasets', 'ReplicaSet', true, { shortNames: ['rs'], categories: all, subresources: ['status', 'scale'] }),
    def('apps', 'v1', 'controllerrevisions', 'ControllerRevision', true),
    def('policy', 'v1', 'poddisruptionbudgets', 'PodDisruptionBudget', true, { shortNames: ['pdb'], subresources: ['status'] }),
    def('batch', 'v1', 'jobs', 'Job', true, { categories: all, subresources: ['status'] }),
    def('batch', 'v1', 'cronjobs', 'CronJob', true, { shortNames: ['cj'], categories: all, subresources: ['status'] }),
    def('rbac.authorization.k8s.io', 'v1', 'roles', 'Role', true),
    def('rbac.authorization.k8s.io', 'v1', 'rolebindings', 'RoleBinding', true),
    def('rbac.authorization.k8s.io', 'v1', 'clusterroles', 'ClusterRole', false),
    def('rbac.authorization.k8s.io', 'v1', 'clusterrolebindings', 'ClusterRoleBinding', false),
    def('authorization.k8s.io', 'v1', 'selfsubjectaccessreviews', 'SelfSubjectAccessReview', false, { verbs: ['create'] }),
    def('coordination.k8s.io', 'v1', 'leases', 'Lease', true),
    def('storage.k8s.io', 'v1', 'storageclasses', 'StorageClass', false, { shortNames: ['sc'] }),
  ];
}

/** Verbs a subresource supports, as discovery reports them. */
export function subresourceVerbs(sub: string): string[] {
  switch (sub) {
    case 'status': case 'scale': case 'ephemeralcontainers': return ['get', 'patch', 'update'];
    case 'exec': case 'portforward': case 'attach': return ['create', 'get'];
    case 'log': return ['get'];
    case 'eviction': case 'binding': return ['create'];
    case 'finalize': return ['update'];
    default: return [];
  }
}

/** The verbs of a main resource. */
export function resourceVerbs(r: ResourceDef): string[] {
  return r.verbs ?? CRUD;
}

/** Finds the served type for a group, version and plural resource name. */
export function findResource(defs: ResourceDef[], group: string, version: string, resource: string): ResourceDef | undefined {
  return defs.find((d) => d.group === group && d.version === version && d.resource === resource);
}

/** "apps/v1" or "v1" for the core group. */
export function apiVersionOf(r: ResourceDef): string {
  return r.group ? `${r.group}/${r.version}` : r.version;
}
