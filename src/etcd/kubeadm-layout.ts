/**
 * kubeadm's layout of a stacked etcd member, as its static pod shows it: the member advertises its
 * peer URL on its node's IP (kubeadm cmd/kubeadm/app/phases/etcd/local.go), and its certificates
 * lie under /etc/kubernetes/pki/etcd (or in its data dir). The restore refuses a member off this
 * layout before it changes anything; the backup says so, so that it is found before it is needed.
 */
import { within } from '../restore/kept.js';
import type { EtcdMember } from './topology.js';

/** kubeadm's configuration folder on every control-plane node. */
export const KUBEADM_CONFIG_DIR = '/etc/kubernetes';

/** One way a member is off kubeadm's layout: what is wrong, and where to look. */
export interface LayoutProblem {
  message: string;
  hint: string;
  /** The restore goes on past it with --force (the layout may still work). */
  forceable: boolean;
}

/** The host of a URL (an IPv6 literal without brackets); undefined when it is not a URL. */
function urlHost(url: string): string | undefined {
  try {
    return new URL(url).hostname.replace(/^\[|\]$/g, '');
  } catch {
    return undefined;
  }
}

/** TLS files of a member that lie neither under /etc/kubernetes nor in its data volume. */
function tlsOutside(m: EtcdMember): string[] {
  const mount = m.dataVolume?.mountPath ?? m.dataDir;
  return [m.tls.caFile, m.tls.certFile, m.tls.keyFile].filter((f): f is string => !!f && !within(f, KUBEADM_CONFIG_DIR) && !within(f, mount));
}

/** A peer URL on a host that is not one of the node's addresses (none known: not judged). */
export function peerUrlOffNode(m: EtcdMember, addresses: string[] | undefined): LayoutProblem | undefined {
  const host = urlHost(m.peerUrl);
  if (!addresses?.length || !host || addresses.includes(host)) return undefined;
  return {
    message: `member "${m.name}" advertises peer URL ${m.peerUrl}, but its node "${m.node}" has address${addresses.length > 1 ? 'es' : ''} ${addresses.join(', ')}`,
    hint: `check --initial-advertise-peer-urls in ${m.node}'s /etc/kubernetes/manifests/etcd.yaml against the node (kubectl get node ${m.node} -o wide); a node with several interfaces may advertise on one its Node does not list`,
    forceable: true,
  };
}

/** Certificates where an agent on the node, which mounts /etc/kubernetes and the data dir, would not find them. */
export function certificatesOutside(m: EtcdMember): LayoutProblem | undefined {
  const outside = tlsOutside(m);
  if (!outside.length) return undefined;
  return {
    message: `member "${m.name}" names certificate files outside ${KUBEADM_CONFIG_DIR} and its data dir (${outside.join(', ')})`,
    hint: 'keep them under /etc/kubernetes/pki/etcd, as kubeadm does',
    forceable: false,
  };
}

/**
 * What the backup says of kubeadm members off the layout (a restore of this snapshot would refuse
 * them): their peer URL off their node's addresses, certificates outside. A node that cannot be
 * read is not judged.
 */
export async function kubeadmLayoutWarnings(members: EtcdMember[], nodeAddresses: (node: string) => Promise<string[] | undefined>): Promise<string[]> {
  const each = await Promise.all(members.map(async (m) => {
    const addresses = m.node ? await nodeAddresses(m.node).catch(() => undefined) : undefined;
    return [peerUrlOffNode(m, addresses), certificatesOutside(m)].filter((p): p is LayoutProblem => !!p);
  }));
  return each.flat().map((p) => `${p.message}: \`kubectl etcd restore\` would refuse this member${p.forceable ? ' (without --force)' : ''}; ${p.hint}`);
}

/** The addresses a node's member may advertise on: every address the node reports (IPs, DNS names, its hostname). */
export function nodeAddressesOf(node: { status?: { addresses?: Array<{ type: string; address: string }> } }): string[] {
  return (node.status?.addresses ?? []).map((a) => a.address);
}
