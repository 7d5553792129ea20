// Objects every cluster starts with: the default namespaces with their "default" ServiceAccount
// and the user-facing ClusterRoles (cluster-admin, admin, edit, view).
// Differences from a real API server: the roles are short approximations of kube's bootstrap
// policy (view: get/list/watch on everything but secrets; edit: all verbs on everything but RBAC).
import type { V1PolicyRule } from '@kubernetes/client-node';
import type { ResourceDef } from './registry.js';
import { grOf, timestamp } from './rest.js';
import type { ObjectStore, StoredObject } from './store.js';
import { randomUUID } from 'node:crypto';
import { applyCreateDefaults } from './defaults.js';

const READ = ['get', 'list', 'watch'];

/** Creates the built-in objects that are missing (idempotent). */
export function seedCluster(store: ObjectStore, defs: ResourceDef[]): void {
  const def = (resource: string, group = '') => defs.find((d) => d.resource === resource && d.group === group)!;
  const ensure = (d: ResourceDef, obj: StoredObject) => {
    if (store.get(grOf(d), obj.metadata.namespace, obj.metadata.name)) return;
    obj.apiVersion = d.group ? `${d.group}/${d.version}` : d.version;
    obj.kind = d.kind;
    obj.metadata.uid = randomUUID();
    obj.metadata.creationTimestamp = timestamp(new Date());
    applyCreateDefaults(d, obj, () => 'None');
    store.put(grOf(d), obj);
  };
  for (const ns of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) {
    ensure(def('namespaces'), { metadata: { name: ns, labels: { 'kubernetes.io/metadata.name': ns } } });
    ensure(def('serviceaccounts'), { metadata: { name: 'default', namespace: ns } });
  }
  const rbac = 'rbac.authorization.k8s.io';
  const allGroups = ['', 'apps', 'batch', 'policy', 'coordination.k8s.io', 'storage.k8s.io', 'events.k8s.io'];
  const roles: Record<string, V1PolicyRule[]> = {
    'cluster-admin': [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }, { nonResourceURLs: ['*'], verbs: ['*'] }],
    admin: [{ apiGroups: [...allGroups, rbac], resources: ['*'], verbs: ['*'] }],
    edit: [{ apiGroups: allGroups, resources: ['*'], verbs: ['*'] }],
    view: [{ apiGroups: allGroups.filter(Boolean), resources: ['*'], verbs: READ },
      { apiGroups: [''], resources: ['pods', 'pods/log', 'pods/status', 'services', 'endpoints', 'configmaps', 'persistentvolumeclaims',
        'persistentvolumeclaims/status', 'serviceaccounts', 'events', 'namespaces', 'namespaces/status', 'nodes', 'persistentvolumes'], verbs: READ }],
  };
  for (const [name, rules] of Object.entries(roles)) {
    ensure(def('clusterroles', rbac), { metadata: { name, labels: { 'kubernetes.io/bootstrapping': 'rbac-defaults' } }, rules });
  }
}
