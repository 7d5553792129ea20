/**
 * `member replace`: brings one failed member back while the others keep serving (replace-plan.ts
 * says why it joins through an ephemeral container). Every step is read back from the cluster on
 * each run, so a run cut off at any point is finished by running it again:
 *
 *   1. membership: the failed member's entry is removed and the member added again (new ID); an
 *      entry already added (unstarted), or one a join container runs as, is kept;
 *   2. a join container (ephemeral, in the member's pod) sets the old data aside and joins;
 *   3. once it is healthy and has caught up with the leader it is told to stop, and it moves the
 *      joined data into place;
 *   4. the pod is deleted, and the StatefulSet's pod starts etcd on that data: the same name and
 *      peer URL, the new ID;
 *   5. the work dir on the volume is removed once the member is healthy as the new ID.
 */
import type { V1EnvVar, V1EphemeralContainer, V1Pod, V1VolumeMount } from '@kubernetes/client-node';
import { PluginError } from '../errors.js';
import type { ContainerCommand } from '../kube/exec.js';
import type { KubeContext } from '../kube/client.js';
import { addEphemeralContainerRetrying, containerLogTail, ephemeralState, waitEphemeral, type EphemeralState } from '../kube/ephemeral.js';
import { getPod, waitForPodGone } from '../kube/pods.js';
import { deletePod } from '../kube/workloads.js';
import { apiError, readOrUndefined } from '../kube/errors.js';
import { joinPath, keptCopiesDirOf } from '../restore/kept.js';
import { kubeConfigMaps } from '../restore/journal-configmaps.js';
import { containerEnv, expandKubeVars, findEtcdContainer, parseMemberList, type LiveMember } from './discovery/index.js';
import { normalizeUrl } from './discovery/confirm.js';
import { etcdArgs } from './discovery/command.js';
import { connectionFlags, memberList, moveLeader, targetOf } from './etcdctl.js';
import { lastLine, type StatusProbe, type MemberStatus } from './status.js';
import { formatBytes } from '../ui/bytes.js';
import { DEFAULT_SHELL_IMAGE } from '../restore/preflight.js';
import { memberContainer, type EtcdMember, type EtcdTopology } from './topology.js';
import { asideContainer, planChartReplace, replaceByChart } from './replace-chart.js';
import {
  ASIDE_CONTAINER_PREFIX, JOIN_CONTAINER_PREFIX, READD_MARKER, JOIN_ID_ENV, JOIN_PREP_SCRIPT, JOIN_SCRIPT, JOIN_SWAP_SCRIPT, PREP_CONTAINER_PREFIX, SPACE_CONTAINER_PREFIX, SWAP_CONTAINER_PREFIX, caughtUp, droppedEnv, escapeKubeVars, freeSpaceArgv, joinArgs, joinInitialCluster,
  parseDfAvailable, replaceNeedsBytes,
  journalName, liveEntryOf, parseMemberAdd, replacePaths, replaceRefusal, type Row,
} from './replace-plan.js';

/** Progress lines (stderr). */
export type Say = (line: string) => void;

/** What a replace needs from the world. */
export interface ReplaceDeps {
  kube: KubeContext;
  run: ContainerCommand;
  probe: StatusProbe;
  say: Say;
}

/** What the user asked. */
export interface ReplaceOptions {
  pod: string;
  force: boolean;
  /** Join and restart timeout, each. */
  timeoutMs: number;
  /** Compact UTC stamp of this run (names the kept copy). */
  stamp: string;
  /** The image with a shell for the steps a distroless etcd image cannot run (--utility-image). */
  utilityImage?: string;
}

/** One action of the plan, for the printout and --dry-run. */
export interface ReplaceStep {
  step: 'aside' | 'remove' | 'add' | 'join' | 'swap' | 'restart' | 'cleanup';
  text: string;
}

/** What was found before any change: the plan. */
export interface ReplacePlan {
  target: Row;
  asker: EtcdMember;
  live: LiveMember[];
  /** The member's current entry in the member list, when it has one. */
  entry?: LiveMember;
  /** The join container already in the pod (running, or ended) and the ID it joins as. */
  join?: { name: string; id: string; state: ReturnType<typeof ephemeralState> };
  /** The ID the member comes back as, when known before the run (an entry already added). */
  newId?: string;
  paths: { work: string; aside: string };
  steps: ReplaceStep[];
  /** The member ID replaced, as a run before recorded it. */
  journalOldId?: string;
  /** The stamp of the run that began this replace (its journal's), else this run's. */
  stamp?: string;
  /** Only the cleanup is left: the member is back and healthy as the ID its volume records. */
  finishing?: boolean;
  /** The member's chart re-adds it (Bitnami's start scripts): replace-chart.ts. */
  via?: 'chart';
  /** The chart added the member back already: only wait until it is healthy. */
  waitOnly?: boolean;
  /** The largest db of the healthy members: what the replaced member receives. */
  dbBytes?: number;
  /**
   * Set when the etcd image has no shell (distroless): the image the join's shell steps run in,
   * each in an ephemeral container of its own beside etcd's (joinSplit).
   */
  shellImage?: string;
  /** The journal's stoppedIn (joinSplit). */
  stoppedIn?: string;
  /** A journal was there: a run before made changes (the space check is for a fresh run only). */
  resumed?: boolean;
}

/** What a finished replace reports. */
export interface ReplaceResult {
  pod: string;
  name: string;
  oldId?: string;
  newId: string;
  /** The kept copies of old data on the member's volume. */
  kept: string[];
  seconds: number;
}

/** A pod's ephemeral containers of one kind (join, or a distroless join's swap): name and the member ID each is for, oldest first. */
function idContainers(pod: V1Pod, prefix: string): Array<{ name: string; id: string }> {
  return (pod.spec?.ephemeralContainers ?? [])
    .filter((c) => c.name.startsWith(prefix))
    .map((c) => ({ name: c.name, id: c.env?.find((e) => e.name === JOIN_ID_ENV)?.value ?? '' }));
}

const joinContainers = (pod: V1Pod) => idContainers(pod, JOIN_CONTAINER_PREFIX);
const swapContainers = (pod: V1Pod) => idContainers(pod, SWAP_CONTAINER_PREFIX);

/** Refuses a second join container for `id` running or starting in the pod (a second member replace): checked as the new one is added. */
function refuseSecondJoin(pod: V1Pod, id: string, except?: string): void {
  const other = joinContainers(pod).find((j) => j.id === id && j.name !== except && ['running', 'waiting'].includes(ephemeralState(pod, j.name).kind) && !stuckWaiting(ephemeralState(pod, j.name)));
  if (other) throw new PluginError(`another join container ("${other.name}") for member ${id} appeared in pod "${pod.metadata?.name ?? ''}" meanwhile: is a second member replace running?`, 'run the command again once that one has ended');
}

/** An ephemeral container that waits for good (an image it cannot pull, a config the kubelet refuses): failed, not under way. */
function stuckWaiting(st: EphemeralState): boolean {
  return st.kind === 'waiting' && st.reason !== undefined && st.reason !== 'ContainerCreating' && st.reason !== 'PodInitializing';
}

/** An ephemeral container that ended well. */
function isDone(st: EphemeralState): boolean {
  return st.kind === 'terminated' && st.exitCode === 0;
}

/**
 * The pod's join container a run before started and this one goes on with: the last one, while it
 * runs or starts, or once it ended well if the journal names its member ID. A join that ended well
 * without a journal naming it belongs to a replace that finished (its journal removed) with the pod
 * kept, as when the member came back on the swapped data before the pod was deleted: a later
 * replace of that member (--force) must start anew, not take that member's ID for its own.
 */
export function underwayJoin(pod: V1Pod, journal: Pick<Journal, 'newId'> | undefined): ({ name: string; id: string; state: EphemeralState }) | undefined {
  const last = joinContainers(pod).at(-1);
  if (!last) return undefined;
  const state = ephemeralState(pod, last.name);
  // A join container that cannot start (image pull, config error) is failed, not under way.
  if (stuckWaiting(state)) return undefined;
  if (state.kind === 'running' || state.kind === 'waiting') return { ...last, state };
  if (isDone(state) && journal?.newId === last.id) return { ...last, state };
  return undefined;
}

/** Lists the members through a healthy member. */
export async function listMembers(run: ContainerCommand, asker: EtcdMember): Promise<LiveMember[]> {
  const r = await run(memberContainer(asker), memberList({ ...targetOf(asker), commandTimeout: '5s' }).argv);
  if (r.exitCode !== 0) throw new PluginError(`etcdctl member list failed in pod "${asker.pod}": ${lastLine(r.stderr) || `exit code ${r.exitCode}`}`, 'check the cluster with kubectl etcd status');
  return parseMemberList(r.stdout);
}

/**
 * etcd's strict reconfiguration check refuses a member change for a while after a peer
 * reconnected ("unhealthy cluster": every voter connected for 5 s, etcdserver isConnectedFullySince)
 * or before enough members started: both pass on their own.
 */
const RECONFIG_TRANSIENT = /unhealthy cluster|not enough started members|re-configuration failed due to not enough started members/i;

/**
 * A member change whose outcome etcd did not report: the request timed out (a proposal dropped in
 * a leader election waits out its context: etcdserver configure) or the leader changed under it;
 * or the member to remove is gone (a chart's start script removed it meanwhile). The member list
 * then says whether it took effect.
 */
const RECONFIG_UNKNOWN = /deadline exceeded|request timed out|leader changed|no leader|context canceled|member not found/i;

/**
 * Runs a member change (etcdctl in a healthy member); fails with the step's words. A refusal of the
 * reconfiguration check is retried for up to a minute; an outcome etcd did not report is read from
 * the member list (`done` returns the result once the change is there) and, when it did not take
 * effect, tried again.
 */
export async function reconfigure(run: ContainerCommand, asker: EtcdMember, args: string[], what: string, hint: string, say: Say | undefined,
  done: (live: LiveMember[]) => string | undefined): Promise<string> {
  const argv = ['etcdctl', ...connectionFlags({ ...targetOf(asker), commandTimeout: '15s' }), ...args];
  const deadline = Date.now() + 60_000;
  for (;;) {
    const r = await run(memberContainer(asker), argv).catch((err: unknown) => {
      throw new PluginError(`${what} was cut off: ${lastLine((err as Error).message)}`, hint);
    });
    if (r.exitCode === 0) return r.stdout;
    const transient = RECONFIG_TRANSIENT.test(r.stderr);
    if ((!transient && !RECONFIG_UNKNOWN.test(r.stderr)) || Date.now() >= deadline) throw new PluginError(`${what} failed: ${lastLine(r.stderr) || `exit code ${r.exitCode}`}`, hint);
    if (!transient) {
      say?.(`  etcd did not say whether it took effect (${lastLine(r.stderr)}); reading the member list`);
      await new Promise((wait) => setTimeout(wait, 2000));
      const live = await listMembers(run, asker).catch(() => undefined);
      const result = live && done(live);
      if (result !== undefined) return result;
    } else {
      say?.(`  etcd refused it for now (${lastLine(r.stderr)}); trying again`);
      await new Promise((wait) => setTimeout(wait, 2000));
    }
  }
}

/** Removes a member (reconfigure; done once the list no longer has it). */
export async function removeMember(run: ContainerCommand, asker: EtcdMember, id: string, say: Say): Promise<void> {
  await reconfigure(run, asker, ['member', 'remove', id], `etcdctl member remove ${id}`, rerunHint(`member ${id} may or may not be removed`), say,
    (live) => (live.some((l) => l.id === id) ? undefined : ''));
}

/**
 * Moves leadership from a healthy target to the asker before its removal: a leader that removes
 * itself steps down, and the election that follows can drop the member add that comes next.
 */
export async function moveLeadershipOff(run: ContainerCommand, target: EtcdMember, asker: EtcdMember, askerId: string | undefined, say: Say): Promise<void> {
  if (!askerId) return;
  say(`moving leadership from "${target.name}" to "${asker.name}" first`);
  const r = await run(memberContainer(target), moveLeader({ ...targetOf(target), commandTimeout: '10s' }, askerId).argv).catch(() => undefined);
  if (r?.exitCode !== 0) say(`  leadership did not move (${r ? lastLine(r.stderr) : 'exec failed'}); going on: etcd elects a new leader after the removal`);
}

/** Checks the pod can reach its peers while it is not Ready: its Service must publish not-ready pods. */
async function checkService(kube: KubeContext, topology: EtcdTopology): Promise<void> {
  if (topology.workload.kind !== 'StatefulSet') return;
  const { namespace } = topology;
  const sts = await readOrUndefined(() => kube.apps.readNamespacedStatefulSet({ name: topology.workload.name, namespace }), `get statefulset "${topology.workload.name}"`);
  const serviceName = sts?.spec?.serviceName;
  if (!serviceName) return;
  const svc = await readOrUndefined(() => kube.core.readNamespacedService({ name: serviceName, namespace }), `get service "${serviceName}"`);
  if (svc?.spec?.clusterIP === 'None' && svc.spec.publishNotReadyAddresses !== true) {
    throw new PluginError(
      `Service "${serviceName}" does not set publishNotReadyAddresses: the member's name resolves only while its pod is Ready, which it cannot be before it has joined, so its peers could not reach it`,
      `set it (kubectl patch service ${serviceName} -n ${namespace} -p '{"spec":{"publishNotReadyAddresses":true}}') and run the command again`,
    );
  }
}

/** Where the join container mounts the whole data volume when the member mounts a sub-folder of it. */
export const JOIN_VOLUME_ROOT = '/kubectl-etcd-volume';

/** Where the join container mounts, whole, any other volume the member mounts a sub-path of (one dir per volume). */
export const JOIN_MOUNTS_ROOT = '/kubectl-etcd-mounts';

/**
 * The join container's mounts: the member's, except that an ephemeral container may not mount a
 * subPath (kube-apiserver validateEphemeralContainers: subPath and subPathExpr "cannot be set for
 * an Ephemeral Container"): the data volume is mounted whole at JOIN_VOLUME_ROOT instead, any
 * other volume mounted by a plain subPath (TLS files from Secret keys, say) whole under
 * JOIN_MOUNTS_ROOT, and `path` maps a path of the member's container to the same file here. A
 * subPathExpr other than the data volume's is refused (its expansion is the kubelet's).
 */
export function joinMounts(mounts: V1VolumeMount[], member: EtcdMember): { mounts: V1VolumeMount[]; path(p: string): string } {
  const dv = member.dataVolume;
  const maps: Array<{ from: string; to: string }> = [];
  const whole = new Map<string, V1VolumeMount>();
  const out: V1VolumeMount[] = [];
  for (const m of mounts) {
    if (!m.subPath && !m.subPathExpr) {
      out.push(m);
      continue;
    }
    if (dv && m.name === dv.volumeName && m.mountPath === dv.mountPath && dv.subPath !== undefined && !whole.has(m.name)) {
      maps.push({ from: dv.mountPath.replace(/\/+$/, ''), to: joinPath(JOIN_VOLUME_ROOT, dv.subPath).replace(/\/+$/, '') });
      const w = { name: m.name, mountPath: JOIN_VOLUME_ROOT, ...(m.readOnly ? { readOnly: m.readOnly } : {}) };
      whole.set(m.name, w);
      out.push(w);
      continue;
    }
    if (m.subPathExpr || (dv && m.name === dv.volumeName)) {
      throw new PluginError(`container "${member.container}" mounts ${m.mountPath} from a sub-path of volume "${m.name}" (${m.subPathExpr ? `subPathExpr ${m.subPathExpr}` : `subPath ${m.subPath}`}), which an ephemeral container may not do`, 'replace the member by hand; nothing was changed');
    }
    let w = whole.get(m.name);
    if (!w) {
      // Read-only when every mount the member makes of it is.
      const ro = mounts.filter((o) => o.name === m.name).every((o) => o.readOnly === true);
      w = { name: m.name, mountPath: `${JOIN_MOUNTS_ROOT}/${m.name}`, ...(ro ? { readOnly: true } : {}) };
      whole.set(m.name, w);
      out.push(w);
    }
    maps.push({ from: m.mountPath.replace(/\/+$/, ''), to: joinPath(w.mountPath, m.subPath!).replace(/\/+$/, '') });
  }
  // The longest mount path first: a mount inside another one wins.
  maps.sort((a, b) => b.from.length - a.from.length);
  const path = (p: string): string => {
    for (const m of maps) {
      if (p === m.from) return m.to;
      if (p.startsWith(`${m.from}/`)) return `${m.to}${p.slice(m.from.length)}`;
    }
    return p;
  };
  return { mounts: out, path };
}

/** Maps the paths in an etcd argv (`--flag=PATH`, or PATH alone) as `path` does. */
export function mapArgvPaths(argv: string[], path: (p: string) => string): string[] {
  return argv.map((a) => {
    const m = /^(--[\w-]+=)(\/.*)$/.exec(a);
    if (m) return `${m[1]}${path(m[2]!)}`;
    return a.startsWith('/') ? path(a) : a;
  });
}

/**
 * An ephemeral container that runs `command` in the member's image, with its mounts (the data
 * volume whole when the member mounts a sub-folder: joinMounts) and security context; `path`
 * maps a path of the member's container to the same file in this one.
 */
export function memberToolContainer(pod: V1Pod, member: EtcdMember, name: string, command: (path: (p: string) => string) => string[],
  extra: { image?: string; env?: V1EnvVar[] } = {}): V1EphemeralContainer {
  const found = findEtcdContainer(pod, member.container);
  if (!found) throw new PluginError(`pod "${member.pod}" has no container "${member.container}"`, 'check the pod with kubectl describe');
  const c = found.container;
  const view = joinMounts(c.volumeMounts ?? [], member);
  return {
    name,
    image: extra.image ?? c.image,
    ...(c.imagePullPolicy && !extra.image ? { imagePullPolicy: c.imagePullPolicy } : {}),
    command: command(view.path).map(escapeKubeVars),
    ...(extra.env ? { env: extra.env } : {}),
    ...(view.mounts.length ? { volumeMounts: view.mounts } : {}),
    ...(c.securityContext ? { securityContext: c.securityContext } : {}),
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
}

/** Runs a short ephemeral container to its end; its log, and whether it exited 0. */
export async function runToolContainer(deps: ReplaceDeps, member: EtcdMember, name: string, build: (pod: V1Pod) => V1EphemeralContainer, timeoutMs: number): Promise<{ ok: boolean; log: string; state: string }> {
  const { kube } = deps;
  await addEphemeralContainerRetrying(kube, member.namespace, member.pod, build);
  const ended = await waitEphemeral(kube, member.namespace, member.pod, name, (st) => st.kind === 'terminated', timeoutMs).catch(() => undefined);
  const log = await containerLogTail(kube, member.namespace, member.pod, name);
  const st = ended?.state;
  return { ok: st?.kind === 'terminated' && st.exitCode === 0, log, state: st ? (st.kind === 'terminated' ? `exit code ${st.exitCode}` : st.kind) : 'did not end' };
}

/**
 * Refuses, before any change, a replace the member's volume has no room for: the replaced member
 * writes a new copy of the data beside the kept one (replaceNeedsBytes). The free space is read
 * with `df` in the member's container, or, when that does not answer (a member that crash-loops),
 * in an ephemeral container on its volume — not in a dry run, which changes nothing. Returns the
 * line for the user; one that could not be read is said, and the run goes on.
 */
export async function checkReplaceSpace(deps: ReplaceDeps, plan: ReplacePlan, opts: { dryRun: boolean; timeoutMs: number }): Promise<string | undefined> {
  // A run before made its changes (and may have written the joined copy already): not again.
  if (plan.finishing || plan.waitOnly || plan.join || plan.resumed || plan.dbBytes === undefined) return undefined;
  const member = plan.target.member;
  const { run } = deps;
  const dir = keptCopiesDirOf(member);
  const need = replaceNeedsBytes(plan.dbBytes);
  const image = plan.shellImage;
  let avail: number | undefined;
  let why = '';
  if (!image) {
    const inMember = await run(memberContainer(member), freeSpaceArgv(dir)).catch(() => undefined);
    if (inMember?.exitCode === 0) avail = parseDfAvailable(inMember.stdout);
    why = `the member's container does not answer${inMember ? ` (${lastLine(inMember.stderr) || `exit code ${inMember.exitCode}`})` : ''}`;
  } else {
    why = `the member's image has no shell`;
  }
  if (avail === undefined && !opts.dryRun) {
    const name = `${SPACE_CONTAINER_PREFIX}${suffix()}`;
    // In the shell image (an image without one), the same container the join's shell steps run in:
    // proven here, before any change, to run with the member's security context and write its volume.
    const argv = (path: (p: string) => string) => image
      ? ['sh', '-ec', 'df -Pk "$1"; t="$1/.kubectl-etcd-write-test"; : > "$t"; rm -f "$t"', 'sh', path(dir)]
      : freeSpaceArgv(path(dir));
    const r = await runToolContainer(deps, member, name, (pod) => memberToolContainer(pod, member, name, argv, image ? { image } : {}), opts.timeoutMs);
    if (r.ok) avail = parseDfAvailable(r.log);
    else if (image) {
      throw new PluginError(`a container of ${image} with the member's security context could not read and write the volume of member "${member.name}" (ephemeral container "${name}", ${r.state}${lastLine(r.log) ? `: ${lastLine(r.log)}` : ''}); the join's shell steps run in it; nothing was changed`,
        `pass --utility-image with an image that has sh, df, mv and rm and runs as the member's user (kubectl logs ${member.pod} -n ${member.namespace} -c ${name} shows why)`);
    } else why = `df in the ephemeral container "${name}" ended with ${r.state}${lastLine(r.log) ? `: ${lastLine(r.log)}` : ''}`;
  }
  if (avail === undefined) {
    return opts.dryRun
      ? `free space on the volume of "${member.name}": not read in a dry run (${why}); the run reads it in an ephemeral container first, and needs ${formatBytes(need)}`
      : `free space on the volume of "${member.name}": could not be read (${why}); going on (it needs ${formatBytes(need)})`;
  }
  if (avail < need) {
    throw new PluginError(
      `the volume of member "${member.name}" has ${formatBytes(avail)} free, and the replace needs ${formatBytes(need)} there beside the kept old data (the ${formatBytes(plan.dbBytes)} db the member receives, a 64 MB WAL segment, and a tenth to spare); nothing was changed`,
      `free space on it (${image ? 'delete old kept copies' : `kubectl etcd restore --prune-kept -n ${member.namespace} deletes old kept copies`}) or grow its PVC, then run the command again`,
    );
  }
  return `free space on the volume of "${member.name}": ${formatBytes(avail)}, the replace needs ${formatBytes(need)}`;
}

/** The ephemeral container that joins `member` as `id`, built from the member's own container. */
export function joinContainer(pod: V1Pod, member: EtcdMember, live: LiveMember[], id: string, name: string, paths: { work: string; aside: string }, started: boolean, direct = false): V1EphemeralContainer {
  const found = findEtcdContainer(pod, member.container);
  if (!found) throw new PluginError(`pod "${member.pod}" has no container "${member.container}"`, 'check the pod with kubectl describe');
  const c = found.container;
  if (!c.command?.length) throw new PluginError(`container "${c.name}" runs its image's entrypoint, not an etcd command: member replace cannot start etcd the way it does`, 'replace the member by hand');
  // etcd refuses a flag whose ETCD_* twin is also set: env from elsewhere (envFrom, a key) could set it unseen.
  if (c.envFrom?.length) throw new PluginError(`container "${c.name}" takes env from ${c.envFrom.map((e) => e.configMapRef ? `configmap "${e.configMapRef.name}"` : `secret "${e.secretRef?.name}"`).join(', ')} (envFrom), which may set etcd settings the join must set itself`, 'replace the member by hand; nothing was changed');
  const hidden = (c.env ?? []).filter((e) => e.valueFrom && !e.valueFrom.fieldRef && /^ETCD_/.test(e.name));
  if (hidden.length) throw new PluginError(`container "${c.name}" takes ${hidden.map((e) => e.name).join(', ')} from a ConfigMap, Secret or resource, which member replace cannot read`, 'replace the member by hand; nothing was changed');
  const { vars } = containerEnv(pod, c);
  const shellEnv = new Map(vars);
  if (!shellEnv.has('HOSTNAME')) shellEnv.set('HOSTNAME', pod.spec?.hostname ?? member.pod);
  const words = [...c.command, ...(c.args ?? [])].map((a) => expandKubeVars(a, vars));
  const etcdBinary = words.find((w) => /(^|\/)etcd$/.test(w)) ?? 'etcd';
  const args = etcdArgs(c, vars, shellEnv).map((a) => expandKubeVars(a, shellEnv));
  const argv = [etcdBinary, ...joinArgs(args, vars, { dataDir: joinPath(paths.work, 'data'), initialCluster: joinInitialCluster(live, member, id) })];
  const dropped = droppedEnv();
  const env: V1EnvVar[] = [...(c.env ?? []).filter((e) => !dropped.has(e.name)), { name: JOIN_ID_ENV, value: id }];
  const view = joinMounts(c.volumeMounts ?? [], member);
  const argvSeen = mapArgvPaths(argv, view.path);
  // etcd's settings from env (ETCD_CERT_FILE=…) name files as the member sees them too.
  const envSeen = env.map((e) => (e.value?.startsWith('/') ? { ...e, value: view.path(e.value) } : e));
  // direct: etcd itself (an image without a shell; joinSplit runs the script's parts beside it)
  const command = (direct ? argvSeen : ['sh', '-ec', JOIN_SCRIPT, 'sh', view.path(member.dataDir), view.path(paths.work), view.path(paths.aside), id, started ? '1' : '0', ...argvSeen]).map(escapeKubeVars);
  return {
    name,
    image: c.image,
    ...(c.imagePullPolicy ? { imagePullPolicy: c.imagePullPolicy } : {}),
    command,
    env: envSeen,
    ...(c.envFrom ? { envFrom: c.envFrom } : {}),
    ...(view.mounts.length ? { volumeMounts: view.mounts } : {}),
    ...(c.securityContext ? { securityContext: c.securityContext } : {}),
    ...(c.workingDir ? { workingDir: c.workingDir } : {}),
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
}

/** Reads the cluster and decides; refuses (before any change) what may not be done. */
export async function planReplace(deps: ReplaceDeps, topology: EtcdTopology, rows: Row[], opts: ReplaceOptions): Promise<ReplacePlan> {
  const journal = await readJournal(deps.kube, topology.namespace, opts.pod);
  const plan = { ...(await decide(deps, topology, rows, opts, journal)), ...(journal ? { resumed: true } : {}) };
  const sizes = rows.filter((r) => r.status.healthy && r.status.dbSize !== undefined).map((r) => r.status.dbSize!);
  return sizes.length ? { ...plan, dbBytes: Math.max(...sizes) } : plan;
}

async function decide(deps: ReplaceDeps, topology: EtcdTopology, rows: Row[], opts: ReplaceOptions, journal: Journal | undefined): Promise<ReplacePlan> {
  const target = rows.find((r) => r.member.pod === opts.pod);
  const askerRow = rows.find((r) => r !== target && r.status.healthy);
  // Refusals that need no member list first (an unknown pod; no healthy member at all).
  const early = replaceRefusal({ pod: opts.pod, rows, live: askerRow ? [] : rows.map((r) => ({ id: r.status.memberId ?? r.member.pod, name: r.member.name, peerURLs: [r.member.peerUrl], clientURLs: [] })), force: opts.force });
  if (!target || !askerRow) throw early ?? new PluginError('no other member is healthy', 'kubectl etcd restore --help');
  const live = await listMembers(deps.run, askerRow.member);
  const pod = await getPod(deps.kube, topology.namespace, opts.pod);
  const underway = underwayJoin(pod, journal);
  const entry = liveEntryOf(target.member, live);
  const paths = replacePaths(keptCopiesDirOf(target.member), opts.stamp);
  // The join runs a shell script in the member's image (a distroless etcd image has none). Asked of
  // another member, which runs the same StatefulSet template: the target's own container is down.
  const tools = await deps.run(memberContainer(askerRow.member), ['sh', '-c', 'for c in mv rm rmdir mkdir sleep kill; do command -v "$c" >/dev/null 2>&1 || { echo "$c"; exit 3; }; done'])
    .catch((err: unknown) => ({ exitCode: -1, stdout: '', stderr: (err as Error).message }));
  let shellImage: string | undefined;
  if (tools.exitCode !== 0) {
    // No shell at all (distroless): the shell steps run in a shell image beside etcd's (joinSplit).
    const noShell = tools.exitCode !== 3 && /executable file not found|no such file or directory/i.test(tools.stderr);
    if (!noShell || target.member.startScripts?.kind === 'bitnami') {
      const what = tools.exitCode === 3 ? `no ${tools.stdout.trim()}` : `no shell (sh: ${lastLine(tools.stderr) || `exit code ${tools.exitCode}`})`;
      throw new PluginError(`the etcd image ${askerRow.member.image} has ${what}: member replace runs its join's shell steps in the member's image`, 'replace the member by hand (member remove, wipe, member add, start with --initial-cluster-state existing); nothing was changed');
    }
    shellImage = opts.utilityImage ?? DEFAULT_SHELL_IMAGE;
  }
  // A run cut off once the member was back: healthy as the ID the journal records.
  // (Not while a join container runs: it answers on the pod's address too.)
  if (journal?.newId && target.status.healthy && target.status.memberId === journal.newId && (!underway || underway.state.kind === 'terminated')) {
    return { target, asker: askerRow.member, live, ...(entry ? { entry } : {}), newId: journal.newId, paths, finishing: true, ...(journal.oldId ? { journalOldId: journal.oldId } : {}), ...(shellImage ? { shellImage } : {}),
      steps: [{ step: 'cleanup', text: `member ${journal.newId} is back and healthy: remove ${paths.work} and the journal` }] };
  }
  // A chart's re-add cut off once the member was back: healthy as an ID other than the one replaced.
  if (journal?.via === 'chart' && target.status.healthy && target.status.memberId && target.status.memberId !== journal.oldId) {
    return { target, asker: askerRow.member, live, ...(entry ? { entry } : {}), newId: target.status.memberId, paths, finishing: true, via: 'chart', ...(journal.oldId ? { journalOldId: journal.oldId } : {}),
      steps: [{ step: 'cleanup', text: `member "${target.member.name}" is back and healthy as member ${target.status.memberId}: remove the journal` }] };
  }
  // The journal's replace swapped the data in and got as far as deleting the pod (this pod is a
  // later one), but the member is not healthy as that ID: it may still be starting (a run cut off,
  // or timed out, while it waited), or have failed since. Without --force only wait; with it, that
  // member is replaced anew (its journal is done: a join as its ID would start on its old data).
  const restarted = journal?.newId !== undefined && journal.swappedIn !== undefined && pod.metadata?.uid !== journal.swappedIn && target.member.startScripts?.kind !== 'bitnami';
  // (A member healthy since as another ID than the journal's: the journal is stale; decided below like any healthy member.)
  if (restarted && !opts.force && !target.status.healthy) {
    return { target, asker: askerRow.member, live, ...(entry ? { entry } : {}), newId: journal.newId, paths, waitOnly: true, stamp: journal.stamp, ...(shellImage ? { shellImage } : {}), ...(journal.oldId ? { journalOldId: journal.oldId } : {}),
      steps: [{ step: 'cleanup', text: `wait until member ${journal.newId}, which the replace of member ${journal.oldId ?? '?'} (journal ${journalName(opts.pod)}) started on the joined data, is healthy (if it failed since, pass --force to replace it anew)` }] };
  }
  const current = restarted ? undefined : journal;
  const note = restarted ? `(the journal ${journalName(opts.pod)} of the replace that brought member ${journal!.newId} back is done${target.status.healthy ? '' : ': that member failed since'}) ` : '';
  // The ID this replace brings the member back as, when a run before got that far.
  const known = underway?.id ?? current?.newId;
  const refusal = replaceRefusal({ pod: opts.pod, rows, live, force: opts.force, ...(known ? { joining: known } : {}) });
  if (refusal) throw refusal;
  await checkService(deps.kube, topology);
  if (target.member.dataVolume?.kind !== 'pvc') {
    throw new PluginError(`member "${opts.pod}" keeps its data ${target.member.dataVolume ? `on a ${target.member.dataVolume.kind} volume` : 'in its container\'s own filesystem'}, not on a PersistentVolumeClaim: the joined data and the old data would not survive the pod's restart (or its move to another node)`, 'replace the member by hand; nothing was changed');
  }
  const strangers = live.filter((l) => !l.name && l.id !== entry?.id);
  if (strangers.length) {
    throw new PluginError(`the member list has ${strangers.length === 1 ? 'an entry' : 'entries'} added but never started (${strangers.map((l) => `${l.id} at ${l.peerURLs.join(',')}`).join('; ')}), which a join cannot name in its initial cluster`, 'remove or start it first (etcdctl member list shows it); nothing was changed');
  }
  if (target.member.startScripts?.kind === 'bitnami') return planChartReplace(topology, { target, asker: askerRow.member, live, ...(entry ? { entry } : {}), paths, journal, stamp: opts.stamp, force: opts.force });
  const steps: ReplaceStep[] = [];
  const ours = entry !== undefined && known !== undefined && entry.id === known;
  let newId: string | undefined;
  if (ours) newId = entry.id;
  else if (entry && !entry.name) newId = entry.id; // added already (a run cut off after member add)
  if (entry && entry.name && !ours) steps.push({ step: 'remove', text: `${note}remove member ${entry.id} ("${entry.name}") from the cluster` });
  if (!newId) steps.push({ step: 'add', text: `add member "${target.member.name}" at ${(target.member.peerUrls ?? [target.member.peerUrl]).join(',')} (a new member ID)` });
  const joined = ours && (shellImage
    ? swapContainers(pod).some((c) => c.id === newId && isDone(ephemeralState(pod, c.name)))
    : underway !== undefined && underway.id === newId && underway.state.kind === 'terminated');
  if (!joined && !shellImage) {
    steps.push({ step: 'join', text: `${ours ? 'go on with' : 'start'} an ephemeral container in pod "${opts.pod}" (image ${target.member.image}) that moves the old data to ${paths.aside} (kept, never deleted) and joins etcd as the new member with --initial-cluster-state existing` });
    steps.push({ step: 'swap', text: `once it is healthy and has caught up with the leader: stop it, and put the joined data in ${target.member.dataDir}` });
  } else if (!joined && ours && current?.stoppedIn && newId === current.newId && pod.metadata?.uid !== current.stoppedIn) {
    steps.push({ step: 'swap', text: `put the joined data of member ${newId} (its join stopped with pod "${opts.pod}" before) in ${target.member.dataDir} from a container of ${shellImage}` });
  } else if (!joined) {
    steps.push({ step: 'join', text: `${ours ? 'go on with' : 'start'} ephemeral containers in pod "${opts.pod}" (its image ${target.member.image} has no shell): one of ${shellImage} that moves the old data to ${paths.aside} (kept, never deleted), and one of the etcd image that joins etcd as the new member with --initial-cluster-state existing` });
    steps.push({ step: 'swap', text: `once it is healthy and has caught up with the leader: delete pod "${opts.pod}" to stop it (an ephemeral container cannot be stopped otherwise), and in the pod ${topology.workload.kind === 'StatefulSet' ? `StatefulSet "${topology.workload.name}"` : 'its owner'} starts then, put the joined data in ${target.member.dataDir} from a container of ${shellImage}` });
  }
  steps.push({ step: 'restart', text: `delete pod "${opts.pod}": ${topology.workload.kind === 'StatefulSet' ? `StatefulSet "${topology.workload.name}"` : 'its owner'} starts it again, on the joined data` });
  steps.push({ step: 'cleanup', text: `check it is healthy as the new member, and remove ${paths.work}` });
  return {
    target, asker: askerRow.member, live, ...(entry ? { entry } : {}), ...(underway ? { join: underway } : {}), ...(newId ? { newId } : {}), paths, steps,
    stamp: current?.stamp ?? opts.stamp, ...(current?.oldId ? { journalOldId: current.oldId } : {}), ...(shellImage ? { shellImage } : {}),
    ...(shellImage && current?.stoppedIn && ours && newId === current.newId ? { stoppedIn: current.stoppedIn } : {}),
  };
}

/** What the journal ConfigMap of a member's replace records: the IDs, so a run cut off is finished, never redone. */
export interface Journal {
  member: string;
  oldId?: string;
  newId?: string;
  stamp: string;
  /** Set when the member's chart re-adds it (the new ID is the chart's). */
  via?: 'chart';
  /** UID of the pod whose join swapped the data in, recorded before that pod is deleted: a later pod means the restart happened. */
  swappedIn?: string;
  /** UID of the pod deleted to stop a distroless join's etcd once it caught up (joinSplit): a later pod swaps the data in. */
  stoppedIn?: string;
}

export { journalName };

export async function readJournal(kube: KubeContext, namespace: string, pod: string): Promise<Journal | undefined> {
  const data = await kubeConfigMaps(kube).readConfigMap(namespace, journalName(pod));
  if (!data?.['replace.json']) return undefined;
  try {
    return JSON.parse(data['replace.json']) as Journal;
  } catch {
    throw new PluginError(`configmap "${journalName(pod)}" is not a kubectl-etcd replace journal`, `check it (kubectl get configmap ${journalName(pod)} -n ${namespace} -o yaml) and delete it once no replace of "${pod}" is under way`);
  }
}

export async function writeJournal(kube: KubeContext, namespace: string, pod: string, j: Journal): Promise<void> {
  await kubeConfigMaps(kube).writeConfigMap(namespace, journalName(pod), { 'replace.json': JSON.stringify(j) }, { 'app.kubernetes.io/managed-by': 'kubectl-etcd' });
}

/** Proves the join container would be admitted (server-side dry run), before any change. */
export async function admitJoin(deps: ReplaceDeps, plan: ReplacePlan): Promise<void> {
  if (plan.join || plan.finishing || plan.waitOnly) return;
  const { namespace, pod: name } = plan.target.member;
  // The pod is read again on a conflict: a crash-looping member's status changes every few seconds.
  const build = (pod: V1Pod): V1EphemeralContainer => (plan.via === 'chart'
    ? asideContainer(pod, plan.target.member, `${ASIDE_CONTAINER_PREFIX}dry-run`, plan.paths.aside)
    : joinContainer(pod, plan.target.member, plan.live, plan.newId ?? '0', `${JOIN_CONTAINER_PREFIX}dry-run`, plan.paths, false, plan.shellImage !== undefined));
  try {
    await addEphemeralContainerRetrying(deps.kube, namespace, name, build, true);
  } catch (err) {
    // addEphemeralContainerRetrying's errors are already the user-facing ones.
    throw new PluginError(`the join container would not be admitted: ${(err as Error).message}`, 'member replace runs etcd in an ephemeral container of the member\'s pod (pods/ephemeralcontainers, Kubernetes 1.25+), as the member\'s own container runs; nothing was changed');
  }
}

/** A short random suffix for a container name (names of ephemeral containers are never reused). */
export function suffix(): string {
  return Math.random().toString(36).slice(2, 7);
}

/** Carries out the plan; each step is read back first, so running it again after a cut finishes. */
export async function replaceMember(deps: ReplaceDeps, plan: ReplacePlan, opts: ReplaceOptions): Promise<ReplaceResult> {
  if (plan.via === 'chart') return replaceByChart(deps, plan, opts);
  const t0 = Date.now();
  const { kube, run, probe, say } = deps;
  const member = plan.target.member;
  const { namespace } = member;
  if (plan.finishing) return finishedAlready(deps, plan, t0);
  if (plan.waitOnly) {
    say(`waiting until member ${plan.newId} ("${member.name}") is healthy`);
    await waitHealthyAs(probe, member, plan.newId!, opts.timeoutMs, 'a member syncing a large db may just need longer: run the command again (--timeout) to wait on, or with --force to replace it anew if it failed');
    return finishedAlready(deps, plan, t0);
  }
  const oldId = plan.entry?.name && plan.entry.id !== plan.newId ? plan.entry.id : undefined;
  const reportedOld = oldId ?? plan.journalOldId;
  let newId = plan.newId;

  const stamp = plan.stamp ?? opts.stamp;
  // 1. membership, recorded first in the journal
  await writeJournal(kube, namespace, member.pod, { member: member.name, ...(reportedOld ? { oldId: reportedOld } : {}), ...(newId ? { newId } : {}), stamp, ...(plan.stoppedIn ? { stoppedIn: plan.stoppedIn } : {}) });
  if (oldId) {
    if (plan.target.status.isLeader) await moveLeadershipOff(run, member, plan.asker, liveEntryOf(plan.asker, plan.live)?.id, say);
    say(`removing member ${oldId} ("${plan.entry!.name}")`);
    await removeMember(run, plan.asker, oldId, say);
  }
  if (!newId) {
    const peerUrls = (member.peerUrls ?? [member.peerUrl]).join(',');
    say(`adding member "${member.name}" at ${peerUrls}`);
    let added: string | undefined;
    const out = await reconfigure(run, plan.asker, ['-w', 'json', 'member', 'add', member.name, `--peer-urls=${peerUrls}`], `etcdctl member add ${member.name}`,
      rerunHint(`member ${oldId ?? 'of this pod'} is removed and the new one may or may not be added`), say,
      (live) => (added = live.find((l) => !l.name && l.peerURLs.some((u) => normalizeUrl(u) === normalizeUrl(member.peerUrl)))?.id));
    newId = added ?? parseMemberAdd(out);
    say(`  added as member ${newId}`);
    await writeJournal(kube, namespace, member.pod, { member: member.name, ...(reportedOld ? { oldId: reportedOld } : {}), newId, stamp });
  }
  const live = await listMembers(run, plan.asker);

  // 2.-3. the join, then stop and swap
  if (plan.shellImage) await joinSplit(deps, plan, opts, newId, live, { member: member.name, ...(reportedOld ? { oldId: reportedOld } : {}), newId, stamp });
  else await joinInImage(deps, plan, opts, newId, live);

  // 4. the member's own pod, on the joined data
  say(`deleting pod "${member.pod}" so that it starts on the joined data`);
  const uid = (await getPod(kube, namespace, member.pod)).metadata?.uid;
  await writeJournal(kube, namespace, member.pod, { member: member.name, ...(reportedOld ? { oldId: reportedOld } : {}), newId, stamp, ...(uid ? { swappedIn: uid } : {}) });
  await restartPod(kube, member, opts.timeoutMs, uid);
  const back = await waitHealthyAs(probe, member, newId, opts.timeoutMs);

  // 5. clean up the work dir, list what is kept
  // The journal goes first: a journal left behind would make a later replace of this pod take the
  // new ID for one under way.
  await kubeConfigMaps(kube).deleteConfigMap(namespace, journalName(member.pod));
  const kept = await cleanup(deps, member, plan.paths.work, newId, plan.shellImage);
  say(`member "${member.name}" is healthy as member ${newId}${back.isLeader ? ' (leader)' : ''}`);
  return { pod: member.pod, name: member.name, ...(reportedOld ? { oldId: reportedOld } : {}), newId, kept, seconds: (Date.now() - t0) / 1000 };
}

/** The join in one ephemeral container of the member's own image (JOIN_SCRIPT), resumed as the plan found it. */
async function joinInImage(deps: ReplaceDeps, plan: ReplacePlan, opts: ReplaceOptions, newId: string, live: LiveMember[]): Promise<void> {
  const { kube, run, say } = deps;
  const member = plan.target.member;
  const { namespace } = member;
  let joinName = plan.join && plan.join.id === newId ? plan.join.name : undefined;
  let state = plan.join && joinName ? plan.join.state : undefined;
  if (!joinName || (state?.kind === 'terminated' && state.exitCode !== 0)) {
    joinName = `${JOIN_CONTAINER_PREFIX}${suffix()}`;
    const started = live.some((l) => l.id === newId && l.name !== '');
    say(`starting ephemeral container "${joinName}" in pod "${member.pod}" to join as member ${newId}`);
    await addEphemeralContainerRetrying(kube, namespace, member.pod, (pod) => {
      refuseSecondJoin(pod, newId);
      return joinContainer(pod, member, live, newId!, joinName!, plan.paths, started);
    });
    state = undefined;
  }
  if (state?.kind !== 'terminated') {
    const started = await waitEphemeral(kube, namespace, member.pod, joinName, (s) => s.kind === 'running' || s.kind === 'terminated', opts.timeoutMs);
    state = started.state;
  }

  // 3. caught up, then stop and swap
  if (state.kind === 'running') {
    state = await waitCaughtUp(deps, plan, joinName, newId, opts.timeoutMs);
    if (state.kind === 'running') {
      say(`member ${newId} has caught up; stopping it and putting its data in place`);
      // The work dir as the join container sees it (the whole volume when the member mounts a sub-folder).
      const current = await getPod(kube, namespace, member.pod);
      const mounts = findEtcdContainer(current, member.container)?.container.volumeMounts ?? [];
      const work = joinMounts(mounts, member).path(plan.paths.work);
      const stop = await run({ namespace, pod: member.pod, container: joinName }, ['sh', '-c', ': > "$1/stop"', 'sh', work]);
      if (stop.exitCode !== 0) throw new PluginError(`could not tell the join container to stop: ${lastLine(stop.stderr)}`, rerunHint('the join goes on'));
      state = (await waitEphemeral(kube, namespace, member.pod, joinName, (s) => s.kind === 'terminated', 120_000)).state;
    }
  }
  if (state.kind !== 'terminated' || state.exitCode !== 0) {
    const log = await containerLogTail(kube, namespace, member.pod, joinName);
    throw new PluginError(`the join container "${joinName}" failed${state.kind === 'terminated' ? ` (exit code ${state.exitCode})` : ''}: ${lastLine(log) || state.kind}`,
      rerunHint(`member ${newId} is in the member list but not started; kubectl logs ${member.pod} -n ${namespace} -c ${joinName} shows the whole log`));
  }
}

/** Waits until the join container's etcd is healthy as `id` and has caught up with the leader; the container's state then (terminated when it ended meanwhile). */
async function waitCaughtUp(deps: ReplaceDeps, plan: ReplacePlan, joinName: string, id: string, timeoutMs: number): Promise<EphemeralState> {
  const { kube, probe, say } = deps;
  const member = plan.target.member;
  const { namespace } = member;
  // Probed in the join container, where files mounted by subPath are elsewhere (joinMounts).
  const mounts = findEtcdContainer(await getPod(kube, namespace, member.pod), member.container)?.container.volumeMounts ?? [];
  const { path } = joinMounts(mounts, member);
  const tls = Object.fromEntries(Object.entries(member.tls).map(([k, v]) => [k, typeof v === 'string' ? path(v) : v])) as EtcdMember['tls'];
  const joiner: EtcdMember = { ...member, container: joinName, tls };
  say(`waiting until member ${id} is healthy and has caught up with the leader`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const leader = await leaderIndex(probe, plan.asker);
    const s = await probe(joiner);
    const now = await waitEphemeral(kube, namespace, member.pod, joinName, () => true, timeoutMs);
    if (s.memberId === id && caughtUp(s, leader)) return now.state;
    if (now.state.kind === 'terminated') return now.state;
    if (Date.now() >= deadline) {
      throw new PluginError(`member ${id} did not catch up within ${Math.round(timeoutMs / 1000)} s: ${s.error ?? `raft index ${s.raftIndex ?? '?'} of ${leader ?? '?'}`}`,
        rerunHint(`the join container "${joinName}" goes on; kubectl logs ${member.pod} -n ${namespace} -c ${joinName} shows it`));
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/**
 * The join for an etcd image without a shell (distroless), in ephemeral containers of the member's
 * pod, each found again by a run after a cut: the set-aside (JOIN_PREP_SCRIPT) in the shell image;
 * etcd itself in the member's image, started directly (an ephemeral container is never restarted:
 * one that ends before it caught up, e.g. while the member's own crash-looping container held the
 * ports for a moment, is followed by another, up to five). Once it caught up, the pod is deleted
 * to stop it: an ephemeral container cannot be stopped otherwise, and no other container can
 * signal it (targetContainerName may name only a regular container: kube-apiserver
 * validateEphemeralContainers). In the pod the StatefulSet starts then (whose etcd stops at once
 * on the stand-in file), JOIN_SWAP_SCRIPT puts the joined data in place. The journal records the
 * deleted pod's UID (stoppedIn) first, so that a run after a cut knows the join is done.
 */
async function joinSplit(deps: ReplaceDeps, plan: ReplacePlan, opts: ReplaceOptions, newId: string, live: LiveMember[], journal: Journal): Promise<void> {
  const { kube, say } = deps;
  const member = plan.target.member;
  const { namespace } = member;
  const image = plan.shellImage!;
  const env = [{ name: JOIN_ID_ENV, value: newId }];
  let pod0 = await getPod(kube, namespace, member.pod);
  if (swapContainers(pod0).some((c) => c.id === newId && isDone(ephemeralState(pod0, c.name)))) return;
  // A run cut off while the pod deleted to stop the join was still going: wait for the next.
  if (plan.stoppedIn && pod0.metadata?.uid === plan.stoppedIn && pod0.metadata?.deletionTimestamp) pod0 = await waitForNewPod(deps, member, plan.stoppedIn, opts.timeoutMs);
  if (!plan.stoppedIn || pod0.metadata?.uid === plan.stoppedIn) {
    const last = joinContainers(pod0).filter((j) => j.id === newId).at(-1);
    let joinName = last?.name;
    let state: EphemeralState | undefined = last ? ephemeralState(pod0, last.name) : undefined;
    if (state?.kind === 'running') state = await waitCaughtUp(deps, plan, joinName!, newId, opts.timeoutMs);
    let containers = 0;
    while (state?.kind !== 'running') {
      if (state && state.kind !== 'terminated' && !stuckWaiting(state)) {
        state = (await waitEphemeral(kube, namespace, member.pod, joinName!, (st) => st.kind === 'running' || st.kind === 'terminated', opts.timeoutMs)).state;
        if (state.kind === 'running') state = await waitCaughtUp(deps, plan, joinName!, newId, opts.timeoutMs);
        continue;
      }
      if (++containers > 5) {
        const log = await containerLogTail(kube, namespace, member.pod, joinName!);
        throw new PluginError(`etcd in the join container "${joinName}" did not stay up (5 join containers): ${lastLine(log) || (state?.kind === 'waiting' ? state.reason : state?.kind)}`,
          rerunHint(`member ${newId} is in the member list; kubectl logs ${member.pod} -n ${namespace} -c ${joinName} shows why`));
      }
      // The data aside and the stand-in in place (again: idempotent), then etcd.
      const prep = `${PREP_CONTAINER_PREFIX}${suffix()}`;
      // Started as this ID before (the member list names it): never on an empty dir again (JOIN_PREP_SCRIPT).
      const started = (await listMembers(deps.run, plan.asker)).some((l) => l.id === newId && l.name !== '');
      say(`starting ephemeral container "${prep}" (image ${image}) in pod "${member.pod}" to set the old data aside`);
      const prepared = await runToolContainer(deps, member, prep, (pod) => memberToolContainer(pod, member, prep,
        (path) => ['sh', '-ec', JOIN_PREP_SCRIPT, 'sh', path(member.dataDir), path(plan.paths.work), path(plan.paths.aside), newId, started ? '1' : '0'], { image, env }), opts.timeoutMs);
      if (!prepared.ok) {
        throw new PluginError(`the container "${prep}" could not set the old data aside (${prepared.state}): ${lastLine(prepared.log)}`,
          rerunHint(`member ${newId} is in the member list; kubectl logs ${member.pod} -n ${namespace} -c ${prep} shows the whole log`));
      }
      if (/is in place already/.test(prepared.log)) return;
      joinName = `${JOIN_CONTAINER_PREFIX}${suffix()}`;
      const name = joinName;
      say(`starting ephemeral container "${name}" in pod "${member.pod}" to join as member ${newId}`);
      await addEphemeralContainerRetrying(kube, namespace, member.pod, (pod) => {
        refuseSecondJoin(pod, newId, name);
        return joinContainer(pod, member, live, newId, name, plan.paths, true, true);
      });
      state = (await waitEphemeral(kube, namespace, member.pod, name, (st) => st.kind === 'running' || st.kind === 'terminated', opts.timeoutMs)).state;
      if (state.kind === 'running') state = await waitCaughtUp(deps, plan, name, newId, opts.timeoutMs);
    }
    // Caught up: the pod goes, and etcd in the join container with it. The pod as read now, which
    // must be the one the join runs in (a pod replaced meanwhile is not stopped for it).
    const now = await getPod(kube, namespace, member.pod);
    if (!joinContainers(now).some((j) => j.name === joinName)) {
      throw new PluginError(`pod "${member.pod}" was replaced while member ${newId} joined in it`, rerunHint(`member ${newId} is in the member list`));
    }
    const uid = now.metadata?.uid;
    await writeJournal(kube, namespace, member.pod, { ...journal, newId, ...(uid ? { stoppedIn: uid } : {}) });
    say(`member ${newId} has caught up; deleting pod "${member.pod}" to stop it (an ephemeral container cannot be stopped otherwise)`);
    await restartPod(kube, member, opts.timeoutMs, uid);
    pod0 = await waitForNewPod(deps, member, uid, opts.timeoutMs);
  }
  const swap = `${SWAP_CONTAINER_PREFIX}${suffix()}`;
  say(`starting ephemeral container "${swap}" (image ${image}) in pod "${member.pod}" to put the joined data in place`);
  const swapped = await runToolContainer(deps, member, swap, (pod) => memberToolContainer(pod, member, swap,
    (path) => ['sh', '-ec', JOIN_SWAP_SCRIPT, 'sh', path(member.dataDir), path(plan.paths.work), path(plan.paths.aside), newId], { image, env }), opts.timeoutMs);
  if (!swapped.ok) {
    throw new PluginError(`the container "${swap}" could not put the joined data in place (${swapped.state}): ${lastLine(swapped.log)}`,
      rerunHint(`member ${newId} is in the member list; kubectl logs ${member.pod} -n ${namespace} -c ${swap} shows the whole log`));
  }
}

/** Waits until the member's pod is there again as another pod than `uid` (its owner made it). */
async function waitForNewPod(deps: ReplaceDeps, member: EtcdMember, uid: string | undefined, timeoutMs: number): Promise<V1Pod> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pod = await getPod(deps.kube, member.namespace, member.pod).catch(() => undefined);
    if (pod && pod.metadata?.uid !== uid && pod.spec?.nodeName) return pod;
    if (Date.now() >= deadline) throw new PluginError(`pod "${member.pod}" did not come back within ${Math.round(timeoutMs / 1000)} s`, rerunHint(`check its StatefulSet (kubectl get pod ${member.pod} -n ${member.namespace})`));
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** The hint of a step that failed part-way: what state it left, and that a run again goes on. */
export function rerunHint(state: string): string {
  return `${state}; run the command again to go on (the old data is kept on the member's volume)`;
}

/** A replace a run before carried out: the member is back and healthy; only the journal and the work files are left. */
export async function finishedAlready(deps: ReplaceDeps, plan: ReplacePlan, t0: number): Promise<ReplaceResult> {
  const member = plan.target.member;
  await kubeConfigMaps(deps.kube).deleteConfigMap(member.namespace, journalName(member.pod));
  const kept = await cleanup(deps, member, plan.paths.work, plan.newId!, plan.shellImage);
  deps.say(`member "${member.name}" was replaced already and is healthy as member ${plan.newId}`);
  return { pod: member.pod, name: member.name, ...(plan.journalOldId ? { oldId: plan.journalOldId } : {}), newId: plan.newId!, kept, seconds: (Date.now() - t0) / 1000 };
}

/** Deletes the member's pod as read now (never a new one its owner made meanwhile) and waits until it is gone. */
export async function restartPod(kube: KubeContext, member: EtcdMember, timeoutMs: number, podUid?: string): Promise<void> {
  const { namespace, pod } = member;
  const uid = podUid ?? (await getPod(kube, namespace, pod)).metadata?.uid;
  await deletePod(kube, namespace, pod, undefined, uid);
  await waitForPodGone(kube, namespace, pod, timeoutMs, uid);
}

/** The committed raft index a healthy member reports (it follows the leader's); undefined when it does not answer. */
async function leaderIndex(probe: StatusProbe, asker: EtcdMember): Promise<number | undefined> {
  const s = await probe(asker);
  return s.raftIndex;
}

/** Probes the member until it is healthy as the new ID. */
async function waitHealthyAs(probe: StatusProbe, member: EtcdMember, id: string, timeoutMs: number, hint = 'run the command again to go on'): Promise<MemberStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await probe(member);
    if (s.healthy && s.memberId === id) return s;
    if (Date.now() >= deadline) {
      throw new PluginError(`pod "${member.pod}" is not healthy as member ${id} after ${Math.round(timeoutMs / 1000)} s: ${s.error ?? (s.memberId ? `it answers as member ${s.memberId}` : 'no answer')}`,
        `kubectl logs ${member.pod} -n ${member.namespace} shows why; ${hint}`);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

// Removes the work dir when it records the new ID and the marker a set-aside left for Bitnami's
// legacy scripts (replace-chart.ts), and lists the kept copies (paths as arguments).
const CLEANUP_SCRIPT = [
  'work="$1"; kept="$2"; id="$3"; marker="$4"',
  'rm -f "$marker"',
  'done_id=""',
  'if [ -f "$work/swapped" ]; then read -r done_id < "$work/swapped" || true; fi',
  'if [ "$done_id" = "$id" ]; then rm -f "$work/swapped" "$work/stop"; rmdir "$work/data" 2>/dev/null || true; rmdir "$work" 2>/dev/null || true; fi',
  'for d in "$kept"/member.pre-replace-*; do if [ -d "$d" ]; then echo "$d"; fi; done',
].join('\n');

/** Removes the work dir of a finished replace (only when it records this ID) and lists the kept copies. */
export async function cleanup(deps: ReplaceDeps, member: EtcdMember, work: string, id: string, shellImage?: string): Promise<string[]> {
  const kept = work.slice(0, work.lastIndexOf('/')) || '/';
  if (shellImage) {
    // No shell in the member's image: in a short ephemeral container of the shell image (paths as it sees them).
    const name = `${PREP_CONTAINER_PREFIX}${suffix()}`;
    const r = await runToolContainer(deps, member, name, (pod) => memberToolContainer(pod, member, name,
      (path) => ['sh', '-c', CLEANUP_SCRIPT, 'sh', path(work), path(kept), id, path(joinPath(member.dataDir, READD_MARKER))], { image: shellImage }), 120_000).catch(() => undefined);
    const view = (p: string) => p.replace(/^.*\//, `${kept}/`);
    return r?.ok ? r.log.split('\n').filter(Boolean).map(view) : [];
  }
  const r = await deps.run(memberContainer(member), ['sh', '-c', CLEANUP_SCRIPT, 'sh', work, kept, id, joinPath(member.dataDir, READD_MARKER)]).catch(() => undefined);
  return r?.exitCode === 0 ? r.stdout.split('\n').filter(Boolean) : [];
}
