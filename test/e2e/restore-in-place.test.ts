// `kubectl etcd restore --in-place` on the anthos fixture (3 members): the runbook's own order,
// for a StatefulSet that something keeps scaling back up (an operator reconciling it). The
// disaster destroys two members' data, so they run on the wrong data or crash-loop; while the
// restore runs, a stand-in "operator" scales kube-etcd back to 3 every second. The restore never
// scales etcd: utility pods beside the members, swap, delete the etcd pods at once. Then: exactly
// the backed-up keys on every member, one leader, old data kept, kube-apiserver back; and an
// --in-place restore killed after the swap rolls back with --abort, still without scaling etcd.
// On both etcd minors (3.4: etcdctl snapshot restore; 3.5: etcdutl with a bumped revision).
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ETCD_MINORS } from '../sim/etcd-versions.js';
import { withFixtureOption } from '../sim/fixtures/index.js';
import { teardown, type SimCluster } from '../sim/harness.js';
import { COMPONENTS, startComponent, stopComponent } from '../sim/apiserver/procs.js';
import {
  anthosAccess, auditMark, auditSince, etcdctl, keysOn, kubectlEtcd, lsInPod, memberRevision, pruneSetAside, startKubectlEtcd, startRestoreCluster, waitClusterHealthy, workloadReplicas,
} from './restore-helpers.js';

const A = anthosAccess(3);
const QUIESCE = ['--quiesce', 'deployment/gke-master-etcd-maintenance'];
const A_KEYS = ['/test/a1', '/test/a2', '/test/a3'];
let cluster: SimCluster;
let work: string;
let state: string;
let snapshot: string;

/** A stand-in operator, as its own user: scales kube-etcd back to 3 every second until stopped. */
async function fightScaling(): Promise<{ stop: () => Promise<void> }> {
  const u = await cluster.sim(['user', 'operator']);
  if (u.code !== 0) throw new Error(`sim user failed: ${u.stderr}`);
  const role = {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'etcd-operator', namespace: 'uc1' },
    rules: [{ apiGroups: ['apps'], resources: ['statefulsets', 'statefulsets/scale'], verbs: ['get', 'list', 'patch', 'update'] }],
  };
  const binding = {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'etcd-operator', namespace: 'uc1' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'etcd-operator' },
    subjects: [{ kind: 'User', name: 'operator', apiGroup: 'rbac.authorization.k8s.io' }],
  };
  const applied = await cluster.kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [role, binding] }) });
  if (applied.code !== 0) throw new Error(`creating the operator's role failed: ${applied.stderr}`);
  const kubeconfig = join(cluster.dir, 'users', 'operator.kubeconfig');
  const first = await cluster.kubectl(['-n', 'uc1', 'scale', 'statefulset', 'kube-etcd', '--replicas=3'], { kubeconfig });
  if (first.code !== 0) throw new Error(`the operator cannot scale: ${first.stderr}`);
  let running = true;
  const loop = (async () => {
    while (running) {
      await cluster.kubectl(['-n', 'uc1', 'scale', 'statefulset', 'kube-etcd', '--replicas=3'], { kubeconfig });
      await new Promise((res) => setTimeout(res, 1000));
    }
  })();
  return { stop: async () => { running = false; await loop; } };
}

/** Scaling requests on kube-etcd by the plugin (user admin), from the audit log. */
function pluginScaledEtcd(mark: number): number {
  return auditSince(cluster, mark).filter((e) => e.user === 'admin' && e.resource === 'statefulsets' && e.name === 'kube-etcd'
    && ['update', 'patch'].includes(e.verb)).length;
}

const replicas = (kind: string, name: string) => workloadReplicas(cluster, 'uc1', kind, name);

describe.each(ETCD_MINORS)('etcd %s', (minor) => {
  beforeAll(async () => {
    ({ cluster, work, state } = await startRestoreCluster([withFixtureOption('anthos', 'etcd', minor)], `restore-in-place-${minor}`));
    await waitClusterHealthy(cluster, A);
    for (const k of A_KEYS) await etcdctl(cluster, A, A.pods[0]!, ['put', k, k]);
    snapshot = join(work, 'anthos.db');
    const b = await kubectlEtcd(cluster, state, ['backup', '-n', 'uc1', '-f', snapshot]);
    if (b.code !== 0) throw new Error(`backup failed: ${b.stderr}`);
  }, 600_000);

  afterAll(() => teardown(cluster, work));

  it('--dry-run plans no scaling of etcd: swap, then delete the etcd pods at once', async () => {
    const r = await kubectlEtcd(cluster, state, ['restore', snapshot, '-n', 'uc1', '--in-place', '--dry-run', '-o', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const ids = (JSON.parse(r.stdout) as { steps: Array<{ id: string }> }).steps.map((s) => s.id);
    expect(ids).not.toContain('etcd-stop');
    expect(ids).not.toContain('etcd-start');
    expect(ids.indexOf('etcd-recreate')).toBe(ids.indexOf('swap/kube-etcd-2') + 1);
  });

  it('restores two destroyed members whose pods are gone and a stale one while an operator keeps scaling etcd up: exactly the backed-up keys everywhere', async () => {
    await etcdctl(cluster, A, A.pods[0]!, ['put', '/test/b1', 'after the backup']);
    await etcdctl(cluster, A, A.pods[0]!, ['del', '/test/a1']);
    // The disaster: two members' data destroyed and their pods deleted. The StatefulSet controller
    // re-creates a pod only once the old one is gone from the API, and only while it runs: with the
    // controller-manager down until the plan is printed, the restore reads the cluster while those
    // pods are gone. One that read members from the pods alone left them out (measured: "restored …
    // on 2 member(s)", and the third then started on its old data).
    for (const pod of ['kube-etcd-1', 'kube-etcd-2']) {
      const r = await cluster.kubectl(['-n', 'uc1', 'exec', pod, '-c', A.container, '--', 'rm', '-rf', `${A.dataDir}/member`]);
      expect(r.code, r.stderr).toBe(0);
    }
    const cm = COMPONENTS.find((c) => c.name === 'controller-manager')!;
    await stopComponent(cluster.dir, cm.name, 5000);
    let cmStopped = true;
    const operator = await fightScaling();
    const mark = auditMark(cluster);
    try {
      expect((await cluster.kubectl(['-n', 'uc1', 'delete', 'pod', 'kube-etcd-1', 'kube-etcd-2', '--wait=true'])).code).toBe(0);
      const started = startKubectlEtcd(cluster, state, ['restore', snapshot, '-n', 'uc1', '--in-place', ...QUIESCE, '--yes', '--no-safety-backup']);
      await started.until(/^==> /m);
      startComponent(cluster.dir, cm.name, cm.file);
      cmStopped = false;
      const r = await started.done;
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/warning: the pods of members "kube-etcd-1", "kube-etcd-2" are gone \(not re-created yet\?\): planned from the statefulset's template/);
      expect(r.stdout).toMatch(/^restored uc1\/kube-etcd from .* on 3 member\(s\) .*verified$/m);
      expect(r.stderr).toMatch(/==> delete the pods of statefulset "kube-etcd" at once so they start on the restored data/);
    } finally {
      if (cmStopped) startComponent(cluster.dir, cm.name, cm.file);
      await operator.stop();
    }
    expect(pluginScaledEtcd(mark)).toBe(0);
    for (const pod of A.pods) expect(await keysOn(cluster, A, pod, '/test/'), pod).toEqual(A_KEYS);
    // The member whose data survived keeps it beside the restored data (the destroyed ones had none).
    expect((await lsInPod(cluster, A, 'kube-etcd-0', A.dataDir)).some((f) => /^member\.pre-restore-\d{8}T\d{6}Z$/.test(f))).toBe(true);
    const st = await Promise.all(A.pods.map((p) => memberRevision(cluster, A, p)));
    expect(st.filter((s) => s.leader)).toHaveLength(1);
    await expect.poll(async () => (await replicas('statefulset', 'kube-apiserver')).ready, { timeout: 60_000 }).toBe(3);
    expect((await replicas('deployment', 'gke-master-etcd-maintenance')).spec).toBe(1);
    const utility = await cluster.kubectl(['-n', 'uc1', 'get', 'pods', '-l', 'app.kubernetes.io/managed-by=kubectl-etcd', '-o', 'name']);
    expect(utility.stdout.trim()).toBe('');
  }, 900_000);

  it('killed after the swap, --abort puts the old data back without scaling etcd', async () => {
    await waitClusterHealthy(cluster, A);
    await pruneSetAside(cluster, A);
    await etcdctl(cluster, A, A.pods[0]!, ['put', '/test/b2', 'kept by the abort']);
    const before = await keysOn(cluster, A, A.pods[0]!, '/test/');
    const mark = auditMark(cluster);
    const started = startKubectlEtcd(cluster, state, ['restore', snapshot, '-n', 'uc1', '--in-place', ...QUIESCE, '--yes', '--no-safety-backup']);
    await started.until(/==> delete the pods of statefulset "kube-etcd" at once/);
    started.child.kill('SIGKILL');
    expect((await started.done).code).toBe(137);
    const abort = await kubectlEtcd(cluster, state, ['restore', '-n', 'uc1', '--abort', '--yes']);
    expect(abort.code, abort.stderr).toBe(0);
    expect(abort.stdout).toMatch(/^rolled back uc1\/kube-etcd: the pre-restore data is in place on 3 member\(s\); healthy, one leader$/m);
    expect(pluginScaledEtcd(mark)).toBe(0);
    for (const pod of A.pods) expect(await keysOn(cluster, A, pod, '/test/'), pod).toEqual(before);
    await expect.poll(async () => (await replicas('statefulset', 'kube-apiserver')).ready, { timeout: 60_000 }).toBe(3);
  }, 900_000);
});
