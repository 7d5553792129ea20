// `kubectl etcd restore` of kubeadm's stacked etcd (issue 18), on the kubeadm fixture as kubeadm
// lays it out (static pods, the control-plane taint, etcd 3.5, each node's /var/lib/etcd a disk of
// its own) with a fourth, worker node: the API server goes away with the etcd it serves while the
// node agents work, and comes back from the restored data. Judged by what a user sees: keys on
// every member, the leader, kubectl writing again, the mirror pods, files on each node's disk.
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor, type SimCluster } from '../sim/harness.js';
import { setKubeletsStopped } from '../sim/kubelet/fault.js';
import {
  auditMark, auditSince, etcdctl, keysOn, kubectlEtcd, memberRevision, mutations, startKubectlEtcd, startRestoreCluster, waitClusterHealthy, type EtcdAccess,
} from './restore-helpers.js';

const NODES = ['node-1', 'node-2', 'node-3'];
const PKI = '/etc/kubernetes/pki/etcd';
const KUBEADM: EtcdAccess = {
  namespace: 'kube-system', container: 'etcd', pods: NODES.map((n) => `etcd-${n}`),
  etcdctl: ['etcdctl', '--endpoints=https://127.0.0.1:2379', `--cacert=${PKI}/ca.crt`, `--cert=${PKI}/healthcheck-client.crt`, `--key=${PKI}/healthcheck-client.key`],
  dataDir: '/var/lib/etcd', volumeDir: '/var/lib/etcd',
};

let cluster: SimCluster;
let work: string;
let state: string;

beforeAll(async () => {
  ({ cluster, work, state } = await startRestoreCluster(['kubeadm:controlPlaneTaint=true,etcd=3.5'], 'restore-kubeadm', { nodes: 4 }));
}, 400_000);

afterAll(async () => {
  await cluster?.down();
}, 180_000);

const onNode = (node: string, path: string) => join(cluster.dir, 'nodes', node, 'hostpath', path);

/** Writes /test/a, backs up, then writes /test/b<round>: returns the snapshot and the keys --abort must bring back. */
async function backupThenDiverge(round: number): Promise<{ snapshot: string; before: string[] }> {
  await waitClusterHealthy(cluster, KUBEADM);
  const pod = KUBEADM.pods[0]!;
  await etcdctl(cluster, KUBEADM, pod, ['del', '/test/', '--prefix']);
  await etcdctl(cluster, KUBEADM, pod, ['put', '/test/a', `round ${round}`]);
  const snapshot = join(work, `round-${round}.db`);
  const b = await kubectlEtcd(cluster, state, ['backup', '-n', 'kube-system', '-f', snapshot]);
  expect(b.code, b.stderr).toBe(0);
  await etcdctl(cluster, KUBEADM, pod, ['put', `/test/b${round}`, 'written after the backup']);
  return { snapshot, before: ['/test/a', `/test/b${round}`] };
}

/** Every member holds exactly these /test/ keys, there is one leader, and kubectl writes again. */
async function expectCluster(keys: string[]): Promise<void> {
  await waitClusterHealthy(cluster, KUBEADM);
  for (const pod of KUBEADM.pods) expect(await keysOn(cluster, KUBEADM, pod, '/test/'), pod).toEqual(keys);
  const leaders = (await Promise.all(KUBEADM.pods.map((p) => memberRevision(cluster, KUBEADM, p)))).filter((r) => r.leader);
  expect(leaders).toHaveLength(1);
  const name = `written-after-${Date.now()}`;
  const cm = await cluster.kubectl(['-n', 'default', 'create', 'configmap', name, '--from-literal=k=v'], { timeoutMs: 60_000 });
  expect(cm.code, cm.stderr).toBe(0);
}

/** The pods kube-system shows: the mirror pods and nothing of ours. */
async function kubeSystemPods(): Promise<string[]> {
  const r = await cluster.kubectl(['-n', 'kube-system', 'get', 'pods', '-o', 'name']);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.split('\n').filter(Boolean).sort();
}

/** Nothing a restore leaves running or lying around: no pod of ours, no agent file, no snapshot copy, no journal. */
function expectNothingLeft(): void {
  for (const n of NODES) {
    expect(readdirSync(onNode(n, '/etc/kubernetes/manifests')).sort(), n).toEqual(['etcd.yaml', 'kube-apiserver.yaml']);
    for (const d of readdirSync(onNode(n, '/var/lib/etcd')).filter((f) => f.startsWith('kubectl-etcd-restore-'))) {
      expect(readdirSync(onNode(n, `/var/lib/etcd/${d}`)).filter((f) => f.startsWith('snapshot.db')), `${n} ${d}`).toEqual([]);
    }
  }
  expect(existsSync(state) ? readdirSync(state).filter((f) => f.startsWith('restore-')) : []).toEqual([]);
}

const MIRRORS = NODES.flatMap((n) => [`pod/etcd-${n}`, `pod/kube-apiserver-${n}`]).sort();

// Each test restores (and some resume or abort) a three-node control plane: up to a few minutes on a busy machine.
describe('kubectl etcd restore on kubeadm (static pods; the API server goes away with etcd)', { timeout: 400_000 }, () => {
  it('--dry-run plans every control-plane node (name, node-IP peer URL, paths) and changes nothing', async () => {
    const { snapshot } = await backupThenDiverge(0);
    const mark = auditMark(cluster);
    const r = await kubectlEtcd(cluster, state, ['restore', snapshot, '-n', 'kube-system', '--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^restore plan for kubeadm's static etcd pods \(component=etcd\) in namespace "kube-system"/);
    for (const [i, n] of NODES.entries()) expect(r.stdout).toContain(`    ${n}: member "${n}", peer URL https://10.88.255.${254 - i}:2380, data /var/lib/etcd`);
    expect(r.stderr).toMatch(/dry run: nothing was changed/);
    expect(mutations(auditSince(cluster, mark), 'admin')).toEqual([]);
    expect(await kubeSystemPods()).toEqual(MIRRORS);
    expectNothingLeft();
  });

  it('a member whose etcd.yaml advertises a peer URL off its node: the backup warns that a restore would refuse it, and the restore refuses it before any change', async () => {
    const file = onNode('node-3', '/etc/kubernetes/manifests/etcd.yaml');
    const original = readFileSync(file, 'utf8');
    // etcd ignores --initial-advertise-peer-urls once it has data: the member runs on, the flag says otherwise.
    writeFileSync(file, original.replace('--initial-advertise-peer-urls=https://10.88.255.252:2380', '--initial-advertise-peer-urls=https://10.88.255.200:2380'));
    try {
      await waitFor('etcd-node-3 to show the edited flag', async () => (await cluster.kubectl(['-n', 'kube-system', 'get', 'pod', 'etcd-node-3', '-o', 'jsonpath={.spec.containers[0].command}'])).stdout.includes('10.88.255.200') || undefined);
      await waitClusterHealthy(cluster, KUBEADM);
      const snapshot = join(work, 'layout.db');
      const b = await kubectlEtcd(cluster, state, ['backup', '-n', 'kube-system', '-f', snapshot]);
      expect(b.code, b.stderr).toBe(0);
      expect(b.stderr).toContain('member "node-3" advertises peer URL https://10.88.255.200:2380, but its node "node-3" has addresses 10.88.255.252, node-3: `kubectl etcd restore` would refuse this member (without --force); check --initial-advertise-peer-urls in node-3\'s /etc/kubernetes/manifests/etcd.yaml');
      const mark = auditMark(cluster);
      const r = await kubectlEtcd(cluster, state, ['restore', snapshot, '-n', 'kube-system', '--yes']);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/member "node-3" advertises peer URL https:\/\/10\.88\.255\.200:2380, but its node "node-3" has addresses 10\.88\.255\.252, node-3/);
      expect(r.stderr).toMatch(/or pass --force if you are sure/);
      expect(mutations(auditSince(cluster, mark), 'admin')).toEqual([]);
    } finally {
      writeFileSync(file, original);
    }
    await waitFor('etcd-node-3 back on its own flags', async () => !(await cluster.kubectl(['-n', 'kube-system', 'get', 'pod', 'etcd-node-3', '-o', 'jsonpath={.spec.containers[0].command}'])).stdout.includes('10.88.255.200') || undefined);
    await waitClusterHealthy(cluster, KUBEADM);
    expectNothingLeft();
  });

  it('restores: exactly the snapshot\'s keys on every member, one leader, kubectl writing again, the mirror pods back; old data and both manifests kept on every node', async () => {
    const { snapshot } = await backupThenDiverge(1);
    const r = await kubectlEtcd(cluster, state, ['restore', snapshot, '-n', 'kube-system', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^restored kubeadm etcd in kube-system from ".*round-1\.db" \(revision \d+\) on 3 control-plane node\(s\) in [\d.]+s; verified$/m);
    expect(r.stderr).toMatch(/the API server goes away/);
    await expectCluster(['/test/a']);
    expect(await kubeSystemPods()).toEqual(MIRRORS);
    for (const n of NODES) {
      const data = readdirSync(onNode(n, '/var/lib/etcd'));
      const kept = data.filter((f) => f.startsWith('member.pre-restore-'));
      expect(kept, n).toHaveLength(1);
      expect(existsSync(onNode(n, `/var/lib/etcd/${kept[0]}/wal`))).toBe(true);
      const stamp = kept[0]!.slice('member.pre-restore-'.length);
      expect(readdirSync(onNode(n, `/etc/kubernetes/kubectl-etcd-restore-${stamp}`)).sort()).toEqual(['etcd.yaml', 'kube-apiserver.yaml']);
      expect(readFileSync(onNode(n, `/var/lib/etcd/kubectl-etcd-restore-${stamp}/outcome`), 'utf8')).toBe('restored\nrun restore-1\n');
    }
    expectNothingLeft();
  });

  it('SIGKILL before the window (the agents\' files being written), inside it (the agents started) and after it (verifying): each time --resume goes on, and the agents finish by themselves meanwhile', async () => {
    const { snapshot } = await backupThenDiverge(2);
    const killAt = async (args: string[], re: RegExp) => {
      const p = startKubectlEtcd(cluster, state, args);
      await p.until(re);
      p.child.kill('SIGKILL');
      await p.done;
    };
    await killAt(['restore', snapshot, '-n', 'kube-system', '--yes'], /==> writing the agents' static pod files/);
    // Nothing of etcd was touched yet: both manifests in place on every node, the old keys served.
    for (const n of NODES) expect(readdirSync(onNode(n, '/etc/kubernetes/manifests')).filter((f) => !f.startsWith('.')).sort()).toEqual(['etcd.yaml', 'kube-apiserver.yaml']);
    expect(await keysOn(cluster, KUBEADM, KUBEADM.pods[0]!, '/test/')).toEqual(['/test/a', '/test/b2']);
    await killAt(['restore', '--resume', '-n', 'kube-system'], /==> starting the agents/);
    await killAt(['restore', '--resume', '-n', 'kube-system'], /==> verifying the restored cluster/);
    const r = await kubectlEtcd(cluster, state, ['restore', '--resume', '-n', 'kube-system']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^restored kubeadm etcd in kube-system from ".*round-2\.db"/m);
    await expectCluster(['/test/a']);
    expectNothingLeft();
  });

  it('--abort after a SIGKILL inside the window: every node gets its old data back, the keys from before the restore', async () => {
    const { snapshot, before } = await backupThenDiverge(3);
    const p = startKubectlEtcd(cluster, state, ['restore', snapshot, '-n', 'kube-system', '--yes']);
    await p.until(/==> waiting for every node's agent/);
    p.child.kill('SIGKILL');
    await p.done;
    const r = await kubectlEtcd(cluster, state, ['restore', '--abort', '-n', 'kube-system']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^rolled back kubeadm etcd in kube-system: the pre-restore data is in place on 3 control-plane node\(s\); healthy, one leader$/m);
    await expectCluster(before);
    expectNothingLeft();
  });

  it('a node\'s kubelet stopped as the window begins (its agent not started yet, or working with a kubelet that does not stop etcd): the plugin waits for it, naming it, and the restore finishes once it is back', async () => {
    const { snapshot } = await backupThenDiverge(5);
    const p = startKubectlEtcd(cluster, state, ['restore', snapshot, '-n', 'kube-system', '--yes', '-v', '1']);
    await p.until(/==> starting the agents/);
    await setKubeletsStopped(cluster.dir, ['node-2'], true);
    try {
      // Once the API serves again (nodes 1 and 3 restored), node-2 cannot be read: its kubelet does not answer.
      await p.until(/reading node "node-2": exec in pod "kube-system\/kubectl-etcd-install-[^"]+" failed: the kubelet of the pod's node does not answer \(dial tcp [\d.]+:10250: connect: connection refused\)/, 240_000);
    } finally {
      await setKubeletsStopped(cluster.dir, ['node-2'], false);
    }
    const r = await p.done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^restored kubeadm etcd in kube-system from ".*round-5\.db" \(revision \d+\) on 3 control-plane node\(s\)/m);
    await expectCluster(['/test/a']);
    expect(await kubeSystemPods()).toEqual(MIRRORS);
    const work = readdirSync(onNode('node-2', '/var/lib/etcd')).filter((f) => f.startsWith('kubectl-etcd-restore-')).sort().pop()!;
    expect(readFileSync(onNode('node-2', `/var/lib/etcd/${work}/outcome`), 'utf8')).toBe('restored\nrun restore-1\n');
    expectNothingLeft();
  });

  it('one node\'s disk full: its agent fails and puts it back while the others restore; the plugin reports it once the API is back; --abort puts all three back', async () => {
    const { snapshot, before } = await backupThenDiverge(4);
    const p = startKubectlEtcd(cluster, state, ['restore', snapshot, '-n', 'kube-system', '--yes']);
    await p.until(/==> writing the agents' static pod files/);
    p.child.kill('SIGKILL');
    await p.done;
    // The snapshot is on every node; node-2's etcd disk fills before its agent runs.
    const fill = await cluster.sim(['fault', 'fill-volume', 'node-2:/var/lib/etcd', '--leave', String(8 << 20)]);
    expect(fill.code, fill.stderr).toBe(0);
    try {
      const r = await kubectlEtcd(cluster, state, ['restore', '--resume', '-n', 'kube-system']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/the restore failed on 1 of 3 nodes: node "node-2": etcdutl snapshot restore failed .*the manifests are back, its data untouched \(node-1, node-3: restored\)/);
      expect(r.stderr).toMatch(/--abort/);
      // --resume runs node-2's agent again (a new run: the failure of the last one is not taken for
      // this one's); the disk is still full, so it fails again, and only node-2 went through it.
      const again = await kubectlEtcd(cluster, state, ['restore', '--resume', '-n', 'kube-system']);
      expect(again.code).toBe(1);
      expect(again.stderr).toMatch(/==> starting the agent on node-2: /);
      expect(again.stderr).toMatch(/the restore failed on 1 of 3 nodes: node "node-2": etcdutl snapshot restore failed/);
      const log = readdirSync(onNode('node-1', '/var/lib/etcd')).filter((f) => f.startsWith('kubectl-etcd-restore-')).sort().pop()!;
      expect(readFileSync(onNode('node-1', `/var/lib/etcd/${log}/outcome`), 'utf8')).toBe('restored\nrun restore-1\n');
    } finally {
      const clear = await cluster.sim(['fault', 'clear']);
      expect(clear.code, clear.stderr).toBe(0);
    }
    const a = await kubectlEtcd(cluster, state, ['restore', '--abort', '-n', 'kube-system']);
    expect(a.code, a.stderr).toBe(0);
    await expectCluster(before);
    expectNothingLeft();
  });
});
