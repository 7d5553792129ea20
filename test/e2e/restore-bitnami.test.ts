// Bitnami's etcd chart (the `bitnami` fixture, with the chart's default
// removeMemberOnContainerTermination=true), once with each generation of the image's start
// scripts (test/sim/images/): the legacy debian-11 ones, whose preStop hook removes the member by
// the ID in its data/member_id file and whose start script wipes the data dir's contents when
// member_removal.log says it was removed; and the current debian-12 ones (3.5, 3.6), whose preStop
// hook finds the member's ID in the cluster's member list by its peer URL and whose start script
// deletes the whole data dir when a trial start of etcd shows the cluster no longer knows it.
// First a member's restart is shown removing it and wiping a copy kept in its data dir, as
// restores used to keep the old data; then `kubectl etcd restore` restores every member, they
// survive a restart with their restored data, member IDs and the kept copy (each restore gives
// them new IDs: its own cluster token), an --in-place restore (every preStop hook running at once)
// keeps them too, and a restore killed after etcd stopped is resumed (with its utility pods collected meanwhile) or rolled back, every
// member still in the cluster. The legacy scripts run etcd 3.4, the debian-12 ones 3.5 (as the
// images ship them), so both etcd minors go through the whole file.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { teardown, type SimCluster } from '../sim/harness.js';
import {
  BITNAMI_ACCESS as B, describePods, etcdctl, keysOn, kubectlEtcd, lsInPod, memberList, pruneSetAside, settledSinceStart, startKubectlEtcd, startRestoreCluster, waitClusterHealthy,
} from './restore-helpers.js';

const NS = B.namespace;
const A_KEYS = ['/test/a1', '/test/a2', '/test/a3'];

/** The fixture with each generation of the image's scripts, and what its start logs when it wipes a member. */
const VARIANTS = [
  { scripts: 'debian-11', fixture: 'bitnami', wipeLog: /The member was removed from the cluster: adding it again/ },
  { scripts: 'debian-12', fixture: 'bitnami:scripts=debian-12,etcd=3.5', wipeLog: /Deleting the data dir and adding the member again/ },
];

describe.each(VARIANTS)('bitnami, $scripts scripts', (v) => {
  let cluster: SimCluster;
  let work: string;
  let state: string;
  let snapshot: string;

  /** Names in the member list, as etcd-0 sees it. */
  async function memberNames(pod = 'etcd-0'): Promise<string[]> {
    const out = await memberList(cluster, B, pod);
    return out.split('\n').filter(Boolean).map((l) => l.split(', ')[2]!).sort();
  }

  async function readyPods(): Promise<string[]> {
    const r = await cluster.kubectl(['-n', NS, 'get', 'pods', '-o', 'json']);
    const pods = JSON.parse(r.stdout) as { items: Array<{ metadata: { name: string }; status: { conditions?: Array<{ type: string; status: string }> } }> };
    return pods.items.filter((p) => p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).map((p) => p.metadata.name).sort();
  }

  /** Every member Ready, healthy and in the member list. */
  async function expectWholeCluster(): Promise<void> {
    try {
      await expect.poll(readyPods, { timeout: 120_000, interval: 1000 }).toEqual(B.pods);
    } catch (err) {
      throw new Error(`${(err as Error).message} ${((err as Error).cause as Error | undefined)?.message ?? ''}\n${await describePods(cluster, NS, B.pods)}`);
    }
    await waitClusterHealthy(cluster, B);
    expect(await memberNames()).toEqual(B.pods);
  }

  beforeAll(async () => {
    ({ cluster, work, state } = await startRestoreCluster([v.fixture], `restore-bitnami-${v.scripts}`));
    for (const k of A_KEYS) await etcdctl(cluster, B, 'etcd-0', ['put', k, k]);
    snapshot = join(work, 'bitnami.db');
    const b = await kubectlEtcd(cluster, state, ['backup', '-n', NS, '-f', snapshot]);
    if (b.code !== 0) throw new Error(`backup failed: ${b.stderr}`);
  }, 600_000);

  afterAll(() => teardown(cluster, work));

  describe('the fixture is hostile', () => {
    it('a stopping member is removed from the cluster by its preStop hook; at its next start the script wipes its data dir, a copy kept there too, and adds it again', async () => {
      const idOf = async (name: string) => (await memberList(cluster, B, 'etcd-0')).split('\n').find((l) => l.split(', ')[2] === name)?.split(', ')[0];
      const before = await idOf('etcd-2');
      expect(before).toBeDefined();
      // A copy kept in the data dir, as restores used to keep the old data.
      const keep = await cluster.kubectl(['-n', NS, 'exec', 'etcd-2', '--', 'mkdir', '-p', `${B.dataDir}/member.pre-restore-20260101T000000Z`]);
      expect(keep.code, keep.stderr).toBe(0);
      // etcd refuses a member removal (--strict-reconfig-check, "unhealthy cluster") until its peers
      // have been connected for a while; a hook refused so leaves the member in: restart it again.
      // The hook's removal of a member that leads commits only once the others elect a new leader,
      // which a loaded machine can take past etcdctl's 5 s: the hook then logs no "removed", and the
      // next start runs `member update` on an ID no longer there and fails for good (the chart's own
      // race, failed a full suite here once). Leadership is moved away first, as an operator would;
      // etcdctl refuses (harmlessly) when etcd-2 does not lead.
      const moveLeaderAway = async () => cluster.kubectl(['-n', NS, 'exec', 'etcd-2', '--', ...B.etcdctl, 'move-leader', (await idOf('etcd-0'))!]);
      for (let attempt = 1; attempt <= 5; attempt++) {
        await settledSinceStart(cluster, B);
        await moveLeaderAway();
        expect((await cluster.kubectl(['-n', NS, 'delete', 'pod', 'etcd-2', '--wait=true'])).code).toBe(0);
        await expectWholeCluster();
        if ((await idOf('etcd-2')) !== before) break;
      }
      expect(await idOf('etcd-2')).not.toBe(before);
      expect(await lsInPod(cluster, B, 'etcd-2', B.dataDir)).not.toContain('member.pre-restore-20260101T000000Z');
      const log = await cluster.kubectl(['-n', NS, 'logs', 'etcd-2']);
      expect(log.stdout).toMatch(v.wipeLog);
    }, 420_000);
  });

  describe('kubectl etcd restore', () => {
    it('restores every member from the backup, exactly the backed-up keys', async () => {
      await etcdctl(cluster, B, 'etcd-0', ['put', '/test/b', 'written after the backup']);
      const ids = async () => (await memberList(cluster, B, 'etcd-0')).split('\n').filter(Boolean).map((l) => l.split(', ')[0]!);
      const idsBefore = await ids();
      const r = await kubectlEtcd(cluster, state, ['restore', snapshot, '-n', NS, '--yes']);
      expect(r.code, r.stderr).toBe(0);
      // Each restore has its own cluster token: every member runs under an ID no earlier data had.
      expect((await ids()).filter((id) => idsBefore.includes(id))).toEqual([]);
      expect(r.stderr).toMatch(/==> keep the Bitnami start files of member "etcd-2" \(member_id, new_member_envs, member_removal\.log\) in \/bitnami\/etcd\/member\.pre-restore-\d{8}T\d{6}Z\.start-files/);
      await expectWholeCluster();
      for (const pod of B.pods) expect(await keysOn(cluster, B, pod, '/test/'), pod).toEqual(A_KEYS);
    }, 300_000);

    it('a restarted member keeps its restored data, its member ID and the old data kept beside it', async () => {
      // A marker in the data dir shows whether the start script deleted it.
      const mark = await cluster.kubectl(['-n', NS, 'exec', 'etcd-2', '--', 'touch', `${B.dataDir}/marker`]);
      expect(mark.code, mark.stderr).toBe(0);
      // Right after a start etcd refuses member removals (--strict-reconfig-check); give the hook its chance.
      await settledSinceStart(cluster, B);
      const before = await memberList(cluster, B, 'etcd-0');
      expect((await cluster.kubectl(['-n', NS, 'delete', 'pod', 'etcd-2', '--wait=true'])).code).toBe(0);
      await expectWholeCluster();
      expect(await memberList(cluster, B, 'etcd-0')).toBe(before);
      expect(await keysOn(cluster, B, 'etcd-2', '/test/')).toEqual(A_KEYS);
      expect(await lsInPod(cluster, B, 'etcd-2', B.dataDir)).toContain('marker');
      expect((await lsInPod(cluster, B, 'etcd-2', B.volumeDir)).filter((f) => /^member\.pre-restore-\d{8}T\d{6}Z$/.test(f))).toHaveLength(1);
    }, 240_000);

    it('--in-place (etcd never scaled; all pods deleted at once after the swap, every preStop hook running) keeps every member in the cluster with exactly the backed-up keys', async () => {
      await pruneSetAside(cluster, B);
      await etcdctl(cluster, B, 'etcd-0', ['put', '/test/b', 'written after the backup']);
      // Right after a start etcd refuses member removals (--strict-reconfig-check); give the hooks their chance.
      await settledSinceStart(cluster, B);
      const r = await kubectlEtcd(cluster, state, ['restore', snapshot, '-n', NS, '--in-place', '--yes', '--no-safety-backup']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/==> delete the pods of statefulset "etcd" at once so they start on the restored data\n/);
      await expectWholeCluster();
      for (const pod of B.pods) expect(await keysOn(cluster, B, pod, '/test/'), pod).toEqual(A_KEYS);
      for (const pod of B.pods) expect((await lsInPod(cluster, B, pod, B.volumeDir)).filter((f) => /^member\.pre-restore-\d{8}T\d{6}Z$/.test(f)), pod).toHaveLength(1);
    }, 300_000);

    it.each([
      ['--resume', 'the backed-up keys'],
      ['--abort', 'the pre-restore keys'],
    ])('killed after etcd stopped, %s brings back %s with every member in the cluster', async (flag) => {
      await pruneSetAside(cluster, B);
      await etcdctl(cluster, B, 'etcd-0', ['put', '/test/b', 'written after the backup']);
      const before = await keysOn(cluster, B, 'etcd-0', '/test/');
      const membersBefore = await memberList(cluster, B, 'etcd-0');
      // Right after a start etcd refuses member removals (--strict-reconfig-check); give the hooks their chance.
      await settledSinceStart(cluster, B);
      const started = startKubectlEtcd(cluster, state, ['restore', snapshot, '-n', NS, '--yes', '--no-safety-backup']);
      await started.until(/==> copy the snapshot to /);
      started.child.kill('SIGKILL');
      expect((await started.done).code).toBe(137);
      // The utility pods belong to the journal ConfigMap.
      const owner = await cluster.kubectl(['-n', NS, 'get', 'pod', 'etcd-utility-0', '-o', 'jsonpath={.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}']);
      expect(owner.stdout).toBe('ConfigMap/kubectl-etcd-restore-journal-etcd');
      if (flag === '--resume') {
        // Deleting the cluster's copy of the journal collects the utility pods; the local journal still resumes.
        expect((await cluster.kubectl(['-n', NS, 'delete', 'configmap', 'kubectl-etcd-restore-journal-etcd'])).code).toBe(0);
        await expect.poll(async () => (await cluster.kubectl(['-n', NS, 'get', 'pods', '-l', 'app.kubernetes.io/managed-by=kubectl-etcd', '-o', 'name'])).stdout.trim(), { timeout: 90_000, interval: 1000 }).toBe('');
      }
      const r = await kubectlEtcd(cluster, state, ['restore', '-n', NS, flag, '--yes']);
      expect(r.code, r.stderr).toBe(0);
      await expectWholeCluster();
      for (const pod of B.pods) expect(await keysOn(cluster, B, pod, '/test/'), pod).toEqual(flag === '--resume' ? A_KEYS : before);
      // The old data come back as they were: no member was removed (and added again under a new ID) meanwhile.
      if (flag === '--abort') expect(await memberList(cluster, B, 'etcd-0')).toBe(membersBefore);
      expect((await cluster.kubectl(['-n', NS, 'get', 'pods', '-l', 'app.kubernetes.io/managed-by=kubectl-etcd', '-o', 'name'])).stdout.trim()).toBe('');
    }, 300_000);
  });
});
