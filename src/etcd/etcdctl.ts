/**
 * Pure builders of etcdctl / etcdutl invocations as argv arrays plus env (never shell strings):
 * the one place backup, status and restore get their etcd commands from. Where a shell cannot be
 * avoided (backup's save script), the caller quotes every word with the tested `shellQuote`.
 */
import type { ClientTls, EtcdMember } from './topology.js';

/** A command to run in a container: argv and the extra environment it needs. */
export interface EtcdCommand {
  argv: string[];
  env: Record<string, string>;
}

/** How etcdctl reaches a member: endpoint(s) and client TLS files. */
export interface EtcdctlTarget {
  endpoints: string[];
  tls?: ClientTls;
  /** etcdctl's --command-timeout (e.g. `5s`); etcdctl's own default when unset. */
  commandTimeout?: string;
}

/** The etcdctl target of a member: its in-pod endpoint and TLS files. */
export function targetOf(member: Pick<EtcdMember, 'endpoint' | 'tls'>): EtcdctlTarget {
  return { endpoints: [member.endpoint], tls: member.tls };
}

const API3 = { ETCDCTL_API: '3' };

/** etcdctl's connection flags for the target: endpoints, client TLS files, command timeout. */
export function connectionFlags(t: EtcdctlTarget): string[] {
  return [
    `--endpoints=${t.endpoints.join(',')}`,
    ...(t.tls?.caFile ? [`--cacert=${t.tls.caFile}`] : []),
    ...(t.tls?.certFile ? [`--cert=${t.tls.certFile}`] : []),
    ...(t.tls?.keyFile ? [`--key=${t.tls.keyFile}`] : []),
    ...(t.commandTimeout ? [`--command-timeout=${t.commandTimeout}`] : []),
  ];
}

const connection = connectionFlags;

/** `etcdctl snapshot save PATH` against the target (one endpoint: etcdctl requires exactly one). */
export function snapshotSave(t: EtcdctlTarget, path: string): EtcdCommand {
  if (t.endpoints.length !== 1) throw new Error(`snapshot save needs exactly one endpoint, got ${t.endpoints.length}`);
  return { argv: ['etcdctl', ...connection(t), 'snapshot', 'save', path], env: { ...API3 } };
}

/** What one member's restore needs. */
export interface RestoreSpec {
  snapshot: string;
  name: string;
  initialCluster: string;
  initialClusterToken: string;
  initialAdvertisePeerUrls: string;
  dataDir: string;
  /** Required for a raw db copied from a data dir (no sha256 trailer). */
  skipHashCheck?: boolean;
}

function restoreFlags(r: RestoreSpec): string[] {
  return [
    `--name=${r.name}`,
    `--initial-cluster=${r.initialCluster}`,
    `--initial-cluster-token=${r.initialClusterToken}`,
    `--initial-advertise-peer-urls=${r.initialAdvertisePeerUrls}`,
    `--data-dir=${r.dataDir}`,
    ...(r.skipHashCheck ? ['--skip-hash-check'] : []),
  ];
}

/** `etcdctl snapshot restore` (etcd 3.4; deprecated in 3.5 in favour of etcdutl). */
export function etcdctlSnapshotRestore(r: RestoreSpec): EtcdCommand {
  return { argv: ['etcdctl', 'snapshot', 'restore', r.snapshot, ...restoreFlags(r)], env: { ...API3 } };
}

/** `etcdutl snapshot restore … --bump-revision N --mark-compacted` (etcd 3.5+), so watch caches cannot miss changes. */
export function etcdutlSnapshotRestore(r: RestoreSpec & { bumpRevision?: number; markCompacted?: boolean }): EtcdCommand {
  const bump = r.bumpRevision !== undefined ? [`--bump-revision=${r.bumpRevision}`] : [];
  const mark = (r.markCompacted ?? r.bumpRevision !== undefined) ? ['--mark-compacted'] : [];
  return { argv: ['etcdutl', 'snapshot', 'restore', r.snapshot, ...restoreFlags(r), ...bump, ...mark], env: {} };
}

/** `etcdctl endpoint status -w json` (`cluster` asks every member the target knows of). */
export function endpointStatus(t: EtcdctlTarget, opts: { cluster?: boolean } = {}): EtcdCommand {
  return { argv: ['etcdctl', ...connection(t), 'endpoint', 'status', ...(opts.cluster ? ['--cluster'] : []), '-w', 'json'], env: { ...API3 } };
}

/** `etcdctl endpoint health -w json`. */
export function endpointHealth(t: EtcdctlTarget, opts: { cluster?: boolean } = {}): EtcdCommand {
  return { argv: ['etcdctl', ...connection(t), 'endpoint', 'health', ...(opts.cluster ? ['--cluster'] : []), '-w', 'json'], env: { ...API3 } };
}

/** `etcdctl member list -w json` (IDs are uint64: read them with parseMemberList). */
export function memberList(t: EtcdctlTarget): EtcdCommand {
  return { argv: ['etcdctl', ...connection(t), 'member', 'list', '-w', 'json'], env: { ...API3 } };
}

/** `etcdctl get "" --prefix --keys-only --limit=1 -w json`: the response's `count` is the number of keys. */
export function keyCount(t: EtcdctlTarget): EtcdCommand {
  return { argv: ['etcdctl', ...connection(t), 'get', '', '--prefix', '--keys-only', '--limit=1', '-w', 'json'], env: { ...API3 } };
}

/** `etcdctl move-leader HEXID`: sent to the leader's endpoint (etcdctl asks each endpoint it is given for the leader). */
export function moveLeader(t: EtcdctlTarget, transfereeHex: string): EtcdCommand {
  if (!/^[0-9a-f]{1,16}$/.test(transfereeHex)) throw new Error(`not a member ID: "${transfereeHex}"`);
  return { argv: ['etcdctl', ...connection(t), 'move-leader', transfereeHex], env: { ...API3 } };
}

/** `etcdctl alarm list`. */
export function alarmList(t: EtcdctlTarget): EtcdCommand {
  return { argv: ['etcdctl', ...connection(t), 'alarm', 'list'], env: { ...API3 } };
}

/** The `--initial-cluster` value for members: `name=peerUrl,…` in member order. */
export function initialClusterOf(members: Array<Pick<EtcdMember, 'name' | 'peerUrl'>>): string {
  return members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
}

/** `etcdctl alarm disarm`: etcdctl lists the cluster's alarms and disarms every one. */
export function alarmDisarm(t: EtcdctlTarget): EtcdCommand {
  return { argv: ['etcdctl', ...connection(t), 'alarm', 'disarm'], env: { ...API3 } };
}
