/**
 * `kubectl etcd restore`: read the snapshot, discover the cluster, find what to quiesce, run the
 * preflight, build and print the plan, ask, take a safety backup, then run the plan through the
 * journal — or resume / roll back an interrupted restore from its journal.
 */
import { mkdir, readdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { PluginError, UsageError, VerificationError } from '../errors.js';
import { compactUtc } from '../backup/naming.js';
import type { EtcdTopology } from '../etcd/topology.js';
import type { Logger } from '../ui/log.js';
import { formatRecord, type OutputFormat } from '../ui/format.js';
import { Journal, configMapJournalStore, fileJournalStore, journalConfigMapName, workloadsWithClusterJournal, type ConfigMapAccess, type JournalState } from './journal.js';
import { buildRestorePlan, type RestorePlan } from './plan.js';
import { preflight, type PreflightDeps } from './preflight.js';
import { findQuiesceTargets, type NamespaceWorkloads, type QuiesceRef } from './quiesce.js';
import { planRecord, renderPlan, renderTimings } from './render.js';
import { TOOLS_CONTAINER } from './manifests.js';
import { abortRestore, runRestorePlan, type RunnerDeps, type RestoreCluster, type RestorePodIO, type RestoreVerifier, type StepTiming } from './runner.js';
import { loadRestoreSnapshot, type RestoreSnapshotFacts } from './snapshot.js';
import { trustedJournalState } from './trust.js';

/** What the user asked for. */
export interface RestoreOptions {
  snapshot?: string;
  namespace: string;
  statefulSet?: string;
  quiesce: QuiesceRef[];
  dryRun: boolean;
  yes: boolean;
  force: boolean;
  resume: boolean;
  abort: boolean;
  safetyBackup: boolean;
  utilityImage?: string;
  inPlace: boolean;
  output?: OutputFormat;
  /** Where the local journal and safety backups live. */
  stateDir: string;
}

/** Everything the command talks to, built by the CLI. */
export interface RestoreDeps {
  discover(namespace: string, statefulSet?: string): Promise<EtcdTopology>;
  /** The etcd image of the workload's pod template. */
  templateImage(topology: EtcdTopology): Promise<string>;
  listWorkloads(namespace: string): Promise<NamespaceWorkloads>;
  /** Fills in the node of members whose pod is gone. */
  resolveNodes(topology: EtcdTopology): Promise<void>;
  preflight: PreflightDeps;
  configMaps: ConfigMapAccess;
  cluster(namespace: string): RestoreCluster;
  pods(namespace: string): RestorePodIO;
  verifier(plan: RestorePlan): RestoreVerifier;
  openSnapshot(path: string): () => Readable;
  /** Takes a safety backup into dir; returns the file, or undefined when the cluster does not answer. */
  safetyBackup(topology: EtcdTopology, dir: string): Promise<string | undefined>;
  /** Asks on a terminal; undefined when there is no terminal. */
  ask(question: string): Promise<string | undefined>;
  log: Logger;
  stdout: Writable;
  stderr: Writable;
  now: () => Date;
}

/**
 * The local journal file of one workload. `_` separates the namespace from the workload because
 * neither name can contain it: with `-`, uc1/b-etcd and uc1-b/etcd would share a file.
 */
export function journalFile(stateDir: string, namespace: string, workload: string): string {
  return join(stateDir, `restore-${namespace}_${workload}.json`);
}

/** Default state dir: $KUBECTL_ETCD_STATE_DIR, else ~/.kube/kubectl-etcd. */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.KUBECTL_ETCD_STATE_DIR || join(homedir(), '.kube', 'kubectl-etcd');
}

function journalFor(opts: RestoreOptions, deps: RestoreDeps, namespace: string, workload: string): Journal {
  return new Journal(
    [fileJournalStore(journalFile(opts.stateDir, namespace, workload)), configMapJournalStore(deps.configMaps, namespace, workload)],
    deps.now,
  );
}

/** Runs the command; returns the record it printed with -o. */
export async function restoreCommand(opts: RestoreOptions, deps: RestoreDeps): Promise<void> {
  if (opts.resume && opts.abort) throw new UsageError('--resume and --abort cannot be used together', 'pass one of them');
  if ((opts.resume || opts.abort) && (opts.inPlace || opts.utilityImage)) {
    throw new UsageError(`${opts.inPlace ? '--in-place' : '--utility-image'} cannot be changed for ${opts.resume ? '--resume' : '--abort'}: it goes on with the plan in the journal`, `run \`kubectl etcd restore ${opts.resume ? '--resume' : '--abort'}\` without it`);
  }
  if (opts.resume || opts.abort) return continueRestore(opts, deps);
  if (!opts.snapshot) throw new UsageError('no snapshot given', 'pass the snapshot file: kubectl etcd restore SNAPSHOT');

  const snapshot = await loadRestoreSnapshot(opts.snapshot);
  // A restore in progress may have scaled etcd to 0, so look for its journal before discovery.
  for (const pending of await pendingWorkloads(opts, deps)) {
    if (!opts.statefulSet || opts.statefulSet === pending) await refuseIfJournal(journalFor(opts, deps, opts.namespace, pending));
  }
  const topology = await deps.discover(opts.namespace, opts.statefulSet);
  if (topology.workload.kind !== 'StatefulSet') {
    throw new UsageError(`etcd in namespace "${topology.namespace}" runs as bare or static pods ("${topology.workload.name}"); restore handles StatefulSets only`, 'follow the static-pod runbook, or pass --statefulset');
  }
  const journal = journalFor(opts, deps, topology.namespace, topology.workload.name);
  await refuseIfJournal(journal);
  await deps.resolveNodes(topology);
  const etcdImage = await deps.templateImage(topology);
  const { quiesce, pdbs } = findQuiesceTargets(topology, await deps.listWorkloads(topology.namespace), opts.quiesce);
  const checked = await preflight({ topology, etcdImage, utilityImage: opts.utilityImage, snapshot, quiesce, pdbs, force: opts.force }, deps.preflight);
  const stamp = compactUtc(deps.now());
  const plan = buildRestorePlan({
    topology, snapshot, quiesce, pdbs, utilityImage: checked.utilityImage, etcdToolsImage: checked.etcdToolsImage, tool: checked.tool, stamp, inPlace: opts.inPlace,
  });
  plan.warnings.unshift(...checked.warnings);
  if (!plan.tool.bumpRevision && quiesce.length) {
    plan.warnings = plan.warnings.map((w) => (w.includes('restart every kube-apiserver') ? `${w} (the quiesced ${quiesce.map((q) => q.name).join(', ')} restart anyway)` : w));
  }

  if (opts.dryRun) {
    deps.stdout.write(opts.output ? formatRecord(planRecord(plan), opts.output) : renderPlan(plan));
    deps.log.info('dry run: nothing was changed');
    return;
  }
  deps.stderr.write(renderPlan(plan));
  await confirm(opts, deps, topology.workload.name);

  let safety: string | undefined;
  if (opts.safetyBackup) {
    deps.log.info('taking a safety backup of the current cluster (skip with --no-safety-backup)');
    const dir = join(opts.stateDir, 'safety-backups');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    safety = await deps.safetyBackup(topology, dir);
    if (safety) deps.log.info(`safety backup: ${safety}`);
    else deps.log.warn('the current cluster does not answer; no safety backup taken');
  }
  const state: JournalState = {
    version: 1,
    stamp,
    namespace: plan.namespace,
    workload: plan.workload.name,
    snapshot: { path: snapshot.path, sha256: snapshot.sha256, revision: snapshot.revision, totalKey: snapshot.totalKey },
    etcdReplicas: plan.replicas,
    quiesce: plan.quiesce,
    pdbs: plan.pdbs,
    done: [],
    phase: 'running',
    plan,
    startedAt: deps.now().toISOString(),
    updatedAt: '',
  };
  await journal.save(state);
  deps.log.info(`restore journal: ${journal.describe()}`);
  await execute(plan, state, journal, opts, deps, safety);
}

async function refuseIfJournal(journal: Journal): Promise<void> {
  const existing = await journal.load();
  if (existing?.phase === 'finished') {
    throw new PluginError(
      `the restore of ${existing.namespace}/${existing.workload} (stamp ${existing.stamp}) finished, but its journal is still in ${journal.describe()}`,
      'run `kubectl etcd restore --resume` to close it, then restore again',
    );
  }
  if (existing) {
    throw new PluginError(
      `a restore of ${existing.namespace}/${existing.workload} (stamp ${existing.stamp}, snapshot "${existing.snapshot.path}") is already in progress, recorded in ${journal.describe()}`,
      'run `kubectl etcd restore --resume` to finish it or `kubectl etcd restore --abort` to roll it back',
    );
  }
}

async function confirm(opts: RestoreOptions, deps: RestoreDeps, workload: string, question = `this replaces the data of every member of "${workload}"`): Promise<void> {
  if (opts.yes) return;
  const answer = await deps.ask(`${question}; type the workload name to go on: `);
  if (answer === undefined) {
    throw new UsageError('restore changes the cluster and needs confirmation, but there is no terminal to ask on', 'pass --yes, or --dry-run to only see the plan');
  }
  if (answer.trim() !== workload) throw new UsageError(`"${answer.trim()}" is not "${workload}"; nothing was changed`, 'run again and type the workload name, or pass --yes');
}

async function execute(plan: RestorePlan, state: JournalState, journal: Journal, opts: RestoreOptions, deps: RestoreDeps, safety?: string): Promise<void> {
  const started = deps.now().getTime();
  let timings: StepTiming[];
  try {
    timings = await runRestorePlan(plan, state, runnerDeps(plan, journal, deps));
  } catch (err) {
    deps.log.info(`the restore stopped; its journal is kept in ${journal.describe()}`);
    throw err;
  }
  const wall = deps.now().getTime() - started;
  deps.stderr.write(renderTimings(timings, wall));
  const record = {
    kind: 'RestoreResult',
    namespace: plan.namespace,
    workload: plan.workload.name,
    snapshot: plan.snapshot.path,
    revision: plan.snapshot.revision,
    keys: plan.snapshot.liveKeys,
    members: plan.members.map((m) => ({ name: m.member.name, oldDataKeptIn: m.asideDir })),
    safetyBackup: safety,
    seconds: Math.round(wall / 100) / 10,
    steps: timings.map((t) => ({ id: t.id, seconds: Math.round(t.ms / 100) / 10, skipped: t.skipped })),
    warnings: plan.warnings,
  };
  for (const w of plan.warnings) deps.log.warn(w);
  if (opts.output) deps.stdout.write(formatRecord(record, opts.output));
  else deps.stdout.write(`restored ${plan.namespace}/${plan.workload.name} from "${plan.snapshot.path}" (revision ${plan.snapshot.revision}, ${plan.snapshot.liveKeys ?? '?'} keys) on ${plan.members.length} member(s) in ${(wall / 1000).toFixed(1)}s; verified\n`);
}

/** Workloads with a restore journal in the namespace: in the cluster or in the local state dir. */
async function pendingWorkloads(opts: RestoreOptions, deps: RestoreDeps): Promise<string[]> {
  const inCluster = await workloadsWithClusterJournal(deps.configMaps, opts.namespace);
  const prefix = `restore-${opts.namespace}_`;
  let files: string[] = [];
  try {
    files = await readdir(opts.stateDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new PluginError(`cannot read the state dir "${opts.stateDir}" (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, 'a restore journal may be in it: fix its permissions, or pass --state-dir');
    }
  }
  const local = files.filter((f) => f.startsWith(prefix) && f.endsWith('.json')).map((f) => f.slice(prefix.length, -'.json'.length));
  return [...new Set([...inCluster, ...local])].sort();
}

/** The workload to resume or roll back: --statefulset, else the only one with a journal, else discovery. */
async function journalWorkload(opts: RestoreOptions, deps: RestoreDeps): Promise<string | undefined> {
  const pending = await pendingWorkloads(opts, deps);
  if (pending.length > 1) {
    throw new UsageError(`restores of several workloads are in progress in namespace "${opts.namespace}": ${pending.join(', ')}`, 'pass --statefulset to pick one');
  }
  if (pending.length === 1) return pending[0];
  return deps.discover(opts.namespace).then((t) => t.workload.name, () => undefined);
}

async function continueRestore(opts: RestoreOptions, deps: RestoreDeps): Promise<void> {
  const workload = opts.statefulSet ?? (await journalWorkload(opts, deps));
  if (!workload) throw new PluginError(`cannot tell which etcd to ${opts.abort ? 'roll back' : 'resume'} in namespace "${opts.namespace}"`, 'pass --statefulset');
  const journal = journalFor(opts, deps, opts.namespace, workload);
  // Never run a journal's plan as found: see trust.ts.
  const { state, clusterOnly } = trustedJournalState(await journal.loadEach());
  if (!state) {
    throw new PluginError(`no restore of ${opts.namespace}/${workload} is in progress (no journal in ${journal.describe()})`, 'start one with `kubectl etcd restore SNAPSHOT`');
  }
  if (state.namespace !== opts.namespace || state.workload !== workload) {
    throw new PluginError(`the restore journal in ${journal.describe()} is for ${state.namespace}/${state.workload}, not ${opts.namespace}/${workload}`, 'pass -n and --statefulset of the restore to resume');
  }
  const plan = state.plan;
  if (opts.snapshot) plan.snapshot.path = opts.snapshot;
  if (clusterOnly) {
    await checkToolsImage(plan, deps);
    deps.log.warn(`there is no local journal of this restore; the plan below comes from the cluster's copy in ${journal.describe()}: check its images, volumes and nodes`);
    deps.stderr.write(renderPlan(plan));
    await confirm(opts, deps, plan.workload.name, opts.abort ? `this rolls back every member of "${plan.workload.name}" with the plan above` : `this goes on with the plan above on every member of "${plan.workload.name}"`);
  }
  if (opts.abort && state.phase === 'finished') {
    throw new PluginError(
      `the restore of ${plan.namespace}/${plan.workload.name} (stamp ${state.stamp}) finished and was verified; there is nothing to roll back`,
      `run \`kubectl etcd restore --resume\` to close its journal; the old data is kept on every volume in ${plan.members[0]?.asideDir ?? 'member.pre-restore-*'}`,
    );
  }
  if (opts.abort) {
    deps.log.info(`rolling back the restore of ${plan.namespace}/${plan.workload.name} (stamp ${state.stamp})`);
    const outcome = await abortRestore(plan, state, runnerDeps(plan, journal, deps));
    deps.stdout.write(`rolled back ${plan.namespace}/${plan.workload.name}: the pre-restore data is in place on ${plan.members.length} member(s)${outcome.healthy ? '; healthy, one leader' : ''}\n`);
    if (!outcome.healthy) {
      throw new VerificationError(
        `the roll-back of ${plan.namespace}/${plan.workload.name} is done, but the members are not healthy: ${outcome.problems.join('; ')}`,
        `the old data may be why the restore began: check with \`kubectl etcd status -n ${plan.namespace}\``,
      );
    }
    return;
  }
  if (state.phase === 'aborting') {
    throw new PluginError(`the roll-back of the restore of ${plan.namespace}/${plan.workload.name} (stamp ${state.stamp}) was interrupted`, 'run `kubectl etcd restore --abort` again to finish it');
  }
  deps.log.info(`resuming the restore of ${plan.namespace}/${plan.workload.name} (stamp ${state.stamp}; ${state.done.length} of ${plan.steps.length} steps done)`);
  await execute(plan, state, journal, opts, deps);
}

/**
 * A journal found only in the cluster may have been written by anyone allowed to edit ConfigMaps:
 * the image it would run as etcd-tools (as root, on the member volumes) must be the etcd image the
 * StatefulSet runs, as a fresh restore would choose it.
 */
async function checkToolsImage(plan: RestorePlan, deps: RestoreDeps): Promise<void> {
  const tools = [...new Set(plan.members.flatMap((m) => m.utilityPod.spec.containers.filter((c) => c['name'] === TOOLS_CONTAINER).map((c) => String(c['image']))))];
  if (!tools.length) return;
  const topology: EtcdTopology = { namespace: plan.namespace, workload: plan.workload, members: plan.members.map((m) => m.member), image: plan.members[0]?.member.image ?? '' };
  const running = await deps.templateImage(topology).catch(() => undefined);
  const other = tools.find((t) => t !== running);
  if (running === undefined || other !== undefined) {
    throw new PluginError(
      `the restore journal found only in the cluster (configmap "${journalConfigMapName(plan.workload.name)}") would run image "${other ?? tools[0]}" as ${TOOLS_CONTAINER}, but ${running === undefined ? `the image of statefulset "${plan.workload.name}" cannot be read` : `statefulset "${plan.workload.name}" runs "${running}"`}`,
      'nothing was run; resume or roll back from the machine that started the restore (its local journal is trusted), or check the ConfigMap',
    );
  }
}

export type { RestoreSnapshotFacts };

/** The runner's collaborators for one plan, the same for a run, a resume and an abort. */
function runnerDeps(plan: RestorePlan, journal: Journal, deps: RestoreDeps): RunnerDeps {
  return {
    cluster: deps.cluster(plan.namespace),
    pods: deps.pods(plan.namespace),
    verifier: deps.verifier(plan),
    journal,
    log: { step: (m) => deps.log.info(`==> ${m}`), info: (m) => deps.log.info(m), warn: (m) => deps.log.warn(m) },
    openSnapshot: deps.openSnapshot(plan.snapshot.path),
    now: () => deps.now().getTime(),
  };
}
