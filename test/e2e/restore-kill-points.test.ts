// SIGKILL of `kubectl etcd restore` after each step in turn, on the `single` fixture (1 member,
// kube-apiserver StatefulSet, the maintenance Deployment, a PDB): after every kill point
// `--resume` reaches the verified end state (exactly the backed-up keys) and `--abort` brings back
// the pre-restore data (the keys written after the backup). Then kills during `--abort` (another
// --abort finishes it) and during `--resume` (another --resume finishes it). No kill point may lose
// data, leave a utility pod, a journal, a scaled-down workload or a missing PDB behind.
//
// The plugin is killed when it announces the next step (`==> TITLE` on stderr), that is after the
// step before was recorded as done and while the next one may already have started.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireCommand, requireRoot, startCluster, type SimCluster } from '../sim/harness.js';
import { REPO, anthosAccess, etcdctl, keysOn, kubectlEtcd, startKubectlEtcd } from './restore-helpers.js';

const S = anthosAccess(1);
const NS = S.namespace;
const POD = S.pods[0]!;
const QUIESCE = ['--quiesce', 'deployment/gke-master-etcd-maintenance'];
const A_KEYS = ['/test/a1', '/test/a2', '/test/a3'];
const PDB = {
  apiVersion: 'policy/v1', kind: 'PodDisruptionBudget',
  metadata: { name: 'kube-apiserver-pdb', namespace: NS },
  spec: { minAvailable: 1, selector: { matchLabels: { component: 'kube-apiserver' } } },
};

/** Every step of the plan for this fixture, in order: the plan is checked against it below. */
const STEPS = [
  'journal',
  'pdb-delete/kube-apiserver-pdb',
  'quiesce/StatefulSet/kube-apiserver',
  'quiesce/Deployment/gke-master-etcd-maintenance',
  'etcd-stop',
  'utility/kube-etcd-0',
  'copy/kube-etcd-0',
  'restore/kube-etcd-0',
  'swap/kube-etcd-0',
  'cleanup/kube-etcd-0',
  'etcd-start',
  'wait-ready',
  'verify',
  'unquiesce/StatefulSet/kube-apiserver',
  'unquiesce/Deployment/gke-master-etcd-maintenance',
  'pdb-create/kube-apiserver-pdb',
  'finish',
];

let cluster: SimCluster;
let work: string;
let state: string;
let snapshot: string;
let titles: Map<string, string>;
let pdbBefore: unknown;
let round = 0;

/** `==> TITLE` of a step as the plugin prints it; the stamp in paths differs per run. */
function announce(stepId: string): RegExp {
  const title = titles.get(stepId);
  if (!title) throw new Error(`no step "${stepId}" in the plan`);
  const esc = title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\d{8}T\d{6}Z/g, '\\d{8}T\\d{6}Z');
  return new RegExp(`==> ${esc}\\n`);
}

async function kubectlJson<T>(args: string[]): Promise<T | undefined> {
  const r = await cluster.kubectl(['-n', NS, ...args, '-o', 'json']);
  return r.code === 0 ? (JSON.parse(r.stdout) as T) : undefined;
}

/** Waits (a plain loop: also used in beforeAll) until the member answers a quorum read. */
async function waitHealthy(): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const r = await cluster.kubectl(['-n', NS, 'exec', POD, '-c', S.container, '--', ...S.etcdctl, 'endpoint', 'health']);
    if (r.code === 0) return;
    if (Date.now() > deadline) throw new Error(`etcd in ${NS} did not become healthy within 120 s: ${r.stderr.trim().split('\n').pop()}`);
    await new Promise((res) => setTimeout(res, 1000));
  }
}

/** The disaster: keys B written after the backup and a1 deleted. Returns the keys the member holds now. */
async function diverge(): Promise<string[]> {
  await waitHealthy();
  // Data set aside by earlier rounds, removed as an operator would once satisfied (room on the volume).
  const prune = await cluster.kubectl(['-n', NS, 'exec', POD, '-c', S.container, '--', 'sh', '-c', `rm -rf ${S.dataDir}/member.pre-restore-* ${S.dataDir}/member.restored-*`]);
  expect(prune.code, prune.stderr).toBe(0);
  round += 1;
  await etcdctl(cluster, S, POD, ['put', `/test/b${round}`, `written after the backup (${round})`]);
  await etcdctl(cluster, S, POD, ['del', '/test/a1']);
  const keys = await keysOn(cluster, S, POD, '/test/');
  expect(keys).toContain(`/test/b${round}`);
  expect(keys).not.toContain('/test/a1');
  return keys;
}

/** Starts a restore and SIGKILLs it when it announces `killAt`. */
async function restoreKilledAt(killAt: string): Promise<void> {
  const started = startKubectlEtcd(cluster, state, ['restore', snapshot, '-n', NS, ...QUIESCE, '--yes', '--no-safety-backup']);
  await started.until(announce(killAt));
  started.child.kill('SIGKILL');
  const r = await started.done;
  expect(r.code, r.stderr).toBe(137);
}

function journalFile(): string {
  return join(state, `restore-${NS}_kube-etcd.json`);
}

async function journalConfigMap(): Promise<boolean> {
  const r = await cluster.kubectl(['-n', NS, 'get', 'configmap', 'kubectl-etcd-restore-journal-kube-etcd', '--ignore-not-found', '-o', 'name']);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim() !== '';
}

/** What must hold after every finished restore, resume or abort: the cluster as the user had it. */
async function expectClusterBackInShape(): Promise<void> {
  await expect.poll(async () => (await kubectlJson<{ status: { readyReplicas?: number } }>(['get', 'statefulset', 'kube-apiserver']))?.status.readyReplicas ?? 0, { timeout: 60_000 }).toBe(1);
  expect((await kubectlJson<{ spec: { replicas: number } }>(['get', 'statefulset', 'kube-apiserver']))?.spec.replicas).toBe(1);
  expect((await kubectlJson<{ spec: { replicas: number } }>(['get', 'deployment', 'gke-master-etcd-maintenance']))?.spec.replicas).toBe(1);
  expect((await kubectlJson<{ spec: { replicas: number } }>(['get', 'statefulset', 'kube-etcd']))?.spec.replicas).toBe(1);
  expect((await kubectlJson<{ spec: unknown }>(['get', 'pdb', 'kube-apiserver-pdb']))?.spec).toEqual(pdbBefore);
  const pods = await kubectlJson<{ items: Array<{ metadata: { name: string } }> }>(['get', 'pods', '-l', 'app.kubernetes.io/managed-by=kubectl-etcd']);
  expect(pods?.items.map((p) => p.metadata.name)).toEqual([]);
  expect(existsSync(journalFile())).toBe(false);
  expect(await journalConfigMap()).toBe(false);
  await waitHealthy();
}

beforeAll(async () => {
  requireRoot();
  requireCommand('kubectl', 'install kubectl ≥ 1.30');
  requireCommand('etcd', 'install etcd-server (apt-get install -y etcd-server etcd-client)');
  execFileSync('npm', ['run', 'build'], { cwd: REPO, stdio: 'pipe' });
  cluster = await startCluster({ fixtures: ['single'] });
  work = mkdtempSync(join(tmpdir(), 'restore-kill-e2e-'));
  state = join(work, 'state');
  const pdb = await cluster.kubectl(['create', '-f', '-'], { input: JSON.stringify(PDB) });
  if (pdb.code !== 0) throw new Error(`creating the PDB failed: ${pdb.stderr}`);
  pdbBefore = (await kubectlJson<{ spec: unknown }>(['get', 'pdb', 'kube-apiserver-pdb']))?.spec;
  for (const k of A_KEYS) await etcdctl(cluster, S, POD, ['put', k, k]);
  snapshot = join(work, 'single.db');
  const b = await kubectlEtcd(cluster, state, ['backup', '-n', NS, '-f', snapshot]);
  if (b.code !== 0) throw new Error(`backup failed: ${b.stderr}`);
  const dry = await kubectlEtcd(cluster, state, ['restore', snapshot, '-n', NS, ...QUIESCE, '--dry-run', '-o', 'json']);
  if (dry.code !== 0) throw new Error(`dry run failed: ${dry.stderr}`);
  const plan = JSON.parse(dry.stdout) as { steps: Array<{ id: string; title: string }> };
  titles = new Map(plan.steps.map((s) => [s.id, s.title]));
}, 600_000);

afterAll(async () => {
  await cluster?.down();
  if (work) rmSync(work, { recursive: true, force: true });
});

it('the plan has exactly the steps this file kills after', () => {
  expect([...titles.keys()]).toEqual(STEPS);
});

// Kill after step i = kill when step i+1 is announced. After `finish` there is nothing left to kill.
const KILL_POINTS = STEPS.slice(0, -1).map((after, i) => [after, STEPS[i + 1]!] as const);

describe('SIGKILL after each step, then --resume', () => {
  it.each(KILL_POINTS)('after "%s": --resume reaches the verified end state with exactly the backed-up keys', async (_after, next) => {
    await diverge();
    await restoreKilledAt(next);
    if (next === 'finish' && !existsSync(journalFile()) && !(await journalConfigMap())) {
      // The kill landed after the journal was closed: the restore had finished.
      expect(await keysOn(cluster, S, POD, '/test/')).toEqual(A_KEYS);
    } else {
      const r = await kubectlEtcd(cluster, state, ['restore', '-n', NS, '--resume', '--yes']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^restored uc1\/kube-etcd .*; verified$/m);
    }
    expect(await keysOn(cluster, S, POD, '/test/')).toEqual(A_KEYS);
    await expectClusterBackInShape();
  }, 300_000);
});

describe('SIGKILL after each step, then --abort', () => {
  it.each(KILL_POINTS)('after "%s": --abort brings back the pre-restore data', async (_after, next) => {
    const before = await diverge();
    await restoreKilledAt(next);
    if (next === 'finish' && !existsSync(journalFile()) && !(await journalConfigMap())) {
      // The restore had finished before the kill: there is nothing to roll back, and --abort says so.
      const r = await kubectlEtcd(cluster, state, ['restore', '-n', NS, '--abort', '--yes']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^error: no restore of uc1\/kube-etcd is in progress/m);
      expect(await keysOn(cluster, S, POD, '/test/')).toEqual(A_KEYS);
    } else {
      const r = await kubectlEtcd(cluster, state, ['restore', '-n', NS, '--abort', '--yes']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^rolled back uc1\/kube-etcd: the pre-restore data is back on 1 member\(s\); healthy, one leader$/m);
      expect(await keysOn(cluster, S, POD, '/test/')).toEqual(before);
    }
    await expectClusterBackInShape();
  }, 300_000);
});

describe('SIGKILL during --abort and during --resume', () => {
  // The roll-back's own announcements, in order (see abortRestore).
  const ABORT_POINTS = [
    /==> scale statefulset "kube-etcd" to 0 to put the old data back\n/,
    /==> member "kube-etcd-0": put the pre-restore data back\n/,
    /==> scale statefulset "kube-etcd" back to 1\n/,
    /==> scale statefulset "kube-apiserver" back to 1\n/,
    /==> re-create PodDisruptionBudget "kube-apiserver-pdb"\n/,
  ];
  it.each(ABORT_POINTS.map((re) => [re.source.replace(/^==> |\\n$/g, ''), re] as const))('killed at "%s", a second --abort finishes the roll-back', async (_name, point) => {
    const before = await diverge();
    await restoreKilledAt('cleanup/kube-etcd-0');
    const aborting = startKubectlEtcd(cluster, state, ['restore', '-n', NS, '--abort', '--yes']);
    await aborting.until(point);
    aborting.child.kill('SIGKILL');
    expect((await aborting.done).code).toBe(137);
    // An interrupted roll-back is not rolled forward by mistake.
    const resume = await kubectlEtcd(cluster, state, ['restore', '-n', NS, '--resume', '--yes']);
    expect(resume.code).toBe(1);
    expect(resume.stderr).toMatch(/roll-back .* was interrupted.*--abort/);
    const r = await kubectlEtcd(cluster, state, ['restore', '-n', NS, '--abort', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect(await keysOn(cluster, S, POD, '/test/')).toEqual(before);
    await expectClusterBackInShape();
  }, 300_000);

  it('killed during --resume, a second --resume finishes the restore', async () => {
    await diverge();
    await restoreKilledAt('swap/kube-etcd-0');
    const resuming = startKubectlEtcd(cluster, state, ['restore', '-n', NS, '--resume', '--yes']);
    await resuming.until(announce('wait-ready'));
    resuming.child.kill('SIGKILL');
    expect((await resuming.done).code).toBe(137);
    const r = await kubectlEtcd(cluster, state, ['restore', '-n', NS, '--resume', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect(await keysOn(cluster, S, POD, '/test/')).toEqual(A_KEYS);
    await expectClusterBackInShape();
  }, 300_000);
});
