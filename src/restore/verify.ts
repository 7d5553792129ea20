/**
 * The end-state check of a restore (RestoreVerifier): every member healthy, one leader, one
 * cluster, the planned member list, and (unless health only) every member on this restore's data
 * (its member and cluster IDs), the snapshot's revision and key count, through etcdctl in the
 * member pods; retried while the cluster settles.
 */
import { ForbiddenError } from '../errors.js';
import { keyCount, memberList, targetOf } from '../etcd/etcdctl.js';
import { restoredIds } from '../etcd/ids.js';
import { execStatusProbe, type MemberStatus } from '../etcd/status.js';
import { memberContainer } from '../etcd/topology.js';
import type { ContainerCommand } from '../kube/exec.js';
import type { RestorePlan } from './plan.js';
import type { RestoreVerifier, VerifiablePlan } from './runner.js';

/**
 * Members that do not run this restore's data, as each answers for itself: the restore's own
 * token gives every member and the cluster IDs no earlier data has (etcd/ids.ts), so a member
 * with other IDs started on data the restore did not write there (a swap that missed the data
 * dir, a subPath, a volume swapped behind its back); keys, revision and health cannot tell that.
 */
export function notRestored(plan: Pick<RestorePlan, 'initialCluster' | 'initialClusterToken'>, rows: ReadonlyArray<Pick<MemberStatus, 'name' | 'memberId' | 'clusterId'>>): string[] {
  const want = restoredIds(plan.initialCluster, plan.initialClusterToken);
  const problems: string[] = [];
  for (const row of rows) {
    if (row.memberId === undefined) continue;
    const expected = want.members[row.name];
    if (row.memberId !== expected || row.clusterId !== want.clusterId) {
      problems.push(`member "${row.name}" runs data this restore did not write (member ID ${row.memberId}, cluster ID ${row.clusterId ?? 'unknown'}; `
        + `the restored data has ${expected ?? 'no member of that name'}, cluster ${want.clusterId})`);
    }
  }
  return problems;
}

/** Checks the restored cluster through etcdctl in the member pods; retries while it settles. */
export function etcdRestoreVerifier(run: ContainerCommand, expected: { liveKeys?: number }, settleMs = 60_000): RestoreVerifier {
  const probe = execStatusProbe(run);
  const once = async (plan: VerifiablePlan, healthOnly: boolean, writersRun: boolean) => {
    const members = plan.members.map((m) => m.member);
    const rows = await Promise.all(members.map((m) => probe(m)));
    const problems: string[] = [];
    for (const row of rows) if (!row.healthy) problems.push(`member "${row.name}" is unhealthy (${row.error ?? 'unknown'})`);
    const leaders = new Set(rows.map((x) => x.leaderId).filter((x) => x !== undefined));
    const leaderCount = rows.filter((x) => x.isLeader).length;
    if (leaderCount !== 1 || leaders.size !== 1) problems.push(`expected one leader, found ${leaderCount} (members name ${leaders.size} leaders)`);
    const revisions = rows.map((x) => x.revision ?? -1);
    if (!healthOnly && revisions.some((rv) => rv < plan.snapshot.revision)) problems.push(`revision ${Math.min(...revisions)} is below the snapshot's ${plan.snapshot.revision}`);
    // Separate execs seconds apart see a moving revision while clients write: only a restore, with its writers quiesced, compares them.
    if (!healthOnly && !writersRun && new Set(revisions).size > 1) problems.push(`members disagree on the revision (${revisions.join(', ')})`);
    const clusterIds = new Set(rows.map((x) => x.clusterId));
    if (clusterIds.size > 1) problems.push(`members belong to different clusters (${[...clusterIds].join(', ')})`);
    const stale = healthOnly ? [] : notRestored(plan, rows);
    problems.push(...stale);
    const first = members[0]!;
    const list = await run(memberContainer(first), memberList(targetOf(first)).argv);
    let listed: Array<{ name: string; peerURLs: string[] }> = [];
    try {
      listed = ((JSON.parse(list.stdout.replace(/:\s*(\d{16,})/g, ':"$1"')) as { members?: Array<{ name?: string; peerURLs?: string[] }> }).members ?? [])
        .map((m) => ({ name: m.name ?? '', peerURLs: m.peerURLs ?? [] }));
    } catch {
      problems.push(`member list failed: ${list.stderr.trim().split('\n').pop() ?? `exit ${list.exitCode}`}`);
    }
    const want = members.map((m) => `${m.name}=${m.peerUrl}`).sort();
    const got = listed.map((m) => `${m.name}=${m.peerURLs.join(',')}`).sort();
    if (listed.length && JSON.stringify(want) !== JSON.stringify(got)) problems.push(`member list is ${got.join(',')}, planned ${want.join(',')}`);
    let keys: number | undefined;
    const count = await run(memberContainer(first), keyCount(targetOf(first)).argv);
    const cm = /"count"\s*:\s*(\d+)/.exec(count.stdout);
    keys = cm ? Number(cm[1]) : cm === null && count.exitCode === 0 ? 0 : undefined;
    if (keys === undefined) problems.push(`counting keys failed: ${count.stderr.trim().split('\n').pop() ?? ''}`);
    // Writers back at work (kubeadm: the API server returns with etcd) add and remove keys: the member IDs prove the data instead.
    else if (!healthOnly && !writersRun && expected.liveKeys !== undefined && keys !== expected.liveKeys) problems.push(`the cluster has ${keys} keys, the snapshot ${expected.liveKeys}`);
    return {
      ok: problems.length === 0,
      // A member that answers with other IDs runs other data: waiting will not change that.
      final: stale.length > 0,
      problems,
      summary: {
        members: rows.map((x) => ({ name: x.name, healthy: x.healthy, leader: x.isLeader ?? false, revision: x.revision })),
        keys,
        revision: revisions[0],
        clusterId: rows[0]?.clusterId,
      },
    };
  };
  return {
    async verify(plan, opts = {}) {
      const deadline = Date.now() + settleMs;
      for (;;) {
        // A member restarting right now (its container briefly gone) is a failed check, not the end.
        const report = await once(plan, opts.healthOnly ?? false, opts.writersRun ?? false).catch((err: unknown) => {
          // Waiting does not cure a refusal: say so at once.
          if (err instanceof ForbiddenError) throw err;
          return { ok: false, final: false, problems: [(err as Error).message.split('\n')[0] ?? String(err)], summary: {} };
        });
        if (report.ok || report.final || Date.now() > deadline) {
          return { ok: report.ok, problems: report.problems, summary: report.summary };
        }
        await new Promise((res) => setTimeout(res, 2000));
      }
    },
  };
}
