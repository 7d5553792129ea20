// Namespace lifecycle: a deleted namespace turns Terminating, everything in it is deleted (pods
// gracefully, so the kubelet stops them), and the namespace disappears once it is empty.
// Differences from a real API server: the namespace controller runs inside the API server on a
// timer; the "default" ServiceAccount is created with the namespace instead of by a controller.
import type { V1Namespace } from '@kubernetes/client-node';
import type { ResourceDef } from './registry.js';
import { grOf, timestamp, type ResourceApi, type SentObject } from './rest.js';
import type { Stored, StoredObject } from './store.js';

/** Marks a namespace Terminating (the first step of deleting it); returns it. */
export function startNamespaceDeletion(api: ResourceApi, name: string, now: Date, dryRun = false): StoredObject {
  const ns = api.get({ def: namespaceDef(), namespace: name, name, subresource: '' }) as Stored<V1Namespace>;
  if (ns.metadata.deletionTimestamp) return ns;
  ns.metadata.deletionTimestamp = timestamp(now);
  ns.metadata.deletionGracePeriodSeconds = 0;
  ns.status = { ...(ns.status ?? {}), phase: 'Terminating' };
  return api.store.put('/namespaces', ns, dryRun);
}

function namespaceDef(): ResourceDef {
  return { group: '', version: 'v1', resource: 'namespaces', singular: 'namespace', kind: 'Namespace', namespaced: false, subresources: [] };
}

/** Deletes the contents of every Terminating namespace, and each namespace once it is empty. */
export function finalizeNamespaces(api: ResourceApi, defs: ResourceDef[]): void {
  for (const ns of api.store.list('/namespaces')) {
    if (!ns.metadata.deletionTimestamp) continue;
    const name = ns.metadata.name;
    let remaining = 0;
    for (const def of defs.filter((d) => d.namespaced)) {
      for (const obj of api.store.list(grOf(def), name)) {
        remaining++;
        if (obj.metadata.deletionTimestamp) continue;
        try { api.delete({ def, namespace: name, name: obj.metadata.name, subresource: '' }, {}); } catch { /* gone meanwhile */ }
      }
    }
    if (remaining === 0) api.store.remove('/namespaces', undefined, name);
  }
}

/** Objects every new namespace gets: its "default" ServiceAccount. */
export function namespaceDefaults(name: string): { def: ResourceDef; obj: SentObject }[] {
  const def: ResourceDef = { group: '', version: 'v1', resource: 'serviceaccounts', singular: 'serviceaccount', kind: 'ServiceAccount', namespaced: true, subresources: [] };
  return [{ def, obj: { metadata: { name: 'default', namespace: name } } }];
}
