/**
 * Runs a plan (fresh or resumed) to its verified end and reports the outcome: per-step timings on
 * stderr, the result line or record on stdout. Also builds the runner's collaborators, the same
 * for a run, a resume and a roll-back.
 */
import { formatRecord } from '../ui/format.js';
import type { PhaseTime } from '../ui/phases.js';
import type { RestoreDeps, RestoreOptions } from './command.js';
import { historyConfigMapName, recordVerifiedRestore } from './history.js';
import type { Journal, JournalState } from './journal.js';
import type { RestorePlan } from './plan.js';
import { renderTimings } from './render.js';
import { runRestorePlan, type RunnerDeps, type StepTiming } from './runner.js';

/** Runs the plan through the journal; on failure the journal stays for --resume / --abort. */
export async function executePlan(plan: RestorePlan, state: JournalState, journal: Journal, opts: RestoreOptions, deps: RestoreDeps, safety?: string): Promise<void> {
  const started = deps.now().getTime();
  let timings: StepTiming[];
  try {
    timings = await runRestorePlan(plan, state, runnerDeps(plan, journal, deps, opts.identities));
  } catch (err) {
    deps.log.info(`the restore stopped; its journal is kept in ${journal.describe()}`);
    throw err;
  }
  const wall = deps.now().getTime() - started;
  deps.stderr.write(renderTimings(timings, wall));
  for (const w of plan.warnings) deps.log.warn(w);
  if (opts.output) deps.stdout.write(await formatRecord(restoreResult(plan, timings, wall, safety, deps.phases?.list()), opts.output));
  else deps.stdout.write(`restored ${plan.namespace}/${plan.workload.name} from "${plan.snapshot.path}" (revision ${plan.snapshot.revision}, ${plan.snapshot.liveKeys ?? '?'} keys) on ${plan.members.length} member(s) in ${(wall / 1000).toFixed(1)}s; verified\n`);
}

/** The result as data (-o json|yaml). */
function restoreResult(plan: RestorePlan, timings: StepTiming[], wall: number, safety?: string, before?: PhaseTime[]): Record<string, unknown> {
  return {
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
    // where the time before the first step went (a fresh restore; not a resume)
    ...(before?.length ? { before } : {}),
    warnings: plan.warnings,
  };
}

/** The runner's collaborators for one plan, the same for a run, a resume and an abort. */
export function runnerDeps(plan: RestorePlan, journal: Journal, deps: RestoreDeps, identities?: string[]): RunnerDeps {
  return {
    cluster: deps.cluster(plan.namespace),
    pods: deps.pods(plan.namespace),
    verifier: deps.verifier(plan),
    journal,
    log: { step: (m) => deps.log.info(`==> ${m}`), info: (m) => deps.log.info(m), warn: (m) => deps.log.warn(m) },
    openSnapshot: deps.openSnapshot(plan.snapshot.path, identities),
    now: () => deps.now().getTime(),
    // Kept copies of a verified restore may be pruned later: the journal that says so is removed next.
    recordVerified: (state) => recordVerifiedRestore(deps.configMaps, state, deps.now()).catch((err: unknown) => {
      deps.log.warn(`cannot record the verified restore in configmap "${historyConfigMapName(state.workload)}" (${(err as Error).message.split('\n')[0]}); \`restore --prune-kept\` will not remove its kept copies`);
    }),
  };
}
