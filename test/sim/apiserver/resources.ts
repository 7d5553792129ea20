// Resource requests once authenticated: resolving the served type (404 for an unknown type or
// subresource), RBAC authorization (403), and the answer per subresource (scale, eviction,
// binding, ephemeralcontainers; status and finalize as updates) and per verb over the REST layer (rest.ts). A new
// namespace gets its default objects; deleting a namespace starts its finalization.
// Watches and pod streams are routed elsewhere (requests.ts, streamroutes.ts).
// Differences from a real API server: admission is only what rest.ts runs on pod create
// (LimitRanger, PodSecurity, ResourceQuota) and workload create and update (PodSecurity's warn
// and audit); no webhooks; no priority and fairness; server-side apply (application/apply-patch) is answered 415.
import type { IncomingMessage } from 'node:http';
import type { V1Binding, V1Namespace, V1Pod } from '@kubernetes/client-node';
import type { PartialJson } from '../json.js';
import { authorize, forbiddenMessage, type UserInfo } from './auth.js';
import type { ServerContext } from './context.js';
import type { Reply } from './httpio.js';
import type { AdmissionNotes } from './podsecurity.js';
import { updateEphemeralContainers } from './ephemeralcontainers.js';
import { finalizeNamespaces, namespaceDefaults, startNamespaceDeletion } from './namespaces.js';
import { findResource, type ResourceDef } from './registry.js';
import type { RequestInfo } from './requestinfo.js';
import type { DeleteOptions, Target } from './rest.js';
import { ApiError, conflict, methodNotAllowed, statusBody, unsupportedMediaType } from './status.js';
import type { Stored } from './store.js';
import { evictPod, getScale, selfSubjectAccessReview, updateScale } from './subresources.js';
import { toTable, wantsTable } from './table.js';

/** A resolved and authorized resource request, with its decoded body. */
interface ResourceCall {
  user: UserInfo;
  info: RequestInfo;
  def: ResourceDef;
  t: Target;
  body: unknown;
  query: URLSearchParams;
  /** The request's Content-Type (application/json when it has none). */
  ctype: string;
  dryRun: boolean;
  /** Whether the client asked for a meta.k8s.io Table. */
  table: boolean;
  /** Where admission records warnings and audit annotations. */
  notes: AdmissionNotes;
}

function notFound(): ApiError {
  return new ApiError(404, 'NotFound', 'the server could not find the requested resource', {});
}

/** The served type a resource request addresses; 404 for an unknown type or subresource. */
export function resolveResource(ctx: ServerContext, info: RequestInfo): ResourceDef {
  const def = findResource(ctx.defs, info.apiGroup, info.apiVersion, info.resource);
  if (!def) throw notFound();
  if (info.subresource && !def.subresources.includes(info.subresource)) throw notFound();
  return def;
}

/** Throws 403 Forbidden unless RBAC lets user make the request. */
export function checkAccess(ctx: ServerContext, user: UserInfo, info: RequestInfo, def: ResourceDef): void {
  const attrs = { verb: info.verb, apiGroup: info.apiGroup, resource: info.resource, subresource: info.subresource,
    namespace: def.namespaced ? info.namespace : '', name: info.name };
  if (!authorize(ctx.opts.store, user, attrs)) {
    throw new ApiError(403, 'Forbidden', forbiddenMessage(user, attrs), { name: info.name || undefined, group: info.apiGroup, kind: info.resource });
  }
}

/** The answer to a resource request (other than a watch or a pod stream) that resolveResource and checkAccess passed. */
export function resourceReply(ctx: ServerContext, req: IncomingMessage, user: UserInfo, info: RequestInfo, def: ResourceDef,
  body: unknown, query: URLSearchParams, notes: AdmissionNotes): Reply {
  const c: ResourceCall = {
    user, info, def, body, query, notes,
    t: { def, namespace: info.namespace, name: info.name, subresource: info.subresource },
    dryRun: query.getAll('dryRun').includes('All'),
    ctype: String(req.headers['content-type'] ?? 'application/json'),
    table: wantsTable(req.headers.accept),
  };
  if (def.namespaced && !info.namespace && !['list', 'watch'].includes(info.verb)) throw notFound();
  if (def.resource === 'selfsubjectaccessreviews') {
    if (info.verb !== 'create') throw methodNotAllowed();
    return { code: 201, body: selfSubjectAccessReview(ctx.api, user, body) };
  }
  const sub = info.subresource;
  if (sub === 'scale') return scaleReply(ctx, c);
  if (sub === 'eviction') return evictionReply(ctx, c);
  if (sub === 'binding') return bindingReply(ctx, c);
  if (sub === 'ephemeralcontainers') return ephemeralContainersReply(ctx, c);
  if (sub && !['status', 'finalize'].includes(sub)) throw methodNotAllowed();
  return verbReply(ctx, c);
}

function scaleReply(ctx: ServerContext, c: ResourceCall): Reply {
  if (c.info.verb === 'get') return { code: 200, body: getScale(ctx.api, c.t) };
  if (c.info.verb === 'update') return { code: 200, body: updateScale(ctx.api, c.t, c.body, undefined, c.dryRun) };
  if (c.info.verb === 'patch') return { code: 200, body: updateScale(ctx.api, c.t, c.body, c.ctype, c.dryRun) };
  throw methodNotAllowed();
}

function evictionReply(ctx: ServerContext, c: ResourceCall): Reply {
  if (c.info.verb !== 'create') throw methodNotAllowed();
  return { code: 201, body: evictPod(ctx.api, c.t, c.body, c.dryRun) };
}

/** pods/ephemeralcontainers: GET the pod; PUT or PATCH adds ephemeral containers (ephemeralcontainers.ts). */
function ephemeralContainersReply(ctx: ServerContext, c: ResourceCall): Reply {
  const t = c.t;
  if (c.info.verb === 'get') return { code: 200, body: ctx.api.get({ ...t, subresource: '' }) };
  if (c.info.verb === 'update') return { code: 200, body: updateEphemeralContainers(ctx.api, t, c.body, undefined, c.dryRun, c.notes) };
  if (c.info.verb === 'patch') return { code: 200, body: updateEphemeralContainers(ctx.api, t, c.body, c.ctype, c.dryRun, c.notes) };
  throw methodNotAllowed();
}

/** pods/binding: sets spec.nodeName of a pod not yet bound (409 when it is). */
function bindingReply(ctx: ServerContext, c: ResourceCall): Reply {
  if (c.info.verb !== 'create') throw methodNotAllowed();
  const pod = ctx.api.get({ ...c.t, subresource: '' }) as Stored<V1Pod>;
  const spec = pod.spec!; // every stored pod has one (validate() requires its containers)
  if (spec.nodeName) throw conflict('', 'pods', c.t.name);
  spec.nodeName = (c.body as PartialJson<V1Binding> | undefined)?.target?.name;
  ctx.api.store.put('/pods', pod, c.dryRun);
  return { code: 201, body: statusBody(201, '', '') };
}

function verbReply(ctx: ServerContext, c: ResourceCall): Reply {
  const { api } = ctx;
  const { t, def, body, query, dryRun } = c;
  switch (c.info.verb) {
    case 'get': {
      const obj = api.get(t);
      return { code: 200, body: c.table ? toTable(def, [obj], obj.metadata.resourceVersion) : obj };
    }
    case 'list': {
      const list = api.list(t, query);
      return { code: 200, body: c.table ? toTable(def, list.items, list.metadata.resourceVersion) : list };
    }
    case 'create':
      return createReply(ctx, c);
    case 'update':
      if (c.info.subresource === 'finalize') {
        const ns = api.get({ ...t, subresource: '' }) as Stored<V1Namespace>;
        ns.spec = (body as PartialJson<V1Namespace> | undefined)?.spec ?? ns.spec;
        return { code: 200, body: api.store.put('/namespaces', ns, dryRun) };
      }
      return { code: 200, body: api.update(t, body, dryRun, c.notes) };
    case 'patch':
      if (c.ctype.startsWith('application/apply-patch')) throw unsupportedMediaType(c.ctype.split(';')[0]);
      return { code: 200, body: api.patch(t, body, c.ctype, dryRun, c.notes) };
    case 'delete':
      return deleteReply(ctx, c);
    case 'deletecollection':
      return { code: 200, body: api.deleteCollection(t, query, deleteOptions(c), dryRun) };
    default:
      throw methodNotAllowed();
  }
}

/** Creates the object; a new namespace also gets its default objects (its "default" ServiceAccount). */
function createReply(ctx: ServerContext, c: ResourceCall): Reply {
  const { api } = ctx;
  if (c.info.subresource) throw methodNotAllowed();
  if (c.def.resource === 'namespaces') c.t.namespace = '';
  const created = api.create(c.t, c.body, c.dryRun, c.notes);
  if (c.def.resource === 'namespaces' && !c.dryRun) {
    for (const d of namespaceDefaults(created.metadata.name)) {
      try { api.create({ def: d.def, namespace: created.metadata.name, name: '', subresource: '' }, d.obj); } catch { /* exists */ }
    }
  }
  return { code: 201, body: created };
}

/** Deletes the object (a namespace: starts its finalization); 202 while it is still there (grace, finalizers). */
function deleteReply(ctx: ServerContext, c: ResourceCall): Reply {
  const { api } = ctx;
  const { t, def, dryRun } = c;
  if (c.info.subresource) throw methodNotAllowed();
  const options = deleteOptions(c);
  const out = def.resource === 'namespaces' ? startNamespaceDeletion(api, t.name, new Date(), dryRun) : api.delete(t, options, dryRun);
  const stillThere = api.store.get(`${def.group}/${def.resource}`, def.namespaced ? t.namespace : undefined, t.name);
  if (def.resource === 'namespaces') setImmediate(() => finalizeNamespaces(api, ctx.defs));
  return { code: stillThere && !dryRun ? 202 : 200, body: out };
}

/** The request's DeleteOptions body, with the query's gracePeriodSeconds over it. */
function deleteOptions(c: ResourceCall): DeleteOptions {
  const options: DeleteOptions = { ...((c.body as DeleteOptions | undefined) ?? {}) };
  if (c.query.has('gracePeriodSeconds')) options.gracePeriodSeconds = Number(c.query.get('gracePeriodSeconds'));
  return options;
}
