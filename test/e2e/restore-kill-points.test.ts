// SIGKILL of `kubectl etcd restore` after each step in turn, on the `single` fixture (1 member,
// kube-apiserver StatefulSet, the maintenance Deployment, a PDB), for the default order (etcd
// scaled to 0) and for --in-place: after every kill point `--resume` reaches the verified end state
// (exactly the backed-up keys) and `--abort` brings back the pre-restore data (the keys written
// after the backup). Then kills during `--abort` (another --abort finishes it) and during `--resume`
// (another --resume finishes it). No kill point may lose data, leave a utility pod, a journal, a
// scaled-down workload or a missing PDB behind.
//
// The plugin is killed when it announces the next step (`==> TITLE` on stderr), that is after the
// step before was recorded as done and while the next one may already have started.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRestorePlan } from '../../src/restore/plan.js';
import { teardown, type SimCluster } from '../sim/harness.js';
import { restoreMember } from '../unit/restore-support.js';
import {
  anthosAccess, etcdctl, keysOn, kubectlEtcd, lsInPod, pruneSetAside, startKubectlEtcd, startRestoreCluster, waitClusterHealthy,
} from './restore-helpers.js';

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

/**
 * Every step of the plan for this fixture, in order, per mode, from the planner itself (for the
 * fixture's one member, quiesced workloads and PDB): a new kind of step is killed after without
 * editing this file. The dry-run plans of the real cluster are checked against them below.
 */
function stepIdsOf(inPlace: boolean): string[] {
  const plan = buildRestorePlan({
    topology: { namespace: NS, workload: { kind: 'StatefulSet', name: 'kube-etcd', replicas: 1 }, members: [restoreMember(0, { namespace: NS })], image: 'etcd' },
    snapshot: { path: 's.db', size: 1, sha256: '', revision: 1, totalKey: 1, hasTrailer: true },
    quiesce: [
      { kind: 'StatefulSet', name: 'kube-apiserver', replicas: 1, reason: 'detected' },
      { kind: 'Deployment', name: 'gke-master-etcd-maintenance', replicas: 1, reason: 'flag' },
    ],
    pdbs: [{ name: PDB.metadata.name, manifest: PDB }],
    utilityImage: 'etcd', tool: { binary: 'etcdctl' }, stamp: 'S', inPlace,
  });
  return plan.steps.map((st) => st.id);
}
const MODES = {
  scaled: { flags: [] as string[], steps: stepIdsOf(false) },
  'in place': { flags: ['--in-place'], steps: stepIdsOf(true) },
};
type Mode = keyof typeof MODES;

let cluster: SimCluster;
let work: string;
let state: string;
let snapshot: string;
const titles: Record<string, Map<string, string>> = {};
let pdbBefore: unknown;
let round = 0;

/** `==> TITLE` of a step as the plugin prints it; the stamp in paths differs per run. */
function announce(stepId: string, mode: Mode = 'scaled'): RegExp {
  const title = titles[mode]!.get(stepId);
  if (!title) throw new Error(`no step "${stepId}" in the plan`);
  const esc = title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\d{8}T\d{6}Z/g, '\\d{8}T\\d{6}Z');
  return new RegExp(`==> ${esc}\\n`);
}

async function kubectlJson<T>(args: string[]): Promise<T | undefined> {
  const r = await cluster.kubectl(['-n', NS, ...args, '-o', 'json']);
  return r.code === 0 ? (JSON.parse(r.stdout) as T) : undefined;
}

const waitHealthy = () => waitClusterHealthy(cluster, S);

/** The disaster: keys B written after the backup and a1 deleted. Returns the keys the member holds now. */
async function diverge(): Promise<string[]> {
  await waitHealthy();
  await pruneSetAside(cluster, S);
  round += 1;
  await etcdctl(cluster, S, POD, ['put', `/test/b${round}`, `written after the backup (${round})`]);
  await etcdctl(cluster, S, POD, ['del', '/test/a1']);
  const keys = await keysOn(cluster, S, POD, '/test/');
  expect(keys).toContain(`/test/b${round}`);
  expect(keys).not.toContain('/test/a1');
  return keys;
}

/**
 * Starts a restore and SIGKILLs it when it announces `killAt`; checks from the local journal that
 * the kill landed after every step before `killAt` was recorded, and returns the journal's phase
 * (undefined once the journal was closed).
 */
async function restoreKilledAt(killAt: string, mode: Mode = 'scaled'): Promise<string | undefined> {
  const started = startKubectlEtcd(cluster, state, ['restore', snapshot, '-n', NS, ...QUIESCE, ...MODES[mode].flags, '--yes', '--no-safety-backup']);
  await started.until(announce(killAt, mode));
  started.child.kill('SIGKILL');
  const r = await started.done;
  expect(r.code, r.stderr).toBe(137);
  const journal = localJournal();
  const steps = MODES[mode].steps;
  if (journal) {
    const before = steps.slice(0, steps.indexOf(killAt)).filter((id) => id !== 'finish');
    expect(before.filter((id) => !journal.done.includes(id))).toEqual([]);
  } else {
    expect(killAt).toBe('finish');
  }
  return journal?.phase;
}

function localJournal(): { done: string[]; phase: string } | undefined {
  return existsSync(journalFile()) ? (JSON.parse(readFileSync(journalFile(), 'utf8')) as { done: string[]; phase: string }) : undefined;
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
  // No snapshot copy (it holds every Secret) and no restore directory left on the volume.
  expect((await lsInPod(cluster, S, POD, S.dataDir)).filter((f) => f.startsWith('kubectl-etcd-'))).toEqual([]);
}

beforeAll(async () => {
  ({ cluster, work, state } = await startRestoreCluster(['single'], 'restore-kill'));
  const pdb = await cluster.kubectl(['create', '-f', '-'], { input: JSON.stringify(PDB) });
  if (pdb.code !== 0) throw new Error(`creating the PDB failed: ${pdb.stderr}`);
  pdbBefore = (await kubectlJson<{ spec: unknown }>(['get', 'pdb', 'kube-apiserver-pdb']))?.spec;
  for (const k of A_KEYS) await etcdctl(cluster, S, POD, ['put', k, k]);
  snapshot = join(work, 'single.db');
  const b = await kubectlEtcd(cluster, state, ['backup', '-n', NS, '-f', snapshot]);
  if (b.code !== 0) throw new Error(`backup failed: ${b.stderr}`);
  for (const [mode, { flags }] of Object.entries(MODES)) {
    const dry = await kubectlEtcd(cluster, state, ['restore', snapshot, '-n', NS, ...QUIESCE, ...flags, '--dry-run', '-o', 'json']);
    if (dry.code !== 0) throw new Error(`dry run failed: ${dry.stderr}`);
    const plan = JSON.parse(dry.stdout) as { steps: Array<{ id: string; title: string }> };
    titles[mode] = new Map(plan.steps.map((st) => [st.id, st.title]));
  }
}, 600_000);

afterAll(() => teardown(cluster, work));

it.each(Object.keys(MODES) as Mode[])('the %s plan has exactly the steps this file kills after', (mode) => {
  expect([...titles[mode]!.keys()]).toEqual(MODES[mode].steps);
});

// Kill after step i = kill when step i+1 is announced. After `finish` there is nothing left to kill.
const killPoints = (mode: Mode) => MODES[mode].steps.slice(0, -1).map((after, i) => [after, MODES[mode].steps[i + 1]!] as const);

describe.each(Object.keys(MODES) as Mode[])('%s: SIGKILL after each step', (mode) => {
  it.each(killPoints(mode))('after "%s", --resume reaches the verified end state with exactly the backed-up keys', async (_after, next) => {
    await diverge();
    const phase = await restoreKilledAt(next, mode);
    if (next === 'finish' && phase === undefined && !(await journalConfigMap())) {
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

  it.each(killPoints(mode))('after "%s", --abort brings back the pre-restore data', async (_after, next) => {
    const before = await diverge();
    const phase = await restoreKilledAt(next, mode);
    if (next === 'finish' && phase === undefined && !(await journalConfigMap())) {
      // The restore had finished before the kill: there is nothing to roll back, and --abort says so.
      const r = await kubectlEtcd(cluster, state, ['restore', '-n', NS, '--abort', '--yes']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^error: no restore of uc1\/kube-etcd is in progress/m);
      expect(await keysOn(cluster, S, POD, '/test/')).toEqual(A_KEYS);
    } else if (next === 'finish' && phase === 'finished') {
      // Verified and recorded as finished, only the journal's removal was cut: --abort refuses to
      // roll back a verified restore, and --resume closes the journal.
      const r = await kubectlEtcd(cluster, state, ['restore', '-n', NS, '--abort', '--yes']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^error: the restore of uc1\/kube-etcd .* finished and was verified; there is nothing to roll back; run `kubectl etcd restore --resume` to close its journal/m);
      const closed = await kubectlEtcd(cluster, state, ['restore', '-n', NS, '--resume', '--yes']);
      expect(closed.code, closed.stderr).toBe(0);
      expect(await keysOn(cluster, S, POD, '/test/')).toEqual(A_KEYS);
    } else {
      const r = await kubectlEtcd(cluster, state, ['restore', '-n', NS, '--abort', '--yes']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^rolled back uc1\/kube-etcd: the pre-restore data is in place on 1 member\(s\); healthy, one leader$/m);
      expect(await keysOn(cluster, S, POD, '/test/')).toEqual(before);
    }
    await expectClusterBackInShape();
  }, 300_000);
});

describe('SIGKILL during --abort and during --resume', () => {
  // The roll-back's own announcements, in order (see abortRestore).
  const ABORT_POINTS = [
    /==> scale statefulset "kube-etcd" to 0 to put the old data back\n/,
    /==> member "kube-etcd-0": put the pre-restore data back and remove the restore's files\n/,
    /==> scale statefulset "kube-etcd" back to 1\n/,
    /==> check that the members are healthy with one leader\n/,
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
