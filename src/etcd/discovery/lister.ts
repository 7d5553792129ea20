/**
 * Discovery over the live cluster: the pod lister discovery declares (select.ts), backed by the
 * kube seam, and the workload the usual target flags pick. Shared by backup, status and restore;
 * imported directly (not through index.ts) so that planning code does not load client-node.
 */
import type { V1StatefulSet } from '@kubernetes/client-node';
import type { KubeContext } from '../../kube/client.js';
import { apiError, readOrUndefined } from '../../kube/errors.js';
import { listPods } from '../../kube/pods.js';
import type { EtcdTopology } from '../topology.js';
import { discoverTopology } from './discover.js';
import type { EtcdPodLister, WorkloadSelection } from './select.js';

/** Lists etcd pods and StatefulSets through the API (discovery's lister). */
export function apiPodLister(kube: KubeContext): EtcdPodLister {
  return {
    listPods: (namespace, selector) => listPods(kube, namespace, selector),
    getStatefulSet: (namespace, name): Promise<V1StatefulSet | undefined> =>
      readOrUndefined(() => kube.apps.readNamespacedStatefulSet({ name, namespace }), `get statefulset "${name}" in namespace "${namespace}"`),
    async listStatefulSets(namespace) {
      try {
        return (await kube.apps.listNamespacedStatefulSet({ namespace })).items;
      } catch (err) {
        throw apiError(err, `list statefulsets in namespace "${namespace}"`);
      }
    },
  };
}

/** The etcd workload the target flags (--statefulset, --pod, -l, -c) pick in the context's namespace, read from the live pods. */
export function discoverTarget(kube: KubeContext, flags: Omit<WorkloadSelection, 'namespace'>): Promise<EtcdTopology> {
  return discoverTopology(apiPodLister(kube), {
    namespace: kube.namespace,
    statefulSet: flags.statefulSet,
    pod: flags.pod,
    selector: flags.selector,
    container: flags.container,
  });
}
