// Issue 12, item 1: Bitnami's etcd chart with disasterRecovery.enabled=true (the `bitnami` fixture
// with `disasterRecovery=true`): ETCD_DISASTER_RECOVERY=yes and the snapshotter's PVC at /snapshots
// on every member. The image's setup script (libetcd.sh etcd_initialize / is_healthy_etcd_cluster;
// stand-ins in test/sim/images/bitnami-etcd*/) restores the newest /snapshots/db-* over the data dir
// of a member that starts with data while the others do not answer with a quorum — which is how
// every member of a restore starts. The preStop hook is left out (removeMemberOnContainerTermination
// =false) so that this hazard is shown alone. First `kubectl etcd restore` is refused before any
// change; then the naive sequence (scale to 0, swap each data dir for restored data, scale up) is
// shown losing the restored data to the older /snapshots file. Once per generation of the image's
// scripts, each on the etcd minor its images ship: legacy debian-11 on 3.4, debian-12 on 3.5.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { existsSync, readdirSync } from 'node:fs';
import { bitnamiImage, type BitnamiScripts } from '../sim/fixtures/bitnami.js';
import type { EtcdMinor } from '../sim/etcd-versions.js';
import { ok, teardown, type SimCluster } from '../sim/harness.js';
import {
  auditMark, auditSince, BITNAMI_ACCESS as B, etcdctl, keysOn, kubectlEtcd, mutations, startRestoreCluster, waitClusterHealthy, waitPodSucceeded, workloadReplicas,
} from './restore-helpers.js';

const NS = B.namespace;
/** Keys in the chart's own snapshot (/snapshots/db-*); the restored data has one more. */
const OLD_KEYS = ['/test/a1', '/test/a2'];
const RESTORED_KEYS = [...OLD_KEYS, '/test/b'];

/** Each generation of the image's scripts on the etcd minor it ships, and what its start logs when it restores over the data. */
const VARIANTS: Array<{ scripts: BitnamiScripts; etcd: EtcdMinor; restoreLog: RegExp }> = [
  { scripts: 'debian-11', etcd: '3.4', restoreLog: /restoring the newest snapshot \/snapshots\/db-2026-01-01_00-00 over the data dir/ },
  { scripts: 'debian-12', etcd: '3.5', restoreLog: /Restoring etcd cluster from snapshot \/snapshots\/db-2026-01-01_00-00/ },
];

describe.each(VARIANTS)('bitnami ($scripts scripts, etcd $etcd) with ETCD_DISASTER_RECOVERY=yes and /snapshots', (v) => {
  let cluster: SimCluster;
  let work: string;
  let state: string;
  let snapshot: string;

  beforeAll(async () => {
    ({ cluster, work, state } = await startRestoreCluster([`bitnami:disasterRecovery=true,removeMemberOnContainerTermination=false,scripts=${v.scripts},etcd=${v.etcd}`], `restore-bitnami-dr-${v.scripts}`));
    for (const k of OLD_KEYS) await etcdctl(cluster, B, 'etcd-0', ['put', k, k]);
    // What the chart's snapshotter CronJob does every 30 minutes (its save-snapshot.sh): a snapshot
    // named db-<date> on the shared /snapshots volume.
    await etcdctl(cluster, B, 'etcd-0', ['snapshot', 'save', '/snapshots/db-2026-01-01_00-00']);
    await etcdctl(cluster, B, 'etcd-0', ['put', '/test/b', 'written after the chart took its snapshot']);
    snapshot = join(work, 'backup.db');
    const b = await kubectlEtcd(cluster, state, ['backup', '-n', NS, '-f', snapshot]);
    if (b.code !== 0) throw new Error(`backup failed: ${b.stderr}`);
  }, 600_000);

  afterAll(() => teardown(cluster, work));

  /** Member IDs as etcd-0 lists them. */
  async function memberIds(): Promise<string[]> {
    return (await etcdctl(cluster, B, 'etcd-0', ['member', 'list'])).split('\n').filter(Boolean).map((l) => l.split(', ')[0]!).sort();
  }

  it('kubectl etcd restore is refused by preflight in one line with a hint, before any change', async () => {
    const ids = await memberIds();
    const mark = auditMark(cluster);
    const r = await kubectlEtcd(cluster, state, ['restore', snapshot, '-n', NS, '--yes']);
    expect(r.code, r.stderr).not.toBe(0);
    const lines = r.stderr.trim().split('\n').filter((l) => !l.startsWith('warning:'));
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/statefulset "etcd" sets ETCD_DISASTER_RECOVERY=yes: its start script would restore its own newest snapshot from \/snapshots over the restored data of "etcd-0", "etcd-1", "etcd-2"/);
    expect(lines[0]).toMatch(/disasterRecovery\.enabled=false.*nothing was changed/);
    // Nothing changed: no request that writes, no journal (cluster or local), etcd as it was.
    expect(mutations(auditSince(cluster, mark), 'admin')).toEqual([]);
    expect((await cluster.kubectl(['-n', NS, 'get', 'configmap', 'kubectl-etcd-restore-journal-etcd'])).code).not.toBe(0);
    expect(existsSync(state) ? readdirSync(state, { recursive: true }).filter((f) => /journal/.test(String(f))) : []).toEqual([]);
    expect(await workloadReplicas(cluster, NS, 'statefulset', 'etcd')).toEqual({ spec: 3, ready: 3 });
    expect(await memberIds()).toEqual(ids);
    for (const pod of B.pods) expect(await keysOn(cluster, B, pod, '/test/'), pod).toEqual(RESTORED_KEYS);
  }, 60_000);

  it('the fixture is hostile: the naive scale to 0, swap, scale up loses the restored data to the older /snapshots file', async () => {
    // The restored data: each member's own snapshot of the current keys, kept on its data volume.
    for (const pod of B.pods) await etcdctl(cluster, B, pod, ['snapshot', 'save', '/bitnami/etcd/restore-me.db']);
    ok(await cluster.kubectl(['-n', NS, 'scale', 'statefulset', 'etcd', '--replicas=0']));
    ok(await cluster.kubectl(['-n', NS, 'wait', '--for=delete', 'pod', ...B.pods, '--timeout=60s'], { timeoutMs: 90_000 }));
    // Swap: in a pod on each member's volume, the data dir is replaced by the restored data.
    const cluster0 = B.pods.map((p) => `${p}=http://${p}.etcd-headless.${NS}.svc.cluster.local:2380`).join(',');
    for (const pod of B.pods) {
      const script = [
        'set -e', 'cd /bitnami/etcd', 'rm -rf data',
        `etcdctl snapshot restore restore-me.db --data-dir data --name ${pod} --initial-cluster ${cluster0} --initial-cluster-token swapped --initial-advertise-peer-urls http://${pod}.etcd-headless.${NS}.svc.cluster.local:2380`,
        'chmod 700 data', 'rm restore-me.db',
      ].join('\n');
      const manifest = {
        apiVersion: 'v1', kind: 'Pod', metadata: { name: `swap-${pod}`, namespace: NS },
        spec: {
          restartPolicy: 'Never', securityContext: { runAsUser: 1001, fsGroup: 1001 },
          containers: [{ name: 'swap', image: bitnamiImage(v.scripts, v.etcd), command: ['bash', '-c', script], volumeMounts: [{ name: 'data', mountPath: '/bitnami/etcd' }] }],
          volumes: [{ name: 'data', persistentVolumeClaim: { claimName: `data-${pod}` } }],
        },
      };
      ok(await cluster.kubectl(['apply', '-f', '-'], { input: JSON.stringify(manifest) }));
    }
    for (const pod of B.pods) {
      await waitPodSucceeded(cluster, NS, `swap-${pod}`);
      ok(await cluster.kubectl(['-n', NS, 'delete', 'pod', `swap-${pod}`, '--wait=true']));
    }
    ok(await cluster.kubectl(['-n', NS, 'scale', 'statefulset', 'etcd', '--replicas=3']));
    await waitClusterHealthy(cluster, B);
    // Every member started on the chart's older snapshot: the restored key is gone.
    for (const pod of B.pods) expect(await keysOn(cluster, B, pod, '/test/'), pod).toEqual(OLD_KEYS);
    for (const pod of B.pods) {
      const log = await cluster.kubectl(['-n', NS, 'logs', pod]);
      expect(log.stdout + log.stderr, pod).toMatch(v.restoreLog);
    }
  }, 180_000);
});
