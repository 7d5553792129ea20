/**
 * One handler per kind of restore step (steps.ts). A handler gets its step, typed by kind, and
 * the run's context; every handler is idempotent, so running it again after a crash is safe.
 * Adding a kind of step means one union member in steps.ts and one entry here: the table's type
 * makes a missing handler a compile error.
 */
import { PluginError, VerificationError } from '../errors.js';
import type { ClaimRetention } from '../etcd/topology.js';
import { holdWhat } from './cold-start.js';
import { journalConfigMapName, type JournalState } from './journal.js';
import { restoreCommand } from './manifests.js';
import type { MemberPlan, RestorePlan } from './plan.js';
import type { RunnerDeps } from './runner.js';
import type { PlanStep, StepKind, StepOf } from './steps.js';
import { leaderLast } from './stop-order.js';

/** What a handler works with: the plan, the journal state, the collaborators. */
export interface StepContext {
  plan: RestorePlan;
  state: JournalState;
  deps: RunnerDeps;
  /** Set by a `health` step: the members' health after a roll-back. */
  health?: { ok: boolean; problems: string[] };
  /** Members whose utility pod this run has started or checked (a resumed run re-creates a pod that is gone). */
  podsReady?: Set<string>;
}

type Handler<K extends StepKind> = (ctx: StepContext, step: StepOf<K>) => Promise<void>;

/** Every kind's handler. */
export const STEP_HANDLERS: { [K in StepKind]: Handler<K> } = {
  journal: async () => undefined,
  'pdb-delete': (ctx, s) => ctx.deps.cluster.deletePdb(s.pdb),
  quiesce: (ctx, s) => ctx.deps.cluster.scale(s.workload.kind, s.workload.name, 0, true),
  async 'retention-hold'(ctx) {
    const { plan, deps } = ctx;
    await deps.cluster.setClaimRetention(plan.workload.name, { ...savedRetention(plan), whenScaled: 'Retain' });
    // A claim already marked for deletion (or owned by its pod, so deleted with it) would be lost all the same.
    const doomed = await deps.cluster.claimsAtRisk(memberClaims(plan));
    if (doomed.length) {
      throw new PluginError(
        `persistentvolumeclaim${doomed.length > 1 ? 's' : ''} ${doomed.map((c) => `"${c}"`).join(', ')} of statefulset "${plan.workload.name}" ${doomed.length > 1 ? 'are' : 'is'} being deleted or owned by a pod; etcd was not stopped`,
        'check the claims (kubectl get pvc -o yaml), then run `kubectl etcd restore --abort`, or `--resume` once they are safe',
      );
    }
  },
  async 'start-hold'(ctx) {
    const hold = ctx.plan.coldStart!;
    if (hold.service) await ctx.deps.cluster.setPublishNotReady(hold.service, true);
    const off = Object.fromEntries(Object.keys(hold.probes).map((k) => [k, null]));
    await ctx.deps.cluster.setProbes(ctx.plan.workload.name, hold.container, off);
  },
  async 'start-release'(ctx, s) {
    const hold = ctx.plan.coldStart!;
    const name = ctx.plan.workload.name;
    // While held, Ready says only that etcd runs: the rolling update that puts the probes back
    // restarts one member at a time, safe only once the members have quorum.
    const problems = await waitHealthy(ctx, HEALTHY_WAIT_MS);
    if (problems && !s.rollback) {
      throw new PluginError(
        `etcd did not become healthy within ${HEALTHY_WAIT_MS / 60_000} minutes of its members starting (${problems.join('; ')}); statefulset "${name}" keeps ${holdWhat(hold)}`,
        'inspect with `kubectl etcd status`, then `kubectl etcd restore --resume` to wait again or `--abort` to roll back',
      );
    }
    await ctx.deps.cluster.setProbes(name, hold.container, hold.probes);
    // The Service keeps publishing not-ready members: set back, any member that restarts (or
    // fails its probe once) drops out of DNS and, with peer TLS, its peers refuse it for good.
    if (hold.service) ctx.deps.log.warn(`Service "${hold.service}" keeps publishNotReadyAddresses: true; with false, a member that restarts or fails its readiness probe once leaves DNS and its peers refuse it until it is Ready, which it cannot be without them`);
    if (problems) {
      // A roll-back puts the probes back, healthy or not, and says so.
      ctx.deps.log.warn(`statefulset "${name}" has its probes back though etcd is not healthy (${problems.join('; ')}); a rolling update waits until it is`);
      return;
    }
    await ctx.deps.cluster.waitRolledOut(name);
  },
  async 'etcd-stop'(ctx) {
    const name = ctx.plan.workload.name;
    // The leader stops last, alone: stopped together with its peers it waits 7 s (stop-order.ts).
    const members = ctx.plan.members.map((m) => m.member);
    if (members.length > 1 && members.length === ctx.state.etcdReplicas && await leaderLast(members, ctx.deps.pods.run)) {
      await ctx.deps.cluster.scaleDown(name, 1);
    }
    await ctx.deps.cluster.scale('StatefulSet', name, 0, true);
  },
  async utility(ctx, s) {
    await ctx.deps.cluster.createPodAndWait(memberOf(ctx.plan, s.member).utilityPod, journalOwned(ctx.plan));
    (ctx.podsReady ??= new Set()).add(s.member);
  },
  async 'keep-start-files'(ctx, s) {
    const m = memberOf(ctx.plan, s.member);
    if (m.keepStartFilesArgv) await mustRun(ctx, m, m.shellContainer, m.keepStartFilesArgv, 'keeping the start files aside');
  },
  copy: (ctx, s) => copySnapshot(ctx, memberOf(ctx.plan, s.member)),
  async restore(ctx, s) {
    const m = memberOf(ctx.plan, s.member);
    // The restore dir is ours alone (a fresh, stamped name): clearing a half-written one is safe.
    // Long: detached in the shell container, cleared and restored in one run that a cut stream or
    // --resume joins, never repeats — the etcd-tools container's tool too (manifests.ts: restoreCommand).
    const argv = restoreCommand(m.restoreDir, m.restoreArgv, m.toolContainer !== m.shellContainer);
    await mustRun(ctx, m, m.shellContainer, argv, `${m.restoreArgv[0]} snapshot restore`, runName('restore', m));
  },
  async restored(ctx) {
    const pending = ctx.plan.members.filter((m) => !ctx.state.done.includes(`swap/${m.member.name}`));
    await settleAll(pending.map((m) =>
      mustRun(ctx, m, m.shellContainer, ['test', '-d', `${m.restoreDir}/member`], `finding the restored data of member "${m.member.name}"`)));
  },
  async swap(ctx, s) {
    const m = memberOf(ctx.plan, s.member);
    await mustRun(ctx, m, m.shellContainer, m.swapArgv, 'moving the restored data in place');
    // A preStop hook that ran while etcd stopped (one whose log path is not guarded) may have left a removal log: it is kept aside too.
    if (m.keepStartFilesArgv) await mustRun(ctx, m, m.shellContainer, m.keepStartFilesArgv, 'keeping the start files aside');
    if (m.chownArgv) await mustRun(ctx, m, m.shellContainer, m.chownArgv, 'handing the data to the etcd user');
    await mustRun(ctx, m, m.shellContainer, ['rm', '-f', m.snapshotPath], 'removing the snapshot copy');
    await mustRun(ctx, m, m.shellContainer, ['sync'], 'sync');
  },
  'etcd-recreate': (ctx) => ctx.deps.cluster.recreatePods(ctx.plan.members.map((m) => m.member.pod)),
  cleanup: (ctx, s) => ctx.deps.cluster.deletePodAndWait(memberOf(ctx.plan, s.member).utilityPod.metadata.name),
  'etcd-start': (ctx) => ctx.deps.cluster.scale('StatefulSet', ctx.plan.workload.name, ctx.state.etcdReplicas, false),
  'wait-ready': (ctx) => ctx.deps.cluster.waitPodsReady(ctx.plan.members.map((m) => m.member.pod)),
  'retention-restore': (ctx) => ctx.deps.cluster.setClaimRetention(ctx.plan.workload.name, savedRetention(ctx.plan)),
  async verify(ctx) {
    const report = await ctx.deps.verifier.verify(ctx.plan);
    if (!report.ok) {
      throw new VerificationError(
        `the restored cluster did not pass verification: ${report.problems.join('; ')}`,
        'inspect with `kubectl etcd status`, then `kubectl etcd restore --resume` to verify again or `--abort` to roll back',
      );
    }
    ctx.deps.log.info(`verified: ${JSON.stringify(report.summary)}`);
  },
  async unquiesce(ctx, s) {
    const { kind, name } = s.workload;
    const target = ctx.state.quiesce.find((q) => q.kind === kind && q.name === name);
    if (!target) {
      throw new PluginError(
        `the restore journal has no replica count for ${kind.toLowerCase()} "${name}"`,
        `scale it back by hand (kubectl scale ${kind.toLowerCase()} ${name} -n ${ctx.plan.namespace} --replicas=N), then run \`kubectl etcd restore --resume\``,
      );
    }
    await ctx.deps.cluster.scale(kind, name, target.replicas, s.wait);
  },
  async 'pdb-create'(ctx, s) {
    const pdb = ctx.state.pdbs.find((p) => p.name === s.pdb);
    if (pdb) await ctx.deps.cluster.createPdb(pdb.manifest);
  },
  finish: async (ctx) => ctx.deps.recordVerified?.(ctx.state),
  async rollback(ctx, s) {
    const m = memberOf(ctx.plan, s.member);
    await ctx.deps.cluster.createPodAndWait(m.utilityPod, journalOwned(ctx.plan));
    // A restore or copy check an interrupted run left going ends before its files are removed.
    const shell = { namespace: ctx.plan.namespace, pod: m.utilityPod.metadata.name, container: m.shellContainer };
    await settleAll(['restore', 'sha256'].map((step) => ctx.deps.pods.settleLong(shell, runName(step, m))));
    await mustRun(ctx, m, m.shellContainer, m.rollbackArgv, 'moving the old data back');
    await mustRun(ctx, m, m.shellContainer, ['rm', '-rf', m.restoreDir, m.snapshotPath], 'removing restore leftovers');
    await mustRun(ctx, m, m.shellContainer, ['sync'], 'sync');
    await ctx.deps.cluster.deletePodAndWait(m.utilityPod.metadata.name);
  },
  async health(ctx) {
    // Reported, not thrown: the roll-back is done, and the old data may be why a restore began.
    const report = await ctx.deps.verifier.verify(ctx.plan, { healthOnly: true });
    ctx.health = { ok: report.ok, problems: report.problems };
  },
};

/** How long start-release waits for the members to be healthy while held. */
const HEALTHY_WAIT_MS = 5 * 60_000;

/** Waits until the members are healthy with one leader; undefined then, else the last problems after waitMs. */
async function waitHealthy(ctx: StepContext, waitMs: number): Promise<string[] | undefined> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const report = await ctx.deps.verifier.verify(ctx.plan, { healthOnly: true });
    if (report.ok) return undefined;
    if (Date.now() > deadline) return report.problems;
    await new Promise((r) => setTimeout(r, 2000));
  }
}

/** Kinds that run commands in a member's utility pod, which an earlier step of the run started. */
const NEEDS_UTILITY_POD: ReadonlySet<StepKind> = new Set<StepKind>(['keep-start-files', 'copy', 'restore', 'restored', 'swap']);

/** Runs one step through its kind's handler. */
export async function runStep(ctx: StepContext, step: PlanStep): Promise<void> {
  const handler = STEP_HANDLERS[step.kind] as Handler<StepKind> | undefined;
  if (!handler) throw new PluginError(`unknown restore step "${step.id}"`, 'the journal was written by another version; run --abort with that version');
  if (NEEDS_UTILITY_POD.has(step.kind)) await ensureUtilityPods(ctx, step);
  return handler(ctx, step);
}

/**
 * A resumed run goes on with utility pods an earlier run started; one that is gone since (deleted,
 * evicted, collected with the journal ConfigMap) is created again, once per member and run.
 */
async function ensureUtilityPods(ctx: StepContext, step: PlanStep): Promise<void> {
  const ready = (ctx.podsReady ??= new Set());
  const members = 'member' in step ? [memberOf(ctx.plan, step.member)] : ctx.plan.members;
  await settleAll(members.filter((m) => !ready.has(m.member.name)).map(async (m) => {
    await ctx.deps.cluster.createPodAndWait(m.utilityPod, journalOwned(ctx.plan));
    ready.add(m.member.name);
  }));
}

/** Utility pods belong to the journal ConfigMap: deleting the journal collects any pod left behind. */
function journalOwned(plan: RestorePlan): { ownerConfigMap: string } {
  return { ownerConfigMap: journalConfigMapName(plan.workload.name) };
}

/** The StatefulSet's own retention policy, as discovered before the restore. */
function savedRetention(plan: RestorePlan): ClaimRetention {
  return plan.workload.claimRetention ?? { whenScaled: 'Retain', whenDeleted: 'Retain' };
}

/** The members' data claims. */
function memberClaims(plan: RestorePlan): string[] {
  return plan.members.flatMap((m) => (m.member.dataVolume?.kind === 'pvc' ? [m.member.dataVolume.claimName] : []));
}

function memberOf(plan: RestorePlan, name: string): MemberPlan {
  const m = plan.members.find((x) => x.member.name === name);
  if (!m) throw new PluginError(`member "${name}" is not in the restore plan`);
  return m;
}

/** The marker name of a member's long command (kube/detached.ts). */
function runName(step: string, m: MemberPlan): string {
  return `${step}-${m.member.name.replace(/[^A-Za-z0-9._-]/g, '_')}`;
}

/**
 * Runs argv in the member's utility pod (detached under the marker `long` when given); a non-zero
 * exit is a failure naming what was being done.
 */
async function mustRun(ctx: StepContext, m: MemberPlan, container: string, argv: string[], what: string, long?: string): Promise<string> {
  const pod = m.utilityPod.metadata.name;
  const target = { namespace: ctx.plan.namespace, pod, container };
  const r = long ? await ctx.deps.pods.runLong(target, argv, long) : await ctx.deps.pods.run(target, argv);
  if (r.exitCode !== 0) {
    const detail = (r.stderr || r.stdout).trim().split('\n').pop() ?? '';
    throw new PluginError(`${what} failed in pod "${pod}" (exit code ${r.exitCode}): ${detail}`, 'fix the cause and run `kubectl etcd restore --resume`, or `--abort` to roll back');
  }
  return r.stdout;
}

/** Copies the snapshot onto the member's volume unless an identical copy is already there. */
async function copySnapshot(ctx: StepContext, m: MemberPlan): Promise<void> {
  const { plan, deps } = ctx;
  const target = { namespace: plan.namespace, pod: m.utilityPod.metadata.name, container: m.shellContainer };
  const sha = async () => {
    // Long for a large snapshot: detached, so a cut stream never starts a second sha256sum.
    const r = await deps.pods.runLong(target, ['sha256sum', m.snapshotPath], runName('sha256', m));
    return r.exitCode === 0 ? r.stdout.trim().split(/\s+/)[0] : undefined;
  };
  if ((await sha()) === plan.snapshot.sha256) return;
  await deps.pods.copyIn(target, m.snapshotPath, deps.openSnapshot, plan.snapshot.size);
  const got = await sha();
  if (got !== plan.snapshot.sha256) {
    throw new VerificationError(
      `the snapshot copied into pod "${target.pod}" has sha256 ${got ?? 'unknown'}, expected ${plan.snapshot.sha256}`,
      'check the volume for errors and run `kubectl etcd restore --resume`',
    );
  }
}

/** Waits for every member's work, then throws all failures together. */
export async function settleAll(work: Array<Promise<unknown>>): Promise<void> {
  const failed = (await Promise.allSettled(work)).filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown);
  if (failed.length) throw memberFailures(failed);
}

/**
 * One failure as it is; several as one error that names each (exit code of the first). Members
 * stopped by one shared cause (etcd scaled back up) give the same message: it is reported once.
 */
function memberFailures(errors: unknown[]): unknown {
  const messages = [...new Set(errors.map((e) => (e instanceof Error ? e.message : String(e)).split('\n')[0]))];
  if (messages.length === 1) return errors[0];
  const first = errors[0];
  const text = messages.join('; ');
  const hint = first instanceof PluginError ? first.hint : 'fix the causes and run `kubectl etcd restore --resume`, or `--abort` to roll back';
  return first instanceof VerificationError
    ? new VerificationError(`${errors.length} members failed: ${text}`, hint)
    : new PluginError(`${errors.length} members failed: ${text}`, hint);
}
