// The simulated kubelet for all nodes of one cluster: watches pods and Services, runs a
// PodWorker for each pod bound to one of its nodes, keeps every pod's /etc/hosts current,
// heartbeats the nodes, obeys fault requests in DIR/kubelet-control/, and on shutdown stops
// every pod and removes every mount, loop device, process and network namespace it made.
// Differs from a real kubelet: one process serves every node; it watches all pods (not only its
// own) to render /etc/hosts; on shutdown it stops the pods (a real kubelet leaves them running)
// with the pod's grace period capped at 2 s, the kubelet's minimum (the cluster is being thrown
// away: an etcd leader stopped with its followers would otherwise spend its 7 s leader-transfer
// timeout on every `down`); no eviction, no image GC. Static pods and their mirror pods: staticpods.ts.
// A node's kubelet can be stopped (fault kubelet-stop, stopped.ts), as `systemctl stop kubelet`
// does: its containers run on, but it acts on nothing (pods bound to the node, deleted or changed,
// manifest files, exited containers, probes) and posts nothing (node or pod status, mirror pods)
// until it starts again; then it re-syncs with what the API and the manifest folder say. The
// API server's streams to its pods fail meanwhile (podstreams.ts), and after the grace period the
// node is marked Unknown (nodes.ts; in a real cluster by the node lifecycle controller).
// Differs from a stopped real kubelet: a pod termination already under way when it stops finishes
// (and deletes the pod object). node-not-ready/node-ready refuse a node whose kubelet is stopped.
import { existsSync, mkdirSync, readFileSync, rmSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import type { ApiClient } from './api.js';
import { renderHosts } from './hosts.js';
import { LocalVolumes } from './localpv.js';
import { PodNetwork } from './network.js';
import { NodeHeartbeats } from './nodes.js';
import type { BoundPod, Pod, Service } from './objects.js';
import { PodWorker, type PodWorkerContext } from './podworker.js';
import { writeJsonAtomic } from './sandbox.js';
import { isMirrorPod, StaticPods } from './staticpods.js';
import { readStopped, STOPPED, stoppedAt } from './stopped.js';
import { now } from './status.js';

/** DIR/sim.json fields the kubelet reads. */
export interface SimInfo {
  nodes: string[];
  podCIDR?: string;
  id: string;
  /** `differ`: nodes' hostname labels are not their names (nodes.ts, nodeHostname). */
  hostnameLabels?: 'name' | 'differ';
}

/** The control file the fault command writes, and the kubelet's acknowledgement. */
export const CONTROL = { dir: 'kubelet-control', notReady: 'not-ready.json', ack: 'not-ready.ack.json' } as const;

// `sim down` only: nothing reads a member after it, so its etcd need not finish a leader transfer.
const SHUTDOWN_GRACE_CAP_S = 0.5;

/** Runs every pod of the cluster's nodes as real processes. */
export class Kubelet {
  private readonly abort = new AbortController();
  private readonly workers = new Map<string, PodWorker>();
  private readonly pods = new Map<string, Pod>();
  private readonly services = new Map<string, Service>();
  private readonly network: PodNetwork;
  private readonly localVolumes = new LocalVolumes();
  private readonly heartbeats: NodeHeartbeats;
  private readonly hostsTimers = new Map<string, NodeJS.Timeout>();
  private controlWatcher?: FSWatcher;
  private notReadyNodes = new Set<string>();
  /** Nodes whose kubelet is stopped (fault kubelet-stop). */
  private stoppedNodes = new Set<string>();
  private stoppedTimer?: NodeJS.Timeout;
  private readonly staticPods: StaticPods;

  constructor(private readonly dir: string, private readonly sim: SimInfo, private readonly api: ApiClient, private readonly log: (m: string) => void) {
    this.network = new PodNetwork(sim.id, sim.podCIDR);
    this.heartbeats = new NodeHeartbeats(api, sim.nodes, log, sim.hostnameLabels === 'differ', (node) => this.network.nodeIP(this.nodeIndex(node)));
    this.staticPods = new StaticPods({
      dir, nodes: sim.nodes, api, log,
      worker: (pod) => {
        const w = new PodWorker(this.workerContext(), pod);
        if (this.notReadyNodes.has(pod.spec.nodeName)) void w.setNodeReady(false);
        if (this.stoppedNodes.has(pod.spec.nodeName)) w.setFrozen(true);
        return w;
      },
      grace: (pod) => this.grace(pod),
      reachable: (node) => !this.notReadyNodes.has(node) && !this.stoppedNodes.has(node),
      stopped: (node) => this.stoppedNodes.has(node),
    });
  }

  /** A node's place in sim.json's list: its address on the pod bridge (network.ts nodeIP). */
  private nodeIndex(node: string): number {
    return Math.max(0, this.sim.nodes.indexOf(node));
  }

  /** Every running worker: the API's pods and the static pods. */
  private allWorkers(): PodWorker[] {
    return [...this.workers.values(), ...this.staticPods.workers()];
  }

  /** Prepares the network, registers nodes and starts watching pods and Services. */
  async start(): Promise<void> {
    await this.network.teardown();
    this.network.reserveNodes(this.sim.nodes.length);
    await this.network.ensureBridge();
    // Every node's address answers on the bridge (connection refused where nothing listens), as a node's does.
    await Promise.all(this.sim.nodes.map((_n, i) => this.network.nodeNet(i)));
    for (const n of this.sim.nodes) mkdirSync(join(this.dir, 'nodes', n, 'hostpath'), { recursive: true });
    mkdirSync(join(this.dir, 'runtime', 'pods'), { recursive: true });
    this.heartbeats.start();
    this.watchControl();
    this.staticPods.start();
    this.api.listWatch<Service>('/api/v1/services', {
      sync: (items) => {
        this.services.clear();
        for (const s of items) this.services.set(`${s.metadata.namespace}/${s.metadata.name}`, s);
        for (const ns of new Set(items.map((s) => s.metadata.namespace))) this.scheduleHosts(ns);
      },
      event: (ev) => {
        const key = `${ev.object.metadata.namespace}/${ev.object.metadata.name}`;
        if (ev.type === 'DELETED') this.services.delete(key);
        else this.services.set(key, ev.object);
        this.scheduleHosts(ev.object.metadata.namespace);
      },
    }, this.abort.signal, this.log);
    this.api.listWatch<Pod>('/api/v1/pods', {
      sync: (items) => {
        const seen = new Set(items.map((p) => p.metadata.uid));
        for (const [uid, p] of this.pods) if (!seen.has(uid)) this.podGone(p);
        for (const p of items) this.podChanged(p);
      },
      event: (ev) => (ev.type === 'DELETED' ? this.podGone(ev.object) : this.podChanged(ev.object)),
    }, this.abort.signal, this.log);
  }

  private isMine(pod: Pod): pod is BoundPod {
    const node = pod.spec?.nodeName;
    return node !== undefined && this.sim.nodes.includes(node);
  }

  private grace(pod: Pod): number {
    return pod.metadata.deletionGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30;
  }

  private podChanged(pod: Pod): void {
    if (this.abort.signal.aborted) return;
    this.pods.set(pod.metadata.uid, pod);
    this.scheduleHosts(pod.metadata.namespace);
    if (!this.isMine(pod)) return;
    // A stopped kubelet sees nothing: it syncs with the API's pods when it starts (kubeletStarted).
    if (this.stoppedNodes.has(pod.spec.nodeName)) return;
    // A mirror pod is never run: its static pod is (staticpods.ts).
    if (isMirrorPod(pod)) return this.staticPods.mirrorSeen(pod);
    const uid = pod.metadata.uid;
    let worker = this.workers.get(uid);
    if (pod.metadata.deletionTimestamp) {
      if (!worker) {
        worker = new PodWorker(this.workerContext(), pod);
        this.workers.set(uid, worker);
      }
      worker.update(pod);
      void worker.terminate(this.grace(pod), true).finally(() => this.workers.delete(uid));
      return;
    }
    if (worker) {
      worker.update(pod);
      return;
    }
    if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') return;
    worker = new PodWorker(this.workerContext(), pod);
    this.workers.set(uid, worker);
    if (this.notReadyNodes.has(pod.spec.nodeName)) void worker.setNodeReady(false);
    this.log(`pod ${pod.metadata.namespace}/${pod.metadata.name}: starting on ${pod.spec.nodeName}`);
    worker.start();
  }

  private podGone(pod: Pod): void {
    this.pods.delete(pod.metadata.uid);
    this.scheduleHosts(pod.metadata.namespace);
    if (this.isMine(pod) && this.stoppedNodes.has(pod.spec.nodeName)) return;
    if (this.isMine(pod) && isMirrorPod(pod)) return this.staticPods.mirrorGone(pod);
    const worker = this.workers.get(pod.metadata.uid);
    if (!worker) return;
    void worker.terminate(this.grace(pod), false).finally(() => this.workers.delete(pod.metadata.uid));
  }

  private scheduleHosts(ns: string): void {
    if (this.hostsTimers.has(ns)) return;
    this.hostsTimers.set(ns, setTimeout(() => {
      this.hostsTimers.delete(ns);
      const pods = [...this.pods.values()];
      const services = [...this.services.values()];
      for (const w of this.allWorkers()) {
        if (w.pod.metadata.namespace !== ns || !w.podIP) continue;
        w.refreshHosts(renderHosts(w.pod, w.podIP, pods, services));
      }
    }, 100));
  }

  private workerContext(): PodWorkerContext {
    return {
      dir: this.dir, api: this.api, network: this.network, localVolumes: this.localVolumes, log: this.log,
      hostIP: (node: string) => this.network.nodeIP(this.nodeIndex(node)),
      nodeNet: (node: string) => this.network.nodeNet(this.nodeIndex(node)),
      hosts: (pod: Pod, ip: string) => renderHosts(pod, ip, [...this.pods.values()], [...this.services.values()]),
      event: (pod: Pod, type: 'Normal' | 'Warning', reason: string, message: string) => this.event(pod, type, reason, message),
    };
  }

  private event(pod: Pod, type: string, reason: string, message: string): void {
    const t = now();
    const ns = pod.metadata.namespace;
    const body = {
      apiVersion: 'v1', kind: 'Event',
      metadata: { name: `${pod.metadata.name}.${Date.now().toString(16)}${Math.floor(Math.random() * 1e6).toString(16)}`, namespace: ns },
      involvedObject: { apiVersion: 'v1', kind: 'Pod', namespace: ns, name: pod.metadata.name, uid: pod.metadata.uid },
      reason, message, type, count: 1, firstTimestamp: t, lastTimestamp: t,
      source: { component: 'kubelet', host: pod.spec?.nodeName }, reportingComponent: 'kubelet', reportingInstance: pod.spec?.nodeName,
    };
    this.api.request('POST', `/api/v1/namespaces/${ns}/events`, body).catch((err) => this.log(`event: ${(err as Error).message}`));
  }

  private watchControl(): void {
    const dir = join(this.dir, CONTROL.dir);
    mkdirSync(dir, { recursive: true });
    let applying = Promise.resolve();
    const apply = () => {
      applying = applying.then(async () => {
        const file = join(dir, CONTROL.notReady);
        if (!existsSync(file)) return;
        const req = JSON.parse(readFileSync(file, 'utf8')) as { seq: number; nodes: string[] };
        await this.heartbeats.setNotReady(req.nodes);
        const before = this.notReadyNodes;
        this.notReadyNodes = new Set(req.nodes);
        for (const n of before) if (!this.notReadyNodes.has(n)) this.staticPods.nodeReady(n);
        await Promise.all(this.allWorkers().map((w) => w.setNodeReady(!this.notReadyNodes.has(w.pod.spec.nodeName))));
        writeJsonAtomic(join(dir, CONTROL.ack), req);
        this.log(`nodes forced not ready: ${req.nodes.join(', ') || '(none)'}`);
      }).catch((err) => this.log(`control: ${(err as Error).message}`));
    };
    // A `--for` node's own start comes through the same queue, never beside a request being applied.
    this.queueStopped = () => {
      applying = applying.then(() => this.applyStopped()).catch((err) => this.log(`control: ${(err as Error).message}`));
    };
    this.controlWatcher = watch(dir, (_ev, name) => {
      if (name === CONTROL.notReady) apply();
      if (name === STOPPED.request) this.queueStopped();
    });
    apply();
    this.queueStopped();
  }

  /** Applies stopped.json after whatever control request is being applied (set by watchControl). */
  private queueStopped: () => void = () => undefined;

  /** Stops and starts nodes' kubelets as stopped.json says (a node stopped `--for` starts by itself). */
  private async applyStopped(): Promise<void> {
    const req = readStopped(this.dir);
    if (!req) return;
    const want = new Set(stoppedAt(req));
    if (this.stoppedTimer) clearTimeout(this.stoppedTimer);
    const next = Math.min(...Object.values(req.nodes).filter((u): u is number => u !== null && u > Date.now()));
    if (Number.isFinite(next)) this.stoppedTimer = setTimeout(() => this.queueStopped(), next - Date.now() + 10);
    for (const n of want) {
      if (this.stoppedNodes.has(n)) continue;
      this.stoppedNodes.add(n);
      for (const w of this.allWorkers()) if (w.pod.spec.nodeName === n) w.setFrozen(true);
      this.heartbeats.stopKubelet(n, req.graceMs, () => this.nodeUnknown(n));
      this.log(`kubelet of ${n}: stopped`);
    }
    for (const n of [...this.stoppedNodes]) {
      if (want.has(n)) continue;
      this.stoppedNodes.delete(n);
      await this.kubeletStarted(n);
      this.log(`kubelet of ${n}: started`);
    }
    if (req.seq > (readStopped(this.dir, true)?.seq ?? 0)) writeJsonAtomic(join(this.dir, STOPPED.dir, STOPPED.ack), req);
  }

  /** The grace period after a kubelet stopped is over: its pods are marked not Ready (the node lifecycle controller's MarkPodsNotReady). */
  private nodeUnknown(node: string): void {
    for (const w of this.allWorkers()) if (w.pod.spec.nodeName === node) void w.setNodeReady(false);
  }

  /** A node's kubelet starts again: heartbeats, then a sync with the API's pods and the manifest folder. */
  private async kubeletStarted(node: string): Promise<void> {
    await this.heartbeats.startKubelet(node, !this.notReadyNodes.has(node));
    const ready = !this.notReadyNodes.has(node);
    for (const w of this.allWorkers()) {
      if (w.pod.spec.nodeName !== node) continue;
      w.setFrozen(false);
      await w.setNodeReady(ready);
    }
    for (const [uid, w] of this.workers) {
      if (w.pod.spec.nodeName === node && !this.pods.has(uid)) this.podGone(w.pod);
    }
    for (const p of this.pods.values()) if (p.spec?.nodeName === node) this.podChanged(p);
    this.staticPods.kubeletStarted(node);
  }

  /** Stops every pod, unmounts volumes, deletes namespaces and stops watching. */
  async shutdown(): Promise<void> {
    this.abort.abort();
    this.controlWatcher?.close();
    if (this.stoppedTimer) clearTimeout(this.stoppedTimer);
    this.heartbeats.stop();
    for (const t of this.hostsTimers.values()) clearTimeout(t);
    await Promise.all([
      ...[...this.workers.values()].map((w) => w.terminate(Math.min(SHUTDOWN_GRACE_CAP_S, this.grace(w.pod)), false, true)),
      this.staticPods.shutdown((pod) => Math.min(SHUTDOWN_GRACE_CAP_S, this.grace(pod))),
    ]);
    await this.localVolumes.unmountAll(this.log);
    await this.network.teardown();
    rmSync(join(this.dir, 'runtime', 'pods'), { recursive: true, force: true });
    rmSync(join(this.dir, 'kubelet', 'pods'), { recursive: true, force: true });
  }
}
