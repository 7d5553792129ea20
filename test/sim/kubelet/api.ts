// A small Kubernetes REST client for the simulated kubelet: JSON requests and line-delimited
// watches over https, authenticated from a kubeconfig by @kubernetes/client-node.
// Differs from a real kubelet: no protobuf, no informer cache library; watches re-list on any
// error (including 410 Gone) after a 1 s pause, which is how it survives API server restarts.
import https from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';

/** Error for a non-2xx answer; code is the HTTP status. */
export class ApiError extends Error {
  constructor(message: string, readonly code: number) {
    super(message);
  }
}

/** One watch event as the API server sends it. */
export interface WatchEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

/** Handlers of a resilient list+watch; `sync` gets the full list after every (re)list. */
export interface ListWatchHandlers<T> {
  sync(items: T[]): void;
  event(ev: WatchEvent<T>): void;
}

/** The requests the kubelet makes; built from a kubeconfig file. */
export class ApiClient {
  private constructor(private readonly server: URL, private readonly opts: https.RequestOptions) {}

  /** Loads a kubeconfig (current context) and returns a client for it. */
  static async fromKubeconfig(file: string): Promise<ApiClient> {
    const kc = new KubeConfig();
    kc.loadFromFile(file);
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error(`kubeconfig "${file}" has no current cluster; check its current-context`);
    const opts: https.RequestOptions = {};
    await kc.applyToHTTPSOptions(opts);
    return new ApiClient(new URL(cluster.server), opts);
  }

  /** Sends one request and parses the JSON answer (as T: what the path serves); throws ApiError on non-2xx. */
  request<T = unknown>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
    return new Promise((resolve, reject) => {
      const url = new URL(path, this.server);
      const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const req = https.request(url, {
        ...this.opts, method, timeout: 15_000,
        headers: {
          ...(this.opts.headers ?? {}), accept: 'application/json',
          ...(data ? { 'content-type': contentType, 'content-length': data.length } : {}),
        },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const code = res.statusCode ?? 0;
          if (code < 200 || code >= 300) {
            let msg = text;
            try { msg = JSON.parse(text).message ?? text; } catch { /* not JSON */ }
            reject(new ApiError(`${method} ${path}: ${code} ${msg}`.trim(), code));
            return;
          }
          try { resolve(text ? JSON.parse(text) : undefined); } catch (err) { reject(err); }
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timeout`)));
      req.on('error', reject);
      req.end(data);
    });
  }

  /** Lists then watches a collection forever (until the signal aborts), re-listing after errors. */
  listWatch<T>(path: string, h: ListWatchHandlers<T>, signal: AbortSignal, log: (m: string) => void): void {
    const loop = async () => {
      while (!signal.aborted) {
        try {
          const list = await this.request<{ items: T[]; metadata: { resourceVersion: string } }>('GET', path);
          h.sync(list.items ?? []);
          await this.watchOnce(path, list.metadata.resourceVersion, h, signal);
        } catch (err) {
          if (!signal.aborted) log(`watch ${path}: ${(err as Error).message}`);
        }
        if (!signal.aborted) await sleep(1000, signal);
      }
    };
    void loop();
  }

  private watchOnce<T>(path: string, rv: string, h: ListWatchHandlers<T>, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const sep = path.includes('?') ? '&' : '?';
      const url = new URL(`${path}${sep}watch=true&allowWatchBookmarks=true&resourceVersion=${encodeURIComponent(rv)}`, this.server);
      const req = https.request(url, { ...this.opts, method: 'GET', headers: { ...(this.opts.headers ?? {}), accept: 'application/json' } }, (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          reject(new Error(`status ${res.statusCode}`));
          return;
        }
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buf += chunk;
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (!line) continue;
            const ev = JSON.parse(line) as WatchEvent<T>;
            if (ev.type === 'ERROR') { req.destroy(); reject(new Error(`watch error: ${JSON.stringify(ev.object)}`)); return; }
            if (ev.type !== 'BOOKMARK') h.event(ev);
          }
        });
        res.on('end', () => resolve());
        res.on('error', reject);
      });
      const onAbort = () => req.destroy();
      signal.addEventListener('abort', onAbort, { once: true });
      req.on('close', () => signal.removeEventListener('abort', onAbort));
      req.on('error', (err) => (signal.aborted ? resolve() : reject(err)));
      req.end();
    });
  }
}

/** Resolves after ms, or early when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() { clearTimeout(t); signal?.removeEventListener('abort', done); resolve(); }
    signal?.addEventListener('abort', done, { once: true });
  });
}
