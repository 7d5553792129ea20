/**
 * `kubectl etcd restore --prune-kept [--keep N]`: deletes the old data earlier restores kept on the
 * member volumes (`member.pre-restore-<stamp>`, kept.ts), and member replaces
 * (`member.pre-replace-<stamp>`), once they are no longer needed. Refused
 * while a restore journal is open (its copy is what --abort puts back). Plans first — the kept
 * copies of every member, measured with `du` in the member's etcd container as the restore's
 * preflight reads free space — then asks (or --yes / --dry-run), and deletes through a utility
 * pod pinned to each member's node and volume, as a restore does. Only copies of restores the
 * history records as finished and verified (history.ts), and of member replaces no longer under way
 * (no replace journal), are deleted; the newest N always stay.
 */
import { ForbiddenError, PluginError, UsageError } from '../errors.js';
import { memberContainer, type EtcdMember, type EtcdTopology } from '../etcd/topology.js';
import { journalName } from '../etcd/replace-plan.js';
import { formatBytes } from '../ui/bytes.js';
import { formatRecord } from '../ui/format.js';
import type { RestoreDeps, RestoreOptions } from './command.js';
import { settleAll } from './handlers.js';
import { loadVerifiedRestores } from './history.js';
import { openJournal, pendingWorkloads, type JournalPlaces } from './journal-find.js';
import type { Journal } from './journal.js';
import { keptCopiesDirOf, measureKeptArgv, parseKeptListing, removeKeptArgv, selectPrunable, type KeepReason, type KeptCopy } from './kept.js';
import { utilityPodManifest } from './manifests.js';
import { confirmWorkload } from './prompt.js';
import { DEFAULT_KEEP } from './keep-count.js';

/** What a prune does on one member's volume. */
export interface MemberPrune {
  member: EtcdMember;
  /** Where the member's kept copies live. */
  dir: string;
  /** The live member/ dir's size: never touched. */
  liveBytes?: number;
  prune: KeptCopy[];
  keep: Array<{ copy: KeptCopy; reason: KeepReason }>;
}

/** The whole prune, as data: printed, asked about, then carried out. */
export interface PrunePlan {
  namespace: string;
  workload: string;
  keep: number;
  members: MemberPrune[];
  /** Bytes the deleted copies take, on all members together. */
  freesBytes: number;
}

/** Plans, asks and prunes the kept copies of one etcd workload. */
export async function pruneKeptCopies(opts: RestoreOptions, deps: RestoreDeps): Promise<void> {
  const places: JournalPlaces = { stateDir: opts.stateDir, configMaps: deps.configMaps, now: deps.now };
  const keep = opts.keep ?? DEFAULT_KEEP;
  // A restore in progress may have scaled etcd to 0: look for its journal before discovery.
  for (const pending of await pendingWorkloads(places, opts.namespace)) {
    if (!opts.statefulSet || opts.statefulSet === pending) await refuseWhileJournal(openJournal(places, opts.namespace, pending));
  }
  const topology = await deps.discover(opts.namespace, opts.statefulSet);
  if (topology.workload.kind !== 'StatefulSet') {
    throw new UsageError(`etcd in namespace "${topology.namespace}" runs as bare or static pods ("${topology.workload.name}"); restores, and so kept copies, are for StatefulSets only`, 'pass --statefulset');
  }
  const journal = openJournal(places, topology.namespace, topology.workload.name);
  await refuseWhileJournal(journal);
  const verified = new Set((await loadVerifiedRestores(deps.configMaps, topology.namespace, topology.workload.name)).map((v) => v.stamp));
  const plan = await planPrune(topology, verified, keep, deps);

  if (opts.dryRun) {
    deps.stdout.write(opts.output ? await formatRecord(pruneRecord(plan, 'PrunePlan'), opts.output) : renderPrunePlan(plan));
    deps.log.info('dry run: nothing was changed');
    return;
  }
  const copies = plan.members.reduce((n, m) => n + m.prune.length, 0);
  if (copies === 0) {
    deps.stderr.write(renderPrunePlan(plan));
    if (opts.output) deps.stdout.write(await formatRecord(pruneRecord(plan, 'PruneResult'), opts.output));
    else deps.stdout.write(`nothing to prune in ${plan.namespace}/${plan.workload}: no kept copy is both older than the newest ${keep} and of a verified restore or a finished member replace\n`);
    return;
  }
  deps.stderr.write(renderPrunePlan(plan));
  await confirmWorkload(opts, deps.ask, plan.workload, `this deletes ${copies} kept cop${copies > 1 ? 'ies' : 'y'} of the old data of "${plan.workload}" (listed above)`);
  // A restore started while we asked needs its copies: look once more.
  await refuseWhileJournal(journal);
  await removePlanned(plan, opts.utilityImage ?? (await deps.templateImage(topology)), deps);
  if (opts.output) deps.stdout.write(await formatRecord(pruneRecord(plan, 'PruneResult'), opts.output));
  else deps.stdout.write(`pruned ${copies} kept cop${copies > 1 ? 'ies' : 'y'} on ${plan.members.filter((m) => m.prune.length).length} member(s) of ${plan.namespace}/${plan.workload}: freed ${formatBytes(plan.freesBytes)}\n`);
}

/** Refuses while the workload has a restore journal: an unfinished restore needs its kept copy for --abort. */
async function refuseWhileJournal(journal: Journal): Promise<void> {
  const open = await journal.load();
  if (!open) return;
  const which = `${open.namespace}/${open.workload} (stamp ${open.stamp})`;
  if (open.phase === 'finished') {
    throw new PluginError(`the restore of ${which} finished, but its journal is still in ${journal.describe()}; nothing was pruned`, 'run `kubectl etcd restore --resume` to close it, then prune again');
  }
  throw new PluginError(
    `a restore of ${which} is in progress, recorded in ${journal.describe()}; its kept copies are what --abort puts back, so nothing was pruned`,
    'finish it with `kubectl etcd restore --resume` or roll it back with `--abort`, then prune again',
  );
}

/** Lists and measures every member's kept copies (in its etcd container) and picks what to delete. */
export async function planPrune(topology: EtcdTopology, verified: ReadonlySet<string>, keep: number, deps: Pick<RestoreDeps, 'preflight' | 'configMaps'>): Promise<PrunePlan> {
  const members = await Promise.all(topology.members.map(async (member): Promise<MemberPrune> => {
    const space = parseKeptListing(await listInMember(member, deps));
    // A member replace under way (its journal is there) may still need the copy it set aside.
    const replaceOpen = space.keptCopies.some((c) => c.kind === 'replace') && (await deps.configMaps.readConfigMap(topology.namespace, journalName(member.pod))) !== undefined;
    return { member, dir: keptCopiesDirOf(member), liveBytes: space.liveBytes, ...selectPrunable(space.keptCopies, verified, keep, replaceOpen) };
  }));
  const freesBytes = members.reduce((n, m) => n + m.prune.reduce((k, c) => k + c.bytes, 0), 0);
  return { namespace: topology.namespace, workload: topology.workload.name, keep, members, freesBytes };
}

/** What measureKeptArgv prints in the member's etcd container; a member that cannot answer stops the prune. */
async function listInMember(member: EtcdMember, deps: Pick<RestoreDeps, 'preflight'>): Promise<string> {
  const cannot = (why: string) => new PluginError(
    `cannot list the kept copies of member "${member.name}" (${why}); nothing was pruned`,
    `start its pod (kubectl get pod ${member.pod} -n ${member.namespace}), or check that its image has sh and du`,
  );
  if (member.ready === undefined && !member.node) throw cannot(`pod "${member.pod}" is not running`);
  let r;
  try {
    r = await deps.preflight.run(memberContainer(member), measureKeptArgv(member));
  } catch (err) {
    if (err instanceof ForbiddenError) throw err;
    throw cannot((err as Error).message.split('\n')[0]!);
  }
  if (r.exitCode !== 0) throw cannot(`exit code ${r.exitCode}: ${(r.stderr || r.stdout).trim().split('\n').pop() ?? ''}`);
  return r.stdout;
}

/** Deletes the planned copies of every member through a utility pod on its node and volume, removed afterwards. */
async function removePlanned(plan: PrunePlan, image: string, deps: RestoreDeps): Promise<void> {
  const cluster = deps.cluster(plan.namespace);
  const pods = deps.pods(plan.namespace);
  await settleAll(plan.members.filter((m) => m.prune.length).map(async (m) => {
    const made = prunePodManifest(m.member, image);
    const pod = made.manifest.metadata.name;
    try {
      deps.log.info(`==> delete ${m.prune.map((c) => c.name).join(', ')} of member "${m.member.name}" (pod "${pod}" on node "${m.member.node ?? ''}")`);
      await cluster.createPodAndWait(made.manifest);
      const r = await pods.run({ namespace: plan.namespace, pod, container: made.shellContainer }, removeKeptArgv(m.member, m.prune));
      if (r.exitCode !== 0) {
        throw new PluginError(
          `deleting the kept copies of member "${m.member.name}" failed in pod "${pod}" (exit code ${r.exitCode}): ${(r.stderr || r.stdout).trim().split('\n').pop() ?? ''}`,
          'check the volume, then run `kubectl etcd restore --prune-kept` again',
        );
      }
    } finally {
      await cluster.deletePodAndWait(pod);
    }
  }));
}

/**
 * A restore's utility pod for the member, named `etcd-prune-N` and labelled
 * `kubectl-etcd/restore=prune`: a pod a killed prune left behind never blocks a restore (other
 * name) and is reused by the next prune (same labels).
 */
function prunePodManifest(member: EtcdMember, image: string): ReturnType<typeof utilityPodManifest> {
  const made = utilityPodManifest({ member, image, stamp: 'prune' });
  const name = made.manifest.metadata.name.replace(/^etcd-utility-/, 'etcd-prune-');
  return { ...made, manifest: { ...made.manifest, metadata: { ...made.manifest.metadata, name } } };
}

const REASONS: Record<KeepReason, string> = { newest: 'newest', 'not-verified': 'its restore is not recorded as verified', 'replace-open': 'a member replace of it is under way' };

/** The prune plan as readable text: per member, what is deleted and what stays, and the total freed. */
export function renderPrunePlan(plan: PrunePlan): string {
  const lines = [`prune plan for statefulset "${plan.workload}" in namespace "${plan.namespace}": keep the newest ${plan.keep} kept cop${plan.keep === 1 ? 'y' : 'ies'}, delete older copies of verified restores and finished member replaces`];
  for (const m of plan.members) {
    const live = m.liveBytes !== undefined ? `, live data ${formatBytes(m.liveBytes)} untouched` : '';
    lines.push(`  ${m.member.name}: node "${m.member.node ?? ''}", kept copies in ${m.dir}${live}`);
    const rows = [
      ...m.prune.map((c) => ({ c, text: `    delete ${c.name} (${formatBytes(c.bytes)})` })),
      ...m.keep.map(({ copy, reason }) => ({ c: copy, text: `    keep   ${copy.name} (${formatBytes(copy.bytes)}; ${REASONS[reason]})` })),
    ].sort((a, b) => a.c.stamp.localeCompare(b.c.stamp));
    lines.push(...(rows.length ? rows.map((r) => r.text) : ['    no kept copies']));
  }
  lines.push(`  frees ${formatBytes(plan.freesBytes)} in all`);
  return lines.join('\n') + '\n';
}

/** The plan (or, once done, the result) as data for -o json|yaml. */
export function pruneRecord(plan: PrunePlan, kind: 'PrunePlan' | 'PruneResult'): Record<string, unknown> {
  const copy = (c: KeptCopy) => ({ name: c.name, bytes: c.bytes });
  return {
    kind,
    namespace: plan.namespace,
    workload: plan.workload,
    keep: plan.keep,
    members: plan.members.map((m) => ({
      name: m.member.name,
      node: m.member.node,
      dir: m.dir,
      liveBytes: m.liveBytes,
      [kind === 'PrunePlan' ? 'delete' : 'deleted']: m.prune.map(copy),
      kept: m.keep.map((k) => ({ ...copy(k.copy), reason: k.reason })),
    })),
    freedBytes: plan.freesBytes,
  };
}
