// Kubernetes objects as the simulator's components handle them: plain JSON, typed with
// @kubernetes/client-node's models. Those models describe objects after client-node's
// ObjectSerializer has turned timestamps into Date objects; the apiserver, kubelet and tools here
// never deserialize that way, so in these types every Date is the RFC 3339 string JSON carries.

/** client-node model T as JSON carries it: Date fields are RFC 3339 strings. */
export type Json<T> = T extends Date ? string
  : T extends readonly (infer U)[] ? Json<U>[]
  : T extends object ? { [K in keyof T]: Json<T[K]> }
  : T;

/** Json<T> as a client may send it, before validation: any field may be missing, at any depth. */
export type PartialJson<T> = T extends Date ? string
  : T extends readonly (infer U)[] ? PartialJson<U>[]
  : T extends object ? { [K in keyof T]?: PartialJson<T[K]> }
  : T;

/** Whether v is a JSON object (not null, not an array). */
export function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
