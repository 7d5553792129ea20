/**
 * etcd's alarms (`etcdctl alarm list|disarm`): cluster-wide, kept in the raft log, so any member
 * that answers lists all of them. NOSPACE (a write would pass the backend quota) makes the cluster
 * refuse every write but deletes and compaction until it is disarmed; CORRUPT (a member's data
 * differs from the others') makes it refuse reads, writes and compaction. etcdctl's `alarm disarm` disarms every
 * alarm it lists (clientv3 AlarmDisarm with no member): there is no disarming one of them only.
 */
import { NoHealthyMemberError, PluginError } from '../errors.js';
import type { ContainerCommand } from '../kube/exec.js';
import { formatBytes } from '../ui/bytes.js';
import { alarmDisarm, alarmList, targetOf } from './etcdctl.js';
import { NEARLY_FULL, quotaShare } from './quota.js';
import { lastLine, type MemberStatus } from './status.js';
import { memberContainer, type EtcdMember } from './topology.js';

/** One raised alarm: the member it is on (hex ID; the pod when the member is one we know). */
export interface RaisedAlarm {
  memberId: string;
  pod?: string;
  alarm: string;
}

/** Parses `etcdctl alarm list` (`memberID:10276657743932975437 alarm:NOSPACE`, IDs in decimal). */
export function parseAlarmMembers(text: string): Array<{ memberId: string; alarm: string }> {
  return [...text.matchAll(/memberID:(\d+)\s+alarm:(\S+)/g)].map((m) => ({ memberId: BigInt(m[1]!).toString(16), alarm: m[2]! }));
}

/** The member to ask: the first whose status answered (it has a member ID). */
export function answeringMember(members: EtcdMember[], rows: MemberStatus[]): EtcdMember {
  const i = rows.findIndex((r) => r.memberId !== undefined);
  if (i < 0) {
    throw new NoHealthyMemberError(
      `no etcd member answered: ${rows.map((r) => `"${r.pod}" (${r.error ?? 'no answer'})`).join(', ')}`,
      'check the pods with kubectl describe and kubectl logs; a cluster without quorum needs kubectl etcd restore',
    );
  }
  return members[i]!;
}

/** Lists the cluster's alarms through one member, naming each member's pod where known. */
export async function listAlarms(run: ContainerCommand, asker: EtcdMember, rows: MemberStatus[]): Promise<RaisedAlarm[]> {
  const r = await run(memberContainer(asker), alarmList({ ...targetOf(asker), commandTimeout: '5s' }).argv);
  if (r.exitCode !== 0) throw new PluginError(`etcdctl alarm list failed in pod "${asker.pod}": ${lastLine(r.stderr) || `exit code ${r.exitCode}`}`, 'check the member with kubectl etcd status');
  const pods = new Map(rows.filter((x) => x.memberId).map((x) => [x.memberId!, x.pod]));
  return parseAlarmMembers(r.stdout).map((a) => ({ ...a, ...(pods.has(a.memberId) ? { pod: pods.get(a.memberId)! } : {}) }));
}

/**
 * Why disarming now would not help or would hide damage, or undefined: a CORRUPT alarm (its cause
 * stays), or a member whose db file still fills NEARLY_FULL of its quota or more (etcd checks the
 * file's size, free pages included, so the next writes would raise NOSPACE again).
 */
export function disarmRefusal(alarms: RaisedAlarm[], rows: MemberStatus[]): PluginError | undefined {
  const corrupt = alarms.filter((a) => a.alarm === 'CORRUPT');
  if (corrupt.length) {
    return new PluginError(
      `refusing to disarm: CORRUPT is raised on ${corrupt.map(describe).join(', ')}: that member's data differs from the others', and disarming hides it`,
      'find the member whose data differs (etcdctl endpoint hashkv --cluster) and replace it',
    );
  }
  if (!alarms.some((a) => a.alarm === 'NOSPACE')) return undefined;
  const full = rows.filter((r) => (quotaShare(r.dbSize, r.quota) ?? 0) >= NEARLY_FULL);
  if (full.length === 0) return undefined;
  return new PluginError(
    `refusing to disarm NOSPACE: ${full.map((r) => `the db of "${r.pod}" (${formatBytes(r.dbSize!)}) is ${Math.floor(quotaShare(r.dbSize, r.quota)! * 100)}% of its quota (${formatBytes(r.quota.bytes!)})`).join(', ')}, so the next writes would raise it again`,
    'free space first: compact the history and defragment every member (etcdctl compact REV; etcdctl defrag), or raise --quota-backend-bytes; --force disarms anyway',
  );
}

/**
 * Disarms every alarm through one member, then lists again: what is still raised is an error.
 * `checked`: the alarms the caller judged; etcdctl disarms whatever is raised when it runs, so the
 * list is read again first and anything raised since (a CORRUPT from 3.5's periodic check) refuses.
 */
export async function disarmAlarms(run: ContainerCommand, asker: EtcdMember, rows: MemberStatus[], checked: RaisedAlarm[]): Promise<void> {
  const key = (a: RaisedAlarm) => `${a.memberId}/${a.alarm}`;
  const known = new Set(checked.map(key));
  const fresh = (await listAlarms(run, asker, rows)).filter((a) => !known.has(key(a)));
  if (fresh.length) {
    throw new PluginError(`refusing to disarm: ${fresh.map((a) => `${a.alarm} on ${describe(a)}`).join(', ')} was raised since the check`, 'run kubectl etcd alarm list and kubectl etcd status, then decide');
  }
  const r = await run(memberContainer(asker), alarmDisarm({ ...targetOf(asker), commandTimeout: '10s' }).argv);
  if (r.exitCode !== 0) throw new PluginError(`etcdctl alarm disarm failed in pod "${asker.pod}": ${lastLine(r.stderr) || `exit code ${r.exitCode}`}`, 'run kubectl etcd alarm list to see what is raised');
  const left = await listAlarms(run, asker, rows);
  if (left.length) throw new PluginError(`alarms still raised after disarming: ${left.map((a) => `${a.alarm} on ${describe(a)}`).join(', ')}`, 'etcd raised them again: run kubectl etcd status');
}

/** `member 8e9e05c52164694d ("etcd-0")`. */
export function describe(a: RaisedAlarm): string {
  return `member ${a.memberId}${a.pod ? ` ("${a.pod}")` : ''}`;
}
