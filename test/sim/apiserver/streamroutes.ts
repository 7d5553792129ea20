// Hand-off of pod streams (pods/exec, attach, portforward, log) to podstreams.ts, after the pod is
// resolved and RBAC allows the stream: by a plain GET (a log, or an exec that does not upgrade),
// routed here by requests.ts, or by an HTTP upgrade (WebSocket), the server's 'upgrade' event,
// which this module handles whole: authentication, the audit line, and the Status error written
// on the raw socket when the stream is refused before any upgrade.
// Differences from a real API server: upgrade requests are served only for pod streams (400
// otherwise); podstreams.ts is loaded on first use, and without it pod streams are answered 501.
import { existsSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { V1Pod } from '@kubernetes/client-node';
import { writeAudit } from './audit.js';
import type { UserInfo } from './auth.js';
import { authenticate, type ServerContext } from './context.js';
import { asApiError, sendJson } from './httpio.js';
import type { PodStreamContext } from './podstreams.js';
import { parseRequestInfo, type RequestInfo } from './requestinfo.js';
import { checkAccess, resolveResource } from './resources.js';
import { ApiError, statusBody } from './status.js';
import type { Stored } from './store.js';

const STREAM_KINDS = new Set(['exec', 'attach', 'portforward', 'log']);

/** Where a stream's bytes go: the HTTP response of a plain GET, or the socket of an upgrade. */
interface StreamConnection {
  res?: ServerResponse;
  socket?: Duplex;
  head?: Buffer;
}

/** Whether a (non-upgrade) request is a pod stream served by servePodStreamGet. */
export function isPodStreamGet(info: RequestInfo, method: string | undefined): boolean {
  return info.resource === 'pods' && STREAM_KINDS.has(info.subresource) && method === 'GET';
}

async function loadPodStreams(): Promise<((ctx: PodStreamContext) => Promise<void>) | undefined> {
  const url = new URL('./podstreams.ts', import.meta.url);
  if (!existsSync(fileURLToPath(url))) return undefined;
  const mod = (await import(url.href)) as { handlePodStream: (ctx: PodStreamContext) => Promise<void> };
  return mod.handlePodStream;
}

async function podStream(ctx: ServerContext, req: IncomingMessage, user: UserInfo, info: RequestInfo, query: URLSearchParams,
  conn: StreamConnection, sendStatus: PodStreamContext['sendStatus']): Promise<void> {
  const def = resolveResource(ctx, info);
  if (info.resource !== 'pods' || !STREAM_KINDS.has(info.subresource)) throw new ApiError(400, 'BadRequest', 'upgrade requests are only served for pod streams');
  checkAccess(ctx, user, info, def);
  // 1.35 and later also ask for `create` on a WebSocket upgrade, the verb SPDY's POST had
  // (AuthorizePodWebsocketUpgradeCreatePermission, beta and on by default in 1.35;
  // kubernetes/kubernetes#133515), so a Role granting only `get` no longer streams.
  if (conn.socket && ctx.serverVersion !== '1.32') checkAccess(ctx, user, { ...info, verb: 'create' }, def);
  const pod = ctx.api.get({ def, namespace: info.namespace, name: info.name, subresource: '' }) as Stored<V1Pod>;
  const handler = await loadPodStreams();
  if (!handler) throw new ApiError(501, 'NotImplemented', 'pod streams are not available in this simulator build');
  await handler({ kind: info.subresource as PodStreamContext['kind'], req, res: conn.res, socket: conn.socket, head: conn.head,
    namespace: info.namespace, pod, query, dir: ctx.opts.dir, user: user.name, sendStatus });
}

/** Serves a pod stream asked for by a plain GET (isPodStreamGet), answering on res. */
export async function servePodStreamGet(ctx: ServerContext, req: IncomingMessage, res: ServerResponse, user: UserInfo,
  info: RequestInfo, query: URLSearchParams): Promise<void> {
  const sendStatus = (code: number, reason: string, message: string) => sendJson(res, code, statusBody(code, reason, message));
  await podStream(ctx, req, user, info, query, { res }, sendStatus);
}

/** The server's 'upgrade' handler: a pod stream over WebSocket, or a Status error on the socket. */
export function serveUpgrade(ctx: ServerContext, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const received = new Date();
  // Cut with every other connection when the API goes down (gate.ts), from its first byte on.
  ctx.gate?.trackStream(socket);
  void (async () => {
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    const query = url.searchParams;
    const info = parseRequestInfo('GET', url.pathname, query);
    // A WebSocket upgrade is a GET: parseRequestInfo gives it the verb `get` (see there).
    let userName = 'system:anonymous';
    let answered = false;
    const sendStatus = (code: number, reason: string, message: string) => {
      if (answered) return;
      answered = true;
      const text = JSON.stringify(statusBody(code, reason, message));
      writeAudit(ctx.auditFile, userName, info, code, req.url, {}, received);
      socket.end(`HTTP/1.1 ${code} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`);
    };
    try {
      const user = authenticate(ctx, req);
      if (!user) throw new ApiError(401, 'Unauthorized', 'Unauthorized');
      userName = user.name;
      await ctx.gate?.needStore();
      await podStream(ctx, req, user, info, query, { socket, head }, sendStatus);
      if (!answered) writeAudit(ctx.auditFile, userName, info, 101, req.url, {}, received);
    } catch (err) {
      const e = asApiError(err);
      sendStatus(e.code, e.reason, e.message);
    }
  })();
}
