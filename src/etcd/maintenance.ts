/**
 * Online maintenance of a running cluster, through etcdctl in the members' own containers:
 * compaction (cluster-wide, one request), rolling defragmentation (one member at a time, followers
 * first and the leader last, each answering again before the next: a member blocks while it
 * defragments), and the documented NOSPACE recovery (etcd op-guide/maintenance.md "Space quota":
 * compact, defragment every member, disarm). Every step is safe to run again, so an interrupted
 * `recover-space` is finished by running it again.
 */
import { NoHealthyMemberError, PluginError, UsageError } from '../errors.js';
import type { ContainerCommand } from '../kube/exec.js';
import { formatBytes } from '../ui/bytes.js';
import { connectionFlags, targetOf } from './etcdctl.js';
import { lastLine, type MemberStatus, type StatusProbe } from './status.js';
import { memberContainer, type EtcdMember } from './topology.js';

/** A member with its status, as the maintenance steps see it. */
export interface MemberRow {
  member: EtcdMember;
  status: MemberStatus;
}

/**
 * Fit to take part: it answers `endpoint status` (a member ID) and `endpoint health` passes, or fails
 * only for an alarm (3.5's health fails while one is raised; the probe then says `alarm …`). A
 * member cut off from its peers still answers status locally, but its health check, which needs the
 * cluster, fails.
 */
export function answers(s: MemberStatus): boolean {
  return s.memberId !== undefined && (s.healthy || (s.alarms.length > 0 && /^alarm /.test(s.error ?? '')));
}

/**
 * The members in defragmentation order: followers in topology order, the leader last. Refused
 * unless every member answers: a member blocks while it defragments, so with another one down a
 * three-member cluster would lose quorum.
 */
export function defragOrder(rows: MemberRow[]): MemberRow[] {
  const silent = rows.filter((r) => !answers(r.status));
  if (silent.length) {
    throw new PluginError(
      `refusing to defragment: ${silent.map((r) => `"${r.member.pod}" (${r.status.error ?? 'no answer'})`).join(', ')} does not answer, and a member stops serving while it defragments`,
      rows.length - silent.length > Math.floor(rows.length / 2) ? 'bring that member back first (kubectl etcd status shows why it is down)' : 'the cluster has no quorum: see kubectl etcd restore',
    );
  }
  const leaders = new Set(rows.map((r) => r.status.leaderId).filter(Boolean));
  if (leaders.size !== 1 || !rows.some((r) => r.status.isLeader)) {
    throw new PluginError(
      `refusing to defragment: the members do not agree on one leader among them (${rows.map((r) => `"${r.member.pod}" sees ${r.status.leaderId ?? 'none'}`).join(', ')})`,
      'wait for an election to settle (kubectl etcd status), then run the command again',
    );
  }
  return [...rows.filter((r) => !r.status.isLeader), ...rows.filter((r) => r.status.isLeader)];
}

/** The revision to compact to: the cluster's head minus the revisions to keep; undefined when nothing would go. */
export function compactionTarget(head: number, keep: number): number | undefined {
  if (!Number.isSafeInteger(keep) || keep < 0) throw new UsageError(`--keep-revisions must be a whole number of 0 or more, got "${keep}"`, 'e.g. --keep-revisions 1000');
  const rev = head - keep;
  return rev >= 1 ? rev : undefined;
}

/** Parses --keep-revisions. */
export function parseKeep(value: string | undefined): number {
  if (value === undefined) return 0;
  if (!/^\d+$/.test(value.trim())) throw new UsageError(`--keep-revisions must be a whole number of 0 or more, got "${value}"`, 'e.g. --keep-revisions 1000');
  return Number(value.trim());
}

/** The cluster's head revision: the highest any member that answered reports. */
export function headRevision(rows: MemberRow[]): number {
  const revs = rows.map((r) => r.status.revision).filter((r): r is number => r !== undefined);
  if (!revs.length) throw new NoHealthyMemberError('no etcd member answered with its revision', 'check the pods with kubectl etcd status');
  return Math.max(...revs);
}

/** What a compaction did: compacted now, or found the cluster already compacted at or past the revision. */
export type CompactionResult = { revision: number; already: boolean };

/** `etcdctl compact REV [--physical]` through one member; a revision compacted before is not an error. */
export async function compact(run: ContainerCommand, via: EtcdMember, revision: number, physical: boolean): Promise<CompactionResult> {
  const argv = ['etcdctl', ...connectionFlags({ ...targetOf(via), commandTimeout: '120s' }), 'compact', String(revision), ...(physical ? ['--physical'] : [])];
  const r = await run(memberContainer(via), argv);
  if (r.exitCode === 0) return { revision, already: false };
  if (/required revision has been compacted/.test(r.stderr)) return { revision, already: true };
  throw new PluginError(`etcdctl compact ${revision} failed in pod "${via.pod}": ${lastLine(r.stderr) || `exit code ${r.exitCode}`}`, 'run kubectl etcd status and try again');
}

/** One member's defragmentation: sizes before and after, and how long the member was busy. */
export interface DefragResult {
  pod: string;
  role: 'leader' | 'follower';
  before?: number;
  after?: number;
  seconds: number;
}

/** Progress lines (stderr). */
export type Say = (line: string) => void;

/**
 * Defragments every member in defragOrder: each through etcdctl in its own container against its
 * own endpoint, then waits until it is fit again (answers()) before the next. A cluster of one or
 * two members stops taking writes while any member defragments (say() warns).
 */
export async function rollingDefrag(
  run: ContainerCommand,
  probe: StatusProbe,
  rows: MemberRow[],
  say: Say,
  opts: { answerTimeoutMs?: number; sleep?: (ms: number) => Promise<void> } = {},
): Promise<DefragResult[]> {
  const order = defragOrder(rows);
  if (order.length < 3) say(`warning: with ${order.length} member${order.length === 1 ? '' : 's'} the cluster takes no writes while a member defragments`);
  const results: DefragResult[] = [];
  for (const { member, status } of order) {
    const role = status.isLeader ? 'leader' : 'follower';
    say(`defragmenting "${member.pod}" (${role}${status.dbSize !== undefined ? `, ${formatBytes(status.dbSize)}` : ''})`);
    const t0 = Date.now();
    // Defragmentation rewrites the whole db file: 10 minutes allows 1 GiB at under 2 MB/s.
    const argv = ['etcdctl', ...connectionFlags({ ...targetOf(member), commandTimeout: '600s' }), 'defrag'];
    const done = `members defragmented before it: ${results.map((x) => `"${x.pod}"`).join(', ') || 'none'}; run the command again once kubectl etcd status shows "${member.pod}" healthy`;
    const r = await run(memberContainer(member), argv).catch((err: unknown) => {
      throw new PluginError(`defragmenting "${member.pod}" was cut off: ${lastLine((err as Error).message)}`, done);
    });
    if (r.exitCode !== 0) throw new PluginError(`etcdctl defrag failed in pod "${member.pod}": ${lastLine(r.stderr) || `exit code ${r.exitCode}`}`, done);
    const after = await waitAnswering(probe, member, opts.answerTimeoutMs ?? 60_000, opts.sleep);
    const result: DefragResult = { pod: member.pod, role, ...(status.dbSize !== undefined ? { before: status.dbSize } : {}), ...(after.dbSize !== undefined ? { after: after.dbSize } : {}), seconds: (Date.now() - t0) / 1000 };
    results.push(result);
    say(`  "${member.pod}": ${sizeChange(result)} in ${result.seconds.toFixed(1)} s`);
  }
  return results;
}

/** `15.6 MiB → 1.2 MiB`. */
export function sizeChange(r: Pick<DefragResult, 'before' | 'after'>): string {
  return `${r.before === undefined ? '?' : formatBytes(r.before)} → ${r.after === undefined ? '?' : formatBytes(r.after)}`;
}

/** Probes a member until it answers and is healthy (answers()), or fails after timeoutMs. */
export async function waitAnswering(probe: StatusProbe, member: EtcdMember, timeoutMs: number, sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))): Promise<MemberStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await probe(member);
    if (answers(s)) return s;
    if (Date.now() >= deadline) throw new PluginError(`"${member.pod}" was not healthy within ${Math.round(timeoutMs / 1000)} s after its defragmentation: ${s.error ?? 'no answer'}`, 'check it with kubectl etcd status and kubectl logs; run the command again once it answers');
    await sleep(1000);
  }
}
