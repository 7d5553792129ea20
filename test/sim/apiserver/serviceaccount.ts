// The ServiceAccount admission plugin's part the simulator models (kube-apiserver
// plugin/pkg/admission/serviceaccount/admission.go, enabled by default): a pod without
// `serviceAccountName` gets "default" (v1's deprecated `serviceAccount` is read when only it is
// set, and mirrors the name afterwards); a pod naming a ServiceAccount that does not exist in its
// namespace is refused, 403:
//     pods "NAME" is forbidden: error looking up service account NS/SA: serviceaccount "SA" not found
// A controller's pod refused so becomes the owner's FailedCreate event (a Job whose ServiceAccount
// was created after it, for one), which is why an object's ServiceAccount must exist first.
// Differences from a real API server: no token volume (kube-api-access-*) is added and no token is
// issued (pods here cannot reach the API server); mountable-secrets enforcement and image pull
// secrets of the ServiceAccount are ignored.
import type { V1PodSpec } from '@kubernetes/client-node';
import type { PartialJson } from '../json.js';
import { ApiError } from './status.js';

/** Defaults and checks a new pod's ServiceAccount; `exists(name)` looks it up in the pod's namespace. */
export function admitServiceAccount(namespace: string, pod: string, spec: PartialJson<V1PodSpec> | undefined, exists: (name: string) => boolean, mirror = false): void {
  if (!spec) return;
  // A mirror pod (a kubelet's static pod) gets no ServiceAccount and may not name one (admission.go).
  if (mirror) {
    if (spec.serviceAccountName || spec.serviceAccount) throw new ApiError(403, 'Forbidden', `pods "${pod}" is forbidden: a mirror pod may not reference service accounts`, { name: pod, kind: 'pods' });
    return;
  }
  const name = spec.serviceAccountName || spec.serviceAccount || 'default';
  spec.serviceAccountName = name;
  spec.serviceAccount = name;
  if (!exists(name)) {
    throw new ApiError(403, 'Forbidden', `pods "${pod}" is forbidden: error looking up service account ${namespace}/${name}: serviceaccount "${name}" not found`, { name: pod, kind: 'pods' });
  }
}
