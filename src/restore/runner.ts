/**
 * Carries out a restore plan step by step, recording each finished step in the journal so an
 * interrupted restore can resume from where it stopped, or be rolled back. Per-member work runs
 * for all members at once. Every step is idempotent: running it again after a crash is safe.
 */
import type { Readable } from 'node:stream';
import { PluginError, VerificationError } from '../errors.js';
import type { Journal, JournalState } from './journal.js';
import type { MemberPlan, PlanStep, RestorePlan } from './plan.js';

/** Workload kinds the restore scales. */
export type WorkloadKind = 'StatefulSet' | 'Deployment';

/** The cluster operations the runner uses, all within the plan's namespace. */
export interface RestoreCluster {
  getReplicas(kind: WorkloadKind, name: string): Promise<number>;
  /** Sets spec.replicas; with wait, returns once the workload has that many pods (0: all gone). */
  scale(kind: WorkloadKind, name: string, replicas: number, wait: boolean): Promise<void>;
  rolloutRestart(kind: WorkloadKind, name: string): Promise<void>;
  /** Creates a pod (an existing pod of the same name is kept) and waits until it runs. */
  createPodAndWait(manifest: { metadata: { name: string; namespace: string } }): Promise<void>;
  /** Deletes a pod (missing is fine) and waits until it is gone. */
  deletePodAndWait(name: string): Promise<void>;
  /**
   * Deletes the named pods at once (their own grace period) and waits until each is gone or replaced
   * (a controller makes a new pod of the same name). Missing pods are fine.
   */
  recreatePods(names: string[]): Promise<void>;
  /** Waits until the named pods are Ready. */
  waitPodsReady(names: string[]): Promise<void>;
  deletePdb(name: string): Promise<void>;
  /** Creates a PDB from a saved manifest (an existing one is kept). */
  createPdb(manifest: Record<string, unknown>): Promise<void>;
}

/** Running commands and copying files in the utility pods. */
export interface RestorePodIO {
  exec(pod: string, container: string, argv: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }>;
  copyIn(pod: string, container: string, path: string, source: () => Readable, size: number): Promise<void>;
}

/** The end-state check. */
export interface RestoreVerifier {
  /**
   * Checks the members: healthy, one leader, one cluster, the planned member list; unless
   * healthOnly, also the snapshot's revision and key count (an --abort brings other data back).
   */
  verify(plan: RestorePlan, opts?: { healthOnly?: boolean }): Promise<{ ok: boolean; problems: string[]; summary: Record<string, unknown> }>;
}

/** Where the runner reports progress (stderr lines). */
export interface RestoreLog {
  step(message: string): void;
  info(message: string): void;
  warn(message: string): void;
}

/** Everything the runner needs. */
export interface RunnerDeps {
  cluster: RestoreCluster;
  pods: RestorePodIO;
  verifier: RestoreVerifier;
  journal: Journal;
  log: RestoreLog;
  openSnapshot: () => Readable;
  now: () => number;
}

/** How long each step took, for the summary. */
export interface StepTiming {
  id: string;
  title: string;
  ms: number;
  skipped: boolean;
}

/** Runs (or resumes) the plan to its verified end; returns per-step timings. */
export async function runRestorePlan(plan: RestorePlan, state: JournalState, deps: RunnerDeps): Promise<StepTiming[]> {
  const timings: StepTiming[] = [];
  const groups = groupSteps(plan.steps);
  for (const group of groups) {
    if (group.length === 1 && !group[0]!.member) {
      await runOne(plan, state, deps, group[0]!, timings);
      continue;
    }
    // Per-member steps: members in parallel, each member's steps in order.
    const byMember = new Map<string, PlanStep[]>();
    for (const s of group) byMember.set(s.member!, [...(byMember.get(s.member!) ?? []), s]);
    await settleAll([...byMember.values()].map(async (steps) => {
      for (const s of steps) await runOne(plan, state, deps, s, timings);
    }));
  }
  return timings;
}

/** Waits for every member's work, then throws all failures together. */
async function settleAll(work: Array<Promise<unknown>>): Promise<void> {
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
  const combined = first instanceof VerificationError
    ? new VerificationError(`${errors.length} members failed: ${text}`, hint)
    : new PluginError(`${errors.length} members failed: ${text}`, hint);
  return combined;
}

/** Consecutive per-member steps form one parallel group; other steps stand alone. */
function groupSteps(steps: PlanStep[]): PlanStep[][] {
  const groups: PlanStep[][] = [];
  for (const s of steps) {
    const last = groups[groups.length - 1];
    if (s.member && last && last[0]!.member) last.push(s);
    else groups.push([s]);
  }
  return groups;
}

async function runOne(plan: RestorePlan, state: JournalState, deps: RunnerDeps, step: PlanStep, timings: StepTiming[]): Promise<void> {
  if (state.done.includes(step.id)) {
    timings.push({ id: step.id, title: step.title, ms: 0, skipped: true });
    return;
  }
  const started = deps.now();
  deps.log.step(step.title);
  await guardAgainstScaleUp(plan, state, deps, step);
  await executeStep(plan, state, deps, step);
  if (step.id === 'finish') {
    // Recorded first, so a journal left behind says the restore finished (no --abort of a verified restore).
    state.phase = 'finished';
    await deps.journal.save(state);
    await closeJournal(deps, '--resume');
  } else await deps.journal.markDone(state, step.id);
  timings.push({ id: step.id, title: step.title, ms: deps.now() - started, skipped: false });
}

/** Removes the journal once the work is done; copies that stay are reported with how to close them. */
async function closeJournal(deps: RunnerDeps, again: '--resume' | '--abort'): Promise<void> {
  const left = await deps.journal.remove();
  if (left.length) {
    deps.log.warn(`the work is done but the restore journal could not be removed from ${left.join(' and ')}; run \`kubectl etcd restore ${again}\` to close it, or the next restore refuses to start`);
  }
}

/** While etcd is meant to be stopped, something scaling it back up must stop the restore. */
async function guardAgainstScaleUp(plan: RestorePlan, state: JournalState, deps: RunnerDeps, step: PlanStep): Promise<void> {
  if (plan.workload.kind !== 'StatefulSet' || plan.inPlace) return;
  if (!state.done.includes('etcd-stop') || state.done.includes('etcd-start') || step.id === 'etcd-start') return;
  const replicas = await deps.cluster.getReplicas('StatefulSet', plan.workload.name);
  if (replicas !== 0) {
    throw new PluginError(
      `statefulset "${plan.workload.name}" was scaled back to ${replicas} while the restore ran (an operator reconciling it?)`,
      'stop whatever scales it and run `kubectl etcd restore --resume`; or run `kubectl etcd restore --abort`, then restore again with --in-place',
    );
  }
}

function memberOf(plan: RestorePlan, name: string): MemberPlan {
  const m = plan.members.find((x) => x.member.name === name);
  if (!m) throw new PluginError(`member "${name}" is not in the restore plan`);
  return m;
}

async function mustExec(deps: RunnerDeps, pod: string, container: string, argv: string[], what: string): Promise<string> {
  const r = await deps.pods.exec(pod, container, argv);
  if (r.exitCode !== 0) {
    const detail = (r.stderr || r.stdout).trim().split('\n').pop() ?? '';
    throw new PluginError(`${what} failed in pod "${pod}" (exit code ${r.exitCode}): ${detail}`, 'fix the cause and run `kubectl etcd restore --resume`, or `--abort` to roll back');
  }
  return r.stdout;
}

async function executeStep(plan: RestorePlan, state: JournalState, deps: RunnerDeps, step: PlanStep): Promise<void> {
  const [kind, ...rest] = step.id.split('/');
  const arg = rest.join('/');
  const { cluster } = deps;
  switch (kind) {
    case 'journal':
      return;
    case 'pdb-delete':
      return cluster.deletePdb(arg);
    case 'quiesce': {
      const [wkind, name] = arg.split('/') as [WorkloadKind, string];
      return cluster.scale(wkind, name, 0, true);
    }
    case 'etcd-stop':
      return cluster.scale('StatefulSet', plan.workload.name, 0, true);
    case 'utility':
      return cluster.createPodAndWait(memberOf(plan, arg).utilityPod);
    case 'copy':
      return copySnapshot(plan, deps, memberOf(plan, arg));
    case 'restore': {
      const m = memberOf(plan, arg);
      const pod = m.utilityPod.metadata.name;
      // The restore dir is ours alone (a fresh, stamped name): clearing a half-written one is safe.
      await mustExec(deps, pod, m.shellContainer, ['rm', '-rf', m.restoreDir], 'clearing the restore directory');
      await mustExec(deps, pod, m.toolContainer, m.restoreArgv, `${m.restoreArgv[0]} snapshot restore`);
      return;
    }
    case 'restored':
      await settleAll(plan.members.filter((m) => !state.done.includes(`swap/${m.member.name}`)).map((m) =>
        mustExec(deps, m.utilityPod.metadata.name, m.shellContainer, ['test', '-d', `${m.restoreDir}/member`], `finding the restored data of member "${m.member.name}"`)));
      return;
    case 'swap': {
      const m = memberOf(plan, arg);
      const pod = m.utilityPod.metadata.name;
      await mustExec(deps, pod, m.shellContainer, m.swapArgv, 'moving the restored data in place');
      if (m.chownArgv) await mustExec(deps, pod, m.shellContainer, m.chownArgv, 'handing the data to the etcd user');
      await mustExec(deps, pod, m.shellContainer, ['rm', '-f', m.snapshotPath], 'removing the snapshot copy');
      await mustExec(deps, pod, m.shellContainer, ['sync'], 'sync');
      return;
    }
    case 'cleanup':
      return cluster.deletePodAndWait(memberOf(plan, arg).utilityPod.metadata.name);
    case 'etcd-start':
      return cluster.scale('StatefulSet', plan.workload.name, state.etcdReplicas, false);
    case 'etcd-roll':
      return cluster.rolloutRestart('StatefulSet', plan.workload.name);
    case 'etcd-recreate':
      return cluster.recreatePods(plan.members.map((m) => m.member.pod));
    case 'wait-ready':
      return cluster.waitPodsReady(plan.members.map((m) => m.member.pod));
    case 'verify': {
      const report = await deps.verifier.verify(plan);
      if (!report.ok) {
        throw new VerificationError(
          `the restored cluster did not pass verification: ${report.problems.join('; ')}`,
          'inspect with `kubectl etcd status`, then `kubectl etcd restore --resume` to verify again or `--abort` to roll back',
        );
      }
      deps.log.info(`verified: ${JSON.stringify(report.summary)}`);
      return;
    }
    case 'unquiesce': {
      const [wkind, name] = arg.split('/') as [WorkloadKind, string];
      const target = state.quiesce.find((q) => q.kind === wkind && q.name === name);
      if (!target) {
        throw new PluginError(
          `the restore journal has no replica count for ${wkind.toLowerCase()} "${name}"`,
          `scale it back by hand (kubectl scale ${wkind.toLowerCase()} ${name} -n ${plan.namespace} --replicas=N), then run \`kubectl etcd restore --resume\``,
        );
      }
      return cluster.scale(wkind, name, target.replicas, true);
    }
    case 'pdb-create': {
      const pdb = state.pdbs.find((p) => p.name === arg);
      if (pdb) await cluster.createPdb(pdb.manifest);
      return;
    }
    case 'finish':
      return;
    default:
      throw new PluginError(`unknown restore step "${step.id}"`, 'the journal was written by another version; run --abort with that version');
  }
}

/** Copies the snapshot onto the member's volume unless an identical copy is already there. */
async function copySnapshot(plan: RestorePlan, deps: RunnerDeps, m: MemberPlan): Promise<void> {
  const pod = m.utilityPod.metadata.name;
  const sha = async () => {
    const r = await deps.pods.exec(pod, m.shellContainer, ['sha256sum', m.snapshotPath]);
    return r.exitCode === 0 ? r.stdout.trim().split(/\s+/)[0] : undefined;
  };
  if ((await sha()) === plan.snapshot.sha256) return;
  await deps.pods.copyIn(pod, m.shellContainer, m.snapshotPath, deps.openSnapshot, plan.snapshot.size);
  const got = await sha();
  if (got !== plan.snapshot.sha256) {
    throw new VerificationError(
      `the snapshot copied into pod "${pod}" has sha256 ${got ?? 'unknown'}, expected ${plan.snapshot.sha256}`,
      'check the volume for errors and run `kubectl etcd restore --resume`',
    );
  }
}

/** How a roll-back ended: the members' health once the old data runs again. */
export interface AbortOutcome {
  healthy: boolean;
  problems: string[];
}

/**
 * Rolls an interrupted restore back: every member's pre-restore data goes back in place and the
 * restore's files leave the volumes; etcd comes back and its health is checked (before the API
 * servers write again); then the quiesced workloads and the PDBs come back. Unhealthy is reported
 * in the outcome, not thrown: the roll-back is done, and the old data may be why a restore began.
 */
export async function abortRestore(plan: RestorePlan, state: JournalState, deps: RunnerDeps): Promise<AbortOutcome> {
  const { cluster, log } = deps;
  state.phase = 'aborting';
  await deps.journal.save(state);
  const sts = plan.workload.kind === 'StatefulSet';
  const scaled = sts && !plan.inPlace;
  const did = (id: string) => state.done.includes(id);
  // A member's volume may hold a snapshot copy (every Secret), a restore dir or swapped data once
  // its utility pod ran; the others need no pod, so one that cannot start does not block this.
  const visited = plan.members.filter((m) => did(`utility/${m.member.name}`));
  // Data can have moved once a member's restore finished: the swap comes next.
  const mayBeSwapped = plan.members.some((m) => did(`restore/${m.member.name}`));
  if (scaled && mayBeSwapped) {
    log.step(`scale statefulset "${plan.workload.name}" to 0 to put the old data back`);
    await cluster.scale('StatefulSet', plan.workload.name, 0, true);
  }
  await settleAll(plan.members.map(async (m) => {
    const pod = m.utilityPod.metadata.name;
    if (!visited.includes(m)) return cluster.deletePodAndWait(pod);
    log.step(`member "${m.member.name}": put the pre-restore data back and remove the restore's files`);
    await cluster.createPodAndWait(m.utilityPod);
    await mustExec(deps, pod, m.shellContainer, m.rollbackArgv, 'moving the old data back');
    await mustExec(deps, pod, m.shellContainer, ['rm', '-rf', m.restoreDir, m.snapshotPath], 'removing restore leftovers');
    await mustExec(deps, pod, m.shellContainer, ['sync'], 'sync');
    await cluster.deletePodAndWait(pod);
  }));
  if (sts && plan.inPlace && mayBeSwapped) {
    log.step(`delete the pods of statefulset "${plan.workload.name}" at once so they start on the pre-restore data`);
    await cluster.recreatePods(plan.members.map((m) => m.member.pod));
  }
  if (scaled) {
    log.step(`scale statefulset "${plan.workload.name}" back to ${state.etcdReplicas}`);
    await cluster.scale('StatefulSet', plan.workload.name, state.etcdReplicas, false);
  }
  if (sts) await cluster.waitPodsReady(plan.members.map((m) => m.member.pod));
  log.step('check that the members are healthy with one leader');
  const report = await deps.verifier.verify(plan, { healthOnly: true });
  for (const q of state.quiesce) {
    log.step(`scale ${q.kind.toLowerCase()} "${q.name}" back to ${q.replicas}`);
    await cluster.scale(q.kind, q.name, q.replicas, false);
  }
  for (const pdb of state.pdbs) {
    log.step(`re-create PodDisruptionBudget "${pdb.name}"`);
    await cluster.createPdb(pdb.manifest);
  }
  await closeJournal(deps, '--abort');
  return { healthy: report.ok, problems: report.problems };
}
