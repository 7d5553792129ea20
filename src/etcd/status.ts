import { ForbiddenError } from '../errors.js';
import type { ContainerCommand } from '../kube/exec.js';
import { alarmList, endpointHealth, endpointStatus, targetOf } from './etcdctl.js';
import { memberContainer, type EtcdMember } from './topology.js';
import { NEARLY_FULL, memberQuota, quotaShare, type Quota } from './quota.js';
import { formatBytes } from '../ui/bytes.js';

/** One member's row in `kubectl etcd status`. IDs are hex strings as etcdctl -w table prints them. */
export interface MemberStatus {
  pod: string;
  node?: string;
  name: string;
  endpoint: string;
  memberId?: string;
  clusterId?: string;
  version?: string;
  dbSize?: number;
  dbSizeInUse?: number;
  isLeader?: boolean;
  leaderId?: string;
  raftTerm?: number;
  raftIndex?: number;
  revision?: number;
  /** The backend quota the member runs with (from its pod spec; quota.ts). */
  quota: Quota;
  alarms: string[];
  healthy: boolean;
  error?: string;
}

/**
 * Asks one member for its status: failures of the member become `healthy: false` with `error`;
 * rejects only with ForbiddenError, since a permission the user lacks says nothing about the member.
 */
export type StatusProbe = (member: EtcdMember) => Promise<MemberStatus>;

/** Probes every member in parallel, keeping topology order. */
export function collectStatus(members: EtcdMember[], probe: StatusProbe): Promise<MemberStatus[]> {
  return Promise.all(members.map((m) => probe(m)));
}

/** A StatusProbe that execs `etcdctl endpoint status/health -w json` and `alarm list` in the member. */
export function execStatusProbe(run: ContainerCommand): StatusProbe {
  return async (member) => {
    const base = baseStatus(member);
    const target = { ...targetOf(member), commandTimeout: '5s' };
    const where = memberContainer(member);
    try {
      const st = await run(where, endpointStatus(target).argv);
      if (st.exitCode !== 0) return { ...base, error: lastLine(st.stderr) || `etcdctl exited with ${st.exitCode}` };
      Object.assign(base, parseEndpointStatus(st.stdout));
      const health = await run(where, endpointHealth(target).argv);
      const parsed = parseEndpointHealth(health.stdout);
      base.healthy = health.exitCode === 0 && parsed.healthy;
      if (!base.healthy) base.error = parsed.error || lastLine(health.stderr) || 'unhealthy';
      const alarms = await run(where, alarmList(target).argv);
      // One entry per member that raised it (3.4 often has every member raise NOSPACE): each kind once.
      if (alarms.exitCode === 0) base.alarms = [...new Set(parseAlarmList(alarms.stdout))];
      if (base.alarms.length > 0) {
        base.healthy = false;
        // 3.5's endpoint health fails with "Active Alarm(s): NOSPACE " itself; 3.4's passes.
        if (base.error === undefined || /alarm/i.test(base.error)) base.error = `alarm ${base.alarms.join(',')}`;
      }
      return base;
    } catch (err) {
      if (err instanceof ForbiddenError) throw err;
      return { ...base, healthy: false, error: lastLine((err as Error).message) };
    }
  };
}

/** The row for a member before anything is known about it. */
export function baseStatus(member: EtcdMember): MemberStatus {
  return { pod: member.pod, node: member.node, name: member.name, endpoint: member.endpoint, quota: memberQuota(member), alarms: [], healthy: false };
}

/**
 * What `status --check` fails on, one line per member: unhealthy (which includes an alarm), or a
 * database at NEARLY_FULL of its quota or more (the next writes raise NOSPACE).
 */
export function statusProblems(rows: MemberStatus[]): string[] {
  const problems: string[] = [];
  for (const r of rows) {
    if (!r.healthy) {
      problems.push(`"${r.pod}" ${r.error ?? 'unhealthy'}`);
      continue;
    }
    const share = quotaShare(r.dbSize, r.quota);
    if (share !== undefined && share >= NEARLY_FULL) {
      problems.push(`"${r.pod}" db size ${formatBytes(r.dbSize!)} is ${Math.floor(share * 100)}% of its quota ${formatBytes(r.quota.bytes!)}`);
    }
  }
  return problems;
}

/** Parses `etcdctl endpoint status -w json` (uint64 IDs kept exact, printed as hex). */
export function parseEndpointStatus(text: string): Partial<MemberStatus> {
  const list = parseBigJson(text) as Array<{ Status?: Record<string, unknown> }>;
  const s = list[0]?.Status;
  if (!s) throw new Error('etcdctl endpoint status printed no status');
  const header = (s.header ?? {}) as Record<string, unknown>;
  const memberId = hexId(header.member_id);
  const leaderId = hexId(s.leader);
  return {
    memberId,
    clusterId: hexId(header.cluster_id),
    version: typeof s.version === 'string' ? s.version : undefined,
    dbSize: num(s.dbSize),
    dbSizeInUse: num(s.dbSizeInUse),
    leaderId,
    isLeader: memberId !== undefined && memberId === leaderId,
    raftTerm: num(s.raftTerm),
    raftIndex: num(s.raftIndex),
    revision: num(header.revision),
  };
}

/** Parses `etcdctl endpoint health -w json`. */
export function parseEndpointHealth(text: string): { healthy: boolean; error?: string } {
  try {
    const list = JSON.parse(text) as Array<{ health?: boolean; error?: string }>;
    const h = list[0];
    return { healthy: h?.health === true, error: h?.error };
  } catch {
    return { healthy: false };
  }
}

/** Parses `etcdctl alarm list` lines such as `memberID:123 alarm:NOSPACE`. */
export function parseAlarmList(text: string): string[] {
  return [...text.matchAll(/alarm:(\S+)/g)].map((m) => m[1]!);
}

/** Formats a uint64 ID (number, decimal string or bigint) as lowercase hex. */
export function hexId(value: unknown): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  try {
    return BigInt(value as string | number | bigint).toString(16);
  } catch {
    return undefined;
  }
}

function num(value: unknown): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? n : undefined;
}

/** JSON.parse that keeps integers too large for a double as strings. */
export function parseBigJson(text: string): unknown {
  return JSON.parse(text.replace(/([:[,]\s*)(\d{16,})(?=\s*[,}\]])/g, '$1"$2"'));
}

/** The last non-empty line of a command's output, trimmed (etcdctl's error is there). */
export function lastLine(text: string): string {
  const lines = text.trim().split('\n').filter((l) => l.trim() !== '');
  return (lines[lines.length - 1] ?? '').trim();
}
