/**
 * `member replace`, the pure part: which member, whether it may be replaced now, and what runs in
 * the member's pod to bring it back.
 *
 * The runbook (remove the member, wipe its data, `member add`, start it with
 * `--initial-cluster-state existing`) cannot be followed through a StatefulSet without editing its
 * template: the member's own container starts etcd with `--initial-cluster-state new`, which on an
 * empty data dir either stops with "member … has already been bootstrapped" (before the removal)
 * or comes up as the removed member and is refused by its peers (after it). etcd reads the
 * initial-cluster flags only while the data dir holds no WAL, so the member is joined once with
 * `existing`, into a fresh dir on its own volume, and that dir is then put where the member's own
 * etcd finds it. The join runs in an ephemeral container of the member's pod: the pod's network
 * (its IP and name, which the peers' TLS checks against the certificate) and the member's volumes,
 * image, env and security context, with the StatefulSet untouched.
 */
import { PluginError, UsageError } from '../errors.js';
import { ETCD_BOOLEAN_FLAGS, etcdEnvName } from './flags.js';
import { normalizeUrl, type LiveMember } from './discovery/confirm.js';
import { parseBigJson, type MemberStatus } from './status.js';
import { KEPT_REPLACE_PREFIX, joinPath } from '../restore/kept.js';
import type { EtcdMember } from './topology.js';

/** Name prefix of the ephemeral containers that join a member. */
export const JOIN_CONTAINER_PREFIX = 'kubectl-etcd-join-';
/** Name prefixes of the shell-image containers of a distroless join: the set-aside, and the stop and swap (joinSplit). */
export const PREP_CONTAINER_PREFIX = 'kubectl-etcd-prep-';
export const SWAP_CONTAINER_PREFIX = 'kubectl-etcd-swap-';
/** The env var of a join container that names the member ID it joins as (hex). */
export const JOIN_ID_ENV = 'KUBECTL_ETCD_MEMBER_ID';
/** The ConfigMap that journals a replace of the member of this pod (one per pod): replace.ts. */
export function journalName(pod: string): string {
  return `kubectl-etcd-replace-${pod}`;
}
/** The work dir's name on the member's volume. */
export const WORK_DIR_NAME = 'kubectl-etcd-replace';

/** One member and what its status probe answered. */
export interface Row {
  member: EtcdMember;
  status: MemberStatus;
}

/** The live member list entry of a member: by its peer URL (an unstarted entry has no name), else by name. */
export function liveEntryOf(member: Pick<EtcdMember, 'name' | 'peerUrl'>, live: LiveMember[]): LiveMember | undefined {
  const peer = normalizeUrl(member.peerUrl);
  return live.find((l) => l.peerURLs.some((u) => normalizeUrl(u) === peer)) ?? live.find((l) => l.name !== '' && l.name === member.name);
}

/** Votes needed for quorum among n voting members. */
export function quorumOf(n: number): number {
  return Math.floor(n / 2) + 1;
}

/**
 * Why the member of `pod` may not be replaced now, before any change; undefined when it may.
 * `joining` is the member ID a join of this member already under way uses (a run cut off before):
 * then the target's entry is that join's, and the target being unhealthy is expected.
 */
export function replaceRefusal(input: { pod: string; rows: Row[]; live: LiveMember[]; force: boolean; joining?: string }): PluginError | undefined {
  const { pod, rows, live, force, joining } = input;
  const target = rows.find((r) => r.member.pod === pod);
  if (!target) {
    const pods = rows.map((r) => `"${r.member.pod}"`).join(', ');
    return new UsageError(`pod "${pod}" is not a member of this etcd cluster (its members: ${pods})`, 'name one of its pods: kubectl etcd status lists them');
  }
  const others = rows.filter((r) => r !== target);
  const entry = liveEntryOf(target.member, live);
  // Voters once the member is back: the list as it is, or one more when the member was removed already.
  const voters = live.length + (entry ? 0 : 1);
  const healthy = others.filter((r) => r.status.healthy);
  const need = quorumOf(voters);
  if (healthy.length < need) {
    return new PluginError(
      `only ${healthy.length} of the other ${others.length} members ${healthy.length === 1 ? 'is' : 'are'} healthy: ${voters} members need ${need} for quorum, so "${pod}" cannot rejoin`,
      'with quorum lost, bring the cluster back from a snapshot: kubectl etcd restore --help',
    );
  }
  const sick = others.filter((r) => !r.status.healthy);
  if (sick.length) {
    return new PluginError(
      `another member is unhealthy: ${sick.map((r) => `"${r.member.pod}" (${r.status.error ?? 'unhealthy'})`).join(', ')}; replacing "${pod}" now would leave the cluster one failure from losing quorum`,
      'bring that member back first (kubectl etcd status shows why it fails)',
    );
  }
  if (target.status.healthy && !force && !(joining && entry?.id === joining)) {
    return new PluginError(`member "${pod}" is healthy (ID ${target.status.memberId ?? entry?.id ?? '?'}); nothing to replace`, 'pass --force to replace a healthy member anyway (its data is set aside and it syncs from the others)');
  }
  return undefined;
}

/** The peer URLs' initial-cluster entries of every started member, plus the joining one. */
export function joinInitialCluster(live: LiveMember[], joiner: Pick<EtcdMember, 'name' | 'peerUrl' | 'peerUrls'>, joinerId?: string): string {
  const entries: string[] = [];
  for (const l of live) {
    if (l.id === joinerId || !l.name) continue;
    if (normalizeUrl(l.peerURLs[0] ?? '') === normalizeUrl(joiner.peerUrl)) continue;
    for (const u of l.peerURLs) entries.push(`${l.name}=${u}`);
  }
  for (const u of joiner.peerUrls ?? [joiner.peerUrl]) entries.push(`${joiner.name}=${u}`);
  return entries.join(',');
}

/** Flags the join sets itself (dropped from the member's argv and env). */
const JOIN_SET = ['data-dir', 'initial-cluster', 'initial-cluster-state'];
/** Flags under which a join would not do what the member does. */
const JOIN_REFUSED = ['wal-dir', 'force-new-cluster', 'config-file', 'discovery', 'discovery-srv'];

/**
 * etcd's argv for the join: the member's own arguments, with the data dir, initial cluster and
 * state replaced. Refuses flags that would change where the data goes or how the member joins.
 */
export function joinArgs(args: string[], env: ReadonlyMap<string, string>, set: { dataDir: string; initialCluster: string }): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const m = /^--?([A-Za-z0-9][A-Za-z0-9_.-]*)(=[\s\S]*)?$/.exec(arg);
    if (!m) {
      out.push(arg);
      continue;
    }
    const name = m[1]!;
    const separate = m[2] === undefined && !ETCD_BOOLEAN_FLAGS.has(name) && i + 1 < args.length;
    if (JOIN_REFUSED.includes(name) && !(ETCD_BOOLEAN_FLAGS.has(name) && m[2] === '=false')) {
      throw new PluginError(`the member runs etcd with --${name}; member replace does not support it`, 'replace the member by hand (member remove, wipe, member add, start with --initial-cluster-state existing)');
    }
    if (JOIN_SET.includes(name)) {
      if (separate) i++;
      continue;
    }
    out.push(arg);
    if (separate) out.push(args[++i]!);
  }
  for (const flag of JOIN_REFUSED) {
    const v = env.get(etcdEnvName(flag));
    if (v !== undefined && v !== '' && v !== 'false') throw new PluginError(`the member sets ${etcdEnvName(flag)}; member replace does not support it`, 'replace the member by hand');
  }
  return [...out, `--data-dir=${set.dataDir}`, `--initial-cluster=${set.initialCluster}`, '--initial-cluster-state=existing'];
}

/** The member's env vars a join must not inherit: etcd refuses a flag whose ETCD_* twin is also set. */
export function droppedEnv(): Set<string> {
  return new Set(JOIN_SET.map(etcdEnvName));
}

/**
 * The join container's script, `sh -ec SCRIPT sh DATA WORK ASIDE ID STARTED ETCD-ARGV…`. Idempotent:
 *  1. the old `DATA/member` (a dir) is moved to ASIDE, never deleted; a plain file takes its
 *     place, so etcd in the member's own container, restarting meanwhile, stops at once instead
 *     of starting on an empty data dir;
 *  2. etcd joins as member ID into WORK/data, and runs (restarted while the member's own container
 *     holds the ports for a moment) until WORK/stop appears;
 *  3. etcd stops, JOINED (a file naming ID) is written into the joined member dir, the stand-in
 *     file goes and WORK/data/member becomes DATA/member; WORK/swapped records the ID.
 * A DATA/member holding JOINED with its ID is in place: the run does nothing more. With STARTED=1
 * (the member list shows ID started already) etcd is never started as ID on an empty dir: a
 * member that lost its log under the same ID could vote twice in one term.
 * Paths and argv are positional parameters, never interpolated.
 */
export const JOINED_FILE = 'kubectl-etcd-joined';

/** The join script's first part: the old data aside, the stand-in file (see JOIN_SCRIPT). */
const JOIN_PREP = [
  'if [ "$started" = 1 ] && [ ! -d "$work/data/member/wal" ]; then',
  '  echo "member $id started before, but neither its joined data ($work/data/member) nor $data/member with its marker is here: not starting it on an empty data dir" >&2; exit 1',
  'fi',
  'if [ -d "$data/member" ]; then',
  '  if [ -e "$aside" ]; then echo "$aside exists already; not moving $data/member over it" >&2; exit 1; fi',
  '  mv "$data/member" "$aside"',
  '  echo "kubectl-etcd: the old data is kept in $aside"',
  'fi',
  'if [ ! -e "$data/member" ]; then : > "$data/member"; fi',
  'if [ ! -f "$data/member" ]; then echo "$data/member is not the stand-in file kubectl-etcd made" >&2; exit 1; fi',
  'rm -f "$work/stop"',
];

/** Whether the joined data is in DATA/member already (the file JOINED names ID); if so, says so and ends. */
const IN_PLACE = [
  'umask 077',
  'mkdir -p "$work"',
  'in_place() { j=""; if [ -f "$data/member/kubectl-etcd-joined" ]; then read -r j < "$data/member/kubectl-etcd-joined" || true; fi; [ "$j" = "$id" ]; }',
  'if in_place; then echo "$id" > "$work/swapped"; echo "kubectl-etcd: member $id is in place already"; exit 0; fi',
];

/** The join script's last part, once etcd stopped: the joined data into place (see JOIN_SCRIPT). */
const JOIN_SWAP = [
  'if [ ! -d "$work/data/member/wal" ]; then echo "etcd wrote no $work/data/member/wal" >&2; exit 1; fi',
  'echo "$id" > "$work/data/member/kubectl-etcd-joined"',
  'if [ -f "$data/member" ]; then rm -f "$data/member"; fi',
  'if [ -e "$data/member" ]; then echo "$data/member came back while swapping" >&2; exit 1; fi',
  'mv "$work/data/member" "$data/member"',
  'if [ -e "$data/member/member" ] || ! in_place; then echo "$data/member is not the joined data after the move (did etcd start on it meanwhile?)" >&2; exit 1; fi',
  'echo "$id" > "$work/swapped"',
  'rm -f "$work/stop"',
  'rmdir "$work/data" 2>/dev/null || true',
  'echo "kubectl-etcd: member $id is in place"',
];

export const JOIN_SCRIPT = [
  'data="$1"; work="$2"; aside="$3"; id="$4"; started="$5"; shift 5',
  ...IN_PLACE,
  ...JOIN_PREP,
  'tries=0',
  'pid=""',
  `trap 'if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null; wait "$pid"; fi; exit 143' TERM INT`,
  'while :; do',
  '  "$@" & pid=$!',
  '  while [ ! -e "$work/stop" ] && kill -0 "$pid" 2>/dev/null; do sleep 1; done',
  '  if [ -e "$work/stop" ]; then break; fi',
  '  wait "$pid" || true',
  '  tries=$((tries + 1))',
  '  if [ "$tries" -ge 60 ]; then echo "etcd did not stay up (60 tries): see the lines above" >&2; exit 1; fi',
  '  echo "kubectl-etcd: etcd exited; starting it again (try $tries)"',
  '  sleep 2',
  'done',
  'kill -TERM "$pid" 2>/dev/null || true',
  'wait "$pid" || true',
  'pid=""',
  ...JOIN_SWAP,
].join('\n');

/**
 * For an etcd image without a shell (distroless), the join runs in three ephemeral containers: this
 * script in a shell image (`sh -ec SCRIPT sh DATA WORK ASIDE ID STARTED`), the first part of
 * JOIN_SCRIPT; etcd itself in the member's image, started directly; and, in the member's next pod,
 * JOIN_SWAP_SCRIPT.
 */
export const JOIN_PREP_SCRIPT = [
  'data="$1"; work="$2"; aside="$3"; id="$4"; started="$5"; shift 5',
  ...IN_PLACE,
  ...JOIN_PREP,
].join('\n');

/**
 * The last of the three (`sh -ec SCRIPT sh DATA WORK ASIDE ID`), in a shell image, once the join's
 * etcd has stopped (its pod deleted: an ephemeral container cannot be stopped otherwise, nor
 * reached by another one's signals, as targetContainerName may name only a regular container):
 * the joined data into place, as JOIN_SCRIPT does. Idempotent: data in place already ends it.
 */
export const JOIN_SWAP_SCRIPT = [
  'data="$1"; work="$2"; aside="$3"; id="$4"',
  ...IN_PLACE,
  ...JOIN_SWAP,
].join('\n');

/** Name prefix of the ephemeral containers that read the free space on a failed member's volume. */
export const SPACE_CONTAINER_PREFIX = 'kubectl-etcd-space-';
/** etcd preallocates every WAL segment file at 64 MB (server/storage/wal: SegmentSizeBytes). */
export const WAL_SEGMENT_BYTES = 64 * 1000 * 1000;

/**
 * What a replaced member writes on its volume beside the data kept there: the db the leader sends
 * it whole (the largest db of the healthy members), its first WAL segment, and a tenth to spare.
 */
export function replaceNeedsBytes(dbBytes: number): number {
  return Math.ceil((dbBytes + WAL_SEGMENT_BYTES) * 1.1);
}

/** argv that prints `df -Pk` of the filesystem holding `path` (POSIX output: one line a filesystem). */
export function freeSpaceArgv(path: string): string[] {
  return ['df', '-Pk', path];
}

export { parseDfAvailable } from '../restore/kept.js';

/** Name prefix of the ephemeral containers that set a chart-managed member's data aside. */
export const ASIDE_CONTAINER_PREFIX = 'kubectl-etcd-aside-';
/**
 * The file left in the data dir for the legacy Bitnami scripts (see ASIDE_SCRIPT). A dot file: their
 * wipe of a removed member (`rm -rf "$ETCD_DATA_DIR"/*`) leaves it, so a member that restarts before
 * its removal (its `member add` then fails) still finds it the next time, and never an empty dir.
 */
export const READD_MARKER = '.kubectl-etcd-replaced';

/**
 * Sets a Bitnami member's whole data dir aside on its volume (never deleted) and leaves the data
 * dir as the chart's start script re-adds a member from (test/sim/images/ model both generations):
 *  - the current (debian-12) scripts add the member again when the data dir is empty; with any
 *    file in it they first start etcd on it to see whether the cluster still knows it;
 *  - the legacy (debian-11) scripts, which keep the member's ID in data/member_id, add it again
 *    when the data dir holds neither member/snap nor member_id; an empty one they start as a new
 *    cluster (ETCD_INITIAL_CLUSTER_STATE=new, as the chart installs it), which its peers refuse.
 * So the data dir is left empty, or holding one marker file for the legacy scripts. Which scripts
 * the image runs is read from the image itself (the legacy libetcd.sh names the member_id file),
 * else from the data (a member_id file). The set-aside is one rename (an etcd still running on the
 * old files goes on in the kept copy until its removal stops it), and a second run finds the kept
 * copy and changes nothing.
 *
 * With "recheck" (after the member's removal) it sets aside, under its own name, data a start of
 * the member's container made meanwhile on the emptied dir: etcd started there as a cluster of its
 * own (no new_member_envs: the scripts' own re-add writes that first), which no start recovers from.
 */
export const ASIDE_SCRIPT = [
  'data="$1"; aside="$2"; mode="$3"',
  'umask 077',
  'lib=/opt/bitnami/scripts/libetcd.sh',
  'legacy=0',
  `if [ -f "$lib" ]; then if grep -qsE 'DATA_DIR[}]?/member_id' "$lib"; then legacy=1; fi`,
  `elif [ -f "$data/member_id" ] || [ -e "$data/${READD_MARKER}" ]; then legacy=1; fi`,
  'if [ "$mode" = recheck ]; then',
  '  if [ ! -d "$data/member" ] || [ -f "$data/new_member_envs" ] || [ -e "$aside" ]; then exit 0; fi',
  '  mv "$data" "$aside"',
  '  echo "kubectl-etcd: data a start of the member made meanwhile, as a cluster of its own, is kept in $aside"',
  'else',
  '  if [ -e "$aside" ]; then echo "kubectl-etcd: the old data was set aside already: $aside"; exit 0; fi',
  '  if [ -e "$data" ]; then',
  '    mv "$data" "$aside"',
  '    echo "kubectl-etcd: the old data is kept in $aside"',
  '  else',
  '    echo "kubectl-etcd: no data dir at $data: nothing to keep"',
  '  fi',
  'fi',
  'mkdir -p "$data"',
  'chmod 700 "$data"',
  `if [ "$legacy" = 1 ]; then : > "$data/${READD_MARKER}"; fi`,
  'sync',
].join('\n');

/** Kubernetes expands `$(VAR)` in command and args and reads `$$` as `$`: every `$` doubled keeps the text as it is. */
export function escapeKubeVars(text: string): string {
  return text.replace(/\$/g, '$$$$');
}

/** Where one member's replace keeps its files: the work dir and the kept copy of this run. */
export function replacePaths(keptDir: string, stamp: string): { work: string; aside: string } {
  return { work: joinPath(keptDir, WORK_DIR_NAME), aside: joinPath(keptDir, `${KEPT_REPLACE_PREFIX}${stamp}`) };
}

/** Reads `etcdctl member add -w json`: the new member's ID (hex). */
export function parseMemberAdd(json: string): string {
  const doc = parseBigJson(json) as { member?: { ID?: string | number } };
  if (doc.member?.ID === undefined) throw new Error('etcdctl member add printed no member ID');
  return BigInt(doc.member.ID).toString(16);
}

/** True when a member's raft index has reached the leader's at the time it was read. */
export function caughtUp(joined: Pick<MemberStatus, 'raftIndex' | 'healthy'>, leaderIndex: number | undefined): boolean {
  return joined.healthy && joined.raftIndex !== undefined && (leaderIndex === undefined || joined.raftIndex >= leaderIndex);
}
