// The server's 'request' handler (upgrades are streamroutes.ts's): every request gets its audit
// line; health paths (/healthz, /readyz, /livez) are answered without authentication; then the
// bearer token is checked (401) and the request is routed: non-resource paths to nonresource.ts,
// pod streams by GET to streamroutes.ts, watches to watch.ts and every other resource request,
// with its decoded body, to resources.ts. Failures are answered as metav1.Status errors. What
// admission adds to a request (warnings, audit annotations) is kept in its RequestNotes (notes.ts).
// On a kubeadm cluster the health paths and every resource request follow etcd's quorum (gate.ts).
// Differences from a real API server: no anonymous access; the audit log is the simulator's own
// one-line format (audit.ts), written when the answer ends or the connection closes.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { writeAudit } from './audit.js';
import { authenticate, type ServerContext } from './context.js';
import { asApiError, parseBody, readBody, sendJson, sendReply } from './httpio.js';
import { nonResourceReply } from './nonresource.js';
import { RequestNotes } from './notes.js';
import { parseRequestInfo, type RequestInfo } from './requestinfo.js';
import { checkAccess, resolveResource, resourceReply } from './resources.js';
import { ApiError, unsupportedMediaType } from './status.js';
import { unhealthyBody } from './gate.js';
import { isPodStreamGet, servePodStreamGet } from './streamroutes.js';
import { wantsTable } from './table.js';
import { serveWatch } from './watch.js';

/** The server's 'request' handler. */
export function handleRequest(ctx: ServerContext, req: IncomingMessage, res: ServerResponse): void {
  void (async () => {
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    const path = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, '') : url.pathname;
    const query = url.searchParams;
    const info = parseRequestInfo(req.method ?? 'GET', path, query);
    const notes = auditWhenAnswered(ctx.auditFile, res, info, req.url);
    try {
      await route(ctx, req, res, info, path, query, notes);
    } catch (err) {
      sendError(res, err);
    }
  })();
}

/**
 * Writes the request's audit line just before its last bytes leave, or when the connection closes
 * first: a client that saw its answer must find its line in the log (writing on 'finish' raced
 * with fast clients such as a kubectl that exits at once). Returns the request's notes, whose
 * user and annotations it names.
 */
function auditWhenAnswered(file: string, res: ServerResponse, info: RequestInfo, requestURI: string | undefined): RequestNotes {
  const notes = new RequestNotes(res);
  let audited = false;
  const audit = () => {
    if (audited) return;
    audited = true;
    const read = info.verb === 'get' || info.verb === 'list' || info.verb === 'watch';
    writeAudit(file, notes.user, info, res.statusCode, read ? undefined : requestURI, notes.annotations);
  };
  const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
  res.end = ((...args: unknown[]) => {
    audit();
    return end(...args);
  }) as typeof res.end;
  res.on('close', audit);
  return notes;
}

async function route(ctx: ServerContext, req: IncomingMessage, res: ServerResponse, info: RequestInfo, path: string,
  query: URLSearchParams, notes: RequestNotes): Promise<void> {
  if (['/healthz', '/readyz', '/livez'].includes(path)) {
    const healthy = ctx.gate?.healthy ?? true;
    res.writeHead(healthy ? 200 : 500, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' });
    res.end(healthy ? 'ok' : unhealthyBody(path));
    return;
  }
  const user = authenticate(ctx, req);
  if (!user) throw new ApiError(401, 'Unauthorized', 'Unauthorized');
  notes.user = user.name;
  if (!info.isResource) {
    sendReply(res, nonResourceReply(ctx, info, String(req.headers.accept ?? '')));
    return;
  }
  // Every resource request reads or writes the store: without etcd's quorum it waits, then fails
  // (gate.ts); after authorization, which a real server decides from its caches.
  if (isPodStreamGet(info, req.method)) {
    await ctx.gate?.needStore();
    await servePodStreamGet(ctx, req, res, user, info, query);
    return;
  }
  const def = resolveResource(ctx, info);
  checkAccess(ctx, user, info, def);
  await ctx.gate?.needStore();
  if (info.verb === 'watch') {
    ctx.gate?.trackWatch(res);
    serveWatch(res, ctx.opts.store, def, info.namespace, query, wantsTable(req.headers.accept));
    return;
  }
  const raw = ['POST', 'PUT', 'PATCH', 'DELETE'].includes(req.method ?? '') ? await readBody(req) : Buffer.alloc(0);
  const ctype = String(req.headers['content-type'] ?? 'application/json');
  if (ctype.startsWith('application/apply-patch')) throw unsupportedMediaType(ctype.split(';')[0]);
  const body = parseBody(raw, ctype);
  sendReply(res, resourceReply(ctx, req, user, info, def, body, query, notes));
}

/** Answers a failed request with its Status (a 500 for anything but an ApiError, which is also logged). */
function sendError(res: ServerResponse, err: unknown): void {
  const e = asApiError(err);
  if (!(err instanceof ApiError)) console.error(err);
  if (res.headersSent) { res.end(); return; }
  sendJson(res, e.code, e.toStatus());
}
