/**
 * A fresh restore: read the snapshot, discover the cluster, find what to quiesce, run the
 * preflight, build the plan, prove its utility pods would be admitted (dry-run creates), print the
 * plan, ask, take a safety backup, open the journal and run.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import type { EtcdTopology } from '../etcd/topology.js';
import { formatRecord } from '../ui/format.js';
import { renderPhases } from '../ui/phases.js';
import { compactUtc } from '../ui/time.js';
import type { RestoreDeps, RestoreOptions } from './command.js';
import { admitMemberPod, admitUtilityPods } from './admission.js';
import { executePlan } from './execute.js';
import { openJournal, pendingWorkloads, refuseIfJournal } from './journal-find.js';
import { JOURNAL_VERSION, type JournalState } from './journal.js';
import { buildRestorePlan, type RestorePlan } from './plan.js';
import { preflight, requireAccess, restoreBaseAccessChecks } from './preflight.js';
import { confirmWorkload } from './prompt.js';
import { findQuiesceTargets } from './quiesce.js';
import { planRecord, renderPlan } from './render.js';
import { recipientsOf } from '../crypt/age.js';
import { identitiesFor, withPlaintext } from '../crypt/plaintext.js';
import { loadRestoreSnapshot } from './snapshot.js';
import { startKubeadmRestore } from './kubeadm/start.js';

/** Plans (and with --dry-run only prints) a restore, then runs it to its verified end. */
export async function startRestore(opts: RestoreOptions, deps: RestoreDeps): Promise<void> {
  const places = { stateDir: opts.stateDir, configMaps: deps.configMaps, now: deps.now };
  const phase = (name: string) => deps.phases?.start(name);
  phase('snapshot');
  // An age file: a wrong or missing identity is refused here; the bbolt walk reads a decrypted copy in the state dir, removed at once.
  const decrypt = { identityFiles: opts.identityFiles ?? [], stateDir: opts.stateDir, warn: (l: string) => deps.log.warn(l) };
  const identities = await identitiesFor(opts.snapshot!, decrypt);
  if (identities) opts = { ...opts, identities };
  const snapshot = identities
    ? await withPlaintext(opts.snapshot!, identities, opts.stateDir, (plain) => loadRestoreSnapshot(plain, opts.snapshot!))
    : await loadRestoreSnapshot(opts.snapshot!);
  phase('access');
  // Before the first read: a user without them learns every missing permission at once.
  await requireAccess(deps.preflight, restoreBaseAccessChecks(opts.namespace));
  // A restore in progress may have scaled etcd to 0, so look for its journal before discovery.
  for (const pending of await pendingWorkloads(places, opts.namespace)) {
    if (!opts.statefulSet || opts.statefulSet === pending) await refuseIfJournal(openJournal(places, opts.namespace, pending));
  }
  phase('discover');
  const topology = await deps.discover(opts.namespace, opts.statefulSet, true);
  if (topology.workload.staticPods) return startKubeadmRestore(opts, deps, topology, snapshot, (t) => takeSafetyBackup(opts, deps, t));
  if (topology.workload.kind !== 'StatefulSet') {
    throw new UsageError(`etcd in namespace "${topology.namespace}" runs as bare or static pods ("${topology.workload.name}"); restore handles StatefulSets only`, 'follow the static-pod runbook, or pass --statefulset');
  }
  const journal = openJournal(places, topology.namespace, topology.workload.name);
  await refuseIfJournal(journal);
  phase('preflight');
  await deps.resolveNodes(topology);
  const { image: etcdImage, memberPod, ...coldStart } = await deps.templateFacts(topology);
  const { quiesce, pdbs } = findQuiesceTargets(topology, await deps.listWorkloads(topology.namespace), opts.quiesce);
  const checked = await preflight({ topology, etcdImage, utilityImage: opts.utilityImage, snapshot, quiesce, pdbs, force: opts.force, coldStart: coldStart.hold, inPlace: opts.inPlace, ...(memberPod ? { memberPod } : {}) }, deps.preflight);
  for (const m of topology.members) {
    const ids = checked.memberIds[m.name];
    if (ids) Object.assign(m, { runAsUser: ids.uid, runAsGroup: ids.gid });
  }
  const stamp = compactUtc(deps.now());
  const plan = buildRestorePlan({
    topology, snapshot, quiesce, pdbs, utilityImage: checked.utilityImage, etcdToolsImage: checked.etcdToolsImage, tool: checked.tool, stamp, inPlace: opts.inPlace,
    ...(coldStart.hold ? { coldStart: coldStart.hold } : {}),
  });
  plan.warnings.unshift(...checked.warnings, ...(coldStart.warning ? [coldStart.warning] : []));
  if (topology.podless?.length) {
    const gone = topology.podless.map((p) => `"${p}"`).join(', ');
    plan.warnings.unshift(`the pod${topology.podless.length > 1 ? 's' : ''} of member${topology.podless.length > 1 ? 's' : ''} ${gone} ${topology.podless.length > 1 ? 'are' : 'is'} gone (not re-created yet?): planned from the statefulset's template and ${topology.podless.length > 1 ? 'their claims' : 'its claim'}, so that no member is left out`);
  }
  phase('admission');
  // Still before the first change (dry runs store nothing), and before --dry-run prints the plan.
  await admitUtilityPods(plan, deps.cluster(topology.namespace));
  if (memberPod) await admitMemberPod(plan, memberPod, deps.cluster(topology.namespace));
  if (!plan.tool.bumpRevision && quiesce.length) {
    plan.warnings = plan.warnings.map((w) => (w.includes('restart every kube-apiserver') ? `${w} (the quiesced ${quiesce.map((q) => q.name).join(', ')} restart anyway)` : w));
  }

  deps.phases?.end();
  if (opts.dryRun) {
    deps.stdout.write(opts.output ? await formatRecord(planRecord(plan, checked.space), opts.output) : renderPlan(plan, checked.space));
    deps.log.info('dry run: nothing was changed');
    return;
  }
  deps.stderr.write(renderPlan(plan, checked.space));
  await confirmWorkload(opts, deps.ask, topology.workload.name);

  if (opts.safetyBackup) phase('safety backup');
  const safety = opts.safetyBackup ? await takeSafetyBackup(opts, deps, topology) : undefined;
  phase('journal');
  const state = initialState(plan, deps.now());
  await journal.save(state);
  deps.log.info(`restore journal: ${journal.describe()}`);
  deps.phases?.end();
  if (deps.phases) deps.log.debug(1, `where the time went before the steps: ${renderPhases(deps.phases.list())}`);
  await executePlan(plan, state, journal, opts, deps, safety);
}

/** Backs the current cluster up into the state dir; undefined when it does not answer. */
async function takeSafetyBackup(opts: RestoreOptions, deps: RestoreDeps, topology: EtcdTopology): Promise<string | undefined> {
  deps.log.info('taking a safety backup of the current cluster (skip with --no-safety-backup)');
  const dir = join(opts.stateDir, 'safety-backups');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // Restoring an encrypted snapshot: the current cluster's copy is encrypted too, to the keys the user holds.
  const encrypt = opts.identities ? { to: await recipientsOf(opts.identities), stateDir: opts.stateDir } : undefined;
  const safety = await deps.safetyBackup(topology, dir, encrypt);
  if (safety) deps.log.info(`safety backup: ${safety}`);
  else deps.log.warn('the current cluster does not answer; no safety backup taken');
  return safety;
}

/** The journal of a restore about to start: nothing done yet, and what must be put back. */
function initialState(plan: RestorePlan, now: Date): JournalState {
  const s = plan.snapshot;
  return {
    version: JOURNAL_VERSION,
    stamp: plan.stamp,
    namespace: plan.namespace,
    workload: plan.workload.name,
    snapshot: { path: s.path, sha256: s.sha256, revision: s.revision, totalKey: s.totalKey },
    etcdReplicas: plan.replicas,
    quiesce: plan.quiesce,
    pdbs: plan.pdbs,
    done: [],
    phase: 'running',
    plan,
    startedAt: now.toISOString(),
    updatedAt: '',
  };
}
