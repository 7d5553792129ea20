// Just enough Kubernetes protobuf decoding for the request bodies kubectl's typed clients send as
// application/vnd.kubernetes.protobuf: SelfSubjectAccessReview (kubectl auth can-i),
// Eviction / DeleteOptions (kubectl drain), the objects of `kubectl create namespace |
// configmap | secret | serviceaccount | pdb` (ObjectMeta: name, generateName, namespace, labels,
// annotations, finalizers; policy/v1 PodDisruptionBudget spec: minAvailable, maxUnavailable,
// selector, unhealthyPodEvictionPolicy), and the batch/v1 Job of `kubectl create job
// --from=cronjob/CJ` (kubectl 1.32+), which protobuf-job.ts's tables decode into the exact JSON the
// client would have sent (the Job's ObjectMeta, JobSpec and JobStatus, and the pod template a
// backup CronJob uses). Responses are always JSON, which client-go accepts.
// Differences from a real API server: a protobuf body of any other kind is answered 415; the kinds
// above other than Job drop the fields they do not read, while a Job carrying a field number the
// tables do not know, at any depth, is refused (415, naming the message and the field number).
import { jobToJson } from './protobuf-job.js';

interface Field { num: number; wire: number; value: Buffer | number }

function varint(buf: Buffer, pos: number): [number, number] {
  let result = 0;
  let shift = 0;
  for (;;) {
    if (pos >= buf.length) throw new Error('truncated protobuf varint');
    const b = buf[pos++];
    result += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if (!(b & 0x80)) return [result, pos];
  }
}

/** Splits a protobuf message into its fields. */
export function decodeFields(buf: Buffer): Field[] {
  const out: Field[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const [key, p1] = varint(buf, pos);
    const num = Math.floor(key / 8);
    const wire = key & 7;
    pos = p1;
    if (wire === 0) { const [v, p2] = varint(buf, pos); out.push({ num, wire, value: v }); pos = p2; }
    else if (wire === 2) { const [len, p2] = varint(buf, pos); out.push({ num, wire, value: buf.subarray(p2, p2 + len) }); pos = p2 + len; }
    else if (wire === 1) { out.push({ num, wire, value: buf.subarray(pos, pos + 8) }); pos += 8; }
    else if (wire === 5) { out.push({ num, wire, value: buf.subarray(pos, pos + 4) }); pos += 4; }
    else throw new Error(`unsupported protobuf wire type ${wire}`);
  }
  return out;
}

function str(fields: Field[], num: number): string | undefined {
  const f = fields.find((x) => x.num === num && Buffer.isBuffer(x.value));
  return f ? (f.value as Buffer).toString('utf8') : undefined;
}

function sub(fields: Field[], num: number): Field[] | undefined {
  const f = fields.find((x) => x.num === num && Buffer.isBuffer(x.value));
  return f ? decodeFields(f.value as Buffer) : undefined;
}

function strings(fields: Field[], num: number): string[] {
  return fields.filter((x) => x.num === num && Buffer.isBuffer(x.value)).map((x) => (x.value as Buffer).toString('utf8'));
}

/** A map<string, string> (or map<string, bytes> as base64, as JSON carries bytes) field. */
function stringMap(fields: Field[], num: number, bytes = false): Record<string, string> | undefined {
  const entries = fields.filter((x) => x.num === num && Buffer.isBuffer(x.value)).map((x) => decodeFields(x.value as Buffer));
  if (!entries.length) return undefined;
  return Object.fromEntries(entries.map((e) => {
    const v = e.find((x) => x.num === 2 && Buffer.isBuffer(x.value))?.value as Buffer | undefined;
    return [str(e, 1) ?? '', bytes ? (v ?? Buffer.alloc(0)).toString('base64') : (v ?? Buffer.alloc(0)).toString('utf8')];
  }));
}

function flag(fields: Field[], num: number): boolean | undefined {
  const f = fields.find((x) => x.num === num && x.wire === 0);
  return f ? f.value !== 0 : undefined;
}

/** The JSON of the ObjectMeta fields a client sets on create. */
function objectMeta(fields: Field[]) {
  const finalizers = strings(fields, 14);
  return withoutUndefined({
    name: nonEmpty(str(fields, 1)), generateName: nonEmpty(str(fields, 2)), namespace: nonEmpty(str(fields, 3)),
    labels: stringMap(fields, 11), annotations: stringMap(fields, 12), finalizers: finalizers.length ? finalizers : undefined,
  });
}

/** An IntOrString (type 1: 0 int, 1 string; intVal 2; strVal 3) as JSON carries it: a number or a string. */
function intOrString(fields: Field[] | undefined): number | string | undefined {
  if (!fields) return undefined;
  const type = fields.find((x) => x.num === 1 && x.wire === 0)?.value ?? 0;
  if (type === 1) return str(fields, 3) ?? '';
  return (fields.find((x) => x.num === 2 && x.wire === 0)?.value as number | undefined) ?? 0; // (negative values, invalid here, are not decoded)
}

/** A metav1.LabelSelector (matchLabels 1, matchExpressions 2: key 1, operator 2, values 3). */
function labelSelector(fields: Field[] | undefined) {
  if (!fields) return undefined;
  const expressions = fields.filter((x) => x.num === 2 && Buffer.isBuffer(x.value)).map((x) => {
    const e = decodeFields(x.value as Buffer);
    const values = strings(e, 3);
    return withoutUndefined({ key: str(e, 1) ?? '', operator: str(e, 2) ?? '', values: values.length ? values : undefined });
  });
  const labels = stringMap(fields, 1);
  return withoutUndefined({ matchLabels: labels, matchExpressions: expressions.length ? expressions : undefined });
}

/** Go marshals every string field, set or not; JSON omits the empty ones. */
function nonEmpty(v: string | undefined): string | undefined {
  return v === '' ? undefined : v;
}

function withoutUndefined<T extends Record<string, unknown>>(o: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as { [K in keyof T]?: Exclude<T[K], undefined> };
}

const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

/** Decodes a k8s protobuf envelope into {apiVersion, kind, raw}. */
export function decodeEnvelope(buf: Buffer): { apiVersion: string; kind: string; raw: Buffer } {
  if (buf.length < 4 || !buf.subarray(0, 4).equals(MAGIC)) throw new Error('not a Kubernetes protobuf message');
  const unknown = decodeFields(buf.subarray(4));
  const typeMeta = sub(unknown, 1) ?? [];
  const raw = unknown.find((f) => f.num === 2)?.value;
  return { apiVersion: str(typeMeta, 1) ?? '', kind: str(typeMeta, 2) ?? '', raw: Buffer.isBuffer(raw) ? raw : Buffer.alloc(0) };
}

/** The JSON form of a protobuf request body, for the few kinds the simulator understands; undefined otherwise. */
export function protobufToJson(buf: Buffer): Record<string, unknown> | undefined {
  const env = decodeEnvelope(buf);
  const msg = decodeFields(env.raw);
  if (env.kind === 'SelfSubjectAccessReview') {
    const spec = sub(msg, 2) ?? [];
    const ra = sub(spec, 1);
    const nra = sub(spec, 2);
    const reviewSpec: Record<string, unknown> = {};
    const out = { apiVersion: env.apiVersion, kind: env.kind, metadata: {}, spec: reviewSpec };
    if (ra) {
      reviewSpec.resourceAttributes = Object.fromEntries(Object.entries({
        namespace: str(ra, 1), verb: str(ra, 2), group: str(ra, 3), version: str(ra, 4), resource: str(ra, 5), subresource: str(ra, 6), name: str(ra, 7),
      }).filter(([, v]) => v !== undefined));
    }
    if (nra) reviewSpec.nonResourceAttributes = { path: str(nra, 1), verb: str(nra, 2) };
    return out;
  }
  if (env.kind === 'Eviction') {
    const meta = sub(msg, 1) ?? [];
    return { apiVersion: env.apiVersion, kind: env.kind, metadata: { name: str(meta, 1), namespace: str(meta, 3) } };
  }
  const head = { apiVersion: env.apiVersion, kind: env.kind };
  if (env.apiVersion === 'v1' && env.kind === 'ConfigMap') {
    return withoutUndefined({ ...head, metadata: objectMeta(sub(msg, 1) ?? []), data: stringMap(msg, 2), binaryData: stringMap(msg, 3, true), immutable: flag(msg, 4) });
  }
  if (env.apiVersion === 'v1' && env.kind === 'Secret') {
    return withoutUndefined({ ...head, metadata: objectMeta(sub(msg, 1) ?? []), data: stringMap(msg, 2, true), type: nonEmpty(str(msg, 3)),
      stringData: stringMap(msg, 4), immutable: flag(msg, 5) });
  }
  if (env.apiVersion === 'v1' && env.kind === 'Namespace') {
    const finalizers = strings(sub(msg, 2) ?? [], 1);
    return { ...head, metadata: objectMeta(sub(msg, 1) ?? []), spec: finalizers.length ? { finalizers } : {} };
  }
  if (env.apiVersion === 'v1' && env.kind === 'ServiceAccount') {
    return { ...head, metadata: objectMeta(sub(msg, 1) ?? []) };
  }
  if (env.apiVersion === 'policy/v1' && env.kind === 'PodDisruptionBudget') {
    const spec = sub(msg, 2) ?? [];
    return { ...head, metadata: objectMeta(sub(msg, 1) ?? []), spec: withoutUndefined({
      minAvailable: intOrString(sub(spec, 1)), selector: labelSelector(sub(spec, 2)), maxUnavailable: intOrString(sub(spec, 3)),
      unhealthyPodEvictionPolicy: nonEmpty(str(spec, 4)),
    }) };
  }
  if (env.apiVersion === 'batch/v1' && env.kind === 'Job') return jobToJson(env.raw); // throws on a field its tables do not know
  if (env.kind === 'DeleteOptions') {
    const grace = msg.find((f) => f.num === 1 && f.wire === 0)?.value as number | undefined;
    const propagation = str(msg, 6);
    return { kind: 'DeleteOptions', ...(grace !== undefined ? { gracePeriodSeconds: grace } : {}), ...(propagation ? { propagationPolicy: propagation } : {}) };
  }
  return undefined;
}
