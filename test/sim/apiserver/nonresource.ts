// Routing of the authenticated non-resource paths: discovery (/api, /apis, group and group-version
// resource lists), /version and OpenAPI (/openapi/v2 as JSON or protobuf, /openapi/v3 and its
// per-group-version documents). Health paths are answered before authentication (requests.ts).
// Differences from a real API server: any other path is 404, /metrics and /logs included.
import type { ServerContext } from './context.js';
import { apiGroup, apiGroupList, apiResourceList, apiVersions, serverVersion } from './discovery.js';
import type { Reply } from './httpio.js';
import { openApiV2Doc, openApiV2Protobuf, openApiV3Doc, openApiV3Index } from './openapi.js';
import type { RequestInfo } from './requestinfo.js';
import { ApiError } from './status.js';

// kubectl asks for the first form; kube-openapi answers with the second (Go's mime parser rejects '@').
const OPENAPI_V2_PROTOBUF = ['application/com.github.proto-openapi.spec.v2@v1.0+protobuf', 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf'];

/** The answer for a non-resource path (whatever the method); 404 when nothing is served there. */
export function nonResourceReply(ctx: ServerContext, info: RequestInfo, accept: string): Reply {
  const { defs } = ctx;
  const p = info.path;
  if (p === '/openapi/v2') {
    const doc = openApiV2Doc(defs);
    if (!OPENAPI_V2_PROTOBUF.some((t) => accept.includes(t))) return { code: 200, body: doc };
    return { code: 200, body: undefined, raw: { contentType: OPENAPI_V2_PROTOBUF[1], bytes: openApiV2Protobuf(doc) } };
  }
  if (p === '/api') return { code: 200, body: apiVersions(`127.0.0.1:${ctx.opts.port}`) };
  if (p === '/apis') return { code: 200, body: apiGroupList(defs) };
  if (p === '/version') return { code: 200, body: serverVersion(ctx.serverVersion) };
  if (p === '/openapi/v3') return { code: 200, body: openApiV3Index(defs) };
  if (p.startsWith('/openapi/v3/')) {
    const doc = openApiV3Doc(defs, p.slice('/openapi/v3/'.length));
    if (doc) return { code: 200, body: doc };
  }
  let m = /^\/api\/([^/]+)$/.exec(p);
  if (m) { const l = apiResourceList(defs, '', m[1]); if (l) return { code: 200, body: l }; }
  m = /^\/apis\/([^/]+)$/.exec(p);
  if (m) { const g = apiGroup(defs, m[1]); if (g) return { code: 200, body: g }; }
  m = /^\/apis\/([^/]+)\/([^/]+)$/.exec(p);
  if (m) { const l = apiResourceList(defs, m[1], m[2]); if (l) return { code: 200, body: l }; }
  throw new ApiError(404, 'NotFound', 'the server could not find the requested resource', {});
}
