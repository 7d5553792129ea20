// The pod network: one named network namespace `ks<id>-br` holding a bridge br0 with the first
// address of podCIDR, and one named namespace per pod (`ks<id>-<hash>`) with a veth `eth0` on it.
// Each node has a namespace of its own too (`ks<id>-n<i>`, made when first needed) at a fixed
// address from the top of podCIDR (the last usable address for the first node, then down): the
// node's IP (its InternalIP, every pod's hostIP), and the network of its hostNetwork pods, which
// share it as pods with hostNetwork share their node's (docs: concepts/workloads/pods, "Pod
// networking"; kubeadm's static pods rely on it: their peer URLs name the node's IP).
// Differs from a real cluster: no CNI plugin, no Services/kube-proxy, no route to the host or to
// anything outside the bridge; all nodes share one bridge; IPs are allocated in memory; a node's
// namespace holds only its hostNetwork pods (no kubelet, no sshd).
import { createHash } from 'node:crypto';
import { must, run } from './host.js';
import { cidrOf, DEFAULT_POD_CIDR, intToIp, ipToInt, nodeHostOf, nodeIPOf } from '../nodeaddr.js';

/** A pod's network namespace and address. */
export interface PodNet {
  netns: string;
  netnsPath: string;
  ip: string;
}


/** The bridge end of a pod's veth pair, named after its namespace (`ks<id>-<hash>` → `v<hash>`). */
export function vethName(netns: string): string {
  return `v${netns.slice(netns.lastIndexOf('-') + 1)}`;
}

/** Creates and removes pod network namespaces on one bridge. */
export class PodNetwork {
  private readonly used = new Set<number>();
  private readonly base: number;
  private readonly prefix: number;
  readonly bridgeNetns: string;

  constructor(private readonly id: string, private readonly podCIDR = DEFAULT_POD_CIDR) {
    ({ base: this.base, prefix: this.prefix } = cidrOf(podCIDR));
    this.bridgeNetns = `ks${id}-br`;
  }

  /** The bridge's own address (the pods' default gateway). */
  get gateway(): string {
    return intToIp(this.base + 1);
  }

  /** Creates the bridge namespace (idempotent). */
  async ensureBridge(): Promise<void> {
    const list = await must('ip', ['netns', 'list']);
    if (list.split('\n').some((l) => l.split(' ')[0] === this.bridgeNetns)) return;
    const ns = this.bridgeNetns;
    await must('ip', ['netns', 'add', ns]);
    await must('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    await must('ip', ['-n', ns, 'link', 'add', 'br0', 'type', 'bridge']);
    await must('ip', ['-n', ns, 'addr', 'add', `${this.gateway}/${this.prefix}`, 'dev', 'br0']);
    await must('ip', ['-n', ns, 'link', 'set', 'br0', 'up']);
  }

  /** The fixed address of the node with this index (0 for the first): from the top of podCIDR down. */
  nodeIP(index: number): string {
    return nodeIPOf(this.podCIDR, index);
  }

  private nodeHost(index: number): number {
    return nodeHostOf(this.prefix, index);
  }

  /** Reserves the nodes' addresses, so that no pod is given one. */
  reserveNodes(count: number): void {
    for (let i = 0; i < count; i++) this.used.add(this.nodeHost(i));
  }

  private readonly nodeNets = new Map<number, Promise<PodNet>>();

  /** The node's own namespace (made on first use, kept until teardown): where its hostNetwork pods run. */
  nodeNet(index: number): Promise<PodNet> {
    let net = this.nodeNets.get(index);
    if (!net) {
      net = this.createAt(`ks${this.id}-n${index}`, this.nodeHost(index));
      this.nodeNets.set(index, net);
      net.catch(() => this.nodeNets.delete(index));
    }
    return net;
  }

  /** Creates a pod's namespace with eth0 on the bridge and a fresh address. */
  async create(podUid: string): Promise<PodNet> {
    const hash = createHash('sha256').update(podUid).digest('hex').slice(0, 10);
    let host = 2;
    while (this.used.has(host)) host++;
    if (host >= 2 ** (32 - this.prefix) - 1) throw new Error(`pod network "${this.bridgeNetns}" is full`);
    return this.createAt(`ks${this.id}-${hash}`, host);
  }

  private async createAt(netns: string, host: number): Promise<PodNet> {
    this.used.add(host);
    const ip = intToIp(this.base + host);
    const veth = vethName(netns);
    try {
      await run('ip', ['netns', 'del', netns]);
      await must('ip', ['netns', 'add', netns]);
      await must('ip', ['-n', this.bridgeNetns, 'link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
      await must('ip', ['-n', this.bridgeNetns, 'link', 'set', veth, 'master', 'br0', 'up']);
      await must('ip', ['-n', netns, 'addr', 'add', `${ip}/${this.prefix}`, 'dev', 'eth0']);
      await must('ip', ['-n', netns, 'link', 'set', 'eth0', 'up']);
      await must('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
      await must('ip', ['-n', netns, 'route', 'add', 'default', 'via', this.gateway]);
    } catch (err) {
      await this.remove({ netns, netnsPath: '', ip });
      throw err;
    }
    return { netns, netnsPath: `/run/netns/${netns}`, ip };
  }

  /**
   * Deletes a pod's veth pair, then its namespace, and frees its address. The veth goes first, as
   * a CNI DEL does: `ip netns del` only removes the name, and while any process still has the
   * namespace, it, its eth0 and its address would live on beside the next pod given the address —
   * two MACs answering ARP for one IP, and that pod cut off from its peers for a minute or more.
   */
  async remove(net: PodNet): Promise<void> {
    await run('ip', ['-n', this.bridgeNetns, 'link', 'del', vethName(net.netns)]);
    await run('ip', ['netns', 'del', net.netns]);
    this.used.delete(ipToInt(net.ip) - this.base);
  }

  /** Deletes every namespace of this cluster, the bridge last. */
  async teardown(): Promise<void> {
    const list = await run('ip', ['netns', 'list']);
    const ours = list.stdout.split('\n').map((l) => l.split(' ')[0])
      .filter((n) => n.startsWith(`ks${this.id}-`) && n !== this.bridgeNetns);
    for (const n of ours) await run('ip', ['netns', 'del', n]);
    await run('ip', ['netns', 'del', this.bridgeNetns]);
    this.used.clear();
    this.nodeNets.clear();
  }
}
