/** Opens an authenticated WebSocket to an API server path, turning a refused upgrade into a typed error. */
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

/** Connects with the kubeconfig's TLS and credentials; resolves once the upgrade succeeded. */
export async function openApiSocket(
  kubeConfig: KubeConfig,
  apiPath: string,
  query: Array<[string, string]>,
  protocols: readonly string[],
  what: string,
  signal?: AbortSignal,
): Promise<WebSocket> {
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
