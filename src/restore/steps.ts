/**
 * The steps of a restore as typed values: each kind carries what its handler needs (handlers.ts
 * holds one handler per kind). The restore's own steps come from the plan (`planSteps`), in
 * order, with stable ids the journal records; a roll-back's steps (`abortSteps`) are derived from
 * the same list and from which of its steps the journal says are done.
 */
import { heldProbeNames, holdWhat, type ColdStartHold } from './cold-start.js';
import type { MemberPlan, PdbRecord, QuiesceTarget, RestorePlan } from './plan.js';

/** Workload kinds the restore scales. */
export type WorkloadKind = 'StatefulSet' | 'Deployment';

/** A workload the restore scales, by kind and name (in the plan's namespace). */
export interface WorkloadRef {
  kind: WorkloadKind;
  name: string;
}

/** What every step has: a stable id (journal), a title (progress, plan) and whether it changes anything. */
interface StepBase {
  id: string;
  title: string;
  mutates: boolean;
}

/** One step; `kind` picks its handler. Per-member kinds name their member. */
export type PlanStep = StepBase & (
  | { kind: 'journal' }
  | { kind: 'pdb-delete'; pdb: string }
  | { kind: 'quiesce'; workload: WorkloadRef }
  | { kind: 'utility'; member: string }
  /** Bitnami members: their start files kept aside before anything stops them (plan.ts: startFiles). */
  | { kind: 'keep-start-files'; member: string }
  /** whenScaled: Delete set to Retain while etcd is scaled to 0, so the member claims stay. */
  | { kind: 'retention-hold' }
  | { kind: 'etcd-stop' }
  | { kind: 'copy'; member: string }
  | { kind: 'restore'; member: string }
  | { kind: 'restored' }
  | { kind: 'swap'; member: string }
  /**
   * While members start from nothing (cold-start.ts): probes that need quorum off the pod template
   * (OrderedReady), the Service publishing not-ready members.
   */
  | { kind: 'start-hold' }
  | { kind: 'etcd-recreate' }
  | { kind: 'cleanup'; member: string }
  | { kind: 'etcd-start' }
  | { kind: 'wait-ready' }
  /** The StatefulSet's own PVC retention policy back, once its pods run again. */
  | { kind: 'retention-restore' }
  /**
   * Once etcd is healthy: the held probes back and the rolling update that brings them to every
   * member; the Service stays publishing not-ready members (cold-start.ts). In a roll-back
   * (rollback: true) the probes go back even when the old data are not healthy.
   */
  | { kind: 'start-release'; rollback: boolean }
  | { kind: 'verify' }
  /** wait: until the workload has its pods Ready again (a roll-back does not wait). */
  | { kind: 'unquiesce'; workload: WorkloadRef; wait: boolean }
  | { kind: 'pdb-create'; pdb: string }
  | { kind: 'finish' }
  // A roll-back's own kinds.
  | { kind: 'rollback'; member: string }
  | { kind: 'health' }
);

/** The kinds of step. */
export type StepKind = PlanStep['kind'];

/** The step of one kind. */
export type StepOf<K extends StepKind> = Extract<PlanStep, { kind: K }>;

/** The member a per-member step works on; undefined for whole-cluster steps. */
export function stepMember(step: PlanStep): string | undefined {
  return 'member' in step ? step.member : undefined;
}

/** What the steps are built from: the plan's workload, members and what it quiesces and lifts. */
export interface StepInput {
  workload: RestorePlan['workload'];
  members: MemberPlan[];
  quiesce: QuiesceTarget[];
  pdbs: PdbRecord[];
  inPlace: boolean;
  /** Set when the members could not all start again with their probes (cold-start.ts). */
  coldStart?: ColdStartHold;
}

/** Builds a step of one kind; the id joins the kind and what it names, so it is stable across runs. */
function step<K extends StepKind>(kind: K, title: string, fields: Omit<StepOf<K>, keyof StepBase | 'kind'>, mutates = true): StepOf<K> {
  const f = fields as { member?: string; pdb?: string; workload?: WorkloadRef };
  const arg = f.member ?? f.pdb ?? (f.workload ? `${f.workload.kind}/${f.workload.name}` : undefined);
  return { kind, id: arg === undefined ? kind : `${kind}/${arg}`, title, mutates, ...fields } as StepOf<K>;
}

/**
 * True when scaling the StatefulSet to 0 would delete the member claims: its
 * persistentVolumeClaimRetentionPolicy says whenScaled: Delete (Kubernetes 1.27+ on by default;
 * with a Delete reclaim policy the volumes and their data go too).
 */
export function scalingDeletesClaims(workload: RestorePlan['workload'], inPlace: boolean): boolean {
  return workload.kind === 'StatefulSet' && !inPlace && workload.claimRetention?.whenScaled === 'Delete';
}

const holdTitle = (name: string) => `set persistentVolumeClaimRetentionPolicy.whenScaled of statefulset "${name}" to Retain, so that scaling it to 0 keeps the member volumes`;
const restoreRetentionTitle = (name: string) => `put persistentVolumeClaimRetentionPolicy.whenScaled of statefulset "${name}" back to Delete`;

const startHoldTitle = (name: string, hold: ColdStartHold) =>
  `while the members of statefulset "${name}" start, have ${holdWhat(hold)}, because ${hold.reasons.join(' and ')}`;
function startReleaseTitle(name: string, hold: ColdStartHold): string {
  const probes = heldProbeNames(hold);
  return [
    `once etcd is healthy`,
    probes ? `put the ${probes} of statefulset "${name}" back and wait until every member runs with ${hold.probes.readinessProbe && hold.probes.startupProbe ? 'them' : 'it'}, Ready (a rolling update, one member at a time)` : '',
    hold.service ? `leave Service "${hold.service}" publishing not-ready members (set back to false, a member that restarts could never rejoin)` : '',
  ].filter(Boolean).join(', ');
}

const swapTitle = (m: MemberPlan) => `move ${m.member.dataDir}/member aside to ${m.asideDir} and the restored data in`;

/** The ordered steps of a restore; ids are stable so a journal can record which are done. */
export function planSteps(input: StepInput): PlanStep[] {
  const { members, workload } = input;
  const sts = workload.kind === 'StatefulSet';
  const scaled = sts && !input.inPlace;
  const steps: PlanStep[] = [step('journal', 'record replicas and PDBs in the restore journal', {})];
  for (const pdb of input.pdbs) steps.push(step('pdb-delete', `delete PodDisruptionBudget "${pdb.name}" (saved in the journal)`, { pdb: pdb.name }));
  for (const q of input.quiesce) steps.push(step('quiesce', `scale ${q.kind.toLowerCase()} "${q.name}" from ${q.replicas} to 0`, { workload: { kind: q.kind, name: q.name } }));
  // The utility pods start while etcd still runs (beside it on the same node and volume): an image
  // that cannot be pulled or a pod that is refused stops the restore before etcd is touched. A
  // ReadWriteOncePod claim takes one pod at a time: there they start once etcd is stopped.
  const oneAtATime = scaled && members.some((m) => m.member.dataVolume?.kind === 'pvc' && m.member.dataVolume.readWriteOncePod);
  const utilitySteps = members.map((m) => step('utility', `start utility pod "${m.utilityPod.metadata.name}" on node "${m.node}"`, { member: m.member.name }));
  if (!oneAtATime) steps.push(...utilitySteps);
  // Bitnami's preStop hook removes a stopping member from the cluster (by the ID in its member_id
  // file in the legacy images, by its peer URL in the member list in the debian-12 ones) and writes
  // the answer to member_removal.log; its start script acts on those files. With the files kept
  // aside and a directory where the log goes (the hook's shell then never runs the removal),
  // stopping etcd removes no member and no start wipes the restored data.
  // (On ReadWriteOncePod claims preflight allows this only without the hook: then after etcd stopped.)
  const keepSteps: PlanStep[] = [];
  for (const m of members) {
    if (m.startFilesDir) {
      const guard = m.removalLogGuard ? ` and make ${m.removalLogGuard} an empty directory` : '';
      keepSteps.push(step('keep-start-files', `keep the Bitnami start files of member "${m.member.name}" (member_id, new_member_envs, member_removal.log) in ${m.startFilesDir}${guard}, so that its preStop hook cannot remove it from the cluster`, { member: m.member.name }));
    }
  }
  if (!oneAtATime) steps.push(...keepSteps);
  const holdClaims = scalingDeletesClaims(workload, input.inPlace);
  if (holdClaims) steps.push(step('retention-hold', holdTitle(workload.name), {}));
  if (scaled) steps.push(step('etcd-stop', `scale statefulset "${workload.name}" to 0, its leader last, and wait until its pods are gone`, {}));
  if (oneAtATime) steps.push(...utilitySteps, ...keepSteps);
  for (const m of members) {
    const member = m.member.name;
    steps.push(step('copy', `copy the snapshot to ${m.snapshotPath} and check its sha256`, { member }));
    steps.push(step('restore', `${m.restoreArgv.slice(0, 3).join(' ')} into ${m.restoreDir}`, { member }));
    if (!input.inPlace) steps.push(step('swap', swapTitle(m), { member }));
  }
  if (input.inPlace) {
    // In place, old etcd processes still run on the volumes: every member is restored first, and
    // only then are all swapped together, right before their pods are deleted, so the time an old
    // process runs on swapped data is a few seconds, not the length of the slowest copy.
    steps.push(step('restored', 'check that every member has its restored data, before any swap', {}));
    for (const m of members) steps.push(step('swap', swapTitle(m), { member: m.member.name }));
  }
  // In place, etcd still runs (or crash-loops) on the volumes: its pods are deleted right after
  // the swap, all at once, so the old processes stop before they could cut a new WAL file or
  // snapshot into the restored data; the StatefulSet starts them again on it. A rollout restart
  // would replace one pod at a time and leave restored members beside old ones that reject them
  // (another cluster ID).
  const hold = sts ? input.coldStart : undefined;
  if (sts && input.inPlace && hold) steps.push(step('start-hold', startHoldTitle(workload.name, hold), {}));
  if (sts && input.inPlace) steps.push(step('etcd-recreate', `delete the pods of statefulset "${workload.name}" at once so they start on the restored data`, {}));
  for (const m of members) steps.push(step('cleanup', `delete utility pod "${m.utilityPod.metadata.name}"`, { member: m.member.name }));
  if (scaled && hold) steps.push(step('start-hold', startHoldTitle(workload.name, hold), {}));
  if (scaled) steps.push(step('etcd-start', `scale statefulset "${workload.name}" back to ${workload.replicas ?? members.length}`, {}));
  steps.push(step('wait-ready', 'wait until every etcd member is Ready', {}));
  if (holdClaims) steps.push(step('retention-restore', restoreRetentionTitle(workload.name), {}));
  if (hold) steps.push(step('start-release', startReleaseTitle(workload.name, hold), { rollback: false }));
  steps.push(step('verify', 'verify: all members healthy, one leader, member list as planned, each member on the restored data (its new member and cluster IDs), revision and key count', {}));
  for (const q of input.quiesce) steps.push(step('unquiesce', `scale ${q.kind.toLowerCase()} "${q.name}" back to ${q.replicas}`, { workload: { kind: q.kind, name: q.name }, wait: true }));
  for (const pdb of input.pdbs) steps.push(step('pdb-create', `re-create PodDisruptionBudget "${pdb.name}"`, { pdb: pdb.name }));
  steps.push(step('finish', 'close the restore journal', {}));
  return steps;
}

/**
 * The steps that roll a restore back, from its plan and the ids the journal records as done:
 * every member whose utility pod ran gets its pre-restore data back and loses the restore's files
 * (a snapshot copy holds every Secret); etcd comes back and its health is checked before the
 * quiesced workloads and the PDBs return. Each is idempotent, so a second --abort runs them all again.
 */
export function abortSteps(plan: RestorePlan, done: readonly string[]): PlanStep[] {
  const did = (kind: StepKind, member: string) => done.includes(`${kind}/${member}`);
  const sts = plan.workload.kind === 'StatefulSet';
  const scaled = sts && !plan.inPlace;
  // Data can have moved once a member's restore finished: the swap comes next.
  const mayBeSwapped = plan.members.some((m) => did('restore', m.member.name));
  const name = plan.workload.name;
  const holdClaims = scalingDeletesClaims(plan.workload, plan.inPlace);
  const steps: PlanStep[] = [];
  if (scaled && mayBeSwapped && holdClaims) steps.push(step('retention-hold', holdTitle(name), {}));
  if (scaled && mayBeSwapped) steps.push(step('etcd-stop', `scale statefulset "${name}" to 0 to put the old data back`, {}));
  // A member's volume may hold a snapshot copy, a restore dir or swapped data once its utility pod
  // ran; the others need no pod, so one that cannot start does not block the roll-back.
  for (const m of plan.members) {
    const member = m.member.name;
    steps.push(did('utility', member)
      ? step('rollback', `member "${member}": put the pre-restore data back and remove the restore's files`, { member })
      : step('cleanup', `delete utility pod "${m.utilityPod.metadata.name}"`, { member }));
  }
  // The old data start from nothing as the restored data would: the probes are held the same way.
  const hold = sts ? plan.coldStart : undefined;
  if (hold && ((plan.inPlace && mayBeSwapped) || scaled)) steps.push(step('start-hold', startHoldTitle(name, hold), {}));
  if (sts && plan.inPlace && mayBeSwapped) steps.push(step('etcd-recreate', `delete the pods of statefulset "${name}" at once so they start on the pre-restore data`, {}));
  if (scaled) steps.push(step('etcd-start', `scale statefulset "${name}" back to ${plan.replicas}`, {}));
  if (sts) steps.push(step('wait-ready', 'wait until every etcd member is Ready', {}));
  if (holdClaims) steps.push(step('retention-restore', restoreRetentionTitle(name), {}));
  if (hold) steps.push(step('start-release', startReleaseTitle(name, hold), { rollback: true }));
  steps.push(step('health', 'check that the members are healthy with one leader', {}, false));
  for (const q of plan.quiesce) steps.push(step('unquiesce', `scale ${q.kind.toLowerCase()} "${q.name}" back to ${q.replicas}`, { workload: { kind: q.kind, name: q.name }, wait: false }));
  for (const pdb of plan.pdbs) steps.push(step('pdb-create', `re-create PodDisruptionBudget "${pdb.name}"`, { pdb: pdb.name }));
  return steps;
}
