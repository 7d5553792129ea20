// `kubectl etcd restore` on the `single` (1-member anthos, non-HA runbook) and `bitnami`
// (ETCD_* env, non-root uid 1001) fixtures in one cluster, and the preflight refusals — missing
// permission, wrong etcd minor version, NotReady node, volume too small — each before the first
// mutation, with one line and a hint.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { teardown, type SimCluster } from '../sim/harness.js';
import {
  anthosAccess, auditMark, auditSince, BITNAMI_ACCESS, etcdctl, keysOn, kubectlEtcd, lsInPod, memberRevision, mutations, startRestoreCluster, type EtcdAccess,
} from './restore-helpers.js';

const SINGLE = anthosAccess(1);
let cluster: SimCluster;
let work: string;
let state: string;
const snapshots: Record<string, string> = {};

/** Keys A, a backup, then keys B and one of A deleted: the disaster the restore undoes. */
async function prepare(a: EtcdAccess, name: string): Promise<void> {
  const pod = a.pods[0]!;
  for (const k of ['a1', 'a2', 'a3']) await etcdctl(cluster, a, pod, ['put', `/test/${k}`, k]);
  snapshots[name] = join(work, `${name}.db`);
  const b = await kubectlEtcd(cluster, state, ['backup', '-n', a.namespace, '-f', snapshots[name]!]);
  expect(b.code, b.stderr).toBe(0);
  for (const k of ['b1', 'b2']) await etcdctl(cluster, a, pod, ['put', `/test/${k}`, k]);
  await etcdctl(cluster, a, pod, ['del', '/test/a1']);
}

/** Runs a restore that preflight must refuse; returns the single stderr line after checking nothing changed. */
async function refused(args: string[], opts: { kubeconfig?: string; user?: string } = {}): Promise<string> {
  const mark = auditMark(cluster);
  const r = await kubectlEtcd(cluster, state, ['restore', snapshots['single']!, '-n', 'uc1', '--yes', '--no-safety-backup', ...args], { kubeconfig: opts.kubeconfig });
  expect(r.code, r.stdout).not.toBe(0);
  expect(mutations(auditSince(cluster, mark), opts.user ?? 'admin')).toEqual([]);
  const lines = r.stderr.trim().split('\n').filter((l) => !l.startsWith('warning:'));
  expect(lines, r.stderr).toHaveLength(1);
  return lines[0]!;
}

beforeAll(async () => {
  ({ cluster, work, state } = await startRestoreCluster(['single', 'bitnami'], 'restore-fixtures'));
  await prepare(SINGLE, 'single');
  await prepare(BITNAMI_ACCESS, 'bitnami');
}, 600_000);

afterAll(() => teardown(cluster, work));

describe('preflight refuses before the first mutation', () => {
  it('a user without the needed permissions: every missing one listed at once', async () => {
    const u = await cluster.sim(['user', 'restricted']);
    expect(u.code, u.stderr).toBe(0);
    const role = {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'etcd-reader', namespace: 'uc1' },
      rules: [
        { apiGroups: [''], resources: ['pods', 'configmaps', 'persistentvolumeclaims'], verbs: ['get', 'list', 'watch'] },
        { apiGroups: [''], resources: ['pods/exec'], verbs: ['create'] },
        { apiGroups: ['apps'], resources: ['statefulsets', 'deployments'], verbs: ['get', 'list'] },
        { apiGroups: ['policy'], resources: ['poddisruptionbudgets'], verbs: ['get', 'list'] },
      ],
    };
    const binding = {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'etcd-reader', namespace: 'uc1' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'etcd-reader' },
      subjects: [{ kind: 'User', name: 'restricted', apiGroup: 'rbac.authorization.k8s.io' }],
    };
    const applied = await cluster.kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [role, binding] }) });
    expect(applied.code, applied.stderr).toBe(0);
    const line = await refused([], { kubeconfig: join(cluster.dir, 'users', 'restricted.kubeconfig'), user: 'restricted' });
    expect(line).toMatch(/^error: missing permission in namespace "uc1": .*create pods.*delete pods.*patch statefulsets\.apps\/scale.*; ask a cluster admin/);
  });

  it('a snapshot of another etcd minor version than the image the members will run', async () => {
    // OnDelete: the running member keeps its pod; only the template (what opens the restored data) names etcd 3.5.
    const patch = (image: string, strategy: string) => cluster.kubectl(['-n', 'uc1', 'patch', 'statefulset', 'kube-etcd', '--type=strategic', '-p',
      JSON.stringify({ spec: { updateStrategy: { type: strategy }, template: { spec: { containers: [{ name: 'kube-etcd', image }] } } } })]);
    expect((await patch('gcr.io/gke-on-prem-release/etcd:v3.5.9-0-gke.0', 'OnDelete')).code).toBe(0);
    try {
      const line = await refused([]);
      expect(line).toMatch(/^error: snapshot ".*single\.db" was written by etcd 3\.4 but statefulset "kube-etcd" runs etcd 3\.5\.9 .*, or pass --force/);
    } finally {
      expect((await patch('gcr.io/gke-on-prem-release/etcd:v3.4.23-0-gke.1', 'RollingUpdate')).code).toBe(0);
    }
  });

  it('a member whose node is NotReady', async () => {
    const node = (await cluster.kubectl(['-n', 'uc1', 'get', 'pod', 'kube-etcd-0', '-o', 'jsonpath={.spec.nodeName}'])).stdout.trim();
    expect((await cluster.sim(['fault', 'node-not-ready', node])).code).toBe(0);
    try {
      await expect.poll(async () => (await cluster.kubectl(['get', 'node', node, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'])).stdout, { timeout: 60_000 }).not.toBe('True');
      const line = await refused([]);
      expect(line).toMatch(new RegExp(`^error: node "${node}" of member "kube-etcd-0" is not Ready.*; bring the node back or move the member, or pass --force`));
    } finally {
      expect((await cluster.sim(['fault', 'node-ready', node])).code).toBe(0);
    }
    await expect.poll(async () => (await cluster.kubectl(['-n', 'uc1', 'get', 'pod', 'kube-etcd-0', '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'])).stdout, { timeout: 60_000 }).toBe('True');
  });

  it('a member volume without room for the snapshot copy and the restored data', async () => {
    expect((await cluster.sim(['fault', 'fill-volume', 'uc1/kube-etcd-0', '--leave', String(8 * 1024 * 1024)])).code).toBe(0);
    try {
      const line = await refused([]);
      expect(line).toMatch(/^error: volume of member "kube-etcd-0" \(\/var\/lib\/etcd\) has [\d.]+ MiB free, the restore needs [\d.]+ MiB; free space on the volume or grow the PVC/);
    } finally {
      expect((await cluster.sim(['fault', 'clear'])).code).toBe(0);
    }
  });
});

describe.each([
  ['single', SINGLE, 'uc1/kube-etcd'],
  ['bitnami', BITNAMI_ACCESS, 'etcd/etcd'],
] as const)('kubectl etcd restore (%s)', (name, a, workload) => {
  it('brings back exactly the backed-up keys on every member, healthy, equal revisions, old data kept', async () => {
    const r = await kubectlEtcd(cluster, state, ['restore', snapshots[name]!, '-n', a.namespace, '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^restored ${workload} .* on ${a.pods.length} member\\(s\\) .*verified$`, 'm'));
    for (const pod of a.pods) {
      expect(await keysOn(cluster, a, pod, '/test/'), pod).toEqual(['/test/a1', '/test/a2', '/test/a3']);
      expect(await etcdctl(cluster, a, pod, ['endpoint', 'health', '-w', 'json']), pod).toMatch(/"health":true/);
      expect((await lsInPod(cluster, a, pod, a.volumeDir)).some((f) => /^member\.pre-restore-/.test(f)), pod).toBe(true);
    }
    await expect.poll(async () => new Set((await Promise.all(a.pods.map((p) => memberRevision(cluster, a, p)))).map((s) => s.revision)).size, { timeout: 30_000 }).toBe(1);
    if (name === 'single') {
      const sts = JSON.parse((await cluster.kubectl(['-n', 'uc1', 'get', 'statefulset', 'kube-apiserver', '-o', 'json'])).stdout) as { spec: { replicas: number }; status: { readyReplicas?: number } };
      expect([sts.spec.replicas, sts.status.readyReplicas]).toEqual([1, 1]);
    } else {
      // The non-root member owns its restored data.
      const own = await cluster.kubectl(['-n', 'etcd', 'exec', 'etcd-0', '-c', 'etcd', '--', 'stat', '-c', '%u', `${a.dataDir}/member`]);
      expect(own.stdout.trim()).toBe('1001');
    }
  }, 600_000);
});
