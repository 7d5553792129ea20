/**
 * Opens an authenticated WebSocket to an API server path, turning a refused upgrade into a typed
 * error, and keeps it alive as client-go keeps its pod streams alive (see `keepAlive`).
 */
import type { IncomingMessage } from 'node:http';
import type { KubeConfig } from '@kubernetes/client-node';
import WebSocket from 'ws';
import { PluginError, TransientError } from '../errors.js';
import { parseStatus, statusError } from './errors.js';

/** Builds the wss:// URL for an API path with (possibly repeated) query parameters. */
export function apiSocketUrl(server: string, apiPath: string, query: Array<[string, string]>): string {
  const url = new URL(server.replace(/\/+$/, '') + apiPath);
  url.protocol = url.protocol === 'http:' ? 'ws:' : 'wss:';
  for (const [k, v] of query) url.searchParams.append(k, v);
  return url.toString();
}

/** The part of a KubeContext the pod streams need. */
export interface KubeStreamAccess {
  kubeConfig: KubeConfig;
  /** How the streams are kept alive; client-go's cadence (`CLIENT_GO_KEEPALIVE`) when unset. */
  keepalive?: StreamKeepalive;
}

/** How often an open stream pings, and after how long without a frame from the server it is given up. */
export interface StreamKeepalive {
  pingEveryMs: number;
  deadAfterMs: number;
}

/**
 * client-go's cadence. Its WebSocket exec executor (tools/remotecommand/websocket.go) sends a ping
 * every `pingPeriod` (5 s) and fails the read once `pingReadDeadline` (pingPeriod*12 + 1 s = 61 s)
 * passed without a pong; port-forward pings every 5 s too over SPDY (transport/spdy/spdy.go:
 * `PingPeriod: time.Second * 5`), every 10 s inside its WebSocket tunnel
 * (tools/portforward/tunneling_dialer.go `PingPeriod`). A load balancer or proxy that cuts idle
 * streams sees the pings as traffic.
 */
export const CLIENT_GO_KEEPALIVE: StreamKeepalive = { pingEveryMs: 5_000, deadAfterMs: 61_000 };

/** The environment a keepalive is read from. */
export interface StreamKeepaliveEnv {
  /** Hidden, for tests only: the ping period in ms; the deadline scales with it as client-go's does (×12.2). */
  KUBECTL_ETCD_PING_PERIOD_MS?: string;
}

/** client-go's keepalive, or a shorter one when the hidden test variable asks for it. */
export function streamKeepalive(env: StreamKeepaliveEnv): StreamKeepalive {
  const period = Number(env.KUBECTL_ETCD_PING_PERIOD_MS);
  if (!Number.isInteger(period) || period < 10) return CLIENT_GO_KEEPALIVE;
  return { pingEveryMs: period, deadAfterMs: Math.round((period * CLIENT_GO_KEEPALIVE.deadAfterMs) / CLIENT_GO_KEEPALIVE.pingEveryMs) };
}

/** Connects with the kubeconfig's TLS and credentials; resolves once the upgrade succeeded, with keepalive pings running. */
export async function openApiSocket(
  access: KubeStreamAccess,
  apiPath: string,
  query: Array<[string, string]>,
  protocols: readonly string[],
  what: string,
  signal?: AbortSignal,
): Promise<WebSocket> {
  const { kubeConfig } = access;
  const server = kubeConfig.getCurrentCluster()?.server;
  if (!server) throw new PluginError('no server in the current kubeconfig context', 'pass --server or --context');
  const options: WebSocket.ClientOptions = { headers: {} };
  await kubeConfig.applyToHTTPSOptions(options);
  options.perMessageDeflate = false;
  if (signal?.aborted) throw abortError(signal, what);
  const ws = new WebSocket(apiSocketUrl(server, apiPath, query), [...protocols], options);
  return new Promise<WebSocket>((resolve, reject) => {
    const onAbort = () => fail(abortError(signal!, what));
    signal?.addEventListener('abort', onAbort, { once: true });
    const fail = (err: Error) => {
      signal?.removeEventListener('abort', onAbort);
      ws.removeAllListeners('open');
      ws.on('error', () => {});
      ws.terminate();
      reject(err);
    };
    ws.once('open', () => {
      signal?.removeEventListener('abort', onAbort);
      ws.removeAllListeners('unexpected-response');
      ws.removeListener('error', onError);
      keepAlive(ws, access.keepalive ?? CLIENT_GO_KEEPALIVE);
      resolve(ws);
    });
    const onError = (err: Error) => fail(new TransientError(`${what}: cannot connect: ${err.message.split('\n')[0]}`, 'check that the cluster is reachable (kubectl cluster-info)'));
    ws.once('error', onError);
    ws.once('unexpected-response', (_req, res: IncomingMessage) => {
      readBody(res).then(
        (body) => fail(statusError(res.statusCode ?? 0, parseStatus(body), what)),
        (err: Error) => fail(new TransientError(`${what}: HTTP ${res.statusCode} with an unreadable body: ${err.message.split('\n')[0]}`, 'retry; check the cluster with kubectl cluster-info')),
      );
    });
  });
}

/** What keepAlive uses of a ws WebSocket. */
export interface PingableSocket {
  readonly readyState: number;
  readonly isPaused: boolean;
  ping(): void;
  terminate(): void;
  on(event: 'message' | 'ping' | 'pong' | 'close', listener: () => void): unknown;
  emit(event: 'error', err: Error): boolean;
  listenerCount(event: 'error'): number;
}

/**
 * Pings every `pingEveryMs` while the socket is open. When no frame at all (data, ping, pong) came
 * for `deadAfterMs` (client-go resets its deadline on pongs only; any frame shows a live server),
 * the socket gets an `error` (a connection error to its user, as a reset would be) and is
 * terminated. Time the socket spends paused by our own backpressure (seen at each ping) does not
 * count as silence; once it is closing, ws's own close timeout ends it. The timers are unref'd and cleared on close.
 */
export function keepAlive(ws: PingableSocket, k: StreamKeepalive): void {
  let heard = Date.now();
  const hear = () => {
    heard = Date.now();
  };
  const pinger = setInterval(() => {
    if (ws.isPaused) hear();
    ws.ping();
  }, k.pingEveryMs).unref();
  let deadline: NodeJS.Timeout;
  const check = () => {
    if (ws.readyState !== WebSocket.OPEN) return;
    if (ws.isPaused) hear();
    const silent = Date.now() - heard;
    if (silent < k.deadAfterMs) {
      deadline = setTimeout(check, k.deadAfterMs - silent).unref();
      return;
    }
    clearInterval(pinger);
    const seconds = Math.round(k.deadAfterMs / 100) / 10;
    if (ws.listenerCount('error') > 0) ws.emit('error', new Error(`no answer from the API server for ${seconds} s (keepalive pings unanswered)`));
    ws.terminate();
  };
  deadline = setTimeout(check, k.deadAfterMs).unref();
  ws.on('message', hear);
  ws.on('ping', hear);
  ws.on('pong', hear);
  ws.on('close', () => {
    clearInterval(pinger);
    clearTimeout(deadline);
  });
}

/** The signal's reason when it is an Error, else a line saying `what` was cancelled. */
export function abortError(signal: AbortSignal, what: string): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && reason.name !== 'AbortError') return reason;
  return new PluginError(`${what} was cancelled`, 'run the command again');
}

function readBody(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= 64 * 1024) chunks.push(c);
    });
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
  });
}
