// The API server tied to the kube-apiserver static pods of a kubeadm control plane (the `kubeadm`
// fixture switches it on once its pods are Ready: DIR/apiserver-gate.json). On a kubeadm cluster
// clients reach a kube-apiserver that runs as a static pod beside the etcd member it writes to;
// stopping etcd takes the API with it. The simulator's API server keeps its own store, so it
// follows the stand-ins (images/kube-apiserver.mjs, which write a heartbeat key through their
// node's etcd every 100 ms and record the last success in /sim-apiserver.json in their root):
//  - serving: some stand-in runs and wrote through etcd within the last 8 s;
//  - no quorum: stand-ins run, none can write. Health paths answer 500 "[-]etcd failed: reason
//    withheld" (kubernetes/minikube#8427); a request that needs the store waits up to
//    SIM_ETCD_TIMEOUT_MS (3 s; a real one waits for etcd's own timeout) for quorum, then gets a
//    500 Status "etcdserver: request timed out" (kubernetes/kubeadm#3095), which kubectl prints as
//    "Error from server: etcdserver: request timed out"; open watches end (the watch cache drops
//    its watchers when its etcd watch fails: apiserver cacher terminateAllWatchers); streams
//    already open stay (they are proxied to the kubelet);
//  - down: no stand-in process runs. The port is closed and every connection cut, streams
//    included: kubectl says "The connection to the server 127.0.0.1:PORT was refused - did you
//    specify the right host or port?" (kubernetes/kubernetes#87268). The port opens again as soon
//    as a stand-in runs.
// Pods keep running all the while: the kubelet needs the API for nothing it already runs, and
// static pods need it not at all (kubelet/staticpods.ts).
// Differences from a real cluster: one endpoint stands for every node's API server and the load
// balancer in front of them (a real client may reach a dead node's API server and time out, or get
// a 503 from the load balancer); discovery and health answer without etcd, as they do for real.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type { Server, ServerResponse } from 'node:http';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { ApiError } from './status.js';
import { isAlive, readContainerRuntime } from './streams/runtime.js';

/** The file that switches the gate on (its presence). */
export const GATE_FILE = 'apiserver-gate.json';
/** Where a stand-in records its last write through etcd, in its root (images/kube-apiserver.mjs). */
export const STANDIN_STATUS = 'sim-apiserver.json';
const POLL_MS = 250;
/**
 * A stand-in serves while its last write is younger than this. Its own readiness allows 1 s; here a
 * busy machine's lag must not read as lost quorum (etcd itself answers "request timed out" only
 * after about 7 s: 5 s plus twice the election timeout), in clusters other tests share.
 */
const FRESH_MS = 8000;

export type GateState = 'serving' | 'no-quorum' | 'down';

/** The state of the stand-ins now, from what the kubelet publishes (DIR/runtime/pods/kube-system/kube-apiserver-*). */
export async function standInState(dir: string, now = Date.now()): Promise<GateState> {
  const pods = join(dir, 'runtime', 'pods', 'kube-system');
  if (!existsSync(pods)) return 'down';
  let alive = false;
  for (const pod of readdirSync(pods).filter((p) => p.startsWith('kube-apiserver-'))) {
    const rt = await readContainerRuntime(dir, 'kube-system', pod, 'kube-apiserver');
    if (!rt || !isAlive(rt.pid)) continue;
    alive = true;
    try {
      const st = JSON.parse(readFileSync(join(rt.rootfs, STANDIN_STATUS), 'utf8')) as { lastOk?: number };
      if (st.lastOk !== undefined && now - st.lastOk < FRESH_MS) return 'serving';
    } catch {
      // not written yet: no write has succeeded
    }
  }
  return alive ? 'no-quorum' : 'down';
}

/** The gate of one API server: what request handlers ask, and the loop that opens and closes the port. */
export class ApiGate {
  state: GateState = 'serving';
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private readonly waiters = new Set<() => void>();
  private readonly watches = new Set<ServerResponse>();
  private readonly streams = new Set<Duplex>();

  constructor(private readonly dir: string, private readonly server: Server, private readonly listen: () => Promise<void>,
    private readonly timeoutMs = Number(process.env['SIM_ETCD_TIMEOUT_MS'] ?? 3000)) {}

  start(): void {
    const tick = async () => {
      try {
        await this.poll();
      } catch (err) {
        console.error(`apiserver gate: ${(err as Error).message}`);
      }
      if (!this.stopped) this.timer = setTimeout(() => void tick(), POLL_MS);
    };
    void tick();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private async poll(): Promise<void> {
    const on = existsSync(join(this.dir, GATE_FILE));
    const next: GateState = on ? await standInState(this.dir) : 'serving';
    if (next !== this.state) {
      console.log(`apiserver gate: ${this.state} → ${next}`);
      this.state = next;
      if (next !== 'serving') {
        for (const w of this.watches) w.end();
        this.watches.clear();
      }
      if (next === 'serving') {
        for (const w of this.waiters) w();
        this.waiters.clear();
      }
    }
    // The port follows the state on every poll: an open that failed (the port taken meanwhile) is tried again.
    if (next === 'down' && this.server.listening) {
      this.server.close();
      this.server.closeAllConnections();
      for (const s of this.streams) s.destroy();
      this.streams.clear();
    } else if (next !== 'down' && !this.server.listening && !this.stopped) {
      await this.listen();
    }
  }

  /** Whether health paths may say ok. */
  get healthy(): boolean {
    return this.state === 'serving';
  }

  /** Resolves when the store can be reached; throws etcd's timeout when it cannot within the timeout. */
  async needStore(): Promise<void> {
    if (this.state === 'serving') return;
    const served = await new Promise<boolean>((resolve) => {
      const done = () => { clearTimeout(t); resolve(true); };
      const t = setTimeout(() => { this.waiters.delete(done); resolve(false); }, this.timeoutMs);
      this.waiters.add(done);
    });
    // No reason, as kube-apiserver passes etcd's error on: kubectl prints "Error from server: etcdserver: request timed out".
    if (!served) throw new ApiError(500, '', 'etcdserver: request timed out');
  }

  /** A watch response, ended when the store is lost. */
  trackWatch(res: ServerResponse): void {
    this.watches.add(res);
    res.on('close', () => this.watches.delete(res));
  }

  /** An upgraded stream's socket, cut when the server goes down. */
  trackStream(socket: Duplex): void {
    this.streams.add(socket);
    socket.on('close', () => this.streams.delete(socket));
  }
}

/** The body of a failed health check, as kube-apiserver writes it with its etcd check failing. */
export function unhealthyBody(path: string): string {
  return `[+]ping ok\n[+]log ok\n[-]etcd failed: reason withheld\n[+]poststarthook/start-apiserver-admission-initializer ok\n${path.slice(1)} check failed\n`;
}
