// What the parts of the simulated API server's HTTP layer share (server.ts builds it once): the
// options it was started with, the served types, the REST layer over the object store, the bearer
// token users and the audit log file; and authentication of a request by its bearer token.
import type { ApiGate } from './gate.js';
import type { IncomingMessage } from 'node:http';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ServerMinor } from './discovery.js';
import { TokenFile, type UserInfo } from './auth.js';
import { builtinResources, type ResourceDef } from './registry.js';
import { ResourceApi } from './rest.js';
import type { ObjectStore } from './store.js';

/** Everything the server needs, passed in. */
export interface ApiServerOptions {
  dir: string;
  port: number;
  cert: string;
  key: string;
  store: ObjectStore;
}

/** The state every request handler reads. */
export interface ServerContext {
  opts: ApiServerOptions;
  defs: ResourceDef[];
  api: ResourceApi;
  tokens: TokenFile;
  auditFile: string;
  /** The Kubernetes version it pretends to be (DIR/sim.json serverVersion; 1.32 when absent). */
  serverVersion: ServerMinor;
  /** Set on a server that follows kubeadm's kube-apiserver static pods (gate.ts). */
  gate?: ApiGate;
}

/** The shared state for a server started with opts. */
export function serverContext(opts: ApiServerOptions): ServerContext {
  return {
    opts,
    defs: builtinResources(),
    api: new ResourceApi(opts.store),
    tokens: new TokenFile(join(opts.dir, 'tokens.csv')),
    auditFile: join(opts.dir, 'audit.log'),
    serverVersion: simServerVersion(opts.dir),
  };
}

/** The serverVersion of DIR/sim.json (1.32 when it has none, or there is no sim.json: a bare server in a test). */
function simServerVersion(dir: string): ServerMinor {
  const file = join(dir, 'sim.json');
  if (!existsSync(file)) return '1.32';
  return (JSON.parse(readFileSync(file, 'utf8')) as { serverVersion?: ServerMinor }).serverVersion ?? '1.32';
}

/** The user of the request's bearer token (DIR/tokens.csv), or undefined. */
export function authenticate(ctx: ServerContext, req: IncomingMessage): UserInfo | undefined {
  const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  return m ? ctx.tokens.authenticate(m[1]) : undefined;
}
