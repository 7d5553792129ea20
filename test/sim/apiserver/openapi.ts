// Minimal OpenAPI documents. v3 (/openapi/v3 and one document per group version): for every
// served kind, a PATCH operation tagged with x-kubernetes-group-version-kind that lists the
// fieldValidation query parameter. kubectl reads exactly this to decide that the server validates
// fields itself, so `kubectl create -f` and `kubectl apply -f` of one object skip client-side
// schema validation. v2 (/openapi/v2, JSON or the gnostic protobuf kubectl asks for): the same
// paths and no definitions. kubectl always validates a `kind: List` on the client against v2 (it
// never sends fieldValidation for a List) and skips every kind that has no definition.
// Differences from a real API server: no schemas (components.schemas and definitions are empty),
// so kubectl does not catch unknown or mistyped fields of a List's items, and kubectl apply
// computes strategic merge patches from its compiled-in types; the fieldValidation parameter is
// accepted and ignored (unknown fields are stored as sent).
import { createHash } from 'node:crypto';
import { apiVersionOf, type ResourceDef } from './registry.js';

/** A query parameter as the v3 documents list it, and (V2Param) as the Swagger 2.0 document does. */
interface V3Param { name: string; in: string; description?: string; schema: { type: string; uniqueItems: boolean } }
interface V2Param { name: string; in: string; type: string; uniqueItems: boolean }

/** One operation of a path item, with the parameters of either document version. */
interface Operation<P> {
  operationId: string;
  'x-kubernetes-action': string;
  'x-kubernetes-group-version-kind': { group: string; version: string; kind: string };
  parameters: P[];
  responses: Record<string, { description: string }>;
}

/** Operations by HTTP method (get, put, post, patch, delete). */
type PathItem<P> = Record<string, Operation<P>>;

/** The OpenAPI v3 document of one group version. */
export interface OpenApiV3Doc {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, PathItem<V3Param>>;
  components: { schemas: Record<string, never> };
  'x-sim-group-version': string;
}

/** The Swagger 2.0 document. */
export interface OpenApiV2Doc {
  swagger: string;
  info: { title: string; version: string };
  paths: Record<string, PathItem<V2Param>>;
  definitions: Record<string, never>;
}

/** "api/v1" or "apis/apps/v1": the OpenAPI v3 path key of a group version. */
export function gvPath(d: { group: string; version: string }): string {
  return d.group ? `apis/${d.group}/${d.version}` : `api/${d.version}`;
}

/** The OpenAPI v3 document of one group version, or undefined. */
export function openApiV3Doc(defs: ResourceDef[], path: string): OpenApiV3Doc | undefined {
  const mine = defs.filter((d) => gvPath(d) === path);
  if (!mine.length) return undefined;
  const paths: Record<string, PathItem<V3Param>> = {};
  for (const d of mine) {
    const base = `/${gvPath(d)}/${d.namespaced ? 'namespaces/{namespace}/' : ''}${d.resource}/{name}`;
    const gvk = { group: d.group, version: d.version, kind: d.kind };
    const params: V3Param[] = [
      { name: 'fieldValidation', in: 'query', description: 'accepted and ignored by the simulator', schema: { type: 'string', uniqueItems: true } },
      { name: 'dryRun', in: 'query', schema: { type: 'string', uniqueItems: true } },
      { name: 'fieldManager', in: 'query', schema: { type: 'string', uniqueItems: true } },
    ];
    const op = (action: string): Operation<V3Param> => ({
      operationId: `${action}${d.kind}`, 'x-kubernetes-action': action, 'x-kubernetes-group-version-kind': gvk,
      parameters: params, responses: { '200': { description: 'OK' } },
    });
    paths[base] = { get: op('get'), put: op('put'), patch: op('patch'), delete: op('delete') };
    paths[base.replace('/{name}', '')] = { post: op('post'), get: op('list') };
  }
  return {
    openapi: '3.0.0', info: { title: 'Kubernetes', version: 'v1.32.0-sim' }, paths,
    components: { schemas: {} }, 'x-sim-group-version': apiVersionOf(mine[0]),
  };
}

/** GET /openapi/v3: the index of group-version documents. */
export function openApiV3Index(defs: ResourceDef[]): { paths: Record<string, { serverRelativeURL: string }> } {
  const paths: Record<string, { serverRelativeURL: string }> = {};
  for (const d of defs) {
    const p = gvPath(d);
    if (paths[p]) continue;
    const hash = createHash('sha512').update(JSON.stringify(openApiV3Doc(defs, p))).digest('hex').slice(0, 32).toUpperCase();
    paths[p] = { serverRelativeURL: `/openapi/v3/${p}?hash=${hash}` };
  }
  return { paths };
}

/** GET /openapi/v2 as JSON: a Swagger 2.0 document with the v3 documents' paths and no definitions. */
export function openApiV2Doc(defs: ResourceDef[]): OpenApiV2Doc {
  const paths: Record<string, PathItem<V2Param>> = {};
  for (const p of new Set(defs.map(gvPath))) {
    for (const [key, item] of Object.entries(openApiV3Doc(defs, p)!.paths)) { // p is the path of some def
      paths[key] = Object.fromEntries(Object.entries(item).map(([method, op]) => [method, {
        ...op, parameters: op.parameters.map((q) => ({ name: q.name, in: q.in, type: 'string', uniqueItems: true })),
      }]));
    }
  }
  return { swagger: '2.0', info: { title: 'Kubernetes', version: 'v1.32.0-sim' }, paths, definitions: {} };
}

// Protobuf encoding of the subset of gnostic's openapi_v2.Document that openApiV2Doc produces
// (field numbers from gnostic openapiv2/OpenAPIv2.proto).
type PbField = [num: number, value: string | boolean | Buffer | undefined];

function pbVarint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) { out.push((n & 0x7f) | 0x80); n = Math.floor(n / 128); }
  out.push(n);
  return Buffer.from(out);
}

function pbMessage(fields: PbField[]): Buffer {
  const parts: Buffer[] = [];
  for (const [num, value] of fields) {
    if (value === undefined || value === false) continue;
    if (value === true) { parts.push(pbVarint(num * 8), pbVarint(1)); continue; }
    const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    parts.push(pbVarint(num * 8 + 2), pbVarint(bytes.length), bytes);
  }
  return Buffer.concat(parts);
}

/** A vendor extension (NamedAny) whose value is YAML text, as gnostic stores it; JSON is YAML. */
function pbExtension(name: string, value: unknown): Buffer {
  return pbMessage([[1, name], [2, pbMessage([[2, `${JSON.stringify(value)}\n`]])]]);
}

function pbOperation(op: Operation<V2Param>): Buffer {
  const fields: PbField[] = [[5, op.operationId]];
  for (const q of op.parameters) {
    const query = pbMessage([[2, q.in], [4, q.name], [6, q.type], [20, q.uniqueItems]]);
    // ParametersItem.parameter → Parameter.non_body_parameter → NonBodyParameter.query_parameter_sub_schema
    fields.push([8, pbMessage([[1, pbMessage([[2, pbMessage([[3, query]])]])]])]);
  }
  const responses = Object.entries(op.responses).map(([code, r]): PbField =>
    [1, pbMessage([[1, code], [2, pbMessage([[1, pbMessage([[1, r.description]])]])]])]);
  fields.push([9, pbMessage(responses)]);
  for (const [k, v] of Object.entries(op)) if (k.startsWith('x-')) fields.push([13, pbExtension(k, v)]);
  return pbMessage(fields);
}

const PATH_ITEM_FIELDS: Record<string, number> = { get: 2, put: 3, post: 4, delete: 5, patch: 8 };

/** GET /openapi/v2 as application/com.github.proto-openapi.spec.v2@v1.0+protobuf (what kubectl asks for). */
export function openApiV2Protobuf(doc: OpenApiV2Doc): Buffer {
  const paths = Object.entries(doc.paths).map(([p, item]): PbField => [2, pbMessage([
    [1, p], [2, pbMessage(Object.entries(item).map(([m, op]): PbField => [PATH_ITEM_FIELDS[m], pbOperation(op)]))],
  ])]);
  return pbMessage([
    [1, doc.swagger],
    [2, pbMessage([[1, doc.info.title], [2, doc.info.version]])],
    [8, pbMessage(paths)],
    [9, pbMessage([])],
  ]);
}
