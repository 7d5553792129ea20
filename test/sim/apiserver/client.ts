// A minimal HTTPS JSON client for the simulator's own tools (the `sim` CLI and the harness):
// bearer token, the cluster CA, no retries.
import { request } from 'node:https';
import { builtinResources, type ResourceDef } from './registry.js';

/** Where and as whom to call the API. */
export interface ClientConfig {
  server: string;
  ca: string;
  token: string;
}

/** An HTTP answer: status code and parsed JSON body (or the text when it is not JSON). */
export interface ClientReply {
  code: number;
  body: unknown;
}

/** Sends one request and resolves with the reply, whatever its status code. */
export function call(cfg: ClientConfig, method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<ClientReply> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, cfg.server);
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = request(url, {
      method, ca: cfg.ca, timeout: 10_000,
      headers: { Authorization: `Bearer ${cfg.token}`, Accept: 'application/json',
        ...(data ? { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(data) } : {}) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown = text;
        try { parsed = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ code: res.statusCode ?? 0, body: parsed });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`request to ${url.href} timed out`)));
    req.on('error', reject);
    req.end(data);
  });
}

/** The served type of an object's apiVersion and kind, or undefined. */
export function resourceFor(apiVersion: string, kind: string): ResourceDef | undefined {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  return builtinResources().find((d) => d.group === group && d.version === version && d.kind === kind);
}

/** The collection path an object is created under. */
export function collectionPath(def: ResourceDef, namespace: string | undefined): string {
  const base = def.group ? `/apis/${def.group}/${def.version}` : `/api/${def.version}`;
  return def.namespaced ? `${base}/namespaces/${namespace ?? 'default'}/${def.resource}` : `${base}/${def.resource}`;
}
