// Node registration and heartbeats for every simulated node: creates the Node (labels
// kubernetes.io/hostname, kubernetes.io/os, kubernetes.io/arch, topology.kubernetes.io/zone,
// node-role for control-plane names), then patches status every 10 s (Ready + pressure
// conditions, addresses, capacity).
// The hostname label is the node's name unless the cluster was started with
// `--hostname-labels=differ`: then node-N is labelled host-N.example.internal (and reports that
// Hostname address), as where the kubelet's hostname is not the node name a cloud provider or
// --hostname-override gives it (docs: reference/labels-annotations-taints#kubernetesiohostname:
// "the value of this label can differ from the node name"). Zones cycle zone-a, zone-b, zone-c
// (node-1 in zone-a), as a cloud's nodes are spread over zones
// (reference/labels-annotations-taints#topologykubernetesiozone).
// A node can be forced NotReady (fault `node-not-ready`): heartbeats stop, Ready turns False and
// the taint node.kubernetes.io/not-ready:NoSchedule is added; pods keep running, but their Ready
// condition turns False and their status is no longer updated (see PodWorker.setNodeReady).
// A node whose kubelet is stopped (fault kubelet-stop) posts nothing; once the grace period is
// over (kube-controller-manager --node-monitor-grace-period) every condition turns Unknown with
// "Kubelet stopped posting node status." and the taints node.kubernetes.io/unreachable (NoSchedule
// and NoExecute) are added, as the node lifecycle controller does
// (pkg/controller/nodelifecycle/node_lifecycle_controller.go tryUpdateNodeHealth; docs:
// reference/labels-annotations-taints#node-kubernetes-io-unreachable); they go when it posts again.
// Differs from a real kubelet: no Lease objects; the not-ready taint is added by the kubelet
// itself (in a real cluster the node lifecycle controller adds it, also as NoExecute); capacity
// figures are fixed; a node's InternalIP is its address on the pod bridge (network.ts nodeIP),
// which this machine cannot reach (pods and hostNetwork pods can).
import type { V1Node, V1NodeCondition, V1NodeStatus, V1Taint } from '@kubernetes/client-node';
import type { Json } from '../json.js';
import { ApiError, type ApiClient } from './api.js';
import { now } from './status.js';

const NOT_READY_TAINT = 'node.kubernetes.io/not-ready';
const UNREACHABLE_TAINT = 'node.kubernetes.io/unreachable';
const HEARTBEAT_MS = 10_000;

/** The `kubernetes.io/hostname` label of node `name`: its name, or with differ `node-N` → `host-N.example.internal`. */
export function nodeHostname(name: string, differ: boolean): string {
  return differ ? `${name.replace(/^node-/, 'host-')}.example.internal` : name;
}

/** The zone of the index-th node (from 0): zone-a, zone-b, zone-c, zone-a, … */
export function nodeZone(index: number): string {
  return `zone-${String.fromCharCode(97 + (index % 3))}`;
}

function nodeObject(name: string, hostname: string, zone: string): Json<V1Node> {
  return {
    apiVersion: 'v1', kind: 'Node',
    metadata: {
      name,
      labels: {
        'kubernetes.io/hostname': hostname, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64',
        'topology.kubernetes.io/zone': zone,
        'beta.kubernetes.io/os': 'linux', 'beta.kubernetes.io/arch': 'amd64',
        ...(/control-plane|master/.test(name) ? { 'node-role.kubernetes.io/control-plane': '' } : {}),
      },
    },
    spec: {},
  };
}

function nodeStatus(name: string, hostname: string, ip: string, ready: boolean, previous: Json<V1NodeCondition>[]): Json<V1NodeStatus> {
  const t = now();
  const cond = (type: string, status: string, reason: string, message: string) => {
    const prev = previous.find((c) => c.type === type);
    return { type, status, reason, message, lastHeartbeatTime: t, lastTransitionTime: prev?.status === status ? prev.lastTransitionTime : t };
  };
  const capacity = { cpu: '4', memory: '8Gi', pods: '110', 'ephemeral-storage': '100Gi' };
  return {
    conditions: [
      cond('MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'kubelet has sufficient memory available'),
      cond('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure'),
      cond('PIDPressure', 'False', 'KubeletHasSufficientPID', 'kubelet has sufficient PID available'),
      ready
        ? cond('Ready', 'True', 'KubeletReady', 'kubelet is posting ready status')
        : cond('Ready', 'False', 'KubeletNotReady', 'node was made not ready by a simulator fault'),
    ],
    addresses: [{ type: 'InternalIP', address: ip }, { type: 'Hostname', address: hostname }],
    capacity, allocatable: capacity,
    daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
    nodeInfo: {
      machineID: name, systemUUID: name, bootID: name, kernelVersion: 'sim', osImage: 'kubectl-etcd simulator',
      containerRuntimeVersion: 'sim://1.0', kubeletVersion: 'v1.32.0', kubeProxyVersion: 'v1.32.0',
      operatingSystem: 'linux', architecture: 'amd64',
    },
  };
}

/** Keeps the simulated nodes registered and Ready (or NotReady when told). */
export class NodeHeartbeats {
  private readonly notReady = new Set<string>();
  /** Nodes whose kubelet is stopped, with the timer that marks them Unknown. */
  private readonly stopped = new Map<string, NodeJS.Timeout>();
  /** A marking Unknown under way, per node (startKubelet waits for it, then undoes it). */
  private readonly marking = new Map<string, Promise<void>>();
  private timer?: NodeJS.Timeout;

  constructor(private readonly api: ApiClient, readonly nodes: string[], private readonly log: (m: string) => void,
    private readonly hostnamesDiffer = false, private readonly ipOf: (node: string) => string = () => '127.0.0.1') {}

  private hostname(name: string): string {
    return nodeHostname(name, this.hostnamesDiffer);
  }

  /** Starts registering and heartbeating every node. */
  start(): void {
    const tick = async () => {
      await Promise.all(this.nodes.map((n) => this.beat(n).catch((err) => this.log(`node ${n}: ${(err as Error).message}`))));
      this.timer = setTimeout(tick, HEARTBEAT_MS);
    };
    void tick();
  }

  /** Stops heartbeating. */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    for (const t of this.stopped.values()) clearTimeout(t);
  }

  /** The node's kubelet stopped: no more status; after graceMs it is marked Unknown (then `unknown` runs), unless it started meanwhile. */
  stopKubelet(name: string, graceMs: number, unknown: () => void): void {
    if (this.stopped.has(name)) return;
    const timer: NodeJS.Timeout = setTimeout(() => {
      const current = () => this.stopped.get(name) === timer;
      void this.markUnknown(name, current).then(() => { if (current()) unknown(); }, (err) => this.log(`node ${name}: marking unknown: ${(err as Error).message}`));
    }, graceMs);
    this.stopped.set(name, timer);
  }

  /** The node's kubelet started again: it posts its status (ready or forced NotReady) and the unreachable taints go. */
  async startKubelet(name: string, ready: boolean): Promise<void> {
    const t = this.stopped.get(name);
    if (!t) return;
    clearTimeout(t);
    this.stopped.delete(name);
    // A marking under way when it started finishes first (it checks `current` before each write), then this undoes it.
    await this.marking.get(name);
    try {
      await this.setTaints(name, UNREACHABLE_TAINT, []);
      await this.patchStatus(name, ready);
    } catch (err) {
      this.log(`node ${name}: kubelet started: ${(err as Error).message}`);
    }
  }

  /** Marks the node Unknown and taints it unreachable; each write only while `current()` (the same stop). */
  private markUnknown(name: string, current: () => boolean): Promise<void> {
    const run = (async () => {
      if (!current()) return;
      const node = await this.api.request<Json<V1Node>>('GET', `/api/v1/nodes/${name}`);
      const t = now();
      const conditions = (node.status?.conditions ?? []).map((c) => (c.status === 'Unknown' ? c : {
        ...c, status: 'Unknown', reason: 'NodeStatusUnknown', message: 'Kubelet stopped posting node status.', lastTransitionTime: t,
      }));
      if (!current()) return;
      await this.api.request('PATCH', `/api/v1/nodes/${name}/status`, { status: { conditions } }, 'application/merge-patch+json');
      if (!current()) return;
      await this.setTaints(name, UNREACHABLE_TAINT, ['NoSchedule', 'NoExecute']);
    })();
    const settled = run.catch(() => undefined);
    this.marking.set(name, settled);
    void settled.then(() => { if (this.marking.get(name) === settled) this.marking.delete(name); });
    return run;
  }

  /** Sets which nodes are forced NotReady; applies the change right away. */
  async setNotReady(nodes: string[]): Promise<void> {
    const next = new Set(nodes);
    const changed = this.nodes.filter((n) => next.has(n) !== this.notReady.has(n));
    this.notReady.clear();
    for (const n of next) this.notReady.add(n);
    for (const n of changed) {
      await this.setTaint(n, next.has(n));
      await this.patchStatus(n, !next.has(n));
    }
  }

  private async beat(name: string): Promise<void> {
    let node: Json<V1Node>;
    try {
      node = await this.api.request<Json<V1Node>>('GET', `/api/v1/nodes/${name}`);
    } catch (err) {
      if (!(err instanceof ApiError && err.code === 404)) throw err;
      node = await this.api.request<Json<V1Node>>('POST', '/api/v1/nodes', nodeObject(name, this.hostname(name), nodeZone(this.nodes.indexOf(name))));
      this.log(`node ${name}: registered`);
    }
    if (this.notReady.has(name) || this.stopped.has(name)) return;
    await this.patchStatus(name, true, node.status?.conditions ?? []);
  }

  private async patchStatus(name: string, ready: boolean, previous?: Json<V1NodeCondition>[]): Promise<void> {
    const prev = previous ?? (await this.api.request<Json<V1Node>>('GET', `/api/v1/nodes/${name}`)).status?.conditions ?? [];
    await this.api.request('PATCH', `/api/v1/nodes/${name}/status`, { status: nodeStatus(name, this.hostname(name), this.ipOf(name), ready, prev) }, 'application/merge-patch+json');
  }

  private async setTaint(name: string, present: boolean): Promise<void> {
    await this.setTaints(name, NOT_READY_TAINT, present ? ['NoSchedule'] : []);
  }

  /** The node's taints of `key`: exactly these effects. */
  private async setTaints(name: string, key: string, effects: string[]): Promise<void> {
    const node = await this.api.request<Json<V1Node>>('GET', `/api/v1/nodes/${name}`);
    const taints: Json<V1Taint>[] = (node.spec?.taints ?? []).filter((t) => t.key !== key);
    for (const effect of effects) taints.push({ key, effect, timeAdded: now() });
    await this.api.request('PATCH', `/api/v1/nodes/${name}`, { spec: { taints: taints.length ? taints : null } }, 'application/merge-patch+json');
  }
}
