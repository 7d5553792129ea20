// A minimal plain-HTTP server that serves GET pods/NAME and the pod streams for a fixed set of
// pods, so the stream protocols can be tested with real kubectl and client-node without a whole
// simulated cluster: `node --import tsx standalone.ts DIR PODS.json` prints {"port":N} on stdout.
// Differences from the simulator's API server: no TLS, no authentication, no other resources.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import type { Duplex } from 'node:stream';
import { handlePodStream, type PodStreamContext } from '../podstreams.js';

const POD_PATH = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)(?:\/(exec|attach|portforward|log))?$/;

/** Starts the server on 127.0.0.1 (port 0) for `pods`, reading runtime state from `dir`. */
export function startStandalone(dir: string, pods: any[]): Promise<Server> {
  const find = (ns: string, name: string) => pods.find((p) => p.metadata.namespace === ns && p.metadata.name === name);
  const route = (req: IncomingMessage) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const m = POD_PATH.exec(url.pathname);
    return { url, m, pod: m ? find(m[1], m[2]) : undefined };
  };
  const server = createServer((req, res) => {
    const { url, m, pod } = route(req);
    const sendStatus = (code: number, reason: string, message: string) => {
      res.writeHead(code, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code }));
    };
    if (!m || !pod) return sendStatus(404, 'NotFound', `pods "${m?.[2] ?? ''}" not found`);
    if (!m[3]) {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      return res.end(JSON.stringify(pod));
    }
    void handlePodStream({ kind: m[3] as PodStreamContext['kind'], req, res, namespace: m[1], pod, query: url.searchParams, dir, user: 'admin', sendStatus });
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const { url, m, pod } = route(req);
    const sendStatus = (code: number, reason: string, message: string) => {
      const text = JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });
      socket.end(`HTTP/1.1 ${code} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`);
    };
    if (!m || !m[3] || !pod) return sendStatus(404, 'NotFound', `pods "${m?.[2] ?? ''}" not found`);
    void handlePodStream({ kind: m[3] as PodStreamContext['kind'], req, socket, head, namespace: m[1], pod, query: url.searchParams, dir, user: 'admin', sendStatus });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const [dir, podsFile] = process.argv.slice(2);
  const pods = JSON.parse(await readFile(podsFile, 'utf8'));
  const server = await startStandalone(dir, pods);
  const addr = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof addr === 'object' && addr ? addr.port : 0 })}\n`);
}
