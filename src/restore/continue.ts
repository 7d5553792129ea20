/**
 * `--resume` and `--abort`: find the workload's journal, trust only what trust.ts lets through,
 * then go on with the journal's plan or roll it back.
 */
import { existsSync } from 'node:fs';
import { PluginError, UsageError, VerificationError } from '../errors.js';
import type { RestoreDeps, RestoreOptions } from './command.js';
import { identitiesFor, requireDecryptable } from '../crypt/plaintext.js';
import { executePlan, runnerDeps } from './execute.js';
import { journalFile, openJournal, pendingWorkloads, type JournalPlaces } from './journal-find.js';
import { requireAccess, restoreAccessChecks, restoreBaseAccessChecks } from './preflight.js';
import { confirmWorkload } from './prompt.js';
import { continueKubeadmRestore, KUBEADM_JOURNAL } from './kubeadm/start.js';
import { renderPlan } from './render.js';
import { abortRestore } from './runner.js';
import { checkClusterOnlyToolsImage, trustedJournalState } from './trust.js';

/** Finishes (`--resume`) or rolls back (`--abort`) the restore recorded in the workload's journal. */
export async function continueRestore(opts: RestoreOptions, deps: RestoreDeps): Promise<void> {
  const places: JournalPlaces = { stateDir: opts.stateDir, configMaps: deps.configMaps, now: deps.now };
  // A kubeadm restore's local journal first: the API server may be away while its agents work.
  if (!opts.statefulSet && existsSync(journalFile(opts.stateDir, opts.namespace, KUBEADM_JOURNAL))) return continueKubeadmRestore(opts, deps);
  await requireAccess(deps.preflight, restoreBaseAccessChecks(opts.namespace));
  const workload = opts.statefulSet ?? (await journalWorkload(places, opts.namespace, deps));
  if (!workload) throw new PluginError(`cannot tell which etcd to ${opts.abort ? 'roll back' : 'resume'} in namespace "${opts.namespace}"`, 'pass --statefulset');
  if (workload === KUBEADM_JOURNAL) return continueKubeadmRestore(opts, deps);
  const journal = openJournal(places, opts.namespace, workload);
  // Never run a journal's plan as found: see trust.ts.
  const { state, clusterOnly } = trustedJournalState(await journal.loadEach());
  if (!state) {
    throw new PluginError(`no restore of ${opts.namespace}/${workload} is in progress (no journal in ${journal.describe()})`, 'start one with `kubectl etcd restore SNAPSHOT`');
  }
  if (state.namespace !== opts.namespace || state.workload !== workload) {
    throw new PluginError(`the restore journal in ${journal.describe()} is for ${state.namespace}/${state.workload}, not ${opts.namespace}/${workload}`, 'pass -n and --statefulset of the restore to resume');
  }
  const plan = state.plan;
  await requireAccess(deps.preflight, restoreAccessChecks(plan.namespace, plan, plan.quiesce, plan.pdbs, plan.coldStart));
  if (opts.snapshot) plan.snapshot.path = opts.snapshot;
  // An age-encrypted snapshot is decrypted again for each copy still to come: the identity is asked for now, before any change.
  const identities = opts.abort ? undefined : await identitiesFor(plan.snapshot.path, { identityFiles: opts.identityFiles ?? [], stateDir: opts.stateDir, warn: (l) => deps.log.warn(l) });
  if (identities) {
    await requireDecryptable(plan.snapshot.path, identities); // the key must open this file: checked on its header, before any step runs
    opts = { ...opts, identities };
  }
  if (clusterOnly) {
    await checkClusterOnlyToolsImage(plan, (t) => deps.templateImage(t));
    deps.log.warn(`there is no local journal of this restore; the plan below comes from the cluster's copy in ${journal.describe()}: check its images, volumes and nodes`);
    deps.stderr.write(renderPlan(plan));
    const name = plan.workload.name;
    await confirmWorkload(opts, deps.ask, name, opts.abort ? `this rolls back every member of "${name}" with the plan above` : `this goes on with the plan above on every member of "${name}"`);
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
  await executePlan(plan, state, journal, opts, deps);
}

/** The workload to resume or roll back: the only one with a journal, else the one discovery finds. */
async function journalWorkload(places: JournalPlaces, namespace: string, deps: RestoreDeps): Promise<string | undefined> {
  const pending = await pendingWorkloads(places, namespace);
  if (pending.length > 1) {
    throw new UsageError(`restores of several workloads are in progress in namespace "${namespace}": ${pending.join(', ')}`, 'pass --statefulset to pick one');
  }
  if (pending.length === 1) return pending[0];
  return deps.discover(namespace).then((t) => t.workload.name, () => undefined);
}
