/**
 * The kubeadm control plane of the test cluster (fixtures/kubeadm.ts): etcd and kube-apiserver as
 * static pods of three control-plane nodes, and the API server the clients reach tied to them
 * (apiserver/gate.ts). What a kubeadm restore has to live with, seen through real kubectl: the
 * runbook's first step (move etcd.yaml out on every node) takes the API with it; the pods keep
 * running; moving kube-apiserver.yaml out too closes the port; moving them back brings it back.
 * A node's kubelet stopped (fault kubelet-stop) leaves its pods running but deaf: no exec or logs
 * through the API, a manifest moved out is not acted on, a dead container stays dead, and the node
 * turns Unknown after the grace period; started again, it catches up.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok, requireCommand, requireRoot, startCluster, type SimCluster } from '../sim/harness.js';
import { isAlive } from '../sim/apiserver/streams/runtime.js';

const NODES = ['node-1', 'node-2', 'node-3'];
let cluster: SimCluster;

beforeAll(async () => {
  requireRoot();
  requireCommand('kubectl', 'install kubectl 1.30 or newer');
  requireCommand('etcd', 'run apt-get install -y etcd-server etcd-client');
  cluster = await startCluster({ fixtures: ['kubeadm'] });
}, 400_000);

afterAll(async () => {
  // Whatever a failed test left aside goes back, so that `down` stops every static pod.
  for (const n of NODES) for (const f of ['etcd.yaml', 'kube-apiserver.yaml']) {
    if (existsSync(aside(n, f))) renameSync(aside(n, f), manifest(n, f));
  }
  await cluster?.down();
}, 180_000);

const root = (node: string) => join(cluster.dir, 'nodes', node, 'hostpath');
const manifest = (node: string, file: string) => join(root(node), 'etc/kubernetes/manifests', file);
const aside = (node: string, file: string) => join(root(node), 'etc/kubernetes', file);

/** Polls until fn returns a value. */
async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** The host pid of a static pod's container, as the kubelet publishes it. */
function pidOf(pod: string, container: string): number | null {
  const file = join(cluster.dir, 'runtime/pods/kube-system', pod, `${container}.json`);
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { pid: number | null }).pid : null;
}

describe('the API server follows the kube-apiserver static pods and their etcd', () => {
  it('the naive runbook: etcd.yaml moved out on every node; kubectl gets "etcdserver: request timed out", exec fails, the pods run on; kube-apiserver.yaml out too: connection refused; both back: the API serves again', async () => {
    const get = () => cluster.kubectl(['-n', 'kube-system', 'get', 'pods', '-o', 'name'], { timeoutMs: 30_000 });
    expect(ok(await get()).split('\n').filter(Boolean).sort()).toEqual(NODES.flatMap((n) => [`pod/etcd-${n}`, `pod/kube-apiserver-${n}`]).sort());
    const apiservers = NODES.map((n) => pidOf(`kube-apiserver-${n}`, 'kube-apiserver'));
    expect(apiservers.every((p) => isAlive(p))).toBe(true);

    // A client watching pods: its watch ends when the API loses etcd (kubectl get -w then exits).
    const watcher = spawn('kubectl', ['--kubeconfig', cluster.kubeconfig, '-n', 'kube-system', 'get', 'pods', '-w'], { stdio: 'ignore' });
    const watchEnded = new Promise<number | null>((r) => watcher.once('exit', (code) => r(code)));

    // Step 1 of the manual restore: stop etcd on every control-plane node.
    for (const n of NODES) renameSync(manifest(n, 'etcd.yaml'), aside(n, 'etcd.yaml'));
    await waitFor('every etcd stopped', async () => NODES.every((n) => !isAlive(pidOf(`etcd-${n}`, 'etcd'))), 90_000);
    const timedOut = await waitFor('kubectl to fail for want of etcd', async () => {
      const r = await get();
      return r.code !== 0 ? r : undefined;
    }, 30_000);
    expect(timedOut.stderr).toMatch(/^Error from server: etcdserver: request timed out$/m);
    // A plugin that meant to exec into a member now cannot: the API cannot read the pod.
    const exec = await cluster.kubectl(['-n', 'kube-system', 'exec', 'kube-apiserver-node-1', '--', 'true'], { timeoutMs: 30_000 });
    expect(exec.code).not.toBe(0);
    expect(exec.stderr).toMatch(/etcdserver: request timed out/);
    const readyz = await cluster.kubectl(['get', '--raw', '/readyz'], { timeoutMs: 30_000 });
    expect(readyz.code).not.toBe(0);
    expect(readyz.stdout + readyz.stderr).toMatch(/etcd failed: reason withheld/);
    expect(await Promise.race([watchEnded.then(() => 'ended'), new Promise((r) => setTimeout(() => r('still watching'), 10_000))])).toBe('ended');
    // The kube-apiservers run on (kubeadm gives them a long liveness allowance), unchanged.
    expect(NODES.map((n) => pidOf(`kube-apiserver-${n}`, 'kube-apiserver'))).toEqual(apiservers);
    expect(apiservers.every((p) => isAlive(p))).toBe(true);

    // Step 2: stop the API servers too. The port closes.
    for (const n of NODES) renameSync(manifest(n, 'kube-apiserver.yaml'), aside(n, 'kube-apiserver.yaml'));
    const refused = await waitFor('the API port to close', async () => {
      const r = await get();
      return /was refused/.test(r.stderr) ? r : undefined;
    }, 90_000);
    expect(refused.stderr).toMatch(/The connection to the server 127\.0\.0\.1:\d+ was refused - did you specify the right host or port\?/);

    // Back: etcd first, then the API servers; the API serves again, every mirror pod Ready.
    for (const n of NODES) renameSync(aside(n, 'etcd.yaml'), manifest(n, 'etcd.yaml'));
    for (const n of NODES) renameSync(aside(n, 'kube-apiserver.yaml'), manifest(n, 'kube-apiserver.yaml'));
    await waitFor('the API to serve again', async () => (await get()).code === 0, 120_000);
    await waitFor('every mirror pod Ready', async () => {
      const r = await cluster.kubectl(['-n', 'kube-system', 'get', 'pods', '-o', 'jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}']);
      const lines = r.stdout.split('\n').filter(Boolean);
      return r.code === 0 && lines.length === 6 && lines.every((l) => l.endsWith('=True'));
    }, 120_000);
    expect(ok(await cluster.kubectl(['get', '--raw', '/readyz']))).toBe('ok');
  }, 600_000);

  it('each node\'s /var/lib/etcd is a disk of its own: fill-volume NODE:/var/lib/etcd fills that one (ENOSPC there, room on the others); clear frees it', async () => {
    const fill = await cluster.sim(['fault', 'fill-volume', 'node-2:/var/lib/etcd']);
    expect(fill.code, fill.stderr).toBe(0);
    try {
      expect(() => writeFileSync(join(root('node-2'), 'var/lib/etcd/probe'), Buffer.alloc(1 << 20))).toThrow(/ENOSPC/);
      writeFileSync(join(root('node-1'), 'var/lib/etcd/probe'), Buffer.alloc(1 << 20));
    } finally {
      rmSync(join(root('node-1'), 'var/lib/etcd/probe'), { force: true });
      rmSync(join(root('node-2'), 'var/lib/etcd/probe'), { force: true });
      const clear = await cluster.sim(['fault', 'clear']);
      expect(clear.code, clear.stderr).toBe(0);
    }
    writeFileSync(join(root('node-2'), 'var/lib/etcd/probe'), Buffer.alloc(1 << 20));
    rmSync(join(root('node-2'), 'var/lib/etcd/probe'));
    // Not a disk of the node: refused, naming what is.
    const bad = await cluster.sim(['fault', 'fill-volume', 'node-1:/etc/kubernetes']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/node-1:\/etc\/kubernetes is not a disk of its own on that node/);
  }, 120_000);

  it('kubelet-stop node-2: exec and logs of its pods fail ("error dialing backend"), etcd.yaml moved out is not acted on, a killed container stays dead, the node turns Unknown; kubelet-start: it catches up; --for starts a kubelet by itself', async () => {
    const stop = await cluster.sim(['fault', 'kubelet-stop', 'node-2', '--grace', '3']);
    expect(stop.code, stop.stderr).toBe(0);
    const etcd2 = pidOf('etcd-node-2', 'etcd');
    try {
      // kubectl 1.30+ execs over v5.channel.k8s.io: the API server's stream translator upgrades, then fails to dial.
      const exec = await cluster.kubectl(['-n', 'kube-system', 'exec', 'etcd-node-2', '-c', 'etcd', '--', 'etcd', '--version']);
      expect(exec.code).not.toBe(0);
      expect(exec.stderr).toMatch(/error sending request: Post "https:\/\/[\d.]+:10250\/exec\/kube-system\/etcd-node-2\/etcd\?command=etcd&command=--version&error=1&output=1": dial tcp [\d.]+:10250: connect: connection refused/);
      const logs = await cluster.kubectl(['-n', 'kube-system', 'logs', 'etcd-node-2', '-c', 'etcd']);
      expect(logs.code).not.toBe(0);
      expect(logs.stderr).toMatch(/https:\/\/[\d.]+:10250\/containerLogs\/kube-system\/etcd-node-2\/etcd": dial tcp [\d.]+:10250: connect: connection refused/);
      ok(await cluster.kubectl(['-n', 'kube-system', 'exec', 'etcd-node-1', '-c', 'etcd', '--', 'etcd', '--version']));
      // The runbook's step on node-2 does nothing while its kubelet is stopped.
      renameSync(manifest('node-2', 'etcd.yaml'), aside('node-2', 'etcd.yaml'));
      const kill = await cluster.sim(['fault', 'kill-container', 'kube-system/kube-apiserver-node-2', 'kube-apiserver']);
      expect(kill.code, kill.stderr).toBe(0);
      await new Promise((r) => setTimeout(r, 4000));
      expect(isAlive(etcd2)).toBe(true);
      expect(isAlive(pidOf('kube-apiserver-node-2', 'kube-apiserver'))).toBe(false);
      const node = () => cluster.kubectl(['get', 'node', 'node-2', '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].message} {.spec.taints[*].key}:{.spec.taints[*].effect}']);
      const unknown = 'Unknown Kubelet stopped posting node status. node.kubernetes.io/unreachable node.kubernetes.io/unreachable:NoSchedule NoExecute';
      await waitFor('node-2 to turn Unknown, tainted unreachable', async () => (await node()).stdout === unknown, 30_000);
      // No kubelet to post a status through: node-not-ready is refused, the node stays Unknown.
      const notReady = await cluster.sim(['fault', 'node-not-ready', 'node-2']);
      expect(notReady.code).not.toBe(0);
      expect(notReady.stderr).toMatch(/the kubelet of node-2 is stopped; run fault kubelet-start node-2 first/);
      expect((await node()).stdout).toBe(unknown);
    } finally {
      const start = await cluster.sim(['fault', 'kubelet-start', 'node-2']);
      expect(start.code, start.stderr).toBe(0);
    }
    // Started: etcd.yaml's move is acted on, the dead container restarted, the node Ready.
    await waitFor('etcd-node-2 to stop', async () => !isAlive(etcd2), 60_000);
    await waitFor('kube-apiserver-node-2 to run again', async () => isAlive(pidOf('kube-apiserver-node-2', 'kube-apiserver')), 60_000);
    await waitFor('node-2 to be Ready', async () => (await cluster.kubectl(['get', 'node', 'node-2', '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}:{.spec.taints}'])).stdout === 'True:', 30_000);
    renameSync(aside('node-2', 'etcd.yaml'), manifest('node-2', 'etcd.yaml'));
    await waitFor('etcd-node-2 to run again', async () => isAlive(pidOf('etcd-node-2', 'etcd')), 60_000);
    // --for: the kubelet starts by itself.
    const brief = await cluster.sim(['fault', 'kubelet-stop', 'node-3', '--for', '8']);
    expect(brief.code, brief.stderr).toBe(0);
    expect((await cluster.kubectl(['-n', 'kube-system', 'exec', 'etcd-node-3', '-c', 'etcd', '--', 'etcd', '--version'])).code).not.toBe(0);
    await waitFor('exec on node-3 to work again', async () => (await cluster.kubectl(['-n', 'kube-system', 'exec', 'etcd-node-3', '-c', 'etcd', '--', 'etcd', '--version'])).code === 0, 20_000);
    await waitFor('every static pod Ready', async () => {
      const r = await cluster.kubectl(['-n', 'kube-system', 'get', 'pods', '-o', 'jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}']);
      const lines = r.stdout.split('\n').filter(Boolean);
      return r.code === 0 && lines.length === 6 && lines.every((l) => l.endsWith('=True'));
    }, 120_000);
  }, 300_000);
});
