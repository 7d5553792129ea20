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
import { memberContainer, type EtcdTopology, type EtcdMember } from './topology.js';
import type { LiveMember } from './discovery/index.js';
import { findEtcdContainer } from './discovery/index.js';
import { addEphemeralContainer, containerLogTail, waitEphemeral } from '../kube/ephemeral.js';
import { getPod } from '../kube/pods.js';
import { ConflictError } from '../kube/errors.js';
import { kubeConfigMaps } from '../restore/journal-configmaps.js';
import type { MemberStatus, StatusProbe } from './status.js';
import { ASIDE_CONTAINER_PREFIX, ASIDE_SCRIPT, READD_MARKER, escapeKubeVars, replacePaths, type Row } from './replace-plan.js';
import type { ContainerCommand } from '../kube/exec.js';
import { joinPath, keptCopiesDirOf } from '../restore/kept.js';
import {
  cleanup, deletePod, joinMounts, journalName, listMembers, moveLeadershipOff, reconfigure, suffix, writeJournal,
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
}

/** The plan: set aside, remove, restart, check. */
export function planChartReplace(topology: EtcdTopology, input: ChartInput): ReplacePlan {
  const { target, asker, live, entry, journal } = input;
  // A run cut off set the data aside under its own stamp: the runs after look for that copy (and
  // find it there, so they move nothing), never make another of whatever the data dir holds then.
  const paths = journal?.stamp ? replacePaths(keptCopiesDirOf(target.member), journal.stamp) : input.paths;
  const member = target.member;
  const oldId = journal?.oldId ?? entry?.id;
  const inList = oldId !== undefined && live.some((l) => l.id === oldId);
  const owner = topology.workload.kind === 'StatefulSet' ? `StatefulSet "${topology.workload.name}"` : 'its owner';
  const steps: ReplaceStep[] = [
    { step: 'aside', text: `start an ephemeral container in pod "${member.pod}" (image ${member.image}) that moves the data dir ${member.dataDir} to ${paths.aside} (kept, never deleted), leaving ${member.dataDir} as Bitnami's start script adds a member back from` },
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
export function asideContainer(pod: V1Pod, member: EtcdMember, name: string, aside: string): V1EphemeralContainer {
  const found = findEtcdContainer(pod, member.container);
  if (!found) throw new PluginError(`pod "${member.pod}" has no container "${member.container}"`, 'check the pod with kubectl describe');
  const c = found.container;
  const view = joinMounts(c.volumeMounts ?? [], member);
  return {
    name,
    image: c.image,
    ...(c.imagePullPolicy ? { imagePullPolicy: c.imagePullPolicy } : {}),
    command: ['sh', '-ec', ASIDE_SCRIPT, 'sh', view.path(member.dataDir), view.path(aside)].map(escapeKubeVars),
    ...(view.mounts.length ? { volumeMounts: view.mounts } : {}),
    ...(c.securityContext ? { securityContext: c.securityContext } : {}),
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
}

/** Carries out a chart-managed member's replace; each step is safe to run again. */
export async function replaceByChart(deps: ReplaceDeps, plan: ReplacePlan, opts: ReplaceOptions): Promise<ReplaceResult> {
  const t0 = Date.now();
  const { kube, run, probe, say } = deps;
  const member = plan.target.member;
  const { namespace } = member;
  const hint = (state: string) => `${state}; run the command again to go on (the old data is kept on the member's volume)`;
  if (plan.finishing) {
    await kubeConfigMaps(kube).deleteConfigMap(namespace, journalName(member.pod));
    await removeMarker(run, member);
    const kept = await cleanup(run, member, plan.paths.work, plan.newId!);
    say(`member "${member.name}" was replaced already and is healthy as member ${plan.newId}`);
    return { pod: member.pod, name: member.name, newId: plan.newId!, kept, seconds: (Date.now() - t0) / 1000 };
  }
  const oldId = plan.journalOldId ?? plan.entry?.id;
  const stamp = plan.stamp ?? opts.stamp;
  await writeJournal(kube, namespace, member.pod, { member: member.name, ...(oldId ? { oldId } : {}), stamp, via: 'chart' });

  // 1. the old data aside, before the member is removed
  const name = `${ASIDE_CONTAINER_PREFIX}${suffix()}`;
  say(`starting ephemeral container "${name}" in pod "${member.pod}" to set the old data aside`);
  for (let attempt = 1; ; attempt++) {
    const pod = await getPod(kube, namespace, member.pod);
    try {
      await addEphemeralContainer(kube, pod, asideContainer(pod, member, name, plan.paths.aside));
      break;
    } catch (err) {
      // The pod's status changes often while it crash-loops: a conflict is read again and retried.
      if (!(err instanceof ConflictError) || attempt >= 5) throw err;
    }
  }
  const ended = await waitEphemeral(kube, namespace, member.pod, name, (s) => s.kind === 'terminated', opts.timeoutMs);
  if (ended.state.kind !== 'terminated' || ended.state.exitCode !== 0) {
    const log = await containerLogTail(kube, namespace, member.pod, name);
    throw new PluginError(`the container "${name}" could not set the old data aside${ended.state.kind === 'terminated' ? ` (exit code ${ended.state.exitCode})` : ''}: ${log.trim().split('\n').at(-1) ?? ended.state.kind}`,
      `member ${oldId ?? ''} is still in the cluster and nothing was removed; kubectl logs ${member.pod} -n ${namespace} -c ${name} shows the whole log`);
  }
  say(`  the old data is kept in ${plan.paths.aside}`);

  // 2. the old entry out (a script that restarted the member may have removed it already)
  if (oldId && (await listMembers(run, plan.asker)).some((l) => l.id === oldId)) {
    if (plan.target.status.isLeader) await moveLeadershipOff(run, member, plan.asker, liveEntryOf(plan.asker, plan.live)?.id, say);
    say(`removing member ${oldId} ("${member.name}")`);
    await reconfigure(run, plan.asker, ['member', 'remove', oldId], `etcdctl member remove ${oldId}`, hint(`member ${oldId} may or may not be removed`), say,
      (live) => (live.some((l) => l.id === oldId) ? undefined : ''));
  }

  // 3. the chart adds it back
  say(`deleting pod "${member.pod}" so that the chart's start script adds it back`);
  await deletePod(kube, member, opts.timeoutMs);
  const back = await waitHealthyNew(probe, member, oldId, opts.timeoutMs);
  const newId = back.memberId!;

  // 4. done: the marker for the legacy scripts has done its work
  await kubeConfigMaps(kube).deleteConfigMap(namespace, journalName(member.pod));
  await removeMarker(run, member);
  const kept = await cleanup(run, member, plan.paths.work, newId);
  say(`member "${member.name}" is healthy as member ${newId}${back.isLeader ? ' (leader)' : ''}`);
  return { pod: member.pod, name: member.name, ...(oldId ? { oldId } : {}), newId, kept, seconds: (Date.now() - t0) / 1000 };
}

/** Removes the marker the set-aside left for the legacy scripts (best effort: a leftover one is harmless). */
async function removeMarker(run: ContainerCommand, member: EtcdMember): Promise<void> {
  await run(memberContainer(member), ['rm', '-f', joinPath(member.dataDir, READD_MARKER)]).catch(() => undefined);
}

/** Probes the member until it is healthy as a member ID other than the one replaced. */
async function waitHealthyNew(probe: StatusProbe, member: EtcdMember, oldId: string | undefined, timeoutMs: number): Promise<MemberStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await probe(member);
    if (s.healthy && s.memberId && s.memberId !== oldId) return s;
    if (Date.now() >= deadline) {
      throw new PluginError(`pod "${member.pod}" is not healthy as a new member after ${Math.round(timeoutMs / 1000)} s: ${s.error ?? (s.memberId ? `it answers as member ${s.memberId}` : 'no answer')}`,
        `kubectl logs ${member.pod} -n ${member.namespace} shows what the chart's start script did; run the command again to go on`);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}
