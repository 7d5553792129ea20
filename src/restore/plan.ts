/**
 * The restore plan: pure data built from the discovered topology and the snapshot's facts. It
 * says everything the runner will do — members, nodes, volumes, exact argv, pod manifests, the
 * workloads to quiesce and the PDBs to lift — so `--dry-run` can print it and tests can check it.
 */
import { etcdctlSnapshotRestore, etcdutlSnapshotRestore, initialClusterOf } from '../etcd/etcdctl.js';
import type { EtcdMember, EtcdTopology } from '../etcd/topology.js';
import type { ColdStartHold } from './cold-start.js';
import { keptCopiesDirOf, keptCopyPath, within } from './kept.js';
import { utilityPodManifest, utilityRunsAsMember, type UtilityPodManifest } from './manifests.js';
import { planSteps, type PlanStep } from './steps.js';

export type { PlanStep } from './steps.js';

/** What the plan knows of the snapshot before anything changes (read by snapshot.ts). */
export interface PlannedSnapshot {
  path: string;
  size: number;
  sha256: string;
  revision: number;
  totalKey: number;
  /** true when the file ends in etcd's sha256 trailer (a `snapshot save` file). */
  hasTrailer: boolean;
  /** Live keys in the snapshot: what the restored cluster must hold. */
  liveKeys?: number;
  /** The etcd version that wrote the snapshot, when known (minor or full). */
  etcdVersion?: string;
}

/** A workload that writes to etcd and is scaled to 0 while the restore runs. */
export interface QuiesceTarget {
  kind: 'StatefulSet' | 'Deployment';
  name: string;
  replicas: number;
  /** Why it is quiesced: detected (`--etcd-servers` points here) or asked for with --quiesce. */
  reason: 'detected' | 'flag';
}

/** A PodDisruptionBudget that selects quiesced pods; deleted during the restore, re-created after. */
export interface PdbRecord {
  name: string;
  /** The manifest to re-create, stripped of server-set fields. */
  manifest: Record<string, unknown>;
}

/** Which program restores the snapshot, as probed in the utility image at run time. */
export interface RestoreTool {
  binary: 'etcdctl' | 'etcdutl';
  /** etcdutl (3.5+) only: --bump-revision N --mark-compacted. */
  bumpRevision?: number;
}

/** Everything the planner needs; all of it is discovered or given by flags. */
export interface PlanInput {
  topology: EtcdTopology;
  snapshot: PlannedSnapshot;
  quiesce: QuiesceTarget[];
  pdbs: PdbRecord[];
  /** Image for the utility pods; must have a shell (sh, head, mv, …); with etcdToolsImage it needs no etcdctl. */
  utilityImage: string;
  /** When the etcd image is distroless: the utility pod runs a shell image and the etcd image side by side. */
  etcdToolsImage?: string;
  tool: RestoreTool;
  /** A UTC stamp like 20261125T183500Z naming every directory and pod this restore creates. */
  stamp: string;
  inPlace: boolean;
  /** Probes to hold while the members start (cold-start.ts); undefined when they can start with them. */
  coldStart?: ColdStartHold;
}

/** The work for one member. */
export interface MemberPlan {
  member: EtcdMember;
  node: string;
  utilityPod: UtilityPodManifest;
  /** Container in the utility pod that has a shell (copy, swap, chown). */
  shellContainer: string;
  /** Container in the utility pod whose etcdctl/etcdutl matches the cluster. */
  toolContainer: string;
  /** Where the snapshot is copied, on the member's own volume. */
  snapshotPath: string;
  /** A fresh directory on the member's volume that `snapshot restore` writes. */
  restoreDir: string;
  /**
   * Where the old `member/` directory is moved; never deleted. On the member's volume, outside the
   * data dir when the data dir is a sub-folder of the volume (start scripts such as Bitnami's wipe
   * the data dir's contents).
   */
  asideDir: string;
  /**
   * Bitnami members: files its start and preStop scripts act on (data/member_id,
   * data/new_member_envs, member_removal.log beside the data dir), kept in `startFilesDir`.
   */
  startFiles?: string[];
  startFilesDir?: string;
  /**
   * Bitnami members: where preStop writes its removal log (beside the data dir, on the volume); an
   * empty directory made there keeps the hook's `etcdctl member remove` from running at all.
   */
  removalLogGuard?: string;
  /** `sh -ec SCRIPT sh DIR GUARD FILES…`: moves the start files into startFilesDir, then makes the guard; idempotent. */
  keepStartFilesArgv?: string[];
  restoreArgv: string[];
  /** `sh -ec SCRIPT sh ARGS…`: moves old data aside and the restored data in; idempotent. */
  swapArgv: string[];
  /** Puts the pre-restore data back (for --abort); idempotent. */
  rollbackArgv: string[];
  /** Hands the new data to the etcd user: the pod's runAsUser, else the owner of the data set aside. */
  chownArgv?: string[];
}

/** The complete restore plan. */
export interface RestorePlan {
  namespace: string;
  workload: EtcdTopology['workload'];
  replicas: number;
  snapshot: PlannedSnapshot;
  initialCluster: string;
  /** The token the members were started with (discovered): what initialClusterToken is made from. */
  clusterToken: string;
  /** This restore's own token (restoreClusterToken): the restored members get new IDs. */
  initialClusterToken: string;
  tool: RestoreTool;
  stamp: string;
  inPlace: boolean;
  quiesce: QuiesceTarget[];
  pdbs: PdbRecord[];
  /** The probes held while the members start, when they could not all start with them (cold-start.ts). */
  coldStart?: ColdStartHold;
  members: MemberPlan[];
  steps: PlanStep[];
  warnings: string[];
}

/** The directory that holds `member/`: the data dir itself. */
function joinPath(dir: string, name: string): string {
  return dir.endsWith('/') ? `${dir}${name}` : `${dir}/${name}`;
}

/** The volume mount path that holds the data dir (scratch space for the copy and the restore). */
function scratchDirOf(member: EtcdMember): string {
  return member.dataVolume?.mountPath ?? member.dataDir;
}

/** The parent of a path. */
function parentOf(path: string): string {
  const p = path.replace(/\/+$/, '');
  return p.slice(0, p.lastIndexOf('/')) || '/';
}

/**
 * Files of Bitnami's scripts that decide over a member at its next start or stop: its stored
 * member ID (preStop removes that member from the cluster; start runs `member update` with it),
 * the env of a re-join, and preStop's removal log beside the data dir (at start, with a healthy
 * cluster, it makes the script wipe the data dir and add the member again).
 */
function bitnamiStartFiles(member: EtcdMember): string[] {
  const files = [joinPath(member.dataDir, 'member_id'), joinPath(member.dataDir, 'new_member_envs')];
  const log = bitnamiRemovalLog(member);
  return log ? [...files, log] : files;
}

/**
 * Where Bitnami's preStop hook writes `etcdctl member remove`'s answer: member_removal.log beside
 * the data dir, when that is on the member's volume. The legacy scripts (debian-11) remove the ID
 * in data/member_id, the current ones (debian-12: 3.5, 3.6) the ID the cluster's member list gives
 * the member's peer URL, which no file kept aside hides; both run the removal as
 * `etcdctl member remove … > member_removal.log`, and a shell runs no command whose output file
 * it cannot open, which a directory of that name makes sure of.
 */
export function bitnamiRemovalLog(member: EtcdMember): string | undefined {
  const parent = parentOf(member.dataDir);
  return member.dataVolume && within(parent, member.dataVolume.mountPath) ? joinPath(parent, 'member_removal.log') : undefined;
}

// Shell scripts get their paths as positional arguments, never interpolated.
// Every mv first checks that its target does not exist: mv into an existing directory nests
// instead of failing.
const SWAP_SCRIPT = [
  'data="$1"; fresh="$2"; aside="$3"',
  'if [ -d "$fresh/member" ]; then',
  '  if [ -e "$data/member" ]; then',
  '    if [ -e "$aside" ]; then echo "$aside exists already; not moving $data/member over it" >&2; exit 1; fi',
  '    mv "$data/member" "$aside"',
  '  fi',
  '  if [ -e "$data/member" ]; then echo "$data/member came back while swapping (is etcd running on it?)" >&2; exit 1; fi',
  '  mv "$fresh/member" "$data/member"',
  'fi',
  'rmdir "$fresh" 2>/dev/null || true',
  'test -d "$data/member"',
].join('\n');

// Owner from the pod spec, else from the old member directory (an image's USER, an fsGroup-only
// pod); with neither (root, or the old data is gone) the files stay root's.
const CHOWN_SCRIPT = [
  'data="$1"; aside="$2"; owner="$3"',
  'if [ -z "$owner" ] && [ -e "$aside" ]; then owner=$(stat -c %u:%g "$aside"); fi',
  'if [ -n "$owner" ] && [ "$owner" != "0:0" ]; then chown -R "$owner" "$data/member"; fi',
].join('\n');

// Moves each existing FILE into DIR (made 0700); a file already kept stays, the newer one is kept
// beside it; then makes GUARD (when given) an empty directory, which no later run moves.
const KEEP_FILES_SCRIPT = [
  'dir="$1"; guard="$2"; shift 2',
  'for f in "$@"; do',
  '  if [ ! -e "$f" ] || [ -d "$f" ]; then continue; fi',
  '  mkdir -p "$dir"',
  '  dest="$dir/$(basename "$f")"',
  '  if [ -e "$dest" ]; then dest="$dest.$(date +%s)"; fi',
  '  mv "$f" "$dest"',
  'done',
  'if [ -n "$guard" ]; then mkdir -p "$guard"; fi',
].join('\n');

// Puts kept start files back where they were (a file that came back meanwhile stays), first
// removing the guard directory that stood in for one of them.
const RESTORE_FILES_SCRIPT = [
  'dir="$1"; shift',
  'for f in "$@"; do',
  '  if [ -d "$f" ]; then rmdir "$f"; fi',
  '  kept="$dir/$(basename "$f")"',
  '  if [ -e "$kept" ] && [ ! -e "$f" ]; then mv "$kept" "$f"; fi',
  'done',
  'rmdir "$dir" 2>/dev/null || true',
].join('\n');

const ROLLBACK_SCRIPT = [
  'data="$1"; aside="$2"; restored="$3"',
  'if [ -d "$aside" ]; then',
  '  if [ -e "$data/member" ]; then',
  '    if [ -e "$restored" ]; then echo "$restored exists already; not moving $data/member over it" >&2; exit 1; fi',
  '    mv "$data/member" "$restored"',
  '  fi',
  '  mv "$aside" "$data/member"',
  'fi',
].join('\n');

/** argv for `etcdctl snapshot restore` or `etcdutl snapshot restore` for one member (etcd/etcdctl.ts builds it). */
export function restoreArgvFor(
  member: EtcdMember,
  opts: { snapshotPath: string; restoreDir: string; initialCluster: string; token: string; tool: RestoreTool; skipHashCheck: boolean },
): string[] {
  const spec = {
    snapshot: opts.snapshotPath,
    name: member.name,
    initialCluster: opts.initialCluster,
    initialClusterToken: opts.token,
    initialAdvertisePeerUrls: member.peerUrl,
    dataDir: opts.restoreDir,
    skipHashCheck: opts.skipHashCheck,
  };
  // etcdctl and etcdutl take the same flags; only etcdutl (3.5.10+, probed) bumps the revision.
  if (opts.tool.binary === 'etcdctl') return etcdctlSnapshotRestore(spec).argv;
  return etcdutlSnapshotRestore({ ...spec, bumpRevision: opts.tool.bumpRevision || undefined }).argv;
}

/**
 * The --initial-cluster-token of a restore: the cluster's own token with the restore's stamp. A
 * fresh token gives the restored members and cluster new IDs (etcd/ids.ts), so verification can
 * tell each member runs this restore's data, and a member left on its old data (another cluster ID)
 * is refused by its restored peers instead of joining them with a log far ahead of theirs.
 */
export function restoreClusterToken(clusterToken: string, stamp: string): string {
  return `${clusterToken}-restore-${stamp}`;
}

/** Builds the plan; throws nothing — problems found here become warnings, preflight refuses. */
export function buildRestorePlan(input: PlanInput): RestorePlan {
  const { topology, snapshot, stamp } = input;
  const members = topology.members;
  const initialCluster = initialClusterOf(members);
  const clusterToken = topology.initialClusterToken ?? members[0]?.initialClusterToken ?? 'etcd-cluster';
  const initialClusterToken = restoreClusterToken(clusterToken, stamp);
  const warnings: string[] = [];
  if (members.some((m) => m.startScripts?.kind === 'bitnami')) {
    warnings.push(
      'the members run Bitnami\'s start scripts: their member_id files stay in member.pre-restore-*.start-files and an empty ' +
        'directory stands where the preStop hook writes member_removal.log, so that the hook (which finds the member by member_id ' +
        'in the legacy images, by its peer URL in the member list in the debian-12 ones) removes no member during or after the ' +
        'restore, and no start wipes the restored data; `rmdir` that directory to let the hook remove stopping members again',
    );
  }
  if (!input.tool.bumpRevision) {
    const why = input.tool.binary === 'etcdctl' ? 'the etcd image has no etcdutl (etcd < 3.5)' : 'the etcdutl of the etcd image has no --bump-revision (etcd < 3.5.10)';
    warnings.push(
      `${why}: the restored revision is not bumped, so restart every ` +
        'kube-apiserver after the restore to drop watch caches that may be ahead of the snapshot',
    );
  }
  const memberPlans = members.map((member): MemberPlan => {
    const scratch = scratchDirOf(member);
    const snapshotPath = joinPath(scratch, `kubectl-etcd-${stamp}.db`);
    const restoreDir = joinPath(scratch, `kubectl-etcd-restore-${stamp}`);
    // Outside a data dir that is a sub-folder of the volume, but on the same volume (mv, not copy).
    const asideBase = keptCopiesDirOf(member);
    const asideDir = keptCopyPath(member, stamp);
    const restoredAside = joinPath(asideBase, `member.restored-${stamp}`);
    const startFiles = member.startScripts?.kind === 'bitnami' ? bitnamiStartFiles(member) : undefined;
    const startFilesDir = startFiles ? `${asideDir}.start-files` : undefined;
    const removalLogGuard = startFiles ? bitnamiRemovalLog(member) : undefined;
    const pod = utilityPodManifest({ member, image: input.utilityImage, etcdToolsImage: input.etcdToolsImage, stamp });
    const runAs = member.runAsUser;
    const runsAsMember = utilityRunsAsMember(member, Boolean(input.etcdToolsImage));
    return {
      member,
      node: member.node ?? '',
      utilityPod: pod.manifest,
      shellContainer: pod.shellContainer,
      toolContainer: pod.toolContainer,
      snapshotPath,
      restoreDir,
      asideDir,
      restoreArgv: restoreArgvFor(member, {
        snapshotPath, restoreDir, initialCluster, token: initialClusterToken, tool: input.tool,
        skipHashCheck: !snapshot.hasTrailer,
      }),
      ...(startFiles && startFilesDir ? {
        startFiles, startFilesDir, ...(removalLogGuard ? { removalLogGuard } : {}),
        keepStartFilesArgv: ['sh', '-ec', KEEP_FILES_SCRIPT, 'sh', startFilesDir, removalLogGuard ?? '', ...startFiles],
      } : {}),
      swapArgv: ['sh', '-ec', SWAP_SCRIPT, 'sh', member.dataDir, restoreDir, asideDir],
      rollbackArgv: startFiles && startFilesDir
        ? ['sh', '-ec', `${ROLLBACK_SCRIPT}\nshift 3\n${RESTORE_FILES_SCRIPT}`, 'sh', member.dataDir, asideDir, restoredAside, startFilesDir, ...startFiles]
        : ['sh', '-ec', ROLLBACK_SCRIPT, 'sh', member.dataDir, asideDir, restoredAside],
      // A utility pod that runs as the member's own user wrote files that are the member's already;
      // a root one hands them to the etcd user: the pod's runAsUser when set, else whoever owned
      // the data set aside.
      ...(runsAsMember ? {} : {
        chownArgv: ['sh', '-ec', CHOWN_SCRIPT, 'sh', member.dataDir, asideDir,
          runAs !== undefined && runAs !== 0 ? `${runAs}:${member.runAsGroup ?? member.fsGroup ?? runAs}` : ''],
      }),
    };
  });
  return {
    namespace: topology.namespace,
    workload: topology.workload,
    replicas: topology.workload.replicas ?? members.length,
    snapshot,
    initialCluster,
    clusterToken,
    initialClusterToken,
    tool: input.tool,
    stamp,
    inPlace: input.inPlace,
    quiesce: input.quiesce,
    pdbs: input.pdbs,
    ...(input.coldStart ? { coldStart: input.coldStart } : {}),
    members: memberPlans,
    steps: planSteps({ workload: topology.workload, members: memberPlans, quiesce: input.quiesce, pdbs: input.pdbs, inPlace: input.inPlace, coldStart: input.coldStart }),
    warnings,
  };
}
