/**
 * The fixed address of each simulated node: from the top of podCIDR down (the last usable address
 * for the first node in sim.json's list, then one lower for each next). The kubelet gives it to the
 * node's own network namespace (kubelet/network.ts) and publishes it as the Node's InternalIP;
 * fixtures that write a node's address into its static pods (kubeadm) read it from here.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readSimConfig } from './apiserver/clusterfiles.js';

export const DEFAULT_POD_CIDR = '10.88.0.0/16';

export function ipToInt(ip: string): number {
  return ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
}

export function intToIp(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

/** The network base and prefix length of a CIDR. */
export function cidrOf(podCIDR: string): { base: number; prefix: number } {
  const [addr, len] = podCIDR.split('/');
  const prefix = Number(len ?? 16);
  const n = ipToInt(addr ?? '0.0.0.0');
  return { base: n - (n % 2 ** (32 - prefix)), prefix };
}

/** Host number (offset from the base) of the node with this index. */
export function nodeHostOf(prefix: number, index: number): number {
  return 2 ** (32 - prefix) - 2 - index;
}

/** The address of the node with this index (0 for the first). */
export function nodeIPOf(podCIDR: string, index: number): string {
  const { base, prefix } = cidrOf(podCIDR);
  return intToIp(base + nodeHostOf(prefix, index));
}

/**
 * Each named node's address in the cluster of `dir` (its sim.json: podCIDR and the nodes' order);
 * without one (manifests built without a cluster), the nodes' order as given on the default CIDR.
 */
export function nodeAddresses(dir: string | undefined, nodes: string[]): Record<string, string> {
  const sim = dir && existsSync(join(dir, 'sim.json')) ? readSimConfig(dir) : undefined;
  const cidr = sim?.podCIDR ?? DEFAULT_POD_CIDR;
  const out: Record<string, string> = {};
  nodes.forEach((n, i) => {
    const at = sim ? sim.nodes.indexOf(n) : i;
    if (at < 0) throw new Error(`node "${n}" is not in the cluster (its nodes: ${sim!.nodes.join(', ')})`);
    out[n] = nodeIPOf(cidr, at);
  });
  return out;
}
