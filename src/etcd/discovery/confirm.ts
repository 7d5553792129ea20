/**
 * Matches the topology read from pod specs against the live `member list`, by name and then by
 * peer URL, and reports each difference as a named outcome instead of a boolean.
 */
import type { EtcdTopology } from '../topology.js';

/** One member as `etcdctl member list -w json` reports it, with the ID in hex. */
export interface LiveMember {
  id: string;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner?: boolean;
}

/** The verdict for one discovered or live member. */
export type MemberOutcome =
  | { kind: 'confirmed'; pod: string; name: string; memberId: string }
  | { kind: 'peer-url-mismatch'; pod: string; name: string; memberId: string; expected: string; actual: string[] }
  | { kind: 'name-mismatch'; pod: string; name: string; memberId: string; liveName: string }
  | { kind: 'missing-from-cluster'; pod: string; name: string }
  | { kind: 'unstarted'; memberId: string; peerURLs: string[] }
  | { kind: 'unknown-member'; memberId: string; name: string; peerURLs: string[] };

/** The topology with confirmed member IDs, and one outcome per member on either side. */
export interface MemberConfirmation {
  topology: EtcdTopology;
  outcomes: MemberOutcome[];
  /** true when every outcome is `confirmed`. */
  ok: boolean;
}

/** A URL for comparison: scheme, lowercase host and explicit port. */
export function normalizeUrl(u: string): string {
  try {
    const url = new URL(u);
    return `${url.protocol}//${url.hostname.toLowerCase()}:${url.port || (url.protocol === 'https:' ? '443' : '80')}`;
  } catch {
    return u;
  }
}

/** Compares discovered members with the live member list. */
export function confirmMembers(topology: EtcdTopology, live: LiveMember[]): MemberConfirmation {
  const outcomes: MemberOutcome[] = [];
  const used = new Set<string>();
  const members = topology.members.map((m) => {
    const peer = normalizeUrl(m.peerUrl);
    const byName = live.find((l) => l.name === m.name && !used.has(l.id));
    const byPeer = live.find((l) => !used.has(l.id) && l.peerURLs.some((u) => normalizeUrl(u) === peer));
    const match = byName ?? byPeer;
    if (!match) {
      outcomes.push({ kind: 'missing-from-cluster', pod: m.pod, name: m.name });
      return m;
    }
    used.add(match.id);
    if (!match.name) outcomes.push({ kind: 'unstarted', memberId: match.id, peerURLs: match.peerURLs });
    else if (match.name !== m.name) outcomes.push({ kind: 'name-mismatch', pod: m.pod, name: m.name, memberId: match.id, liveName: match.name });
    else if (!match.peerURLs.some((u) => normalizeUrl(u) === peer)) {
      outcomes.push({ kind: 'peer-url-mismatch', pod: m.pod, name: m.name, memberId: match.id, expected: m.peerUrl, actual: match.peerURLs });
    } else outcomes.push({ kind: 'confirmed', pod: m.pod, name: m.name, memberId: match.id });
    return { ...m, memberId: match.id };
  });
  for (const l of live) {
    if (used.has(l.id)) continue;
    outcomes.push(l.name ? { kind: 'unknown-member', memberId: l.id, name: l.name, peerURLs: l.peerURLs } : { kind: 'unstarted', memberId: l.id, peerURLs: l.peerURLs });
  }
  return { topology: { ...topology, members }, outcomes, ok: outcomes.every((o) => o.kind === 'confirmed') };
}

/** Reads `etcdctl member list -w json` output without losing the 64-bit IDs (hex, as etcdctl prints them). */
export function parseMemberList(json: string): LiveMember[] {
  // IDs are uint64 and exceed JSON numbers' exact range: quote long integers before parsing.
  const safe = json.replace(/([:\[,]\s*)(\d{16,})(?=\s*[,}\]])/g, '$1"$2"');
  const doc = JSON.parse(safe) as { members?: Array<{ ID?: string | number; name?: string; peerURLs?: string[]; clientURLs?: string[]; isLearner?: boolean }> };
  return (doc.members ?? []).map((m) => ({
    id: BigInt(m.ID ?? 0).toString(16),
    name: m.name ?? '',
    peerURLs: m.peerURLs ?? [],
    clientURLs: m.clientURLs ?? [],
    ...(m.isLearner ? { isLearner: true } : {}),
  }));
}
