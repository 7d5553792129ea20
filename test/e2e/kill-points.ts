// SIGKILL of `kubectl etcd restore` after chosen steps, on a `single`-shaped fixture (1 member
// kube-etcd-0 in namespace uc1, the kube-apiserver StatefulSet, the maintenance Deployment, a PDB),
// for the default order (etcd scaled to 0) and for --in-place. `killPointTests` registers the tests
// for one fixture spec and one choice of kill points, so another fixture (another etcd version)
// can run a representative subset: restore-kill-points.test.ts runs every step on `single`.
//
// The plugin is killed when it announces the step after the kill point (`==> TITLE` on stderr),
// that is after the kill point was recorded as done and while the next step may already have run.
//
// --resume: the kill points of a mode form a chain. After each, `--resume` is itself killed after
// the next kill point, so one restore serves many kill points; every resume gets past the step its
// predecessor was killed in, with the journal recording every step before the next kill. After the
// first utility pod, after the swap, after etcd is back (wait-ready) and after the last kill point,
// the resume runs to the verified end state instead (exactly the backed-up keys) and the next kill
// point starts from a new restore. A link whose predecessor failed starts from a new restore too.
//
// --abort: after each chosen kill point, --abort brings back the pre-restore data (the keys written
// after the backup). During --abort (at each of its own steps) the roll-back is killed: --resume
// refuses, another --abort gets past that point, and the last one finishes it. No kill point may
// lose data, leave a utility pod, a journal, a scaled-down workload or a missing PDB behind.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRestorePlan } from '../../src/restore/plan.js';
import type { StepKind } from '../../src/restore/steps.js';
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

/** The two orders of a restore. */
export type Mode = 'scaled' | 'in place';
const FLAGS: Record<Mode, string[]> = { scaled: [], 'in place': ['--in-place'] };

/** A step of the plan for this fixture shape: its id (the journal's) and its kind. */
interface PlannedStep { id: string; kind: StepKind }

/**
 * Every step of the plan for this fixture shape, in order, per mode, from the planner itself (for
 * the one member, quiesced workloads and PDB): a new kind of step is killed after without editing
 * this file. The dry-run plans of the real cluster are checked against them.
 */
function plannedSteps(inPlace: boolean): PlannedStep[] {
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
  return plan.steps.map((st) => ({ id: st.id, kind: st.kind }));
}
const STEPS: Record<Mode, PlannedStep[]> = { scaled: plannedSteps(false), 'in place': plannedSteps(true) };

/** Kinds after which a resume always runs to the end: the first utility pod, the swap, etcd back. */
const KEY_KINDS: ReadonlySet<StepKind> = new Set<StepKind>(['utility', 'swap', 'wait-ready']);

/**
 * Which steps to kill after: every step but `finish`; `key`: after the first utility pod, after
 * the swap and after etcd is back (wait-ready); or a list of step ids.
 */
export type KillPointChoice = 'every' | 'key' | string[];

/** One kill-point suite: a fixture and, per mode, where to kill before --resume and before --abort. */
export interface KillPointSuite {
  /** Names the work dir. */
  name: string;
  /** `sim up` fixture specs; the first is `single` or `single:OPTIONS` (the shape this file knows). */
  fixtures: string[];
  resumeAfter: Partial<Record<Mode, KillPointChoice>>;
  abortAfter: Partial<Record<Mode, KillPointChoice>>;
  /** Also kill the roll-back itself at each of its steps (of a scaled restore killed after the swap). */
  killDuringAbort?: boolean;
  /** The restore tool the plans must name, as `restore with:` prints it (etcdctl on 3.4; etcdutl with a bumped revision on 3.5). */
  tool: { binary: 'etcdctl' | 'etcdutl'; bumpRevision?: number };
}

/** The step ids a choice names, in plan order; throws on an id the plan does not have. */
export function killPointIds(mode: Mode, choice: KillPointChoice): string[] {
  const steps = STEPS[mode].slice(0, -1); // after `finish` there is nothing left to kill
  if (choice === 'every') return steps.map((s) => s.id);
  if (choice === 'key') return steps.filter((s, i) => KEY_KINDS.has(s.kind) && (s.kind !== 'utility' || steps.findIndex((t) => t.kind === 'utility') === i)).map((s) => s.id);
  for (const id of choice) if (!steps.some((s) => s.id === id)) throw new Error(`no step "${id}" to kill after in the ${mode} plan`);
  return steps.filter((s) => choice.includes(s.id)).map((s) => s.id);
}

/** The step announced right after `id`: killing at its announcement is killing after `id`. */
function stepAfter(mode: Mode, id: string): string {
  const ids = STEPS[mode].map((s) => s.id);
  return ids[ids.indexOf(id) + 1]!;
}

/** Registers the tests of one suite (its own cluster, started in beforeAll). */
export function killPointTests(suite: KillPointSuite): void {
  let cluster: SimCluster;
  let work: string;
  let state: string;
  let snapshot: string;
  const titles: Partial<Record<Mode, Map<string, string>>> = {};
  const tools: Partial<Record<Mode, unknown>> = {};
  let pdbBefore: unknown;
  let round = 0;
  const modes = (Object.keys(FLAGS) as Mode[]).filter((m) => suite.resumeAfter[m] || suite.abortAfter[m] || (m === 'scaled' && suite.killDuringAbort));

  /** `==> TITLE` of a step as the plugin prints it; the stamp in paths differs per run. */
  function announce(stepId: string, mode: Mode): RegExp {
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
   * SIGKILLs `kubectl etcd ARGS` (a restore or a --resume) when it announces `killAt`; checks from
   * the local journal that every step before `killAt` was recorded done, and returns the journal's
   * phase (undefined once the journal was closed).
   */
  async function killedAt(args: string[], killAt: string, mode: Mode): Promise<string | undefined> {
    const started = startKubectlEtcd(cluster, state, args);
    await started.until(announce(killAt, mode));
    started.child.kill('SIGKILL');
    const r = await started.done;
    expect(r.code, r.stderr).toBe(137);
    const journal = localJournal();
    const ids = STEPS[mode].map((s) => s.id);
    if (journal) {
      const before = ids.slice(0, ids.indexOf(killAt)).filter((id) => id !== 'finish');
      expect(before.filter((id) => !journal.done.includes(id))).toEqual([]);
    } else {
      expect(killAt).toBe('finish');
    }
    return journal?.phase;
  }

  /** A new restore, killed after `after`. */
  const restoreKilledAfter = (after: string, mode: Mode) =>
    killedAt(['restore', snapshot, '-n', NS, ...QUIESCE, ...FLAGS[mode], '--yes', '--no-safety-backup'], stepAfter(mode, after), mode);

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
    ({ cluster, work, state } = await startRestoreCluster(suite.fixtures, suite.name));
    const pdb = await cluster.kubectl(['create', '-f', '-'], { input: JSON.stringify(PDB) });
    if (pdb.code !== 0) throw new Error(`creating the PDB failed: ${pdb.stderr}`);
    pdbBefore = (await kubectlJson<{ spec: unknown }>(['get', 'pdb', 'kube-apiserver-pdb']))?.spec;
    for (const k of A_KEYS) await etcdctl(cluster, S, POD, ['put', k, k]);
    snapshot = join(work, 'single.db');
    const b = await kubectlEtcd(cluster, state, ['backup', '-n', NS, '-f', snapshot]);
    if (b.code !== 0) throw new Error(`backup failed: ${b.stderr}`);
    for (const mode of modes) {
      const dry = await kubectlEtcd(cluster, state, ['restore', snapshot, '-n', NS, ...QUIESCE, ...FLAGS[mode], '--dry-run', '-o', 'json']);
      if (dry.code !== 0) throw new Error(`dry run failed: ${dry.stderr}`);
      const plan = JSON.parse(dry.stdout) as { steps: Array<{ id: string; title: string }>; tool: unknown };
      titles[mode] = new Map(plan.steps.map((st) => [st.id, st.title]));
      tools[mode] = plan.tool;
    }
  }, 600_000);

  afterAll(() => teardown(cluster, work));

  it.each(modes)('the %s plan has exactly the steps this file kills after, and restores with the etcd minor\'s own tool', (mode) => {
    expect([...titles[mode]!.keys()]).toEqual(STEPS[mode].map((s) => s.id));
    expect(tools[mode]).toEqual(suite.tool);
  });

  /** Where the last resume link left the restore: killed after `after` (undefined: no restore pending). */
  let chain: { mode: Mode; after: string } | undefined;

  describe.each(modes)('%s: SIGKILL after chosen steps', (mode) => {
    const resumeIds = suite.resumeAfter[mode] ? killPointIds(mode, suite.resumeAfter[mode]!) : [];
    const abortIds = suite.abortAfter[mode] ? killPointIds(mode, suite.abortAfter[mode]!) : [];
    const kindOf = (id: string) => STEPS[mode].find((s) => s.id === id)!.kind;
    const toEnd = (i: number) => i === resumeIds.length - 1 || KEY_KINDS.has(kindOf(resumeIds[i]!));
    const links = resumeIds.map((after, i) => [after, toEnd(i) ? undefined : resumeIds[i + 1]] as const);

    // Registered in plan order, so each link finds the restore where the one before left it.
    for (const [after, next] of links) {
      if (next) {
        it(`after "${after}", --resume gets past it (killed in turn after "${next}")`, async () => {
          if (chain?.mode !== mode || chain.after !== after) {
            await diverge();
            await restoreKilledAfter(after, mode);
          }
          chain = undefined;
          await killedAt(['restore', '-n', NS, '--resume', '--yes'], stepAfter(mode, next), mode);
          chain = { mode, after: next };
        }, 300_000);
        continue;
      }
      it(`after "${after}", --resume reaches the verified end state with exactly the backed-up keys`, async () => {
        const chained = chain?.mode === mode && chain.after === after;
        chain = undefined;
        const phase = chained ? localJournal()?.phase : (await diverge(), await restoreKilledAfter(after, mode));
        if (stepAfter(mode, after) === 'finish' && phase === undefined && !(await journalConfigMap())) {
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
    }

    it.each(abortIds)('after "%s", --abort brings back the pre-restore data', async (after) => {
      chain = undefined;
      const before = await diverge();
      const phase = await restoreKilledAfter(after, mode);
      const next = stepAfter(mode, after);
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

  if (!suite.killDuringAbort) return;
  describe('SIGKILL during --abort', () => {
    // The roll-back's own announcements, in order (see abortSteps). Every --abort runs all of its
    // steps again from the first, so the one after a kill at one point is killed at the next.
    const ABORT_POINTS = [
      /==> scale statefulset "kube-etcd" to 0 to put the old data back\n/,
      /==> member "kube-etcd-0": put the pre-restore data back and remove the restore's files\n/,
      /==> scale statefulset "kube-etcd" back to 1\n/,
      /==> check that the members are healthy with one leader\n/,
      /==> scale statefulset "kube-apiserver" back to 1\n/,
      /==> re-create PodDisruptionBudget "kube-apiserver-pdb"\n/,
    ];
    const named = ABORT_POINTS.map((re, i) => [re.source.replace(/^==> |\\n$/g, ''), i] as const);
    /** Where the last link left the roll-back: killed at ABORT_POINTS[at], with the keys it must bring back. */
    let aborting: { at: number; before: string[] } | undefined;

    /** A restore killed after the swap, with a roll-back killed at ABORT_POINTS[at - 1] unless at is 0. */
    async function rollBackKilledBefore(at: number): Promise<string[]> {
      if (aborting?.at === at - 1) return aborting.before;
      chain = undefined;
      const before = await diverge();
      await restoreKilledAfter('swap/kube-etcd-0', 'scaled');
      if (at > 0) await abortKilledAt(at - 1);
      return before;
    }

    async function abortKilledAt(at: number): Promise<void> {
      const started = startKubectlEtcd(cluster, state, ['restore', '-n', NS, '--abort', '--yes']);
      await started.until(ABORT_POINTS[at]!);
      started.child.kill('SIGKILL');
      expect((await started.done).code).toBe(137);
    }

    it.each(named)('an --abort killed at "%s": --resume refuses, the next --abort carries on', async (_name, at) => {
      const before = await rollBackKilledBefore(at);
      aborting = undefined;
      await abortKilledAt(at);
      // An interrupted roll-back is not rolled forward by mistake.
      const resume = await kubectlEtcd(cluster, state, ['restore', '-n', NS, '--resume', '--yes']);
      expect(resume.code).toBe(1);
      expect(resume.stderr).toMatch(/roll-back .* was interrupted.*--abort/);
      aborting = { at, before };
    }, 300_000);

    it('after the last of those kills, another --abort finishes the roll-back', async () => {
      const before = await rollBackKilledBefore(ABORT_POINTS.length);
      aborting = undefined;
      const r = await kubectlEtcd(cluster, state, ['restore', '-n', NS, '--abort', '--yes']);
      expect(r.code, r.stderr).toBe(0);
      expect(await keysOn(cluster, S, POD, '/test/')).toEqual(before);
      await expectClusterBackInShape();
    }, 300_000);
  });
}
