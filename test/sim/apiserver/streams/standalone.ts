// A minimal HTTPS server for a fixed set of pods: the discovery kubectl needs (/api, /api/v1 with
// pods and their subresources, /apis, /version), GET pods/NAME, and the pod streams through the
// real handler (podstreams.ts). It lets the stream protocols be tested with real kubectl and
// client-node without a whole simulated cluster:
//   node --import tsx standalone.ts DIR PODS.json   → prints {"port":N,"ca":"DIR/pki/ca.crt"}
// The serving certificate (127.0.0.1, localhost) is issued by a CA made in DIR/pki.
// Differences from the simulator's API server: no authentication or authorization (every request
// is "admin"), no audit log, no other resources, pods are read-only and fixed at start.
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import type { V1ObjectMeta, V1Pod } from '@kubernetes/client-node';
import type { Json } from '../../json.js';
import { ensureCA, issueCert } from '../../pki.js';
import { apiGroupList, apiResourceList, apiVersions, SERVER_VERSION } from '../discovery.js';
import { handlePodStream, type PodStreamContext } from '../podstreams.js';
import { builtinResources } from '../registry.js';

const POD_PATH = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)(?:\/(exec|attach|portforward|log))?$/;

/** One of the fixed pods (from PODS.json): a Pod that has a name and a namespace. */
export type FixedPod = Json<V1Pod> & { metadata: Json<V1ObjectMeta> & { name: string; namespace: string } };

/** A running standalone server and the CA file that verifies it. */
export interface Standalone {
  server: Server;
  port: number;
  caFile: string;
}

function status(code: number, reason: string, message: string, details?: object): object {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code };
}

/** Starts the server on 127.0.0.1 (a free port) for `pods`, reading runtime state from `dir`. */
export async function startStandalone(dir: string, pods: FixedPod[]): Promise<Standalone> {
  const pki = path.join(dir, 'pki');
  ensureCA(pki, 'ca');
  const { cert, key } = issueCert(pki, 'ca', 'standalone', { commonName: 'standalone', ips: ['127.0.0.1'], dnsNames: ['localhost'], usage: 'server' });
  const defs = builtinResources().filter((d) => d.group === '' && d.resource === 'pods');
  let port = 0;

  const find = (ns: string, name: string) => pods.find((p) => p.metadata.namespace === ns && p.metadata.name === name);
  const route = (req: IncomingMessage) => {
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    const p = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, '') : url.pathname;
    const m = POD_PATH.exec(p);
    return { url, path: p, m, pod: m ? find(decodeURIComponent(m[1]), decodeURIComponent(m[2])) : undefined };
  };
  const notFound = (m: RegExpExecArray) => status(404, 'NotFound', `pods "${decodeURIComponent(m[2])}" not found`, { name: decodeURIComponent(m[2]), kind: 'pods' });

  const sendJson = (res: ServerResponse, code: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  };
  const discovery = (p: string): unknown => {
    if (p === '/api') return apiVersions(`127.0.0.1:${port}`);
    if (p === '/api/v1') return apiResourceList(defs, '', 'v1');
    if (p === '/apis') return apiGroupList([]);
    if (p === '/version') return SERVER_VERSION;
    return undefined;
  };

  const server = createServer({ cert, key }, (req, res) => {
    const { url, path: p, m, pod } = route(req);
    const sendStatus = (code: number, reason: string, message: string) => sendJson(res, code, status(code, reason, message));
    if (req.method !== 'GET') return sendJson(res, 405, status(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource'));
    const doc = discovery(p);
    if (doc) return sendJson(res, 200, doc);
    if (!m) return sendJson(res, 404, status(404, 'NotFound', 'the server could not find the requested resource'));
    if (!pod) return sendJson(res, 404, notFound(m));
    if (!m[3]) return sendJson(res, 200, pod);
    void handlePodStream({ kind: m[3] as PodStreamContext['kind'], req, res, namespace: pod.metadata.namespace, pod, query: url.searchParams, dir, user: 'admin', sendStatus });
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const { url, m, pod } = route(req);
    const sendStatus = (code: number, reason: string, message: string) => {
      const text = JSON.stringify(status(code, reason, message));
      socket.end(`HTTP/1.1 ${code} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`);
    };
    if (!m || !m[3]) return sendStatus(404, 'NotFound', 'the server could not find the requested resource');
    if (!pod) {
      const text = JSON.stringify(notFound(m));
      socket.end(`HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`);
      return;
    }
    void handlePodStream({ kind: m[3] as PodStreamContext['kind'], req, socket, head, namespace: pod.metadata.namespace, pod, query: url.searchParams, dir, user: 'admin', sendStatus });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const addr = server.address();
  port = typeof addr === 'object' && addr ? addr.port : 0;
  return { server, port, caFile: path.join(pki, 'ca.crt') };
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const [dir, podsFile] = process.argv.slice(2);
  const pods = JSON.parse(await readFile(podsFile, 'utf8')) as FixedPod[];
  const s = await startStandalone(dir, pods);
  process.stdout.write(`${JSON.stringify({ port: s.port, ca: s.caFile })}\n`);
}
