// `kubectl etcd restore` on the `single` (1-member anthos, non-HA runbook; here its data volume
// mounted with subPathExpr `etcd-$(POD_NAME)`, so the data dir is a folder of the volume named
// after the member pod, which a utility pod must not expand with its own name) and `bitnami` (ETCD_* env,
// non-root uid 1001) fixtures in one cluster, and the preflight refusals — missing permission,
// a member on another etcd minor than the template, NotReady node, volume too small — each before the first mutation, with
// one line and a hint; a user with only the README's Role and ClusterRole restores, and that Role
// minus any verb is refused naming it; under Pod Security "restricted" the utility pods run as the
// member's own user and the restore works. On the subPath fixture the naive restore (a utility pod mounting the volume
// root) is first shown to leave etcd on its old data while every command succeeds. Last, the
// subPath member is upgraded to etcd 3.5 and a 3.5 backup of it restored (etcdutl).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anthosEtcdImage } from '../sim/fixtures/anthos.js';
import { teardown, type SimCluster } from '../sim/harness.js';
import {
  anthosAccess, auditMark, auditSince, BITNAMI_ACCESS, etcdctl, keysOn, kubectlEtcd, lsInPod, memberRevision, mutations, pruneSetAside, refusedBeforeChange, startKubectlEtcd, startRestoreCluster, waitClusterHealthy, type EtcdAccess,
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

/** Runs a restore of `single` that preflight must refuse; returns the single stderr line after checking nothing changed. */
function refused(args: string[], opts: { kubeconfig?: string; user?: string } = {}): Promise<string> {
  return refusedBeforeChange(cluster, state, ['restore', snapshots['single']!, '-n', 'uc1', '--yes', '--no-safety-backup', ...args], opts);
}

/** A Role in uc1 with these rules, bound to a new token user; returns the user's kubeconfig. */
async function userWithRole(user: string, rules: unknown[]): Promise<string> {
  const u = await cluster.sim(['user', user]);
  expect(u.code, u.stderr).toBe(0);
  const subjects = [{ kind: 'User', name: user, apiGroup: 'rbac.authorization.k8s.io' }];
  const applied = await cluster.kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: user, namespace: 'uc1' }, rules },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: user, namespace: 'uc1' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: user }, subjects },
  ] }) });
  expect(applied.code, applied.stderr).toBe(0);
  return join(cluster.dir, 'users', `${user}.kubeconfig`);
}

beforeAll(async () => {
  // As a 1.35 API server, which asks for create as well as get on pods/exec (streams over WebSocket).
  ({ cluster, work, state } = await startRestoreCluster(['single:subPath=etcd-$(POD_NAME)', 'bitnami'], 'restore-fixtures', { serverVersion: '1.35' }));
  await prepare(SINGLE, 'single');
  await prepare(BITNAMI_ACCESS, 'bitnami');
}, 600_000);

afterAll(() => teardown(cluster, work));

describe('preflight refuses before the first mutation', () => {
  it('a user without the needed permissions: every missing one listed at once, get pods/exec too (a WebSocket exec is a GET; create alone was SPDY\'s)', async () => {
    const kubeconfig = await userWithRole('restricted', [
      { apiGroups: [''], resources: ['pods', 'configmaps', 'persistentvolumeclaims'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: [''], resources: ['pods/exec'], verbs: ['create'] },
      { apiGroups: ['apps'], resources: ['statefulsets', 'deployments'], verbs: ['get', 'list'] },
      { apiGroups: ['policy'], resources: ['poddisruptionbudgets'], verbs: ['get', 'list'] },
    ]);
    // The naive Role (create on pods/exec, as for SPDY): a WebSocket exec is refused as a `get`.
    const exec = await cluster.kubectl(['-n', 'uc1', 'exec', 'kube-etcd-0', '-c', 'kube-etcd', '--', 'true'], { kubeconfig });
    expect(exec.code).not.toBe(0);
    expect(exec.stderr).toContain('cannot get resource "pods/exec" in API group "" in the namespace "uc1"');
    const line = await refused([], { kubeconfig, user: 'restricted' });
    expect(line).toMatch(/^error: missing permission in namespace "uc1": .*create pods.*delete pods.*get pods\/exec.*patch statefulsets\.apps\/scale.*; ask a cluster admin/);
  });

  it('a Role with only get on pods/exec: a 1.35 API server refuses the stream, asking for create too; preflight names it', async () => {
    expect(JSON.parse((await cluster.kubectl(['version', '-o', 'json'])).stdout).serverVersion.minor).toBe('35');
    const kubeconfig = await userWithRole('get-only', [
      { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch', 'create', 'delete'] },
      { apiGroups: [''], resources: ['pods/exec'], verbs: ['get'] },
    ]);
    const exec = await cluster.kubectl(['-n', 'uc1', 'exec', 'kube-etcd-0', '-c', 'kube-etcd', '--', 'true'], { kubeconfig });
    expect(exec.code).not.toBe(0);
    expect(exec.stderr).toContain('cannot create resource "pods/exec" in API group "" in the namespace "uc1"');
    const line = await refused([], { kubeconfig, user: 'get-only' });
    expect(line).toMatch(/^error: missing permission in namespace "uc1": .*create pods\/exec/);
    expect(line).not.toMatch(/get pods\/exec/);
  });

  it('a member that runs another etcd minor version than the template (a rollout under way)', async () => {
    // OnDelete: the running member keeps its 3.4 pod; only the template (what opens the restored data) names etcd 3.5.
    // A 3.4 snapshot into 3.5 alone would be allowed (restore-etcd35.test.ts); the half-done rollout is what is refused.
    const patch = (image: string, strategy: string) => cluster.kubectl(['-n', 'uc1', 'patch', 'statefulset', 'kube-etcd', '--type=strategic', '-p',
      JSON.stringify({ spec: { updateStrategy: { type: strategy }, template: { spec: { containers: [{ name: 'kube-etcd', image }] } } } })]);
    expect((await patch('gcr.io/gke-on-prem-release/etcd:v3.5.9-0-gke.0', 'OnDelete')).code).toBe(0);
    try {
      const line = await refused([]);
      expect(line).toMatch(/^error: statefulset "kube-etcd" is between etcd versions: its template runs 3\.5\.9 \(image "[^"]+"\) but "kube-etcd-0" runs 3\.4; let the rollout finish or undo it \(kubectl rollout status statefulset\/kube-etcd -n uc1\), then restore again, or pass --force if you are sure$/);
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

// A pod of the test mounting the whole volume of kube-etcd-0 (no subPath) at etcd's path: the
// naive restore's utility pod, and later the eye on the volume root.
const ROOT_POD = 'volume-root';
/** kube-etcd-0's data folder on its volume, as the volume-root pod sees it. */
const SUB = '/var/lib/etcd/etcd-kube-etcd-0';
const SNAP_IN_ROOT = '/var/lib/etcd/naive.db';

async function inRoot(script: string): Promise<string> {
  const r = await cluster.kubectl(['-n', 'uc1', 'exec', ROOT_POD, '--', 'sh', '-ec', script]);
  if (r.code !== 0) throw new Error(`${script} in ${ROOT_POD} failed: ${r.stderr}`);
  return r.stdout;
}

/** kube-etcd-0's own member and cluster ID, from endpoint status in it. */
async function ids(): Promise<{ member: string; cluster: string }> {
  const out = await etcdctl(cluster, SINGLE, 'kube-etcd-0', ['endpoint', 'status', '-w', 'json']);
  const h = (JSON.parse(out.replace(/:\s*(\d{16,})/g, ':"$1"')) as Array<{ Status: { header: { member_id: string | number; cluster_id: string | number } } }>)[0]!.Status.header;
  return { member: BigInt(h.member_id).toString(16), cluster: BigInt(h.cluster_id).toString(16) };
}

async function scaleEtcd(replicas: number): Promise<void> {
  expect((await cluster.kubectl(['-n', 'uc1', 'scale', 'statefulset', 'kube-etcd', `--replicas=${replicas}`])).code).toBe(0);
  const pods = async () => (await cluster.kubectl(['-n', 'uc1', 'get', 'pods', '-l', 'component=kube-etcd', '-o', 'jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{end}'])).stdout;
  await expect.poll(pods, { timeout: 120_000, interval: 1000 }).toBe(replicas ? 'True' : '');
}

describe('subPath: the fixture is hostile', () => {
  it('the kubelet mounts the folder a subPathExpr names, $(VAR) from the container\'s env', async () => {
    const pod = {
      apiVersion: 'v1', kind: 'Pod', metadata: { name: 'subpath-expr', namespace: 'uc1' },
      spec: {
        terminationGracePeriodSeconds: 0,
        containers: ['root', 'sub'].map((name) => ({
          name, image: 'gcr.io/gke-on-prem-release/etcd:v3.4.23-0-gke.1', command: ['/bin/sh', '-c', "trap 'exit 0' TERM; while :; do sleep 1; done"],
          env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
          volumeMounts: [name === 'root' ? { name: 'v', mountPath: '/v' } : { name: 'v', mountPath: '/w', subPathExpr: 'x-$(POD_NAME)' }],
        })),
        volumes: [{ name: 'v', emptyDir: {} }],
      },
    };
    expect((await cluster.kubectl(['apply', '-f', '-'], { input: JSON.stringify(pod) })).code).toBe(0);
    expect((await cluster.kubectl(['-n', 'uc1', 'wait', 'pod/subpath-expr', '--for=condition=Ready', '--timeout=60s'])).code).toBe(0);
    expect((await cluster.kubectl(['-n', 'uc1', 'exec', 'subpath-expr', '-c', 'sub', '--', 'touch', '/w/hello'])).code).toBe(0);
    expect((await cluster.kubectl(['-n', 'uc1', 'exec', 'subpath-expr', '-c', 'root', '--', 'ls', '/v/x-subpath-expr'])).stdout.trim()).toBe('hello');
    expect((await cluster.kubectl(['-n', 'uc1', 'delete', 'pod', 'subpath-expr', '--wait=true'])).code).toBe(0);
  }, 120_000);

  it('a restore through a pod that mounts the volume root swaps beside the data etcd reads: every command succeeds, etcd comes back healthy on its old data, with as many keys as the snapshot and its old IDs', async () => {
    const node = (await cluster.kubectl(['-n', 'uc1', 'get', 'pod', 'kube-etcd-0', '-o', 'jsonpath={.spec.nodeName}'])).stdout.trim();
    const pod = {
      apiVersion: 'v1', kind: 'Pod', metadata: { name: ROOT_POD, namespace: 'uc1' },
      spec: {
        nodeSelector: { 'kubernetes.io/hostname': node }, terminationGracePeriodSeconds: 0,
        containers: [{
          name: 'shell', image: 'gcr.io/gke-on-prem-release/etcd:v3.4.23-0-gke.1', command: ['/bin/sh', '-c', "trap 'exit 0' TERM; while :; do sleep 1; done"],
          volumeMounts: [{ name: 'data', mountPath: '/var/lib/etcd' }],
        }],
        volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data-kube-etcd-0' } }],
      },
    };
    expect((await cluster.kubectl(['apply', '-f', '-'], { input: JSON.stringify(pod) })).code).toBe(0);
    expect((await cluster.kubectl(['-n', 'uc1', 'wait', `pod/${ROOT_POD}`, '--for=condition=Ready', '--timeout=60s'])).code).toBe(0);
    // The kubelet honours subPathExpr: etcd's /var/lib/etcd is the volume's folder etcd-kube-etcd-0/.
    expect((await inRoot('ls -1 /var/lib/etcd')).split('\n')).toContain('etcd-kube-etcd-0');
    expect((await inRoot(`ls -1 ${SUB}`)).split('\n')).toContain('member');
    // As many keys under /test/ as the snapshot holds (a1 a2 a3), but not the same ones.
    await etcdctl(cluster, SINGLE, 'kube-etcd-0', ['del', '/test/b2']);
    const before = await ids();
    const revisionBefore = (await memberRevision(cluster, SINGLE, 'kube-etcd-0')).revision;
    expect((await cluster.kubectl(['cp', snapshots['single']!, `uc1/${ROOT_POD}:${SNAP_IN_ROOT}`])).code).toBe(0);
    await scaleEtcd(0);
    // The runbook's restore and swap at etcd's --data-dir, as this pod sees it (the volume root).
    await inRoot([
      `ETCDCTL_API=3 etcdctl snapshot restore ${SNAP_IN_ROOT} --name=kube-etcd-0 --initial-cluster=kube-etcd-0=https://kube-etcd-0.kube-etcd:2380`
        + ' --initial-cluster-token=etcd-cluster-1 --initial-advertise-peer-urls=https://kube-etcd-0.kube-etcd:2380 --data-dir=/var/lib/etcd/naive-restore',
      'if [ -e /var/lib/etcd/member ]; then mv /var/lib/etcd/member /var/lib/etcd/member.naive-old; fi',
      'mv /var/lib/etcd/naive-restore/member /var/lib/etcd/member',
      `rm -rf /var/lib/etcd/naive-restore ${SNAP_IN_ROOT}`,
    ].join('\n'));
    await scaleEtcd(1);
    await waitClusterHealthy(cluster, SINGLE);
    expect(await keysOn(cluster, SINGLE, 'kube-etcd-0', '/test/')).toEqual(['/test/a2', '/test/a3', '/test/b1']);
    expect((await memberRevision(cluster, SINGLE, 'kube-etcd-0')).revision).toBeGreaterThanOrEqual(revisionBefore);
    // Even a fresh restore with the runbook's token has the old IDs: the IDs tell nothing either.
    expect(await ids()).toEqual(before);
    // The restored data sits unused on the volume root.
    await inRoot('test -d /var/lib/etcd/member/snap && rm -rf /var/lib/etcd/member');
  }, 300_000);
});

/** The README's Role and ClusterRole (the yaml block under "Permissions"), as documents. */
function readmePermissions(): Array<{ kind: string; metadata: { name: string; namespace?: string }; rules: Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }> }> {
  const readme = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');
  const block = /```yaml\n(# kubectl-etcd: restore, backup and status[\s\S]*?)```/.exec(readme);
  if (!block) throw new Error('README.md has no "Permissions" yaml block');
  return parseAllDocuments(block[1]!).map((d) => d.toJSON());
}

const OPERATOR = 'etcd-operator';
const operatorKubeconfig = () => join(cluster.dir, 'users', `${OPERATOR}.kubeconfig`);

describe('least privilege: the README\'s Role and ClusterRole (bitnami, namespace "etcd")', () => {
  const docs = readmePermissions();
  const apply = async (items: unknown[]) => {
    const r = await cluster.kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items }) });
    expect(r.code, r.stderr).toBe(0);
  };

  beforeAll(async () => {
    const u = await cluster.sim(['user', OPERATOR]);
    expect(u.code, u.stderr).toBe(0);
    expect(docs.map((d) => `${d.kind}/${d.metadata.name}`)).toEqual(['Role/kubectl-etcd', 'ClusterRole/kubectl-etcd']);
    expect(docs[0]!.metadata.namespace).toBe('etcd');
    await apply(docs);
    // The bindings the README names (applied as objects: `kubectl create rolebinding` sends
    // protobuf, which the local cluster does not read for RBAC objects).
    const subjects = [{ kind: 'User', name: OPERATOR, apiGroup: 'rbac.authorization.k8s.io' }];
    await apply([
      { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'kubectl-etcd', namespace: 'etcd' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'kubectl-etcd' }, subjects },
      { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: 'kubectl-etcd' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'kubectl-etcd' }, subjects },
    ]);
  });

  it('that Role or ClusterRole minus any single verb: the restore refuses before the first mutation, naming that verb (or, for one this restore does not use, plans as before)', async () => {
    const unused: string[] = [];
    for (const [d, doc] of docs.entries()) {
      for (const [ri, rule] of doc.rules.entries()) {
        for (const resource of rule.resources) {
          for (const verb of rule.verbs) {
            // The rule without this verb on this resource; everything else as the README has it.
            const rules = doc.rules.flatMap((r, i) => i !== ri ? [r] : [
              ...(r.verbs.length > 1 ? [{ ...r, resources: [resource], verbs: r.verbs.filter((v) => v !== verb) }] : []),
              ...(r.resources.length > 1 ? [{ ...r, resources: r.resources.filter((x) => x !== resource) }] : []),
            ]);
            await apply([{ ...doc, rules }]);
            const [group] = rule.apiGroups;
            const name = `${verb} ${resource.replace(/^([^/]+)/, group ? `$1.${group}` : '$1')}`;
            const mark = auditMark(cluster);
            const r = await kubectlEtcd(cluster, state, ['restore', snapshots['bitnami']!, '-n', 'etcd', '--dry-run', '--no-safety-backup'], { kubeconfig: operatorKubeconfig() });
            expect(mutations(auditSince(cluster, mark), OPERATOR), name).toEqual([]);
            if (r.code === 0) {
              unused.push(name);
            } else {
              const lines = r.stderr.trim().split('\n').filter((l) => !l.startsWith('warning:'));
              expect(lines, `${name}: ${r.stderr}`).toHaveLength(1);
              const scope = d === 0 ? 'in namespace "etcd"' : 'at cluster scope';
              expect(lines[0], name).toBe(`error: missing permission ${scope}: ${name}; ask a cluster admin to grant them (the README's "Permissions" lists a Role and ClusterRole that do), or run \`kubectl auth can-i --list\` to see yours`);
            }
          }
        }
      }
      await apply([doc]);
    }
    // What this restore (no PDB, no Deployment to stop, whenScaled Retain, a Service that
    // publishes not-ready members, every member pod running) and its dry run never use.
    expect(unused.sort()).toEqual([
      'create pods/portforward', 'get deployments.apps', 'get deployments.apps/scale', 'get persistentvolumes', 'list nodes', 'get poddisruptionbudgets.policy',
      'get pods/portforward', 'get secrets', 'patch deployments.apps/scale', 'patch services', 'patch statefulsets.apps',
      'create poddisruptionbudgets.policy', 'delete poddisruptionbudgets.policy',
    ].sort());
  }, 600_000);
});

describe.each([
  ['single', SINGLE, 'uc1/kube-etcd'],
  ['bitnami', BITNAMI_ACCESS, 'etcd/etcd'],
] as const)('kubectl etcd restore (%s)', (name, a, workload) => {
  it('brings back exactly the backed-up keys on every member, healthy, equal revisions, new IDs, old data kept', async () => {
    const claims = async () => (await cluster.kubectl(['-n', a.namespace, 'get', 'pvc', '-o', 'jsonpath={range .items[*]}{.metadata.name}={.metadata.uid} {end}'])).stdout.trim();
    const claimsBefore = await claims();
    const memberIds = async () => (await etcdctl(cluster, a, a.pods[0]!, ['member', 'list'])).split('\n').filter(Boolean).map((l) => l.split(', ')[0]!).sort();
    const idsBefore = await memberIds();
    const revisionBefore = (await memberRevision(cluster, a, a.pods[0]!)).revision;
    // Bitnami's restore runs as a user with only the README's Role and ClusterRole.
    const r = await kubectlEtcd(cluster, state, ['restore', snapshots[name]!, '-n', a.namespace, '--yes'], name === 'bitnami' ? { kubeconfig: operatorKubeconfig() } : {});
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/==> verify: .*each member on the restored data/);
    // The restore's own cluster token gives every member a new ID; the claims are the same.
    const idsAfter = await memberIds();
    expect(idsAfter).toHaveLength(a.pods.length);
    for (const id of idsAfter) expect(idsBefore).not.toContain(id);
    expect(await claims()).toBe(claimsBefore);
    expect((await cluster.kubectl(['-n', a.namespace, 'get', 'pods', '-l', 'app.kubernetes.io/managed-by=kubectl-etcd', '-o', 'name'])).stdout.trim()).toBe('');
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
      // The plan names the member's folder, expanded with the member pod's name.
      expect(r.stderr).toContain('pvc "data-kube-etcd-0" (subPath "etcd-kube-etcd-0" at /var/lib/etcd)');
      // On the volume: the restored data and the kept copy in the subPath folder etcd mounts, both
      // whole; nothing of the restore at the volume root.
      const aside = (await inRoot(`ls -1 ${SUB}`)).split('\n').filter((f) => /^member\.pre-restore-\d{8}T\d{6}Z$/.test(f));
      expect(aside).toHaveLength(1);
      expect((await inRoot('ls -1 /var/lib/etcd')).split('\n').filter((f) => /^(member|kubectl-etcd)/.test(f))).toEqual([]);
      const kept = JSON.parse(await inRoot(`ETCDCTL_API=3 etcdctl snapshot status ${SUB}/${aside[0]}/snap/db -w json`)) as { revision: number };
      expect(kept.revision).toBeGreaterThanOrEqual(revisionBefore);
      expect((await inRoot(`ls -1 ${SUB}/${aside[0]}`)).split('\n').filter(Boolean)).toEqual(['snap', 'wal']);
    } else {
      // The non-root member owns its restored data.
      const own = await cluster.kubectl(['-n', 'etcd', 'exec', 'etcd-0', '-c', 'etcd', '--', 'stat', '-c', '%u', `${a.dataDir}/member`]);
      expect(own.stdout.trim()).toBe('1001');
    }
  }, 600_000);
});

describe('subPath: a restore that did not take effect', () => {
  it('fails verification (exit 3, naming the member), and --abort brings back the data the member ran before', async () => {
    await pruneSetAside(cluster, SINGLE);
    await etcdctl(cluster, SINGLE, 'kube-etcd-0', ['put', '/test/c', 'written after the first restore']);
    const before = await keysOn(cluster, SINGLE, 'kube-etcd-0', '/test/');
    const started = startKubectlEtcd(cluster, state, ['restore', snapshots['single']!, '-n', 'uc1', '--yes', '--no-safety-backup']);
    // Killed once the member is swapped, while etcd is stopped.
    await started.until(/==> delete utility pod /);
    started.child.kill('SIGKILL');
    expect((await started.done).code).toBe(137);
    // The swap undone behind the restore's back, as a swap to the wrong place leaves it: etcd's
    // data dir holds the data it ran before.
    await inRoot([
      `cd ${SUB}`,
      'test -d member && mv member member.undone',
      'for d in member.pre-restore-*; do mv "$d" member; done',
    ].join('\n'));
    const resumed = await kubectlEtcd(cluster, state, ['restore', '-n', 'uc1', '--resume', '--yes']);
    expect(resumed.code, resumed.stderr).toBe(3);
    expect(resumed.stderr).toMatch(/^error: the restored cluster did not pass verification: member "kube-etcd-0" runs data this restore did not write \(member ID [0-9a-f]+, cluster ID [0-9a-f]+; the restored data has [0-9a-f]+, cluster [0-9a-f]+\)/m);
    expect(await keysOn(cluster, SINGLE, 'kube-etcd-0', '/test/')).toEqual(before);
    const aborted = await kubectlEtcd(cluster, state, ['restore', '-n', 'uc1', '--abort', '--yes']);
    expect(aborted.code, aborted.stderr).toBe(0);
    await waitClusterHealthy(cluster, SINGLE);
    expect(await keysOn(cluster, SINGLE, 'kube-etcd-0', '/test/')).toEqual(before);
    expect((await cluster.kubectl(['-n', 'uc1', 'get', 'pods', '-l', 'app.kubernetes.io/managed-by=kubectl-etcd', '-o', 'name'])).stdout.trim()).toBe('');
    expect((await cluster.kubectl(['-n', 'uc1', 'delete', 'pod', ROOT_POD, '--wait=true'])).code).toBe(0);
  }, 420_000);
});

describe('subPath on etcd 3.5 (the member upgraded from 3.4 by a rolling update, as a vendor upgrade does)', () => {
  it('a 3.5 backup restored with etcdutl into the folder etcd mounts: exactly the backed-up keys, the old data kept beside them', async () => {
    const image = anthosEtcdImage('3.5');
    const patched = await cluster.kubectl(['-n', 'uc1', 'patch', 'statefulset', 'kube-etcd', '--type=strategic', '-p',
      JSON.stringify({ spec: { template: { spec: { containers: [{ name: 'kube-etcd', image }] } } } })]);
    expect(patched.code, patched.stderr).toBe(0);
    const rolled = await cluster.kubectl(['-n', 'uc1', 'rollout', 'status', 'statefulset/kube-etcd', '--timeout=180s'], { timeoutMs: 200_000 });
    expect(rolled.code, rolled.stderr).toBe(0);
    await waitClusterHealthy(cluster, SINGLE);
    const status = JSON.parse(await etcdctl(cluster, SINGLE, 'kube-etcd-0', ['endpoint', 'status', '-w', 'json'])) as Array<{ Status: { version: string } }>;
    expect(status[0]!.Status.version).toMatch(/^3\.5\./);
    await pruneSetAside(cluster, SINGLE);

    for (const k of ['e1', 'e2']) await etcdctl(cluster, SINGLE, 'kube-etcd-0', ['put', `/v35/${k}`, k]);
    const snapshot = join(work, 'single-3.5.db');
    const b = await kubectlEtcd(cluster, state, ['backup', '-n', 'uc1', '-f', snapshot]);
    expect(b.code, b.stderr).toBe(0);
    await etcdctl(cluster, SINGLE, 'kube-etcd-0', ['put', '/v35/f1', 'after the backup']);
    await etcdctl(cluster, SINGLE, 'kube-etcd-0', ['del', '/v35/e1']);

    const r = await kubectlEtcd(cluster, state, ['restore', snapshot, '-n', 'uc1', '--yes', '--no-safety-backup']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('pvc "data-kube-etcd-0" (subPath "etcd-kube-etcd-0" at /var/lib/etcd)');
    expect(r.stderr).toMatch(/==> etcdutl snapshot restore into /);
    await waitClusterHealthy(cluster, SINGLE);
    expect(await keysOn(cluster, SINGLE, 'kube-etcd-0', '/v35/')).toEqual(['/v35/e1', '/v35/e2']);
    // etcd's /var/lib/etcd is the subPath folder: the restored member and the kept one are both there
    const files = await lsInPod(cluster, SINGLE, 'kube-etcd-0', '/var/lib/etcd');
    expect(files.filter((f) => /^member\.pre-restore-\d{8}T\d{6}Z$/.test(f))).toHaveLength(1);
    expect(files).toContain('member');
  }, 420_000);
});

// Issue 14: Pod Security Admission (docs: concepts/security/pod-security-admission). The Bitnami
// members comply with "restricted" (the chart's security contexts: non-root, no privilege
// escalation, every capability dropped, RuntimeDefault seccomp); the utility pods run as root.
describe('Pod Security "restricted" enforced on the namespace of members that comply with it (bitnami)', () => {
  const NS = BITNAMI_ACCESS.namespace;
  const label = async (ns: string, level: string | null) => {
    const r = await cluster.kubectl(['label', 'namespace', ns, level ? `pod-security.kubernetes.io/enforce=${level}` : 'pod-security.kubernetes.io/enforce-', '--overwrite']);
    expect(r.code, r.stderr).toBe(0);
  };
  let utilityPod: { metadata: Record<string, unknown>; spec: { securityContext?: unknown; containers: Array<Record<string, unknown>> } };

  beforeAll(async () => {
    const plan = await kubectlEtcd(cluster, state, ['restore', snapshots['bitnami']!, '-n', NS, '--dry-run', '-o', 'json']);
    expect(plan.code, plan.stderr).toBe(0);
    utilityPod = (JSON.parse(plan.stdout) as { members: Array<{ utilityPod: typeof utilityPod }> }).members[0]!.utilityPod;
    await label(NS, 'restricted');
  }, 120_000);
  afterAll(async () => {
    await label(NS, null);
    await label('uc1', null);
  });

  it('the members themselves are admitted: a deleted member pod comes back Ready', async () => {
    const uid = async (): Promise<string> => (await cluster.kubectl(['-n', NS, 'get', 'pod', 'etcd-2', '-o', 'jsonpath={.metadata.uid}', '--ignore-not-found'])).stdout.trim();
    const before = await uid();
    expect(before).not.toBe('');
    expect((await cluster.kubectl(['-n', NS, 'delete', 'pod', 'etcd-2', '--wait=true'])).code).toBe(0);
    // `kubectl wait` on a pod that does not exist yet fails at once with NotFound: wait for the
    // StatefulSet controller to create the new pod (a new uid) before waiting for it to be Ready
    await expect.poll(async () => [before, ''].includes(await uid()), { timeout: 60_000, interval: 250 }).toBe(false);
    const ready = await cluster.kubectl(['-n', NS, 'wait', 'pod/etcd-2', '--for=condition=Ready', '--timeout=120s'], { timeoutMs: 130_000 });
    expect(ready.code, ready.stderr).toBe(0);
    await waitClusterHealthy(cluster, BITNAMI_ACCESS);
  }, 180_000);

  it('the naive way: a root utility pod (what restore used to make) is refused by the cluster, with the real message; the one it makes now is admitted', async () => {
    const naive = { ...utilityPod, spec: { ...utilityPod.spec, securityContext: undefined, containers: utilityPod.spec.containers.map((c) => ({ ...c, securityContext: { runAsUser: 0, runAsGroup: 0 } })) } };
    const r = await cluster.kubectl(['create', '--dry-run=server', '-f', '-'], { input: JSON.stringify(naive) });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/^Error from server \(Forbidden\): error when creating "STDIN": pods "etcd-utility-[^"]+" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false \(container "etcd-utility" must set securityContext\.allowPrivilegeEscalation=false\), unrestricted capabilities .*runAsUser=0 \(container "etcd-utility" must not set runAsUser=0\), seccompProfile /);
    const ok = await cluster.kubectl(['create', '--dry-run=server', '-f', '-'], { input: JSON.stringify(utilityPod) });
    expect(ok.code, ok.stderr).toBe(0);
    // It runs as the member runs.
    expect(utilityPod.spec.securityContext).toMatchObject({ fsGroup: 1001 });
    expect(utilityPod.spec.containers[0]!['securityContext']).toMatchObject({ runAsUser: 1001, runAsNonRoot: true, allowPrivilegeEscalation: false });
  });

  it('restore runs there: its utility pods run as the member\'s user (1001), and every member comes back with exactly the backed-up keys, owning its data', async () => {
    await etcdctl(cluster, BITNAMI_ACCESS, 'etcd-0', ['put', '/test/after-restore', 'x']);
    const r = await kubectlEtcd(cluster, state, ['restore', snapshots['bitnami']!, '-n', NS, '--yes', '--no-safety-backup']);
    expect(r.code, r.stderr).toBe(0);
    await waitClusterHealthy(cluster, BITNAMI_ACCESS);
    for (const pod of BITNAMI_ACCESS.pods) {
      expect(await keysOn(cluster, BITNAMI_ACCESS, pod, '/test/'), pod).toEqual(['/test/a1', '/test/a2', '/test/a3']);
      const own = await cluster.kubectl(['-n', NS, 'exec', pod, '-c', 'etcd', '--', 'stat', '-c', '%u', `${BITNAMI_ACCESS.dataDir}/member`, `${BITNAMI_ACCESS.dataDir}/member/snap/db`]);
      expect(own.stdout.trim().split('\n'), pod).toEqual(['1001', '1001']);
    }
  }, 420_000);

  it('members that run as root, admitted before their namespace enforced "restricted" (enforcement judges new pods only): restore refuses in preflight, before any change, in one line naming the pod, the member, the rule and the way out', async () => {
    await label('uc1', 'restricted');
    const mark = auditMark(cluster);
    const line = await refused([]);
    expect(line).toMatch(/^error: the cluster would refuse utility pod "etcd-utility-0" for member "kube-etcd-0": pods "etcd-utility-0" is forbidden: violates PodSecurity "restricted:latest": .*; namespace "uc1" enforces Pod Security level "restricted" .*\(kubectl label namespace uc1 pod-security\.kubernetes\.io\/enforce=baseline --overwrite\).*nothing was changed/);
    const since = auditSince(cluster, mark);
    // It asked the server: a dry-run create, refused.
    expect(since.filter((e) => e.verb === 'create' && e.resource === 'pods' && /dryRun=All/.test(e.requestURI ?? '')).map((e) => e.code)).toEqual([403]);
  });
});
