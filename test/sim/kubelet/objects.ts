// The API objects the kubelet reads, as the simulated API server serves them: JSON typed with
// client-node's models (../json.ts), with what every served object has made required: a name and
// a uid, a namespace for namespaced kinds, a pod's spec, and the node of a pod bound to one.
import type { V1ObjectMeta, V1Pod, V1PodSpec, V1Service } from '@kubernetes/client-node';
import type { Json } from '../json.js';

/** Metadata of a namespaced object the API server serves. */
export type ServedMeta = Json<V1ObjectMeta> & { name: string; namespace: string; uid: string };

/** A Pod as the API server serves it. */
export type Pod = Json<V1Pod> & { metadata: ServedMeta; spec: Json<V1PodSpec> };

/** A Pod bound to a node (spec.nodeName set): the kind a PodWorker runs. */
export type BoundPod = Pod & { spec: { nodeName: string } };

/** A Service as the API server serves it. */
export type Service = Json<V1Service> & { metadata: ServedMeta };
