// `kubectl etcd status` end to end (and `backup` on the `single` fixture, which cannot share a
// cluster with `anthos`: both fill namespace uc1). One cluster: the `single` and `bitnami`
// fixtures. A member is "stopped" by SIGSTOP on its etcd process (the pid the simulator's kubelet
// publishes in DIR/runtime): the pod stays, its etcd stops answering, nothing restarts it.
// Both etcd minors: `single` runs 3.4, `bitnami` runs 3.5.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { etcdRelease } from '../sim/etcd-versions.js';
import { requireRoot, startCluster, type SimCluster } from '../sim/harness.js';
import {
  TARGETS, buildPlugin, onEtcd, etcdctlInPod, expectInspectAgreesWithEtcdctl, expectSnapshotOfLiveCluster, kubectlEtcd, liveCounts, writeKeys,
} from './backup-support.js';

let cluster: SimCluster;
let work: string;
/** The bitnami fixture on etcd 3.5. */
const BITNAMI = onEtcd(TARGETS.bitnami, '3.5');

beforeAll(async () => {
  requireRoot();
  await buildPlugin();
  work = await mkdtemp(join(tmpdir(), 'status-e2e-'));
  cluster = await startCluster({ fixtures: ['single', BITNAMI.fixture] });
}, 600_000);

afterAll(async () => {
  await cluster?.down();
  if (work) await rm(work, { recursive: true, force: true });
}, 180_000);

/** The table's rows by pod name, split on runs of spaces (the error column is last). */
function rowsByPod(table: string): Record<string, string[]> {
  const [header, ...rows] = table.trimEnd().split('\n');
  expect(header).toMatch(/^POD +NODE +MEMBER ID +VERSION +DB SIZE +IN USE +QUOTA +LEADER +RAFT TERM +RAFT INDEX +REVISION +ALARMS +HEALTH +ERROR$/);
  const cols = [...header!.matchAll(/\S+(?: \S+)*/g)].map((m) => m.index!);
  return Object.fromEntries(rows.map((line) => {
    const cells = cols.map((start, i) => line.slice(start, cols[i + 1]).trim());
    return [cells[0]!, cells];
  }));
}

/** The live member IDs (hex) as etcdctl prints them. */
async function memberIds(): Promise<string[]> {
  // the simple format prints IDs in hex (`-w json` prints them as numbers too large for a double)
  const out = await etcdctlInPod(cluster, BITNAMI, ['member', 'list']);
  return out.trim().split('\n').map((line) => line.split(',')[0]!.trim()).sort();
}

/** Stops (SIGSTOP) the etcd process of a pod until `resume` is called. */
async function stopMember(namespace: string, pod: string, container: string): Promise<() => void> {
  const info = JSON.parse(await readFile(join(cluster.dir, 'runtime', 'pods', namespace, pod, `${container}.json`), 'utf8')) as { pid: number | null };
  if (!info.pid) throw new Error(`container "${container}" of pod "${pod}" is not running`);
  process.kill(info.pid, 'SIGSTOP');
  return () => process.kill(info.pid!, 'SIGCONT');
}

describe('backup on the single (non-HA anthos) fixture', () => {
  it('with no flags beyond -n: a snapshot of the live cluster that etcdctl and inspect agree on', async () => {
    const t = TARGETS.single;
    const written = await writeKeys(cluster, t, '/e2e/single/', 3);
    const before = (await liveCounts(cluster, t)).revision;
    const file = join(work, 'single.db');
    const r = await kubectlEtcd(cluster, ['backup', '-n', 'uc1', '-f', file]);
    const after = (await liveCounts(cluster, t)).revision;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^backed up uc1\/kube-etcd from pod "kube-etcd-0" via exec to /);
    await expectSnapshotOfLiveCluster(cluster, t, file, work, { before, after }, written);
    await expectInspectAgreesWithEtcdctl(cluster, file);
  }, 240_000);
});

describe('kubectl etcd status on a healthy cluster', () => {
  it('prints one healthy row per member with one leader, exit 0', async () => {
    const r = await kubectlEtcd(cluster, ['status', '-n', 'etcd']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const rows = rowsByPod(r.stdout);
    expect(Object.keys(rows).sort()).toEqual(['etcd-0', 'etcd-1', 'etcd-2']);
    for (const cells of Object.values(rows)) {
      const [, node, id, version, dbSize, inUse, quota, leader, term, index, revision, alarms, health, error] = cells;
      expect(node).toMatch(/^node-\d$/);
      expect(id).toMatch(/^[0-9a-f]+$/);
      expect(version).toBe(etcdRelease('3.5'));
      expect(dbSize).toMatch(/^\d+(\.\d+)? (B|KiB|MiB)$/);
      expect(inUse).toMatch(/^\d+(\.\d+)? (B|KiB|MiB)$/);
      expect(quota).toMatch(/^2\.0 GiB default \(0%\)$/);
      expect(leader).toMatch(/^(true|false)$/);
      expect(Number(term)).toBeGreaterThan(0);
      expect(Number(index)).toBeGreaterThan(0);
      expect(Number(revision)).toBeGreaterThan(0);
      expect([alarms, health, error]).toEqual(['-', 'healthy', '']);
    }
    expect(Object.values(rows).filter((c) => c[7] === 'true')).toHaveLength(1);
    expect(Object.values(rows).map((c) => c[2]).sort()).toEqual(await memberIds());
  }, 120_000);

  it('-o json on the single fixture: the member etcdctl endpoint status describes', async () => {
    const r = await kubectlEtcd(cluster, ['status', '-n', 'uc1', '-o', 'json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const record = JSON.parse(r.stdout);
    expect(record).toMatchObject({ namespace: 'uc1', workload: 'kube-etcd' });
    expect(record.members).toHaveLength(1);
    const [m] = record.members;
    const live = JSON.parse(await etcdctlInPod(cluster, TARGETS.single, ['endpoint', 'status', '-w', 'json']).then((s) => s.replace(/(":\s*)(\d{16,})/g, '$1"$2"')))[0].Status;
    expect(m).toMatchObject({
      pod: 'kube-etcd-0', name: 'kube-etcd-0', healthy: true, isLeader: true, version: live.version, alarms: [],
      memberId: BigInt(live.header.member_id).toString(16), clusterId: BigInt(live.header.cluster_id).toString(16),
    });
    expect(m.revision).toBeGreaterThan(0);
    expect(m.dbSize).toBeGreaterThan(0);
    expect(m.error).toBeUndefined();
  }, 120_000);
});

describe('kubectl etcd status with one member stopped', () => {
  it('shows the stopped member unhealthy, the others healthy, and exits 1 (table and -o json); backup still works', async () => {
    const resume = await stopMember('etcd', 'etcd-1', 'etcd');
    try {
      const table = await kubectlEtcd(cluster, ['status', '-n', 'etcd']);
      expect(table.code).toBe(1);
      const rows = rowsByPod(table.stdout);
      expect(rows['etcd-1']![12]).toBe('unhealthy');
      expect(rows['etcd-1']![13]).not.toBe('');
      expect([rows['etcd-0']![12], rows['etcd-2']![12]]).toEqual(['healthy', 'healthy']);
      expect(table.stderr).toMatch(/^error: 1 of 3 etcd members unhealthy: "etcd-1" \([^\n]+\); [^\n]+\n$/);

      const json = await kubectlEtcd(cluster, ['status', '-n', 'etcd', '-o', 'json']);
      expect(json.code).toBe(1);
      const members = JSON.parse(json.stdout).members as Array<{ pod: string; healthy: boolean; error?: string }>;
      expect(members.map((m) => [m.pod, m.healthy])).toEqual([['etcd-0', true], ['etcd-1', false], ['etcd-2', true]]);
      expect(members[1]!.error).toEqual(expect.any(String));

      const file = join(work, 'degraded.db');
      const backup = await kubectlEtcd(cluster, ['backup', '-n', 'etcd', '-f', file]);
      expect(backup.code).toBe(0);
      expect(backup.stdout).toMatch(/from pod "etcd-[02]"/);
    } finally {
      resume();
    }
  }, 180_000);
});
