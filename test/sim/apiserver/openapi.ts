// Minimal OpenAPI v3 documents: for every served kind, a PATCH operation tagged with
// x-kubernetes-group-version-kind that lists the fieldValidation query parameter. kubectl reads
// exactly this to decide that the server validates fields itself, so `kubectl create -f` and
// `kubectl apply -f` skip client-side schema validation and need no full schema.
// Differences from a real API server: no schemas (components.schemas is empty), so kubectl apply
// computes strategic merge patches from its compiled-in types; /openapi/v2 answers 404 and the
// fieldValidation parameter is accepted and ignored (unknown fields are stored as sent).
import { createHash } from 'node:crypto';
import { apiVersionOf, type ResourceDef } from './registry.js';

/** "api/v1" or "apis/apps/v1": the OpenAPI v3 path key of a group version. */
export function gvPath(d: { group: string; version: string }): string {
  return d.group ? `apis/${d.group}/${d.version}` : `api/${d.version}`;
}

/** The OpenAPI v3 document of one group version, or undefined. */
export function openApiV3Doc(defs: ResourceDef[], path: string): any {
  const mine = defs.filter((d) => gvPath(d) === path);
  if (!mine.length) return undefined;
  const paths: Record<string, any> = {};
  for (const d of mine) {
    const base = `/${gvPath(d)}/${d.namespaced ? 'namespaces/{namespace}/' : ''}${d.resource}/{name}`;
    const gvk = { group: d.group, version: d.version, kind: d.kind };
    const params = [
      { name: 'fieldValidation', in: 'query', description: 'accepted and ignored by the simulator', schema: { type: 'string', uniqueItems: true } },
      { name: 'dryRun', in: 'query', schema: { type: 'string', uniqueItems: true } },
      { name: 'fieldManager', in: 'query', schema: { type: 'string', uniqueItems: true } },
    ];
    const op = (action: string) => ({
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
export function openApiV3Index(defs: ResourceDef[]): any {
  const paths: Record<string, any> = {};
  for (const d of defs) {
    const p = gvPath(d);
    if (paths[p]) continue;
    const hash = createHash('sha512').update(JSON.stringify(openApiV3Doc(defs, p))).digest('hex').slice(0, 32).toUpperCase();
    paths[p] = { serverRelativeURL: `/openapi/v3/${p}?hash=${hash}` };
  }
  return { paths };
}
