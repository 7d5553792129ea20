/** The journal's cluster copy (ConfigMapAccess, journal.ts) over the kube seam, retried while the API server is away. */
import { NotFoundError } from '../errors.js';
import type { KubeContext } from '../kube/client.js';
import { apiError, readOrUndefined } from '../kube/errors.js';
import { retrying } from '../kube/retry.js';
import type { ConfigMapAccess } from './journal.js';

/** ConfigMap reads and writes for the journal's cluster copy. */
export function kubeConfigMaps(kube: KubeContext): ConfigMapAccess {
  return {
    listConfigMaps: (namespace, labelSelector) => retrying(async () => {
      try {
        return (await kube.core.listNamespacedConfigMap({ namespace, labelSelector })).items.map((c) => c.metadata?.name ?? '').filter(Boolean);
      } catch (err) {
        throw apiError(err, `list configmaps in namespace "${namespace}"`);
      }
    }),
    readConfigMap: (namespace, name) => retrying(async () => {
      const cm = await readOrUndefined(() => kube.core.readNamespacedConfigMap({ name, namespace }), `get configmap "${name}" in namespace "${namespace}"`);
      return cm && (cm.data ?? {});
    }),
    writeConfigMap: (namespace, name, data, labels) => retrying(async () => {
      const body = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace, labels }, data };
      try {
        await kube.core.replaceNamespacedConfigMap({ name, namespace, body });
      } catch (err) {
        const e = apiError(err, `update configmap "${name}" in namespace "${namespace}"`);
        if (!(e instanceof NotFoundError)) throw e;
        try {
          await kube.core.createNamespacedConfigMap({ namespace, body });
        } catch (err2) {
          throw apiError(err2, `create configmap "${name}" in namespace "${namespace}"`);
        }
      }
    }),
    deleteConfigMap: (namespace, name) => retrying(async () => {
      try {
        await kube.core.deleteNamespacedConfigMap({ name, namespace });
      } catch (err) {
        const e = apiError(err, `delete configmap "${name}" in namespace "${namespace}"`);
        if (!(e instanceof NotFoundError)) throw e;
      }
    }),
  };
}
