/**
 * `member replace` of a member whose chart re-adds it: Bitnami's etcd image starts etcd through
 * scripts that remove and add members themselves (test/sim/images/bitnami-etcd*). A join of our
 * own (replace.ts) would fight them: the chart's preStop hook removes the member at every pod
 * deletion and its start script then wipes the data dir and adds the member again. So the chart
 * does the join, and kubectl-etcd makes sure nothing is lost on the way:
 *
 *   1. an ephemeral container in the member's pod moves the whole data dir aside on the same
 *      volume (kept, never deleted: the scripts' own re-add deletes the data dir) and leaves the
 *      data dir as the scripts re-add a member from (replace-plan.ts, ASIDE_SCRIPT);
 *   2. the failed member's entry is removed (leadership moved off it first when it leads);
 *   3. the pod is deleted; the StatefulSet starts it again and the chart's start script adds it
 *      back (`member add`, a new ID chosen by etcd) and it syncs from the leader;
 *   4. done once it is healthy as an ID other than the one replaced.
 *
 * The set-aside comes before the removal: a script that restarts the member meanwhile and finds
 * it removed wipes whatever data dir it finds. A journal ConfigMap records the replaced ID, so a
 * run cut off at any point is finished by running it again.
 */
import type { V1EphemeralContainer, V1Pod } from '@kubernetes/client-node';
import { PluginError } from '../errors.js';
import type { EtcdTopology, EtcdMember } from './topology.js';
import type { LiveMember } from './discovery/index.js';
import { addEphemeralContainerRetrying, containerLogTail, waitEphemeral } from '../kube/ephemeral.js';
import { kubeConfigMaps } from '../restore/journal-configmaps.js';
import type { MemberStatus, StatusProbe } from './status.js';
import { ASIDE_CONTAINER_PREFIX, ASIDE_SCRIPT, replacePaths, type Row } from './replace-plan.js';
import { keptCopiesDirOf } from '../restore/kept.js';
import {
  cleanup, finishedAlready, journalName, listMembers, memberToolContainer, moveLeadershipOff, removeMember, restartPod, suffix, writeJournal,
  type Journal, type ReplaceDeps, type ReplaceOptions, type ReplacePlan, type ReplaceResult, type ReplaceStep,
} from './replace.js';
import { liveEntryOf } from './replace-plan.js';

/** What planReplace found, for a member its chart re-adds. */
interface ChartInput {
  target: Row;
  asker: EtcdMember;
  live: LiveMember[];
  entry?: LiveMember;
  paths: { work: string; aside: string };
  journal: Journal | undefined;
  stamp: string;
  force: boolean;
}

/** Where Bitnami's etcd-env.sh puts the data dir, whatever ETCD_DATA_DIR the pod sets. */
const BITNAMI_DATA_DIR = '/bitnami/etcd/data';

/** The plan: set aside, remove, restart, check; refuses (before any change) what the scripts would undo. */
export function planChartReplace(topology: EtcdTopology, input: ChartInput): ReplacePlan {
  const { target, asker, live, entry } = input;
  const member = target.member;
  if (member.startScripts?.kind === 'bitnami' && member.startScripts.disasterRecovery) {
    throw new PluginError(`member "${member.pod}" runs Bitnami's scripts with ETCD_DISASTER_RECOVERY=${member.startScripts.disasterRecovery}: a start that finds no quorum, or a disaster-recovery marker left on the snapshots volume, restores a snapshot over the data dir instead of adding the member back`,
      'turn disaster recovery off for the replace (helm upgrade --set disasterRecovery.enabled=false), or restore the whole cluster with kubectl etcd restore; nothing was changed');
  }
  if (member.dataDir.replace(/\/+$/, '') !== BITNAMI_DATA_DIR) {
    throw new PluginError(`member "${member.pod}" says its data dir is ${member.dataDir}, but Bitnami's scripts always use ${BITNAMI_DATA_DIR} (etcd-env.sh sets it)`, 'replace the member by hand; nothing was changed');
  }
  // The member the journal's replace removed is gone and the chart has added it back as another,
  // not healthy yet: it may still be syncing (a run cut off, or timed out, while it waited), or
  // have failed since. Without --force this run only waits; with it, that member is replaced anew.
  const joinedSince = input.journal?.oldId !== undefined && entry !== undefined && entry.name !== '' && entry.id !== input.journal.oldId;
  if (joinedSince && !input.force) {
    return {
      target, asker, live, entry, paths: input.paths, via: 'chart', waitOnly: true, stamp: input.journal!.stamp, journalOldId: input.journal!.oldId!,
      steps: [{ step: 'cleanup', text: `wait until member ${entry.id}, which the chart added back after the replace of member ${input.journal!.oldId} (journal ${journalName(member.pod)}), is healthy (if it failed since, pass --force to replace it anew)` }],
    };
  }
  const stale = joinedSince;
  const journal = stale ? undefined : input.journal;
  const oldId = journal?.oldId ?? entry?.id;
  // A run cut off set the data aside under its own stamp: the runs after look for that copy (and
  // find it there, so they move nothing), never make another of whatever the data dir holds then.
  const paths = journal?.stamp ? replacePaths(keptCopiesDirOf(member), journal.stamp) : input.paths;
  const inList = oldId !== undefined && live.some((l) => l.id === oldId);
  const owner = topology.workload.kind === 'StatefulSet' ? `StatefulSet "${topology.workload.name}"` : 'its owner';
  const note = stale ? `(the journal of an earlier replace of member ${input.journal!.oldId} is done: member ${entry!.id} has joined since) ` : '';
  const steps: ReplaceStep[] = [
    { step: 'aside', text: `${note}start an ephemeral container in pod "${member.pod}" (image ${member.image}) that moves the data dir ${member.dataDir} to ${paths.aside} (kept, never deleted), leaving ${member.dataDir} as Bitnami's start script adds a member back from` },
    ...(inList ? [{ step: 'remove' as const, text: `remove member ${oldId} ("${member.name}") from the cluster` }] : []),
    { step: 'restart', text: `delete pod "${member.pod}": ${owner} starts it again and the chart's start script adds it back as a new member ID, which syncs from the leader` },
    { step: 'cleanup', text: `check it is healthy as a member ID other than ${oldId ?? 'the old one'}` },
  ];
  return {
    target, asker, live, ...(entry ? { entry } : {}), paths, steps, via: 'chart',
    stamp: journal?.stamp ?? input.stamp, ...(journal?.oldId ? { journalOldId: journal.oldId } : {}),
  };
}

/** The ephemeral container that sets the member's data dir aside, in the member's image, mounts and security context. */
export function asideContainer(pod: V1Pod, member: EtcdMember, name: string, aside: string, mode: 'aside' | 'recheck' = 'aside'): V1EphemeralContainer {
  return memberToolContainer(pod, member, name, (path) => ['sh', '-ec', ASIDE_SCRIPT, 'sh', path(member.dataDir), path(aside), mode]);
}

/** Carries out a chart-managed member's replace; each step is safe to run again. */
export async function replaceByChart(deps: ReplaceDeps, plan: ReplacePlan, opts: ReplaceOptions): Promise<ReplaceResult> {
  const t0 = Date.now();
  const { kube, run, probe, say } = deps;
  const member = plan.target.member;
  const { namespace } = member;
  if (plan.finishing) return finishedAlready(deps, plan, t0);
  if (plan.waitOnly) {
    say(`waiting until member ${plan.entry!.id} ("${member.name}") is healthy`);
    const back = await waitHealthyNew(probe, member, plan.journalOldId, opts.timeoutMs);
    return finishedAlready(deps, { ...plan, newId: back.memberId! }, t0);
  }
  const oldId = plan.journalOldId ?? plan.entry?.id;
  const stamp = plan.stamp ?? opts.stamp;
  await writeJournal(kube, namespace, member.pod, { member: member.name, ...(oldId ? { oldId } : {}), stamp, via: 'chart' });
  const inList = async () => oldId !== undefined && (await listMembers(run, plan.asker)).some((l) => l.id === oldId);

  // 0. leadership off a leading target first: the time between set-aside and removal stays short
  if (plan.target.status.isLeader && (await inList())) await moveLeadershipOff(run, member, plan.asker, liveEntryOf(plan.asker, plan.live)?.id, say);

  // 1. the old data aside, before the member is removed: a start of the member that finds itself
  // removed wipes whatever data dir it finds
  const moved = await runAside(deps, member, plan.paths.aside, 'aside', opts.timeoutMs, oldId);
  say(`  ${moved || 'nothing to set aside'}`);

  // 2. the old entry out (a script that restarted the member may have removed it already)
  if (await inList()) {
    say(`removing member ${oldId} ("${member.name}")`);
    await removeMember(run, plan.asker, oldId!, say);
  }

  // 3. what a start of the member between 1 and 2 may have made of the emptied data dir
  const again = await runAside(deps, member, `${plan.paths.aside}.started-meanwhile`, 'recheck', opts.timeoutMs, undefined);
  if (again) say(`  ${again}`);

  // 4. the chart adds it back: unless it did already (a run before deleted the pod), the pod goes
  const now = liveEntryOf(member, await listMembers(run, plan.asker));
  if (now?.name && now.id !== oldId) {
    say(`member "${member.name}" was added back as member ${now.id} already; waiting until it is healthy`);
  } else {
    if (now && !now.name) {
      // An entry the chart added whose etcd never started (its pod deleted in between): the legacy
      // scripts' `member add` would fail on its peer URL for ever.
      say(`removing member ${now.id}, added for "${member.name}" but never started`);
      await removeMember(run, plan.asker, now.id, say);
    }
    say(`deleting pod "${member.pod}" so that the chart's start script adds it back`);
    await restartPod(kube, member, opts.timeoutMs);
  }
  const back = await waitHealthyNew(probe, member, oldId, opts.timeoutMs);
  const newId = back.memberId!;

  // 5. done (cleanup also removes the marker for the legacy scripts, its work done)
  await kubeConfigMaps(kube).deleteConfigMap(namespace, journalName(member.pod));
  const kept = await cleanup(deps, member, plan.paths.work, newId);
  say(`member "${member.name}" is healthy as member ${newId}${back.isLeader ? ' (leader)' : ''}`);
  return { pod: member.pod, name: member.name, ...(oldId ? { oldId } : {}), newId, kept, seconds: (Date.now() - t0) / 1000 };
}

/** Runs the set-aside script in an ephemeral container of the member's pod; returns what it moved (its last line), '' when nothing. */
async function runAside(deps: ReplaceDeps, member: EtcdMember, aside: string, mode: 'aside' | 'recheck', timeoutMs: number, oldId: string | undefined): Promise<string> {
  const { kube, say } = deps;
  const { namespace } = member;
  const name = `${ASIDE_CONTAINER_PREFIX}${suffix()}`;
  say(mode === 'aside'
    ? `starting ephemeral container "${name}" in pod "${member.pod}" to set the old data aside`
    : `starting ephemeral container "${name}" in pod "${member.pod}" to check its data dir again`);
  await addEphemeralContainerRetrying(kube, namespace, member.pod, (pod) => asideContainer(pod, member, name, aside, mode));
  const ended = await waitEphemeral(kube, namespace, member.pod, name, (s) => s.kind === 'terminated', timeoutMs);
  const log = (await containerLogTail(kube, namespace, member.pod, name).catch(() => '')).trim().split('\n').filter((l) => l.startsWith('kubectl-etcd: '));
  if (ended.state.kind !== 'terminated' || ended.state.exitCode !== 0) {
    const state = mode === 'aside' && oldId ? `member ${oldId} is not removed yet` : 'the old data is kept on the member\'s volume';
    throw new PluginError(`the container "${name}" could not ${mode === 'aside' ? 'set the old data aside' : 'check the data dir'}${ended.state.kind === 'terminated' ? ` (exit code ${ended.state.exitCode})` : ''}`,
      `${state}; kubectl logs ${member.pod} -n ${namespace} -c ${name} shows why; run the command again to go on`);
  }
  const last = log.at(-1)?.replace(/^kubectl-etcd: /, '') ?? '';
  return /^no data dir/.test(last) ? '' : last;
}

/** Probes the member until it is healthy as a member ID other than the one replaced. */
async function waitHealthyNew(probe: StatusProbe, member: EtcdMember, oldId: string | undefined, timeoutMs: number): Promise<MemberStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await probe(member);
    if (s.healthy && s.memberId && s.memberId !== oldId) return s;
    if (Date.now() >= deadline) {
      throw new PluginError(`pod "${member.pod}" is not healthy as a new member after ${Math.round(timeoutMs / 1000)} s: ${s.error ?? (s.memberId ? `it answers as member ${s.memberId}` : 'no answer')}`,
        `kubectl logs ${member.pod} -n ${member.namespace} shows what the chart's start script did; a member syncing a large db may just need longer: run the command again (--timeout) to wait on, or with --force to replace it anew if it failed`);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}
