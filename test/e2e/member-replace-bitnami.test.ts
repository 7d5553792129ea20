// `kubectl etcd member replace` of Bitnami members: configured by ETCD_* env only, started by the
// image's scripts (test/sim/images/bitnami-etcd*), which remove and re-add members themselves:
// the legacy debian-11 scripts on etcd 3.4 and the current debian-12 ones on 3.5, as the images
// ship them. A member's db is corrupted; the naive way is shown failing first (the chart's
// scripts do not bring it back: it crash-loops on the db). Then member replace sets the whole data
// dir aside on the volume, removes the member, and the chart's start script adds it back as a new
// member while a client writes every 100 ms. The legacy variant is also killed at each step and run
// again; the debian-12 one also replaces its healthy leader with --force.
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { beforeAll, describe, expect, it } from 'vitest';
import type { SimCluster } from '../sim/harness.js';
import { killContainer } from '../sim/kubelet/fault.js';
import { TARGETS, etcdctlInPod, kubectlEtcd, onEtcd } from './backup-support.js';
import { startKubectlEtcd } from './restore-helpers.js';
import { corruptDb, expectReplaced, localKeys, members, replaceCluster, shIn, startWriter, status, waitFor, type ReplaceTarget } from './replace-support.js';

const VARIANTS = [
  { scripts: 'debian-11', t: { ...TARGETS.bitnami } },
  { scripts: 'debian-12', t: onEtcd({ ...TARGETS.bitnami, fixture: 'bitnami:scripts=debian-12' }, '3.5') },
];

describe.each(VARIANTS)('member replace of Bitnami members ($scripts scripts)', ({ scripts, t: target }) => {
  const t: ReplaceTarget = { ...target, pods: ['etcd-0', 'etcd-1', 'etcd-2'], dataDir: '/bitnami/etcd/data', keptDir: '/bitnami/etcd' };
  const NS = t.namespace;
  const env = replaceCluster(t);
  let cluster: SimCluster;
  let before: Record<string, string>;
  beforeAll(() => ({ cluster, before } = env));

  /** The container's restart count. */
  async function restarts(pod: string): Promise<number> {
    const r = await cluster.kubectl(['-n', NS, 'get', 'pod', pod, '-o', 'json']);
    const p = JSON.parse(r.stdout) as { status: { containerStatuses?: Array<{ name: string; restartCount: number }> } };
    return p.status.containerStatuses?.find((c) => c.name === t.container)?.restartCount ?? 0;
  }


  let sentinel: string;
  it('the naive way: a member whose db is corrupt is not brought back by the chart\'s scripts', async () => {
    const restarted = await restarts('etcd-1');
    sentinel = await corruptDb(cluster, t, 'etcd-1');
    await waitFor('etcd-1 to restart', async () => (await restarts('etcd-1')) > restarted, 60_000);
    await new Promise((r) => setTimeout(r, 15_000));
    expect((await status(cluster, t))['etcd-1']!.healthy).toBe(false);
  }, 180_000);

  it('--dry-run prints the chart\'s plan and changes nothing', async () => {
    const ids = await members(cluster, t);
    const r = await kubectlEtcd(cluster, ['member', 'replace', 'etcd-1', '-n', NS, '--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('dry run: nothing changed\n');
    expect(r.stderr).toMatch(/moves the data dir \/bitnami\/etcd\/data to \/bitnami\/etcd\/member\.pre-replace-\d{8}T\d{6}Z \(kept, never deleted\)/);
    expect(r.stderr).toMatch(/remove member [0-9a-f]+ \("etcd-1"\)/);
    expect(r.stderr).toMatch(/the chart's start script adds it back as a new member ID/);
    expect(await members(cluster, t)).toEqual(ids);
  }, 120_000);

  it('replaces the member whose db is corrupt while a client writes every 100 ms; the chart adds it back and the old data dir is kept', async () => {
    const oldId = (await members(cluster, t))['etcd-1']!;
    const writer = startWriter(cluster, t, 'etcd-0', '/writer1/');
    await new Promise((r) => setTimeout(r, 2000));
    const r = await kubectlEtcd(cluster, ['member', 'replace', 'etcd-1', '-n', NS, '--yes', '-o', 'json'], { timeoutMs: 600_000 });
    const tally = await writer.stop();
    expect(r.code, r.stderr).toBe(0);
    // The chart adds the member back either after we delete its pod, or before that, when its
    // container restarts on its own after the removal (seen under load in a full suite).
    expect(r.stderr).toMatch(/deleting pod "etcd-1" so that the chart's start script adds it back|member "etcd-1" was added back as member [0-9a-f]+ already/);
    const result = JSON.parse(r.stdout) as { oldId: string; newId: string; kept: string[] };
    expect(result.oldId).toBe(oldId);
    await expectReplaced(cluster, t, 'etcd-1', oldId, before);
    expect((await shIn(cluster, t, 'etcd-1', `ls -A ${t.dataDir}`)).stdout).not.toMatch(/kubectl-etcd/);
    // The whole old data dir, with the corrupt db and the file written into member/ before.
    const kept = result.kept.at(-1)!;
    expect(kept).toMatch(/^\/bitnami\/etcd\/member\.pre-replace-\d{8}T\d{6}Z$/);
    const keptFiles = await shIn(cluster, t, 'etcd-1', `cat ${kept}/member/kubectl-etcd-test-sentinel && test -s ${kept}/member/snap/db && echo db-kept`);
    expect(keptFiles.stdout).toBe(`${sentinel}\ndb-kept\n`);
    // The chart's own script added it back (its log says so), with the data synced from the leader.
    const logs = await cluster.kubectl(['-n', NS, 'logs', 'etcd-1', '-c', t.container]);
    expect(logs.stdout + logs.stderr).toMatch(scripts === 'debian-11' ? /The member was removed from the cluster: adding it again/ : /Adding new member to existing cluster/);
    expect(tally.writes).toBeGreaterThan(50);
    if (tally.failed) expect(Math.max(...tally.failedAt) - Math.min(...tally.failedAt), JSON.stringify(tally)).toBeLessThanOrEqual(5);
    const written = tally.writes - tally.failed;
    for (const p of t.pods) await waitFor(`${p} to hold every written key`, async () => (await localKeys(cluster, t, p, '/writer1/')) >= written, 30_000);
  }, 900_000);

  if (scripts === 'debian-11') it('killed (SIGKILL) at each of its steps, running it again finishes the replace', async () => {
    const pod = 'etcd-2';
    const oldId = (await members(cluster, t))[pod]!;
    await corruptDb(cluster, t, pod);
    await waitFor(`${pod} to fail`, async () => !(await status(cluster, t))[pod]!.healthy, 60_000);
    const state = mkdtempSync(join(tmpdir(), 'replace-kill-'));
    try {
      // The chart may add the member back before the third run gets to delete the pod (the
      // container restarted after the first kill re-adds it once it is removed): that run then
      // only waits, and may finish before its kill point.
      for (const point of [/the old data is kept in/, /removing member/, /deleting pod|was added back as member/]) {
        const run = startKubectlEtcd(cluster, state, ['member', 'replace', pod, '-n', NS, '--yes']);
        const reached = await run.until(point, 300_000).then(() => true, (err: Error) => {
          if (!/exited before/.test(err.message)) throw err;
          return false;
        });
        run.child.kill('SIGKILL');
        const done = await run.done;
        if (!reached) {
          expect(point.source).toMatch(/added back/);
          expect(done.code, done.stderr).toBe(0);
        }
        if (point.source.startsWith('the old data')) {
          // The member's container starts again while it is still in the member list: the legacy
          // script takes it as removed, wipes the data dir's files and fails its `member add`. A
          // marker that wipe deleted would leave an empty data dir, which the script starts as a
          // new cluster, for ever (seen here before the marker became a dot file).
          const r0 = await restarts(pod);
          await killContainer(cluster.dir, { namespace: NS, pod, container: t.container }).catch(() => undefined);
          await waitFor(`${pod} to start again`, async () => (await restarts(pod)) > r0, 60_000);
          await waitFor(`${pod}'s script to try its member add`, async () => /adding it again/.test((await cluster.kubectl(['-n', NS, 'logs', pod, '-c', t.container])).stdout), 60_000);
        }
      }
      const last = await kubectlEtcd(cluster, ['member', 'replace', pod, '-n', NS, '--yes', '-o', 'json'], { timeoutMs: 600_000 });
      expect(last.code, last.stderr).toBe(0);
      expect((JSON.parse(last.stdout) as { oldId: string }).oldId).toBe(oldId);
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
    await expectReplaced(cluster, t, pod, oldId, before);
    // One kept copy: the runs after the first found it and moved nothing over it.
    const ls = await shIn(cluster, t, pod, `ls -d ${t.keptDir}/member.pre-replace-*`);
    expect(ls.stdout.trim().split('\n')).toHaveLength(1);
    const journal = await cluster.kubectl(['-n', NS, 'get', 'configmap', `kubectl-etcd-replace-${pod}`]);
    expect(journal.stderr).toMatch(/NotFound|not found/);
  }, 900_000);

  if (scripts === 'debian-12') it('--force replaces the healthy leader: leadership moves off it first', async () => {
    const oldId = (await members(cluster, t))['etcd-0']!;
    const leader = Object.entries(await status(cluster, t)).find(([, m]) => m.isLeader)?.[0];
    if (leader && leader !== 'etcd-0') await etcdctlInPod(cluster, { ...t, pod: leader }, ['move-leader', oldId]);
    await waitFor('etcd-0 to lead', async () => (await status(cluster, t))['etcd-0']!.isLeader === true, 30_000);
    const r = await kubectlEtcd(cluster, ['member', 'replace', 'etcd-0', '-n', NS, '--yes', '--force'], { timeoutMs: 600_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/moving leadership from "etcd-0" to "etcd-[12]" first\n(?!  leadership did not move)/);
    await expectReplaced(cluster, t, 'etcd-0', oldId, before);
  }, 600_000);
});
