// The simulated kube-apiserver's HTTPS server: the shared state (context.ts), the 'request'
// handler (requests.ts: audit, authentication, routing of discovery, OpenAPI, health, watch and
// resource requests), the 'upgrade' handler for pod streams (streamroutes.ts), the namespace
// finalizer loop and the ResourceQuota status keeper (resourcequota.ts).
// Differences from a real API server: HTTP/1.1 only (no HTTP/2); the other differences are listed
// in the module that has them.
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { serverContext, type ApiServerOptions } from './context.js';
import { finalizeNamespaces } from './namespaces.js';
import { handleRequest } from './requests.js';
import { keepQuotaStatus } from './resourcequota.js';
import { serveUpgrade } from './streamroutes.js';

export type { ApiServerOptions } from './context.js';

/** The API server: an HTTPS server plus the namespace finalizer loop; call close() to stop both. */
export function createApiServer(opts: ApiServerOptions): { server: Server; close(): Promise<void> } {
  const ctx = serverContext(opts);
  const server = createServer({ cert: opts.cert, key: opts.key });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => handleRequest(ctx, req, res));
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => serveUpgrade(ctx, req, socket, head));

  const timer = setInterval(() => finalizeNamespaces(ctx.api, ctx.defs), 500);
  const stopQuotaStatus = keepQuotaStatus(opts.store);
  return {
    server,
    close: () => new Promise<void>((done) => {
      clearInterval(timer);
      stopQuotaStatus();
      server.close(() => done());
      server.closeAllConnections();
    }),
  };
}
