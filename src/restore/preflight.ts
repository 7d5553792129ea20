/**
 * Preflight: everything restore checks before its first change, each refusal one line with a
 * hint. Snapshot integrity is checked when the snapshot is read (snapshot.ts); here: etcd version,
 * permissions, nodes, the tools of the utility image and free space on every member volume.
 *
 * The cluster's etcd version is read, best first, from the tag of the etcd image in the
 * StatefulSet's pod template (that image opens the restored data), else from `etcd --version`
 * in a running member; each member's from its pod's image tag. The snapshot's version comes from
 * snapshot.ts (sidecar, else the db). Which versions may meet: versions.ts.
 */
import { ForbiddenError, PluginError } from '../errors.js';
import type { AccessCheck, DeniedAccess } from '../kube/access.js';
import { accessError } from '../kube/access.js';
import { formatTaint, UNSCHEDULABLE_TAINT, untolerated, type Taint, type Toleration } from '../kube/taints.js';
import { memberContainer, type EtcdMember, type EtcdTopology } from '../etcd/topology.js';
import type { CommandResult, ContainerCommand } from '../kube/exec.js';
import type { ColdStartHold } from './cold-start.js';
import { measureKeptArgv, parseDfAvailable, parseKeptListing, type MemberSpace } from './kept.js';
import { memberRunsAsNonRoot, utilityTolerations } from './manifests.js';
import { bitnamiRemovalLog, type PdbRecord, type QuiesceTarget, type RestoreTool } from './plan.js';
import { imageTagVersion, type RestoreSnapshotFacts } from './snapshot.js';
import { compareVersions } from './versions.js';

/** A refusal that --force may override. */
export class PreflightError extends PluginError {}

/** What preflight talks to. */
export interface PreflightDeps {
  checkAccess(checks: AccessCheck[]): Promise<DeniedAccess[]>;
  /** A node's Ready condition and the taints that keep pods off it (schedulingTaints); undefined when it cannot be read. */
  readNode(node: string): Promise<{ ready: boolean; reason?: string; taints: Taint[]; addresses?: string[] } | undefined>;
  /** Whether a member's data is bound to its node (a hostPath, or a local volume's node affinity); undefined when that cannot be read. */
  dataPinnedToNode(member: EtcdMember): Promise<boolean | undefined>;
  /** Runs argv in a container (here: a member's etcd container). */
  run: ContainerCommand;
  /** Capacity in bytes of a member's data PVC, when it has one. */
  claimCapacity(member: EtcdMember): Promise<number | undefined>;
}

/** What preflight is given. */
export interface PreflightInput {
  topology: EtcdTopology;
  /** The etcd image the restored members will run (StatefulSet template). */
  etcdImage: string;
  /** --utility-image, when given. */
  utilityImage?: string;
  snapshot: RestoreSnapshotFacts;
  quiesce: QuiesceTarget[];
  pdbs: PdbRecord[];
  force: boolean;
  /** Probes the restore holds while the members start (cold-start.ts); patching the template and deleting pods are already checked. */
  coldStart?: ColdStartHold;
  /** --in-place: utility pods run beside the running members. */
  inPlace?: boolean;
  /** The pod the StatefulSet creates for a member (its template): it must find the member's node again after the restore. */
  memberPod?: { spec: Record<string, unknown> };
}

/**
 * The shell image of the utility pods when the etcd image has no shell (distroless) and no
 * --utility-image is given: busybox has sh, head, sha256sum, mv, rm, chown, sync, df, mkdir, cat and tar.
 */
export const DEFAULT_SHELL_IMAGE = 'docker.io/library/busybox:1.36';

/** The images of the utility pods and the restore tool they give. */
export interface UtilityImages {
  /** The image with the shell (copy, swap, chown); also the restore tool's unless etcdToolsImage. */
  utilityImage: string;
  /** Set when the etcd image has no shell: it runs beside the shell image and supplies the tool. */
  etcdToolsImage?: string;
  tool: RestoreTool;
  warnings: string[];
}

/** What preflight found out. */
export interface PreflightResult {
  tool: RestoreTool;
  utilityImage: string;
  etcdToolsImage?: string;
  clusterVersion?: string;
  warnings: string[];
  /** Per member: its live data and the copies earlier restores kept, where they could be measured. */
  space: Record<string, MemberSpace>;
  /** Who members that run as their image's non-root user run as, asked of them (set as the utility pods' runAsUser/runAsGroup). */
  memberIds: Record<string, { uid: number; gid: number }>;
}

/** Bytes a restore writes on a member volume beyond the snapshot copy: the restored db plus one 64 MiB WAL segment. */
export function spaceNeeded(snapshotSize: number): number {
  return snapshotSize * 2 + 64 * 1024 * 1024 + 1024 * 1024;
}

/**
 * What every restore, --resume and --abort reads and writes whatever the cluster looks like: asked
 * before the first read, so a user without them learns all at once (and not from the first call
 * refused). The README's Role grants exactly these plus restoreAccessChecks' conditional ones.
 */
export function restoreBaseAccessChecks(namespace: string): AccessCheck[] {
  const c = (verb: string, group: string, resource: string, subresource?: string): AccessCheck => ({ verb, group, resource, subresource, namespace });
  return [
    ...['get', 'list', 'watch', 'create', 'delete'].map((v) => c(v, '', 'pods')),
    // Exec over WebSocket (all this plugin speaks) starts with a GET: API servers before 1.35
    // authorize it as `get` on pods/exec, 1.35 and later also check `create` (what SPDY's POST
    // needed). Both are asked for: a Role made for one server version works on the next.
    c('get', '', 'pods', 'exec'),
    c('create', '', 'pods', 'exec'),
    // The journal and the history (found by listing).
    ...['get', 'list', 'create', 'update', 'delete'].map((v) => c(v, '', 'configmaps')),
    // Discovery, what writes to etcd, and what guards it.
    c('get', 'apps', 'statefulsets'), c('list', 'apps', 'statefulsets'),
    c('get', 'apps', 'statefulsets', 'scale'), c('patch', 'apps', 'statefulsets', 'scale'),
    c('list', 'apps', 'deployments'),
    c('list', 'policy', 'poddisruptionbudgets'),
    // The StatefulSet's governing Service (whether it hides not-ready members).
    c('get', '', 'services'),
    // Each member claim's size, for the free-space check.
    c('get', '', 'persistentvolumeclaims'),
    // Each member's node (whether it is Ready): nodes are cluster-scoped.
    { verb: 'get', group: '', resource: 'nodes', namespace: '' },
  ];
}

/** The permissions this restore needs beyond restoreBaseAccessChecks, by what it found. */
export function restoreAccessChecks(namespace: string, topology: Pick<EtcdTopology, 'workload'>, quiesce: QuiesceTarget[], pdbs: PdbRecord[], coldStart?: ColdStartHold): AccessCheck[] {
  const c = (verb: string, group: string, resource: string, subresource?: string): AccessCheck => ({ verb, group, resource, subresource, namespace });
  const checks: AccessCheck[] = [];
  // The StatefulSet itself is patched for its claim retention (whenScaled: Delete is set aside while
  // etcd is scaled to 0) and its cold-start probes.
  if (topology.workload.claimRetention?.whenScaled === 'Delete' || coldStart) checks.push(c('patch', 'apps', 'statefulsets'));
  if (quiesce.some((q) => q.kind === 'Deployment')) checks.push(c('get', 'apps', 'deployments'), c('get', 'apps', 'deployments', 'scale'), c('patch', 'apps', 'deployments', 'scale'));
  if (pdbs.length) checks.push(...['get', 'delete', 'create'].map((v) => c(v, 'policy', 'poddisruptionbudgets')));
  // A Service that hides not-ready members publishes them while the members start (cold-start.ts).
  if (coldStart?.service) checks.push(c('patch', '', 'services'));
  return checks;
}

/** Refuses, in one line listing every missing permission, when any check is denied. */
export async function requireAccess(deps: Pick<PreflightDeps, 'checkAccess'>, checks: AccessCheck[]): Promise<void> {
  const err = accessError(await deps.checkAccess(checks));
  if (err) throw err;
}

/** Runs every check; throws the first refusal (permissions are listed all at once). */
export async function preflight(input: PreflightInput, deps: PreflightDeps): Promise<PreflightResult> {
  const { topology, snapshot } = input;
  const warnings: string[] = [];
  const refuse = (message: string, hint: string) => {
    if (input.force) warnings.push(`${message} (going on because of --force)`);
    else throw new PreflightError(message, `${hint}, or pass --force if you are sure`);
  };

  // Permissions first: a user without them learns everything missing at once.
  await requireAccess(deps, restoreAccessChecks(topology.namespace, topology, input.quiesce, input.pdbs, input.coldStart));

  // A ReadWriteOncePod claim admits one pod at a time: no utility pod can mount it beside its running member.
  const oneAtATime = topology.members.filter((m) => m.dataVolume?.kind === 'pvc' && m.dataVolume.readWriteOncePod);
  if (oneAtATime.length) {
    const claims = oneAtATime.map((m) => `"${m.dataVolume?.kind === 'pvc' ? m.dataVolume.claimName : ''}"`).join(', ');
    if (input.inPlace) {
      throw new PreflightError(
        `--in-place runs a utility pod beside each running member on its claim, and ${claims} ${oneAtATime.length > 1 ? 'are' : 'is'} ReadWriteOncePod (one pod at a time: the utility pod would stay Pending)`,
        'restore without --in-place: etcd is scaled to 0 first, then the utility pods mount the claims; nothing was changed',
      );
    }
    const guarded = oneAtATime.filter((m) => m.startScripts?.kind === 'bitnami' && m.preStop?.length);
    if (guarded.length) {
      throw new PreflightError(
        `the preStop hook of ${guarded.map((m) => `"${m.name}"`).join(', ')} must be kept from removing the member before etcd stops, through a utility pod on its claim, and ${claims} ${oneAtATime.length > 1 ? 'are' : 'is'} ReadWriteOncePod (one pod at a time)`,
        'turn the hook off for the restore (Helm: --set removeMemberOnContainerTermination=false), then restore again; nothing was changed',
      );
    }
  }

  // A rolling-update partition makes the controller create the pods below it from the old
  // template, probes and all: holding the probes would not let them start.
  const partition = input.coldStart?.partition ?? 0;
  if (input.coldStart && partition > 0) {
    throw new PreflightError(
      `statefulset "${topology.workload.name}" cannot start its members from nothing (${input.coldStart.reasons.join('; ')}), and its updateStrategy.rollingUpdate.partition ${partition} keeps pods below ${partition} on the old template, so holding its probes would not help`,
      `set the partition to 0 (kubectl patch sts ${topology.workload.name} -n ${topology.namespace} -p '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}') and run the restore again`,
    );
  }

  // Bitnami's disaster recovery restores its own newest /snapshots snapshot over the data dir of a
  // member that starts while the cluster does not answer — which is how every restored member starts.
  const recovering = topology.members.filter((m) => m.startScripts?.disasterRecovery);
  if (recovering.length) {
    throw new PluginError(
      `${topology.workload.kind.toLowerCase()} "${topology.workload.name}" sets ETCD_DISASTER_RECOVERY=${recovering[0]!.startScripts!.disasterRecovery}: its start script would restore its own newest snapshot from /snapshots over the restored data of ${recovering.map((m) => `"${m.name}"`).join(', ')}`,
      'turn disaster recovery off for the restore (Helm: --set disasterRecovery.enabled=false), then restore again; nothing was changed',
    );
  }

  // Bitnami's preStop hook is kept from removing a member by a directory where it writes its
  // removal log (plan.ts: removalLogGuard); when that place is not on the member's volume, the
  // utility pod cannot make it, and the current (debian-12) hook finds the member by its peer URL.
  const unguarded = topology.members.filter((m) => m.startScripts?.kind === 'bitnami' && m.preStop?.length && !bitnamiRemovalLog(m));
  if (unguarded.length) {
    refuse(
      `the preStop hook of ${unguarded.map((m) => `"${m.name}"`).join(', ')} removes a stopping member from the cluster and writes its log outside the member's volume, where the restore cannot stop it`,
      'set the chart value removeMemberOnContainerTermination=false (or ETCD_DISABLE_PRESTOP=yes) and let the pods roll, then restore again; nothing was changed',
    );
  }

  // Ready members first; a running but not Ready member (lost quorum) can still answer an exec.
  const running = [...topology.members].sort((a, b) => Number(b.ready !== false) - Number(a.ready !== false));
  const exec = (m: EtcdMember, argv: string[]) => execInMember(deps, m, argv).catch((e: unknown) => {
    if (e instanceof ForbiddenError) throw e;
    return undefined;
  });
  const execSomewhere = (argv: string[]) => execFirst(running, exec, argv);

  // etcd version: the rule of versions.ts (same minor, or the snapshot one minor older; no mixed members).
  const clusterVersion = await checkEtcdVersions(input, execSomewhere, refuse, warnings);

  // Nodes of the members must be Ready: the utility pods run there.
  for (const m of topology.members) {
    if (!m.node) {
      // A gone member's volume that can move (a cloud disk: its node affinity names a zone, or
      // none): its utility pod goes wherever the scheduler can attach it.
      if (m.dataVolume?.kind === 'pvc' && (await deps.dataPinnedToNode(m)) === false) {
        warnings.push(`member "${m.name}" has no pod and its volume is not bound to one node: its utility pod goes where the scheduler can attach the volume`);
      } else refuse(`member "${m.name}" has no known node`, 'start its pod or bind its volume first');
      continue;
    }
    const st = await deps.readNode(m.node);
    if (st === undefined) warnings.push(`cannot read node "${m.node}"; its readiness and taints are not checked`);
    else if (!st.ready) refuse(`node "${m.node}" of member "${m.name}" is not Ready${st.reason ? ` (${st.reason})` : ''}`, 'bring the node back or move the member');
    else warnings.push(...await placementOnNode(m, m.node, st.taints, input, deps));
  }

  // The utility pods: which image gives the shell and which the restore tool; probed where the etcd image runs.
  const images = await utilityImages({ etcdImage: input.etcdImage, utilityImage: input.utilityImage, members: running }, exec, refuse);
  warnings.push(...images.warnings);

  // A member that runs as non-root by its image's USER alone (runAsNonRoot, no runAsUser): a
  // utility pod of another image would run as that image's user, and the files it restores would
  // not be the member's (etcd keeps them 0600). The member is asked who it runs as.
  const memberIds: Record<string, { uid: number; gid: number }> = {};
  for (const m of topology.members) {
    if (m.runAsUser !== undefined || !memberRunsAsNonRoot(m) || images.etcdToolsImage || images.utilityImage === m.image) continue;
    const r = await exec(m, ['sh', '-c', 'echo "$(id -u):$(id -g)"']);
    const ids = r && r.exitCode === 0 ? /^(\d+):(\d+)$/.exec(r.stdout.trim()) : null;
    if (ids) memberIds[m.name] = { uid: Number(ids[1]), gid: Number(ids[2]) };
    else {
      refuse(
        `member "${m.name}" runs as the non-root user its image "${m.image}" sets (runAsNonRoot without runAsUser) and could not be asked which one, so a utility pod of image "${images.utilityImage}" would not write its files as that user`,
        `set runAsUser in statefulset "${topology.workload.name}"'s securityContext, or pass --utility-image ${m.image}; nothing was changed`,
      );
    }
  }

  // Free space on every member volume: the snapshot copy, the restored db and a WAL segment. The
  // copies earlier restores kept take space too: measured with the same exec, shown in the plan,
  // and named (with how to prune them) when the space is short.
  const need = spaceNeeded(snapshot.size);
  const space: Record<string, MemberSpace> = {};
  for (const m of topology.members) {
    const mount = m.dataVolume?.mountPath ?? m.dataDir;
    const kept = await execInMember(deps, m, measureKeptArgv(m)).catch(() => undefined);
    const used = kept && kept.exitCode === 0 ? parseKeptListing(kept.stdout) : undefined;
    if (used) space[m.name] = used;
    else warnings.push(`cannot measure the copies earlier restores kept on the volume of member "${m.name}"`);
    const prune = used?.keptCopies.length
      ? `; ${used.keptCopies.length} cop${used.keptCopies.length > 1 ? 'ies' : 'y'} kept by earlier ${keptBy(used.keptCopies)} take ${mib(used.keptBytes)}: run \`kubectl etcd restore --prune-kept -n ${topology.namespace}\` to remove the older ones`
      : '';
    const r = await execInMember(deps, m, ['df', '-Pk', mount]).catch(() => undefined);
    const avail = r && r.exitCode === 0 ? parseDfAvailable(r.stdout) : undefined;
    if (avail !== undefined) {
      if (avail < need) refuse(`volume of member "${m.name}" (${mount}) has ${mib(avail)} free, the restore needs ${mib(need)}${prune}`, 'free space on the volume or grow the PVC');
      continue;
    }
    // Without df, the capacity less what is known to be used (live data and kept copies).
    const cap = await deps.claimCapacity(m);
    const taken = (used?.liveBytes ?? 0) + (used?.keptBytes ?? 0);
    if (cap !== undefined && cap - taken < need) refuse(`volume of member "${m.name}" holds ${mib(cap)}${taken ? ` (${mib(taken)} of it in use)` : ''}, the restore needs ${mib(need)}${prune}`, 'grow the PVC');
    else if (cap === undefined) warnings.push(`cannot measure free space on the volume of member "${m.name}"`);
  }
  return { tool: images.tool, utilityImage: images.utilityImage, etcdToolsImage: images.etcdToolsImage, clusterVersion, warnings, space, memberIds };
}

type Exec = { exitCode: number; stdout: string; stderr: string };

/**
 * The etcd version rule of versions.ts (same minor, or the snapshot one minor older; no mixed
 * members): refuses or warns, and returns the version the cluster runs when it is known.
 */
export async function checkEtcdVersions(
  input: Pick<PreflightInput, 'topology' | 'snapshot' | 'etcdImage'>,
  execSomewhere: (argv: string[]) => Promise<Exec | undefined>,
  refuse: (message: string, hint: string) => void,
  warnings: string[],
): Promise<string | undefined> {
  const { topology, snapshot } = input;
  let clusterVersion = imageTagVersion(input.etcdImage);
  if (!clusterVersion) {
    const r = await execSomewhere(['etcd', '--version']);
    clusterVersion = r && r.exitCode === 0 ? /etcd Version:\s*(\S+)/.exec(r.stdout)?.[1] : undefined;
  }
  const members = Object.fromEntries(topology.members.map((m) => [m.name, imageTagVersion(m.image)]));
  const verdict = compareVersions({ snapshot: snapshot.etcdVersion, cluster: clusterVersion, members });
  const workload = topology.workload.staticPods ? `the static etcd pods (${topology.workload.name})` : `${topology.workload.kind.toLowerCase()} "${topology.workload.name}"`;
  const written = `snapshot "${snapshot.path}" was written by etcd ${snapshot.etcdVersion}`;
  const runs = `${workload} ${topology.workload.staticPods ? 'run' : 'runs'} etcd ${clusterVersion} (image "${input.etcdImage}")`;
  switch (verdict.outcome) {
    case 'downgrade':
      refuse(`${written} but ${runs}: etcd does not open data of a newer version`, `restore into etcd ${verdict.from} (set that image first)`);
      break;
    case 'skips-minor':
      refuse(`${written} but ${runs}: etcd upgrades one minor version at a time`, `restore into etcd ${verdict.from} first, then upgrade one minor version at a time`);
      break;
    case 'mixed': {
      const others = Object.entries(verdict.byMinor).map(([minor, names]) => `${names.map((n) => `"${n}"`).join(', ')} ${names.length > 1 ? 'run' : 'runs'} ${minor}`).join('; ');
      refuse(
        `${workload} ${topology.workload.staticPods ? 'are' : 'is'} between etcd versions: ${topology.workload.staticPods ? 'the first runs' : 'its template runs'} ${clusterVersion} (image "${input.etcdImage}") but ${others}`,
        topology.workload.staticPods
          ? 'finish the upgrade on every control-plane node (kubeadm upgrade node), then restore again'
          : `let the rollout finish or undo it (kubectl rollout status ${topology.workload.kind.toLowerCase()}/${topology.workload.name} -n ${topology.namespace}), then restore again`,
      );
      break;
    }
    case 'upgrade':
      warnings.push(`${written}; ${runs} opens it as etcd's own upgrade from ${verdict.from} to ${verdict.to} would`);
      break;
    case 'unknown':
      warnings.push(`cannot tell the etcd version of the ${verdict.what}; make sure the snapshot comes from the same etcd minor version or the one before`);
      break;
    case 'same':
      break;
  }
  return clusterVersion;
}

export type MemberExec = (m: EtcdMember, argv: string[]) => Promise<Exec | undefined>;

/** Runs argv in the first of members that answers; undefined when none does. */
export async function execFirst(members: EtcdMember[], exec: MemberExec, argv: string[]): Promise<(Exec & { member: EtcdMember }) | undefined> {
  for (const m of members) {
    const r = await exec(m, argv);
    if (r) return { member: m, ...r };
  }
  return undefined;
}

/**
 * What every utility pod's shell container runs: the copy (head), its check, the swap, the chown,
 * and the markers of long commands run detached (kube/detached.ts: mkdir, cat, rmdir).
 */
const SHELL_TOOLS = ['sh', 'head', 'sha256sum', 'mv', 'rm', 'chown', 'stat', 'sync', 'df', 'mkdir', 'cat', 'rmdir'];

/** What the shell container also runs beside a distroless etcd image: finding and entering the etcd-tools container (manifests.ts: restoreCommand). */
const TOOLS_VIA_SHELL = ['readlink', 'tr', 'grep', 'chroot'];

/**
 * A probe script that prints `missing:T` for each absent tool, `has:etcdutl` when etcdutl is there
 * and `has:bump` when its `snapshot restore` knows --bump-revision (pure sh: no grep needed).
 */
function shellProbe(tools: string[]): string {
  return `for t in ${tools.join(' ')}; do command -v $t >/dev/null 2>&1 || echo missing:$t; done; ` +
    'if command -v etcdutl >/dev/null 2>&1; then echo has:etcdutl; ' +
    'case "$(etcdutl snapshot restore --help 2>&1)" in *--bump-revision*) echo has:bump;; esac; fi; true';
}

/**
 * etcdutl restores with a bumped revision and marked compaction (so watch caches see the jump) only
 * from etcd 3.5.10 on, where `snapshot restore` got --bump-revision/--mark-compacted; an older
 * etcdutl restores like etcdctl.
 */
function etcdutlTool(hasBump: boolean): RestoreTool {
  return hasBump ? { binary: 'etcdutl', bumpRevision: 1_000_000_000 } : { binary: 'etcdutl' };
}

/**
 * Chooses the images of the utility pods by probing a running member of the etcd image:
 *  - the etcd image has a shell: it (or --utility-image) is the one image, for everything;
 *  - it answers an argv exec (`etcd --version`) but has no shell (distroless): the shell image is
 *    --utility-image or DEFAULT_SHELL_IMAGE, and the etcd image itself supplies etcdutl/etcdctl
 *    in a second container (manifests.ts), so the restore tool matches the cluster;
 *  - no member of the etcd image answers: nothing to probe; assume a shell, as before, and warn.
 */
export async function utilityImages(
  input: { etcdImage: string; utilityImage?: string; members: EtcdMember[] },
  exec: MemberExec,
  refuse: (message: string, hint: string) => void,
): Promise<UtilityImages> {
  const { etcdImage } = input;
  const ofEtcdImage = input.members.filter((m) => m.image === etcdImage);
  const warnings: string[] = [];
  const flagged = input.utilityImage !== undefined && input.utilityImage !== etcdImage ? input.utilityImage : undefined;
  const unprobed = (image: string, what: string) => warnings.push(`image "${image}" is not running anywhere to probe; assuming it has ${what}`);

  const shell = await execFirst(ofEtcdImage, exec, ['sh', '-c', shellProbe([...SHELL_TOOLS, 'etcdctl'])]);
  if (shell && shell.exitCode === 0) {
    if (flagged) {
      unprobed(flagged, 'a shell, head, sha256sum and etcdctl');
      return { utilityImage: flagged, tool: { binary: 'etcdctl' }, warnings };
    }
    const missing = [...shell.stdout.matchAll(/missing:(\S+)/g)].map((x) => x[1]!);
    if (missing.length) refuse(`image "${etcdImage}" lacks ${missing.join(', ')}`, 'pass --utility-image with an image of the same etcd version that has a shell and these tools');
    return { utilityImage: etcdImage, tool: /has:etcdutl/.test(shell.stdout) ? etcdutlTool(/has:bump/.test(shell.stdout)) : { binary: 'etcdctl' }, warnings };
  }

  // No shell answered. If etcd itself answers an argv exec, the container runs and sh is what is missing.
  const alive = await execFirst(ofEtcdImage, exec, ['etcd', '--version']);
  if (!alive) {
    const image = flagged ?? etcdImage;
    unprobed(image, 'a shell, head, sha256sum and etcdctl');
    return { utilityImage: image, tool: { binary: 'etcdctl' }, warnings };
  }
  const shellImage = flagged ?? DEFAULT_SHELL_IMAGE;
  let tool = await probeRestoreTool(alive.member, exec);
  if (!tool) {
    refuse(`image "${etcdImage}" has no shell and neither etcdutl nor etcdctl`, 'restore with an etcd image that ships etcdctl (etcd 3.4) or etcdutl (3.5+)');
    tool = { binary: 'etcdctl' };
  }
  unprobed(shellImage, `${[...SHELL_TOOLS, ...TOOLS_VIA_SHELL].join(', ')} (pass --utility-image to use another shell image)`);
  return { utilityImage: shellImage, etcdToolsImage: etcdImage, tool, warnings };
}

/** The restore tool a member's image ships, asked by argv (no shell needed); undefined with neither. */
export async function probeRestoreTool(member: EtcdMember, exec: MemberExec): Promise<RestoreTool | undefined> {
  if ((await exec(member, ['etcdutl', 'version']))?.exitCode === 0) {
    const help = await exec(member, ['etcdutl', 'snapshot', 'restore', '--help']);
    return etcdutlTool(!!help && `${help.stdout}${help.stderr}`.includes('--bump-revision'));
  }
  if ((await exec(member, ['etcdctl', 'version']))?.exitCode === 0) return { binary: 'etcdctl' };
  return undefined;
}

function mib(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

/** Bytes of a Kubernetes quantity such as "512Mi", "1G", "100"; undefined when it cannot be read. */
export function quantityBytes(q: string | undefined): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$/.exec(q ?? '');
  if (!m) return undefined;
  const mult: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15 };
  return Math.floor(Number(m[1]) * (m[2] ? mult[m[2]]! : 1));
}

/** Runs argv in a member's etcd container; undefined when its pod is not there to run it. */
export async function execInMember(deps: Pick<PreflightDeps, 'run'>, m: EtcdMember, argv: string[]): Promise<CommandResult | undefined> {
  if (m.ready === undefined && !m.node) return undefined;
  try {
    return await deps.run(memberContainer(m), argv);
  } catch (err) {
    if (err instanceof ForbiddenError) throw err;
    return undefined;
  }
}

/**
 * Whether the pods a restore puts on a member's node will be scheduled there: its utility pod
 * (pinned to the node by name, with the member's tolerations and ours) and, after the restore, the
 * member itself, which the StatefulSet creates from its template and which must go back to that
 * node when its data cannot move. A taint that came after the member was scheduled (NoSchedule
 * does not evict), or a cordon, would otherwise leave a pod Pending once etcd is stopped.
 * Returns warnings; throws the refusal.
 */
async function placementOnNode(m: EtcdMember, node: string, taints: Taint[], input: PreflightInput, deps: PreflightDeps): Promise<string[]> {
  const sts = `statefulset "${input.topology.workload.name}"`;
  const untaint = (t: Taint) => t.key === UNSCHEDULABLE_TAINT ? `uncordon it (kubectl uncordon ${node})` : `remove the taint (kubectl taint node ${node} ${formatTaint(t)}-)`;
  const which = (t: Taint) => (t.key === UNSCHEDULABLE_TAINT ? 'is cordoned' : `has taint ${formatTaint(t)}`);
  const utilityTaint = untolerated(taints, utilityTolerations(m.podFacts?.tolerations ?? []));
  if (utilityTaint) {
    throw new PreflightError(
      `node "${node}" of member "${m.name}" ${which(utilityTaint)}, which the member's pod does not tolerate (it came after the member was scheduled): the utility pod, which has the member's tolerations, would never be scheduled there`,
      `${untaint(utilityTaint)} for the restore, or add a toleration for it to ${sts}'s pod template and let the pods roll, then restore again; nothing was changed`,
    );
  }
  const memberTaint = input.memberPod && untolerated(taints, input.memberPod.spec['tolerations'] as Toleration[] | undefined);
  if (!memberTaint) return [];
  const pinned = await deps.dataPinnedToNode(m);
  if (pinned === false) return [`node "${node}" of member "${m.name}" ${which(memberTaint)}: the member will start on another node after the restore (its volume can move)`];
  const cannot = `${sts} could not start member "${m.name}" again after the restore stops it: node "${node}" ${which(memberTaint)}, which its pods do not tolerate`;
  if (pinned === undefined) {
    throw new PreflightError(`${cannot}, and whether the member's data can move to another node could not be read`, `${untaint(memberTaint)} for the restore, then restore again; nothing was changed`);
  }
  throw new PreflightError(`${cannot}, and the member's data is bound to that node`, `${untaint(memberTaint)} for the restore, then restore again; nothing was changed`);
}

/** What kept these copies, in words: restores, member replaces, or both. */
function keptBy(copies: ReadonlyArray<{ kind: 'restore' | 'replace' }>): string {
  const restores = copies.some((c) => c.kind === 'restore');
  const replaces = copies.some((c) => c.kind === 'replace');
  return restores && replaces ? 'restores and member replaces' : replaces ? 'member replaces' : 'restores';
}
