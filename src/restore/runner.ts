/**
 * Carries out a restore plan step by step, recording each finished step in the journal so an
 * interrupted restore can resume from where it stopped, or be rolled back. Per-member work runs
 * for all members at once. Steps are typed (steps.ts) and run by their kind's handler (handlers.ts).
 */
import type { Readable } from 'node:stream';
import { PluginError } from '../errors.js';
import type { ClaimRetention, EtcdMember } from '../etcd/topology.js';
import type { HeldProbes } from './cold-start.js';
import type { CommandResult, ContainerCommand, ContainerRef } from '../kube/exec.js';
import { runStep, settleAll, type StepContext } from './handlers.js';
import type { Journal, JournalState } from './journal.js';
import type { RestorePlan } from './plan.js';
import { abortSteps, stepMember, type PlanStep, type WorkloadKind } from './steps.js';

export type { WorkloadKind } from './steps.js';

/** The cluster operations the runner uses, all within the plan's namespace. */
export interface RestoreCluster {
  getReplicas(kind: WorkloadKind, name: string): Promise<number>;
  /** Sets spec.replicas; with wait, returns once the workload has that many pods (0: all gone). */
  scale(kind: WorkloadKind, name: string, replicas: number, wait: boolean): Promise<void>;
  /** Scales a StatefulSet down to `replicas` and waits until only that many of its pods are left (the others gone). */
  scaleDown(statefulSet: string, replicas: number): Promise<void>;
  /**
   * Creates a pod (an existing pod of the same name is kept) and waits until it runs; with
   * ownerConfigMap the pod is owned by that ConfigMap (deleting it collects the pod).
   */
  createPodAndWait(manifest: { metadata: { name: string; namespace: string } }, opts?: { ownerConfigMap?: string }): Promise<void>;
  /**
   * Sends a pod as a dry-run create (nothing is stored); returns the server's reason when it
   * would refuse it (admission: Pod Security, quota, webhooks; validation), else undefined.
   */
  admitPod(manifest: { metadata: { name: string; namespace: string } }): Promise<string | undefined>;
  /** A pod's phase (Pending, Running, Succeeded, Failed) and annotations; undefined when it cannot be read now (gone, or the API away). */
  podStatus?(name: string): Promise<{ phase: string; annotations: Record<string, string> } | undefined>;
  /** Deletes a pod (missing is fine) with its own grace period and waits until it is gone. */
  deletePodAndWait(name: string): Promise<void>;
  /**
   * Deletes the named pods at once (their own grace period) and waits until each is gone or replaced
   * (a controller makes a new pod of the same name). Missing pods are fine.
   */
  recreatePods(names: string[]): Promise<void>;
  /** Waits until the named pods are Ready. */
  waitPodsReady(names: string[]): Promise<void>;
  /** Sets a StatefulSet's persistentVolumeClaimRetentionPolicy and waits until its controller has seen it. */
  setClaimRetention(statefulSet: string, policy: ClaimRetention): Promise<void>;
  /** Sets the readiness and startup probes of a StatefulSet's container (null removes one, a key left out is left alone); idempotent. */
  setProbes(statefulSet: string, container: string, probes: { [K in keyof HeldProbes]?: HeldProbes[K] | null }): Promise<void>;
  /** Sets a Service's publishNotReadyAddresses. */
  setPublishNotReady(service: string, publish: boolean): Promise<void>;
  /** Waits until a StatefulSet runs its template on every pod, all Ready (replacing pods one at a time under OnDelete). */
  waitRolledOut(statefulSet: string): Promise<void>;
  /** Of the named claims, those being deleted or owned by a pod (deleted with it): they would be lost. */
  claimsAtRisk(claims: string[]): Promise<string[]>;
  deletePdb(name: string): Promise<void>;
  /** Creates a PDB from a saved manifest (an existing one is kept). */
  createPdb(manifest: Record<string, unknown>): Promise<void>;
}

/** Running commands and copying files in the utility pods. */
export interface RestorePodIO {
  run: ContainerCommand;
  /**
   * Runs a long command detached under a marker named `name` (kube/detached.ts): a cut stream, a
   * retry or a resumed restore joins the run it finds and never starts a second. The container
   * needs a POSIX shell.
   */
  runLong(target: ContainerRef, argv: string[], name: string): Promise<CommandResult>;
  /** Waits until no run under the marker `name` is alive, then removes the marker. */
  settleLong(target: ContainerRef, name: string): Promise<void>;
  /** Writes `size` bytes from `source()` to `path` in the container, mode 0600. */
  copyIn(target: ContainerRef, path: string, source: () => Readable, size: number): Promise<void>;
}

/** What verification reads of a plan: the members, the snapshot and the restore's cluster. */
export type VerifiablePlan = Pick<RestorePlan, 'snapshot' | 'initialCluster' | 'initialClusterToken'> & { members: ReadonlyArray<{ member: EtcdMember }> };

/** The end-state check. */
export interface RestoreVerifier {
  /**
   * Checks the members: healthy, one leader, one cluster, the planned member list; unless
   * healthOnly, also the snapshot's revision and key count (an --abort brings other data back).
   */
  verify(plan: VerifiablePlan, opts?: { healthOnly?: boolean; writersRun?: boolean }): Promise<{ ok: boolean; problems: string[]; summary: Record<string, unknown> }>;
}

/** Where the runner reports progress (stderr lines). */
export interface RestoreLog {
  step(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  /** Shown with -v 1 and up. */
  debug?(message: string): void;
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
  /** Records a verified restore before its journal goes (history.ts); never throws. */
  recordVerified?: (state: JournalState) => Promise<void>;
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
  const ctx: StepContext = { plan, state, deps };
  await runGroups(plan.steps, (s) => runJournaled(ctx, s, timings));
  return timings;
}

/** How a roll-back ended: the members' health once the old data runs again. */
export interface AbortOutcome {
  healthy: boolean;
  problems: string[];
}

/**
 * Rolls an interrupted restore back through the steps `abortSteps` derives from the plan and the
 * journal: old data back, the restore's files gone, etcd back and its health checked (before the
 * API servers write again), then the quiesced workloads and the PDBs. Unhealthy is reported in
 * the outcome, not thrown.
 */
export async function abortRestore(plan: RestorePlan, state: JournalState, deps: RunnerDeps): Promise<AbortOutcome> {
  state.phase = 'aborting';
  await deps.journal.save(state);
  const ctx: StepContext = { plan, state, deps };
  await runGroups(abortSteps(plan, state.done), async (s) => {
    deps.log.step(s.title);
    await runStep(ctx, s);
  });
  await closeJournal(deps.journal, (l) => deps.log.warn(l), '--abort');
  return { healthy: ctx.health?.ok ?? false, problems: ctx.health?.problems ?? ['the health check did not run'] };
}

/** Runs steps in order; consecutive per-member steps run for all members at once, each member's in order. */
async function runGroups(steps: PlanStep[], run: (s: PlanStep) => Promise<void>): Promise<void> {
  for (const group of groupSteps(steps)) {
    if (group.length === 1 && !stepMember(group[0]!)) {
      await run(group[0]!);
      continue;
    }
    const byMember = new Map<string, PlanStep[]>();
    for (const s of group) byMember.set(stepMember(s)!, [...(byMember.get(stepMember(s)!) ?? []), s]);
    await settleAll([...byMember.values()].map(async (memberSteps) => {
      for (const s of memberSteps) await run(s);
    }));
  }
}

/** Consecutive per-member steps form one parallel group; other steps stand alone. */
function groupSteps(steps: PlanStep[]): PlanStep[][] {
  const groups: PlanStep[][] = [];
  for (const s of steps) {
    const last = groups[groups.length - 1];
    if (stepMember(s) && last && stepMember(last[0]!)) last.push(s);
    else groups.push([s]);
  }
  return groups;
}

/** Runs one step of the restore unless the journal has it done, then records it. */
async function runJournaled(ctx: StepContext, step: PlanStep, timings: StepTiming[]): Promise<void> {
  const { state, deps } = ctx;
  if (state.done.includes(step.id)) {
    timings.push({ id: step.id, title: step.title, ms: 0, skipped: true });
    return;
  }
  const started = deps.now();
  deps.log.step(step.title);
  await guardAgainstScaleUp(ctx, step);
  await runStep(ctx, step);
  if (step.kind === 'finish') {
    // Recorded first, so a journal left behind says the restore finished (no --abort of a verified restore).
    state.phase = 'finished';
    await deps.journal.save(state);
    await closeJournal(deps.journal, (l) => deps.log.warn(l), '--resume');
  } else await deps.journal.markDone(state, step.id);
  timings.push({ id: step.id, title: step.title, ms: deps.now() - started, skipped: false });
}

/** Removes the journal once the work is done; copies that stay are reported with how to close them. */
export async function closeJournal(journal: Pick<Journal<unknown>, 'remove'>, warn: (line: string) => void, again: '--resume' | '--abort'): Promise<void> {
  const left = await journal.remove();
  if (left.length) {
    warn(`the work is done but the restore journal could not be removed from ${left.join(' and ')}; run \`kubectl etcd restore ${again}\` to close it, or the next restore refuses to start`);
  }
}

/** While etcd is meant to be stopped, something scaling it back up must stop the restore. */
async function guardAgainstScaleUp(ctx: StepContext, step: PlanStep): Promise<void> {
  const { plan, state, deps } = ctx;
  if (plan.workload.kind !== 'StatefulSet' || plan.inPlace) return;
  if (!state.done.includes('etcd-stop') || state.done.includes('etcd-start') || step.kind === 'etcd-start') return;
  const replicas = await deps.cluster.getReplicas('StatefulSet', plan.workload.name);
  if (replicas !== 0) {
    throw new PluginError(
      `statefulset "${plan.workload.name}" was scaled back to ${replicas} while the restore ran (an operator reconciling it?)`,
      'stop whatever scales it and run `kubectl etcd restore --resume`; or run `kubectl etcd restore --abort`, then restore again with --in-place',
    );
  }
}
