// PodDisruptionBudget manifests as restore saves them; types only from client-node, so this
// module loads without it (restore planning uses it before any cluster call).
import type { V1PodDisruptionBudget } from '@kubernetes/client-node';

/** A PDB without status and server-set metadata (uid, resourceVersion, managedFields, ...). */
export function portablePdb(pdb: V1PodDisruptionBudget): V1PodDisruptionBudget {
  const m = pdb.metadata ?? {};
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: { name: m.name, namespace: m.namespace, labels: m.labels, annotations: m.annotations },
    spec: pdb.spec,
  };
}
