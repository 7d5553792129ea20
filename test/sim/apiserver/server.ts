// The simulated kube-apiserver's HTTP layer: authentication, authorization, audit, routing of
// discovery, OpenAPI, health and resource requests, and hand-off of pod streams.
// Differences from a real API server: HTTP/1.1 only (no HTTP/2), JSON only (no protobuf or CBOR;
// a request body in another format gets 415); no admission webhooks, quotas or priority and
// fairness; HEAD is answered like GET without a body.
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeAudit } from './audit.js';
import { authorize, forbiddenMessage, TokenFile, type UserInfo } from './auth.js';
import { apiGroup, apiGroupList, apiResourceList, apiVersions, SERVER_VERSION } from './discovery.js';
import { finalizeNamespaces, namespaceDefaults, startNamespaceDeletion } from './namespaces.js';
import { openApiV2Doc, openApiV2Protobuf, openApiV3Doc, openApiV3Index } from './openapi.js';
import { builtinResources, findResource, type ResourceDef } from './registry.js';
import { protobufToJson } from './protobuf.js';
import { parseRequestInfo, type RequestInfo } from './requestinfo.js';
import { ResourceApi, type Target } from './rest.js';
import { ApiError, badRequest, methodNotAllowed, statusBody, unsupportedMediaType, conflict } from './status.js';
import type { ObjectStore } from './store.js';
import { evictPod, getScale, selfSubjectAccessReview, updateScale } from './subresources.js';
import { toTable, wantsTable } from './table.js';
import { serveWatch } from './watch.js';

/** What the pod stream handler (podstreams.ts, another module) receives. */
export interface PodStreamContext {
  kind: 'exec' | 'attach' | 'portforward' | 'log';
  req: IncomingMessage;
  res?: ServerResponse;
  socket?: Duplex;
  head?: Buffer;
  namespace: string;
  pod: any;
  query: URLSearchParams;
  dir: string;
  user: string;
  sendStatus(code: number, reason: string, message: string): void;
}

/** Everything the server needs, passed in. */
export interface ApiServerOptions {
  dir: string;
  port: number;
  cert: string;
  key: string;
  store: ObjectStore;
}

interface Reply { code: number; body: any; raw?: { contentType: string; bytes: Buffer } }

// kubectl asks for the first form; kube-openapi answers with the second (Go's mime parser rejects '@').
const OPENAPI_V2_PROTOBUF = ['application/com.github.proto-openapi.spec.v2@v1.0+protobuf', 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf'];

const STREAM_KINDS = new Set(['exec', 'attach', 'portforward', 'log']);

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function parseJson(buf: Buffer, contentType: string): any {
  if (!buf.length) return undefined;
  const type = contentType.split(';')[0].trim().toLowerCase();
  if (type === 'application/vnd.kubernetes.protobuf') {
    let decoded: any;
    try { decoded = protobufToJson(buf); } catch { /* not decodable: 415 below */ }
    if (decoded) return decoded;
    throw unsupportedMediaType(type);
  }
  if (type && !type.includes('json')) throw unsupportedMediaType(type);
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch (err) {
    throw badRequest(`the request body could not be decoded: ${(err as Error).message}`);
  }
}

/** The API server: an HTTPS server plus the namespace finalizer loop; call close() to stop both. */
export function createApiServer(opts: ApiServerOptions): { server: Server; close(): Promise<void> } {
  const defs = builtinResources();
  const api = new ResourceApi(opts.store);
  const tokens = new TokenFile(join(opts.dir, 'tokens.csv'));
  const auditFile = join(opts.dir, 'audit.log');
  const server = createServer({ cert: opts.cert, key: opts.key });

  const authenticate = (req: IncomingMessage): UserInfo | undefined => {
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    return m ? tokens.authenticate(m[1]) : undefined;
  };

  const sendJson = (res: ServerResponse, code: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(code, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', 'Content-Length': Buffer.byteLength(text) });
    res.end(res.req.method === 'HEAD' ? undefined : text);
  };

  const nonResource = (info: RequestInfo, accept: string): Reply => {
    const p = info.path;
    if (p === '/openapi/v2') {
      const doc = openApiV2Doc(defs);
      if (!OPENAPI_V2_PROTOBUF.some((t) => accept.includes(t))) return { code: 200, body: doc };
      return { code: 200, body: undefined, raw: { contentType: OPENAPI_V2_PROTOBUF[1], bytes: openApiV2Protobuf(doc) } };
    }
    if (p === '/api') return { code: 200, body: apiVersions(`127.0.0.1:${opts.port}`) };
    if (p === '/apis') return { code: 200, body: apiGroupList(defs) };
    if (p === '/version') return { code: 200, body: SERVER_VERSION };
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
  };

  const checkAccess = (user: UserInfo, info: RequestInfo, def: ResourceDef) => {
    const attrs = { verb: info.verb, apiGroup: info.apiGroup, resource: info.resource, subresource: info.subresource,
      namespace: def.namespaced ? info.namespace : '', name: info.name };
    if (!authorize(opts.store, user, attrs)) {
      throw new ApiError(403, 'Forbidden', forbiddenMessage(user, attrs), { name: info.name || undefined, group: info.apiGroup, kind: info.resource });
    }
  };

  const resolve = (info: RequestInfo): ResourceDef => {
    const def = findResource(defs, info.apiGroup, info.apiVersion, info.resource);
    if (!def) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource', {});
    if (info.subresource && !def.subresources.includes(info.subresource)) {
      throw new ApiError(404, 'NotFound', 'the server could not find the requested resource', {});
    }
    return def;
  };

  const resourceRequest = (req: IncomingMessage, user: UserInfo, info: RequestInfo, def: ResourceDef, body: any, query: URLSearchParams): Reply => {
    const t: Target = { def, namespace: info.namespace, name: info.name, subresource: info.subresource };
    const dryRun = query.getAll('dryRun').includes('All');
    const ctype = String(req.headers['content-type'] ?? 'application/json');
    const table = wantsTable(req.headers.accept);
    if (def.namespaced && !info.namespace && !['list', 'watch'].includes(info.verb)) {
      throw new ApiError(404, 'NotFound', 'the server could not find the requested resource', {});
    }
    if (def.resource === 'selfsubjectaccessreviews') {
      if (info.verb !== 'create') throw methodNotAllowed();
      return { code: 201, body: selfSubjectAccessReview(api, user, body) };
    }
    const sub = info.subresource;
    if (sub === 'scale') {
      if (info.verb === 'get') return { code: 200, body: getScale(api, t) };
      if (info.verb === 'update') return { code: 200, body: updateScale(api, t, body, undefined, dryRun) };
      if (info.verb === 'patch') return { code: 200, body: updateScale(api, t, body, ctype, dryRun) };
      throw methodNotAllowed();
    }
    if (sub === 'eviction') {
      if (info.verb !== 'create') throw methodNotAllowed();
      return { code: 201, body: evictPod(api, t, body, dryRun) };
    }
    if (sub === 'binding') {
      if (info.verb !== 'create') throw methodNotAllowed();
      const pod = api.get({ ...t, subresource: '' });
      if (pod.spec.nodeName) throw conflict('', 'pods', t.name);
      pod.spec.nodeName = body?.target?.name;
      api.store.put('/pods', pod, dryRun);
      return { code: 201, body: statusBody(201, '', '') };
    }
    if (sub && !['status', 'finalize'].includes(sub)) throw methodNotAllowed();
    switch (info.verb) {
      case 'get': {
        const obj = api.get(t);
        return { code: 200, body: table ? toTable(def, [obj], obj.metadata.resourceVersion) : obj };
      }
      case 'list': {
        const list = api.list(t, query);
        return { code: 200, body: table ? toTable(def, list.items, list.metadata.resourceVersion) : list };
      }
      case 'create': {
        if (sub) throw methodNotAllowed();
        if (def.resource === 'namespaces') t.namespace = '';
        const created = api.create(t, body, dryRun);
        if (def.resource === 'namespaces' && !dryRun) {
          for (const d of namespaceDefaults(created.metadata.name)) {
            try { api.create({ def: d.def, namespace: created.metadata.name, name: '', subresource: '' }, d.obj); } catch { /* exists */ }
          }
        }
        return { code: 201, body: created };
      }
      case 'update':
        if (sub === 'finalize') {
          const ns = api.get({ ...t, subresource: '' });
          ns.spec = body?.spec ?? ns.spec;
          return { code: 200, body: api.store.put('/namespaces', ns, dryRun) };
        }
        return { code: 200, body: api.update(t, body, dryRun) };
      case 'patch':
        if (ctype.startsWith('application/apply-patch')) throw unsupportedMediaType(ctype.split(';')[0]);
        return { code: 200, body: api.patch(t, body, ctype, dryRun) };
      case 'delete': {
        if (sub) throw methodNotAllowed();
        const options = { ...(body ?? {}) };
        if (query.has('gracePeriodSeconds')) options.gracePeriodSeconds = Number(query.get('gracePeriodSeconds'));
        const out = def.resource === 'namespaces' ? startNamespaceDeletion(api, t.name, new Date(), dryRun) : api.delete(t, options, dryRun);
        const stillThere = api.store.get(`${def.group}/${def.resource}`, def.namespaced ? t.namespace : undefined, t.name);
        if (def.resource === 'namespaces') setImmediate(() => finalizeNamespaces(api, defs));
        return { code: stillThere && !dryRun ? 202 : 200, body: out };
      }
      case 'deletecollection': {
        const options = { ...(body ?? {}) };
        if (query.has('gracePeriodSeconds')) options.gracePeriodSeconds = Number(query.get('gracePeriodSeconds'));
        return { code: 200, body: api.deleteCollection(t, query, options, dryRun) };
      }
      default:
        throw methodNotAllowed();
    }
  };

  const loadPodStreams = async (): Promise<((ctx: PodStreamContext) => Promise<void>) | undefined> => {
    const url = new URL('./podstreams.ts', import.meta.url);
    if (!existsSync(fileURLToPath(url))) return undefined;
    const mod = await import(url.href);
    return mod.handlePodStream;
  };

  const podStream = async (req: IncomingMessage, user: UserInfo, info: RequestInfo, query: URLSearchParams,
    res: ServerResponse | undefined, socket: Duplex | undefined, head: Buffer | undefined, sendStatus: PodStreamContext['sendStatus']) => {
    const def = resolve(info);
    if (info.resource !== 'pods' || !STREAM_KINDS.has(info.subresource)) throw new ApiError(400, 'BadRequest', 'upgrade requests are only served for pod streams');
    checkAccess(user, info, def);
    const pod = api.get({ def, namespace: info.namespace, name: info.name, subresource: '' });
    const handler = await loadPodStreams();
    if (!handler) throw new ApiError(501, 'NotImplemented', 'pod streams are not available in this simulator build');
    await handler({ kind: info.subresource as PodStreamContext['kind'], req, res, socket, head, namespace: info.namespace, pod, query,
      dir: opts.dir, user: user.name, sendStatus });
  };

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'https://127.0.0.1');
      const path = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, '') : url.pathname;
      const query = url.searchParams;
      const info = parseRequestInfo(req.method ?? 'GET', path, query);
      let userName = 'system:anonymous';
      // Audit before the last bytes leave: a client that saw its answer must find its line in the
      // log (writing on 'finish' raced with fast clients such as a kubectl that exits at once).
      let audited = false;
      const audit = () => {
        if (audited) return;
        audited = true;
        writeAudit(auditFile, userName, info, res.statusCode);
      };
      const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
      res.end = ((...args: unknown[]) => {
        audit();
        return end(...args);
      }) as typeof res.end;
      res.on('close', audit);
      try {
        if (['/healthz', '/readyz', '/livez'].includes(path)) {
          res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
          res.end('ok');
          return;
        }
        const user = authenticate(req);
        if (!user) throw new ApiError(401, 'Unauthorized', 'Unauthorized');
        userName = user.name;
        if (!info.isResource) {
          const r = nonResource(info, String(req.headers.accept ?? ''));
          if (r.raw) {
            res.writeHead(r.code, { 'Content-Type': r.raw.contentType, 'Cache-Control': 'no-cache, private', 'Content-Length': r.raw.bytes.length });
            res.end(req.method === 'HEAD' ? undefined : r.raw.bytes);
            return;
          }
          sendJson(res, r.code, r.body);
          return;
        }
        if (info.resource === 'pods' && STREAM_KINDS.has(info.subresource) && req.method === 'GET') {
          const sendStatus = (code: number, reason: string, message: string) => sendJson(res, code, statusBody(code, reason, message));
          if (info.subresource !== 'log') info.verb = 'create';
          else info.verb = 'get';
          await podStream(req, user, info, query, res, undefined, undefined, sendStatus);
          return;
        }
        const def = resolve(info);
        checkAccess(user, info, def);
        if (info.verb === 'watch') {
          serveWatch(res, opts.store, def, info.namespace, query, wantsTable(req.headers.accept));
          return;
        }
        const raw = ['POST', 'PUT', 'PATCH', 'DELETE'].includes(req.method ?? '') ? await readBody(req) : Buffer.alloc(0);
        const ctype = String(req.headers['content-type'] ?? 'application/json');
        if (ctype.startsWith('application/apply-patch')) throw unsupportedMediaType(ctype.split(';')[0]);
        const body = parseJson(raw, ctype);
        const r = resourceRequest(req, user, info, def, body, query);
        sendJson(res, r.code, r.body);
      } catch (err) {
        const e = err instanceof ApiError ? err : new ApiError(500, 'InternalError', `Internal error occurred: ${(err as Error).message}`);
        if (!(err instanceof ApiError)) console.error(err);
        if (res.headersSent) { res.end(); return; }
        sendJson(res, e.code, e.toStatus());
      }
    })();
  });

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'https://127.0.0.1');
      const query = url.searchParams;
      const info = parseRequestInfo('GET', url.pathname, query);
      info.verb = info.subresource === 'log' ? 'get' : 'create';
      let userName = 'system:anonymous';
      let answered = false;
      const sendStatus = (code: number, reason: string, message: string) => {
        if (answered) return;
        answered = true;
        const text = JSON.stringify(statusBody(code, reason, message));
        writeAudit(auditFile, userName, info, code);
        socket.end(`HTTP/1.1 ${code} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`);
      };
      try {
        const user = authenticate(req);
        if (!user) throw new ApiError(401, 'Unauthorized', 'Unauthorized');
        userName = user.name;
        await podStream(req, user, info, query, undefined, socket, head, sendStatus);
        if (!answered) writeAudit(auditFile, userName, info, 101);
      } catch (err) {
        const e = err instanceof ApiError ? err : new ApiError(500, 'InternalError', `Internal error occurred: ${(err as Error).message}`);
        sendStatus(e.code, e.reason, e.message);
      }
    })();
  });

  const timer = setInterval(() => finalizeNamespaces(api, defs), 500);
  return {
    server,
    close: () => new Promise<void>((done) => {
      clearInterval(timer);
      server.close(() => done());
      server.closeAllConnections();
    }),
  };
}
