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
import { ApiGate } from './gate.js';
import { finalizeNamespaces } from './namespaces.js';
import { handleRequest } from './requests.js';
import { keepQuotaStatus } from './resourcequota.js';
import { serveUpgrade } from './streamroutes.js';

export type { ApiServerOptions } from './context.js';

/** Listens on 127.0.0.1:port; retries while the port is still held (it is opened again after the gate closed it). */
export async function listenOn(server: Server, port: number, retries = 0): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => { server.off('error', reject); resolve(); });
      });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= retries) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/**
 * The API server: an HTTPS server plus the namespace finalizer loop; call close() to stop both.
 * Its gate (gate.ts) is made here and started by whoever listens (run.ts).
 */
export function createApiServer(opts: ApiServerOptions): { server: Server; gate: ApiGate; close(): Promise<void> } {
  const ctx = serverContext(opts);
  const server = createServer({ cert: opts.cert, key: opts.key });
  const gate = new ApiGate(opts.dir, server, () => listenOn(server, opts.port, 50));
  ctx.gate = gate;
  server.on('request', (req: IncomingMessage, res: ServerResponse) => handleRequest(ctx, req, res));
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => serveUpgrade(ctx, req, socket, head));

  const timer = setInterval(() => finalizeNamespaces(ctx.api, ctx.defs), 500);
  const stopQuotaStatus = keepQuotaStatus(opts.store);
  return {
    server,
    gate,
    close: () => new Promise<void>((done) => {
      gate.stop();
      clearInterval(timer);
      stopQuotaStatus();
      server.close(() => done());
      server.closeAllConnections();
    }),
  };
}
