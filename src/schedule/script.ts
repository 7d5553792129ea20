/**
 * The POSIX sh script a scheduled backup's pod runs (`kubectl etcd schedule create`): it takes a
 * snapshot from the first etcd member that answers, verifies it, stores it on the backup volume
 * in the layout `kubectl etcd backup --dir DIR` writes (naming.ts, record.ts), and prunes older
 * backups of the same namespace/workload as retention.ts does. Written for dash and busybox sh,
 * with the tools a busybox or Debian image has (sed, grep, sort, tail, cut, tr, wc, df, find, od,
 * date, mv, rm, mkdir, sha256sum); no jq, no bash.
 *
 * Every value that comes from the user or the cluster is in the script only as a shellQuote'd word
 * (names also JSON-encoded first, for the record): nothing is ever expanded or run from them.
 *
 * What the pod leaves behind:
 *   DIR/<ns>-<workload>-<YYYYMMDDTHHMMSSZ>-rev<N>.db   the verified snapshot (0600)
 *   DIR/<that>.json                                     its BackupRecord, 2-space JSON as writeSidecar writes (0600)
 *   DIR/.incoming/                                      partial files while it runs, removed on every exit
 * and one line in the termination log: a summary, or why it failed (see SCHEDULE_EXIT).
 */
import { posix } from 'node:path';
import { backupStem } from '../backup/naming.js';
import { MAX_SIDECAR_BYTES } from '../backup/record.js';
import type { TransportKind } from '../backup/transport.js';
import { shellQuote } from '../etcd/shell.js';

/** The script's exit codes (the termination log says why). */
export const SCHEDULE_EXIT = {
  ok: 0,
  /** The pod lacks something the script needs (a `date` that prints a UTC time). */
  failure: 1,
  /** No member answered its status check and gave a snapshot: `no etcd member answered: <ep>: <why>; …`. */
  noMember: 10,
  /** The snapshot failed verification (snapshot status, its size, snapshot restore: sha256 trailer and bbolt; the drill). */
  verification: 11,
  /** Writing to the backup volume failed (ENOSPC, read-only, not mounted …): `volume full or not writable: …`; nothing was added. */
  volume: 12,
  /** The backup is saved, but removing an older one failed. */
  prune: 14,
  /** Stopped by SIGHUP, SIGINT, SIGTERM (128 + the signal); partial files are removed first. */
  hangup: 129,
  interrupt: 130,
  terminate: 143,
} as const;

/**
 * The `transport` a scheduled backup records. TransportKind has no value of its own for it yet
 * ('exec' | 'stream'); 'exec' is the nearest: etcdctl saves the file where it runs. The record's
 * `schedule` field is what marks a scheduled backup.
 */
export const SCHEDULE_TRANSPORT: TransportKind = 'exec';

/** Where the drill's etcd listens: the backup pod's own loopback, ports no member or sidecar uses. */
export const DRILL_CLIENT_URL = 'http://127.0.0.1:32479';
const DRILL_PEER_URL = 'http://127.0.0.1:32480';
const DRILL_NAME = 'kubectl-etcd-drill';

/** One member the script may take the snapshot from. */
export interface ScheduleEndpoint {
  /** Its client URL, e.g. https://10.0.0.5:2379. */
  url: string;
  /** The pod the record names (default: the URL's host). */
  pod?: string;
  /** The member name the record names (default: the URL). */
  member?: string;
}

/** What backupScript needs to know. Paths are paths inside the backup pod. */
export interface BackupScriptOptions {
  /** Member client URLs, tried in order. */
  endpoints: Array<string | ScheduleEndpoint>;
  /** Client TLS files. */
  tls?: { cacert?: string; cert?: string; key?: string };
  /** The argv prefix that runs etcdctl, e.g. ['etcdctl'] or ['/usr/local/bin/etcdctl']. */
  etcdctl: string[];
  /** The argv prefix that runs etcdutl (3.5+) for `snapshot status|restore`; without it, etcdctl's (3.4). */
  etcdutl?: string[];
  /** The backup volume's mount, e.g. /backups. */
  dir: string;
  /** Scratch space (an emptyDir) for the restore that verifies the snapshot: it needs the snapshot's size plus 64 MiB (a WAL). */
  work: string;
  namespace: string;
  workload: string;
  /** How many backups of this namespace/workload to keep (the new one included). */
  keep: number;
  /** The schedule's name, recorded in each record. */
  schedule: string;
  pluginVersion: string;
  /** Default /dev/termination-log. */
  terminationLog?: string;
  /**
   * A restore drill before the backup is saved (`--verify-restore`): etcd (this argv prefix, the
   * members' own release) is started on the verifying restore, on the pod's loopback
   * (DRILL_CLIENT_URL), and must serve the snapshot's revision; what it served goes into the
   * record's `drills`. A failed drill fails the run (verification) and saves nothing.
   */
  drill?: { etcd: string[] };
  /** etcdctl --dial-timeout for the status check and the save (default 3s). */
  dialTimeout?: string;
  /** etcdctl --command-timeout for the status check (default 5s); the save has none (etcdctl 3.4 ignores it there). */
  commandTimeout?: string;
}

/** The two lines of a record (as writeSidecar and this script write it) that name its owner: pruning greps for them, exactly. */
export function ownerLines(namespace: string, workload: string): { namespace: string; workload: string } {
  return { namespace: `  "namespace": ${JSON.stringify(namespace)},`, workload: `  "workload": ${JSON.stringify(workload)},` };
}

/** The host of a client URL (`https://[::1]:2379` → `::1`), what the record names as the pod when none is given. */
export function endpointHost(url: string): string {
  const rest = url.replace(/^[A-Za-z][A-Za-z0-9+.-]*:\/\//, '').replace(/[/?#].*$/, '');
  const bracketed = /^\[([^\]]*)\]/.exec(rest);
  if (bracketed) return bracketed[1]!;
  return rest.replace(/:\d*$/, '') || url;
}

// A compact UTC time of a name, as sh globs: parseBackupFileName's \d{8}T\d{6}Z, narrowed to plausible dates.
const TIME_GLOB = '[0-9][0-9][0-9][0-9][01][0-9][0-3][0-9]T[0-2][0-9][0-5][0-9][0-5][0-9]Z';
const TIMEOUT = /^\d+(ms|s|m)$/;

/** Returns the sh script (see the module comment); throws on options it cannot run with safely. */
export function backupScript(opts: BackupScriptOptions): string {
  const endpoints = opts.endpoints.map((e) => (typeof e === 'string' ? { url: e } : e));
  check(endpoints.length > 0, 'at least one endpoint is needed');
  for (const e of endpoints) {
    check(e.url !== '' && !/[,\s]/.test(e.url) && !hasControl(e.url), `endpoint "${e.url}" is not one client URL`);
  }
  check(opts.etcdctl.length > 0 && opts.etcdctl[0] !== '', 'the etcdctl command is empty');
  check(!opts.etcdutl || (opts.etcdutl.length > 0 && opts.etcdutl[0] !== ''), 'the etcdutl command is empty');
  for (const word of [...opts.etcdctl, ...(opts.etcdutl ?? []), ...Object.values(opts.tls ?? {})]) {
    check(!word.includes('\0'), 'a command word or TLS path holds a NUL byte');
  }
  const dir = absolute(opts.dir, 'dir');
  const work = absolute(opts.work, 'work');
  const terminationLog = absolute(opts.terminationLog ?? '/dev/termination-log', 'terminationLog');
  check(dir !== '/', 'dir must not be /');
  check(work !== '/' && work !== dir && !dir.startsWith(`${work}/`), 'work must be its own directory, not / nor dir or one of its parents');
  check(opts.namespace !== '' && !/[/]/.test(opts.namespace) && !hasControl(opts.namespace), `namespace "${opts.namespace}" cannot be part of a file name`);
  for (const [what, value] of [['workload', opts.workload], ['schedule', opts.schedule], ['pluginVersion', opts.pluginVersion]] as const) {
    check(value !== '' && !value.includes('\0'), `${what} must be neither empty nor hold a NUL byte`);
  }
  check(Number.isSafeInteger(opts.keep) && opts.keep >= 1, `keep must be a whole number of at least 1, not ${opts.keep}`);
  const dialTimeout = opts.dialTimeout ?? '3s';
  const commandTimeout = opts.commandTimeout ?? '5s';
  check(TIMEOUT.test(dialTimeout) && TIMEOUT.test(commandTimeout), 'timeouts are durations such as 500ms, 3s or 1m');

  const q = shellQuote;
  const words = (argv: string[]) => argv.map(q).join(' ');
  const tls = [
    ...(opts.tls?.cacert ? [`--cacert=${opts.tls.cacert}`] : []),
    ...(opts.tls?.cert ? [`--cert=${opts.tls.cert}`] : []),
    ...(opts.tls?.key ? [`--key=${opts.tls.key}`] : []),
  ];
  // Inline words, not a function: `CMD … &` then makes the background job etcdctl itself, which a signal can stop.
  const ctl = words([...opts.etcdctl, ...tls]);
  const unsetVars = ['ENDPOINTS', 'DIAL_TIMEOUT', 'COMMAND_TIMEOUT', 'WRITE_OUT', ...(opts.tls?.cacert ? ['CACERT'] : []), ...(opts.tls?.cert ? ['CERT'] : []), ...(opts.tls?.key ? ['KEY'] : [])]
    .map((v) => `ETCDCTL_${v}`).join(' ');
  const util = words(opts.etcdutl ?? opts.etcdctl);
  // The drill's etcdctl talks plain http on loopback: no TLS flags.
  const ctlPlain = words(opts.etcdctl);
  if (opts.drill) check(opts.drill.etcd.length > 0 && opts.drill.etcd[0] !== '' && opts.drill.etcd.every((w) => !w.includes('\0')), 'the etcd command is empty or holds a NUL byte');
  const drillMember = [`--name=${DRILL_NAME}`, `--initial-cluster=${DRILL_NAME}=${DRILL_PEER_URL}`, `--initial-advertise-peer-urls=${DRILL_PEER_URL}`];
  const restoredWith = opts.etcdutl ? 'etcdutl' : 'etcdctl';
  const stem = backupStem(opts.namespace, opts.workload);
  const owner = ownerLines(opts.namespace, opts.workload);
  const jsonInner = (s: string) => JSON.stringify(s).slice(1, -1);
  const members = endpoints.map((e) =>
    `try_member ${q(e.url)} ${q(JSON.stringify(e.pod ?? endpointHost(e.url)))} ${q(JSON.stringify(e.member ?? e.url))}`,
  );

  return `#!/bin/sh
# kubectl-etcd scheduled backup (generated; POSIX sh, for dash and busybox sh).
umask 077
export ETCDCTL_API=3
# Flags say all of it: an image's ETCDCTL_* variables must not add to them (nor conflict with them).
unset ${unsetVars}
dir=${q(dir)}
work=${q(work)}
termlog=${q(terminationLog)}
stem=${q(stem)}
keep=${opts.keep}
incoming="$dir/.incoming"
verify="$work/verify"
err="$work/err"
ns_line=${q(owner.namespace)}
wl_line=${q(owner.workload)}
file_json=${q(jsonInner(`${dir}/${stem}-`))}
schedule_line=${q(`  "schedule": ${JSON.stringify(opts.schedule)}`)}
version_line=${q(`  "pluginVersion": ${JSON.stringify(opts.pluginVersion)},`)}
transport_line=${q(`  "transport": ${JSON.stringify(SCHEDULE_TRANSPORT)},`)}
partial=; side_tmp=; claim=; committed=; child=; saved=; failures=; drill_pid=; drills=

log() { printf '%s\\n' "$*" >&2; }
# The termination log holds one line: the last one written.
note() { { printf '%s\\n' "$1" >"$termlog"; } 2>/dev/null || :; }
fail() { code=$1; shift; log "error: $*"; note "$*"; exit "$code"; }
# The last line of $err that says something, and the gRPC error behind a timeout (from etcdctl's log lines):
# \"transport: Error while dialing dial tcp …: connect: connection refused\", \"transport: authentication handshake failed: x509: …\".
why() {
  l=$(sed -e '/^[[:space:]]*$/d' "$err" 2>/dev/null | tail -n 1 | cut -c 1-300)
  d=$(sed -n -e 's/.*desc = \\\\"\\([^"\\\\]*\\).*/\\1/p' "$err" 2>/dev/null | tail -n 1 | sed -e 's/^transport: //' -e 's/^Error while dialing //' | cut -c 1-200)
  [ -n "$l" ] || l="exit code $1"
  if [ -n "$d" ]; then case $l in *"$d"*) ;; *) l="$l ($d)" ;; esac; fi
  printf '%s' "$l"
}
# Runs a command in the background and waits, so that a signal is handled at once (it stops the command).
run() { "$@" & child=$!; wait "$child"; rc=$?; child=; return "$rc"; }
cleanup() {
  rc=$?
  trap '' HUP INT TERM
  if [ -n "$child" ]; then kill "$child" 2>/dev/null; wait "$child" 2>/dev/null; fi
  if [ -n "$drill_pid" ]; then kill -KILL "$drill_pid" 2>/dev/null; wait "$drill_pid" 2>/dev/null; fi
  if [ -n "$partial" ]; then rm -f "$partial" "$partial.part"; fi
  if [ -n "$side_tmp" ]; then rm -f "$side_tmp"; fi
  if [ -n "$committed" ]; then rm -f "$committed"; fi
  if [ -n "$claim" ]; then rm -f "$claim"; fi
  rm -rf "$verify" 2>/dev/null
  exit "$rc"
}
interrupted() {
  if [ -n "$saved" ]; then note "interrupted by SIG$1 while pruning old backups; $saved is saved"
  else note "interrupted by SIG$1; no backup was saved"; fi
  exit "$2"
}
trap cleanup EXIT
trap 'interrupted HUP ${SCHEDULE_EXIT.hangup}' HUP
trap 'interrupted INT ${SCHEDULE_EXIT.interrupt}' INT
trap 'interrupted TERM ${SCHEDULE_EXIT.terminate}' TERM

now=$(date -u '+%Y%m%dT%H%M%SZ %Y-%m-%dT%H:%M:%SZ' 2>/dev/null)
stamp=\${now%% *}; started=\${now#* }
case $stamp in ${TIME_GLOB}) ;; *) fail ${SCHEDULE_EXIT.failure} "date -u printed no UTC time: $now" ;; esac

if ! e=$(mkdir -p "$work" 2>&1) || ! ( : >"$err" ) 2>/dev/null; then
  fail ${SCHEDULE_EXIT.verification} "cannot verify snapshots: the work directory $work is not writable \${e:+($e)}"
fi
if [ ! -d "$dir" ]; then fail ${SCHEDULE_EXIT.volume} "volume full or not writable: $dir is not a directory (is the volume mounted?)"; fi
if ! e=$(mkdir -p "$incoming" 2>&1); then fail ${SCHEDULE_EXIT.volume} "volume full or not writable: cannot create $incoming: $e"; fi
# Partial files of runs that were killed (SIGKILL, OOM) a day ago or more.
find "$incoming" -type f -name '*.partial*' -mmin +1440 -exec rm -f {} \\; 2>/dev/null
rand=$(od -An -N4 -tx1 /dev/urandom 2>/dev/null | tr -cd '0-9a-f')
host=$(printf '%s' "\${HOSTNAME:-pod}" | tr -c 'A-Za-z0-9.-' '_' | cut -c 1-60)
uid="$stamp-$host-$$-$rand"
partial="$incoming/$uid.db.partial"
side_tmp="$incoming/$uid.json.partial"
if ! ( : >"$partial" ) 2>"$err"; then fail ${SCHEDULE_EXIT.volume} "volume full or not writable: cannot create $partial: $(why 1)"; fi

failed() { log "member $1: $2"; failures="$failures\${failures:+; }$1: $2"; }
# Asks one member for its status, then saves its snapshot to $partial; 1 (and a reason in $failures) when it does not answer.
try_member() {
  ep=$1
  log "asking $ep for its status"
  run ${ctl} --endpoints="$ep" --dial-timeout=${dialTimeout} --command-timeout=${commandTimeout} endpoint status -w json >"$work/status" 2>"$err"
  rc=$?
  if [ "$rc" -ne 0 ]; then failed "$ep" "$(why "$rc")"; return 1; fi
  st=$(cat "$work/status")
  # etcd leaves "leader" out when it has none (a member cut off from the others, or an election under way).
  case $st in *'"leader":'[1-9]*) ;; *) failed "$ep" "it has no leader"; return 1 ;; esac
  ver=$(printf '%s' "$st" | sed -n 's/.*"version":"\\([0-9A-Za-z.+-]*\\)".*/\\1/p')
  db=$(printf '%s' "$st" | sed -n 's/.*"dbSize":\\([0-9][0-9]*\\).*/\\1/p')
  avail=$(df -Pk "$dir" 2>/dev/null | tail -n 1 | tr -s ' ' | cut -d ' ' -f 4)
  case $db in ''|*[!0-9]*) db= ;; esac
  case $avail in ''|*[!0-9]*) avail= ;; esac
  if [ -n "$db" ] && [ -n "$avail" ] && [ $((avail * 1024)) -lt "$db" ]; then
    log "warning: $dir has $((avail * 1024)) bytes free; the database of $ep is $db bytes"
  fi
  rm -f "$partial" "$partial.part"
  log "saving a snapshot of $ep"
  run ${ctl} --endpoints="$ep" --dial-timeout=${dialTimeout} snapshot save "$partial" >/dev/null 2>"$err"
  rc=$?
  if [ "$rc" -ne 0 ]; then
    reason=$(why "$rc")
    rm -f "$partial" "$partial.part"
    case $reason in
      *'no space left'*|*'disk quota'*|*'read-only file system'*|*'file too large'*|*"$incoming"*)
        fail ${SCHEDULE_EXIT.volume} "volume full or not writable: $reason" ;;
    esac
    failed "$ep" "$reason"
    return 1
  fi
  if [ ! -s "$partial" ]; then failed "$ep" "etcdctl snapshot save wrote no file"; return 1; fi
  src=$ep; src_pod=$2; src_member=$3; etcd_version=$ver
  return 0
}

${members.join(' ||\n')} ||
  fail ${SCHEDULE_EXIT.noMember} "no etcd member answered: $failures"

# Verify: what snapshot status reads, the size it implies, and a restore (sha256 trailer, bbolt).
log "verifying the snapshot of $src"
run ${util} snapshot status -w json "$partial" >"$work/status" 2>"$err"
rc=$?
[ "$rc" -eq 0 ] || fail ${SCHEDULE_EXIT.verification} "the snapshot of $src is not readable (snapshot status): $(why "$rc")"
st=$(cat "$work/status")
num() { printf '%s' "$st" | sed -n "s/.*\\"$1\\":\\([0-9][0-9]*\\).*/\\1/p"; }
revision=$(num revision); total_keys=$(num totalKey); hash=$(num hash); total_size=$(num totalSize)
if [ -z "$revision" ] || [ -z "$total_keys" ] || [ -z "$hash" ] || [ -z "$total_size" ]; then
  fail ${SCHEDULE_EXIT.verification} "snapshot status of the snapshot of $src named no revision, totalKey, hash and totalSize: $(printf '%s' "$st" | cut -c 1-200)"
fi
size=$(wc -c <"$partial" 2>/dev/null | tr -d ' \\t')
case $size in ''|*[!0-9]*) fail ${SCHEDULE_EXIT.verification} "cannot read the size of $partial" ;; esac
# The snapshot is the database (totalSize) and its sha256 trailer (32 bytes).
if [ "$size" -ne $((total_size + 32)) ]; then
  fail ${SCHEDULE_EXIT.verification} "the snapshot of $src is $size bytes, not the $((total_size + 32)) of its database and sha256 trailer: cut short?"
fi
rm -rf "$verify"
run ${util} snapshot restore "$partial" --data-dir "$verify" ${words(drillMember)} >/dev/null 2>"$err"
rc=$?
[ "$rc" -eq 0 ] || fail ${SCHEDULE_EXIT.verification} "the snapshot of $src fails verification (snapshot restore): $(why "$rc")"
${opts.drill ? drillPart(words(opts.drill.etcd), ctlPlain, restoredWith) : ''}rm -rf "$verify"
run sha256sum "$partial" >"$work/sum" 2>"$err"
rc=$?
[ "$rc" -eq 0 ] || fail ${SCHEDULE_EXIT.verification} "cannot compute the sha256 of the snapshot: $(why "$rc")"
read -r sha _ <"$work/sum"
sha=\${sha#\\\\}
case $sha in *[!0-9a-f]*|'') fail ${SCHEDULE_EXIT.verification} "sha256sum printed no digest: $sha" ;; esac
[ \${#sha} -eq 64 ] || fail ${SCHEDULE_EXIT.verification} "sha256sum printed no digest: $sha"

# Commit: claim the record's name (O_EXCL), write the record aside, then rename the snapshot and the record into place.
tries=0
while :; do
  name="$stem-$stamp-rev$revision.db"
  if [ ! -e "$dir/$name" ] && [ ! -L "$dir/$name" ] && ( set -C; : >"$dir/$name.json" ) 2>"$err"; then
    claim="$dir/$name.json"
    break
  fi
  if [ ! -e "$dir/$name" ] && [ ! -e "$dir/$name.json" ]; then
    fail ${SCHEDULE_EXIT.volume} "volume full or not writable: cannot create $dir/$name.json: $(why 1)"
  fi
  tries=$((tries + 1))
  [ "$tries" -le 10 ] || fail ${SCHEDULE_EXIT.volume} "volume full or not writable: no free name in $dir ($name and the ones after it are taken)"
  log "$name is taken (a backup in the same second?): naming the backup by a later second"
  sleep 1
  stamp=$(date -u +%Y%m%dT%H%M%SZ 2>/dev/null)
  case $stamp in ${TIME_GLOB}) ;; *) fail ${SCHEDULE_EXIT.failure} "date -u printed no UTC time: $stamp" ;; esac
done
finished=$(date -u +%Y-%m-%dT%H:%M:%SZ 2>/dev/null)
case $finished in ????-??-??T??:??:??Z) ;; *) finished=$started ;; esac
version_field=
case $etcd_version in ?*) version_field="  \\"etcdVersion\\": \\"$etcd_version\\"," ;; esac
printf '%s\\n' '{' \\
  "  \\"file\\": \\"$file_json$stamp-rev$revision.db\\"," \\
  "  \\"size\\": $size," \\
  "  \\"sha256\\": \\"$sha\\"," \\
  "  \\"revision\\": $revision," \\
  "  \\"totalKeys\\": $total_keys," \\
  "  \\"hash\\": $hash," \\
  \${version_field:+"$version_field"} \\
  "$ns_line" \\
  "$wl_line" \\
  "  \\"sourcePod\\": $src_pod," \\
  "  \\"sourceMember\\": $src_member," \\
  "$transport_line" \\
  "  \\"startedAt\\": \\"$started\\"," \\
  "  \\"time\\": \\"$finished\\"," \\
  "$version_line" \\
  '  "verified": {' \\
  '    "size": true,' \\
  '    "sha256Trailer": true,' \\
  '    "bbolt": true' \\
  '  },' \\
  \${drills:+"$drills"} \\
  "$schedule_line" \\
  '}' >"$side_tmp" 2>"$err"
rc=$?
# A write cut short by a full volume leaves no closing brace.
if [ "$rc" -ne 0 ] || [ "$(tail -n 1 "$side_tmp" 2>/dev/null)" != '}' ]; then
  fail ${SCHEDULE_EXIT.volume} "volume full or not writable: cannot write the record $side_tmp: $(why "$rc")"
fi
mv -f "$partial" "$dir/$name" 2>"$err" || fail ${SCHEDULE_EXIT.volume} "volume full or not writable: cannot rename $partial to $dir/$name: $(why 1)"
committed="$dir/$name"; partial=
mv -f "$side_tmp" "$dir/$name.json" 2>"$err" || fail ${SCHEDULE_EXIT.volume} "volume full or not writable: cannot rename $side_tmp to $dir/$name.json: $(why 1)"
committed=; claim=; side_tmp=; saved=$name
sync -f "$dir/$name.json" 2>/dev/null
log "saved $dir/$name"

# Prune: the newest $keep of the backups whose record names this namespace and workload stay (retention.ts);
# a file without such a record is never touched, nor the one just written.
ours() {
  [ -f "$1" ] || return 1
  n=$(wc -c <"$1" 2>/dev/null | tr -d ' \\t')
  case $n in ''|*[!0-9]*) return 1 ;; esac
  [ "$n" -le ${MAX_SIDECAR_BYTES} ] || return 1
  [ "$(tail -n 1 "$1" 2>/dev/null)" = '}' ] || return 1
  grep -Fqx -e "$ns_line" "$1" && grep -Fqx -e "$wl_line" "$1"
}
list="$work/backups"
( : >"$list" ) 2>/dev/null || fail ${SCHEDULE_EXIT.prune} "$name is saved; cannot list old backups: $work is not writable"
for f in "$dir/$stem"-*; do
  rest=\${f#"$dir/$stem"-}
  case $rest in
    ${TIME_GLOB}.db|${TIME_GLOB}.db.age) r=0 ;;
    ${TIME_GLOB}-rev*.db|${TIME_GLOB}-rev*.db.age)
      r=\${rest#*Z-rev}; r=\${r%%.db*}
      case $r in ''|*[!0-9]*) continue ;; esac
      t=\${rest%%Z-rev*}
      [ "$rest" = "\${t}Z-rev$r.db" ] || [ "$rest" = "\${t}Z-rev$r.db.age" ] || continue ;;
    *) continue ;;
  esac
  ours "$f.json" || continue
  while [ \${#r} -lt 20 ]; do r=0$r; done
  printf '%s %s %s\\n' "\${rest%%Z*}" "$r" "$rest" >>"$list" || fail ${SCHEDULE_EXIT.prune} "$name is saved; cannot list old backups in $work"
done
sort -r "$list" >"$list.sorted" 2>"$err" || fail ${SCHEDULE_EXIT.prune} "$name is saved; cannot sort old backups: $(why 1)"
pruned=0; n=0
while read -r t r rest; do
  n=$((n + 1))
  [ "$n" -gt "$keep" ] || continue
  old="$dir/$stem-$rest"
  [ "$old" != "$dir/$name" ] || continue
  # The snapshot first: a record without its snapshot is harmless, a snapshot without its record is never pruned.
  rm -f "$old" 2>"$err" || fail ${SCHEDULE_EXIT.prune} "$name is saved; cannot remove the old backup $old: $(why 1)"
  rm -f "$old.json" 2>"$err" || fail ${SCHEDULE_EXIT.prune} "$name is saved; cannot remove the record $old.json: $(why 1)"
  log "pruned $old"
  pruned=$((pruned + 1))
done <"$list.sorted"

msg="saved $name (revision $revision, $size bytes, sha256 $sha) from $src"
[ "$pruned" -eq 0 ] || msg="$msg; pruned $pruned older backup(s), keeping $keep"
log "$msg"
note "$msg"
cat "$dir/$name.json"
exit 0
`;
}

/**
 * The drill (see BackupScriptOptions.drill), run on the verifying restore in $verify: etcd
 * started in the background, asked for its status until it answers (60 s), its revision compared
 * with the snapshot's; then its key count and HashKV, recorded in $drills (record lines); etcd
 * stopped again.
 */
function drillPart(etcd: string, ctl: string, restoredWith: string): string {
  const at = `--endpoints=${DRILL_CLIENT_URL} --dial-timeout=1s --command-timeout=30s`;
  const poll = `--endpoints=${DRILL_CLIENT_URL} --dial-timeout=1s --command-timeout=2s`;
  return `log "restore drill: starting etcd on the restored snapshot"
# The image's ETCD_* variables must not add to the drill's flags (etcd refuses a flag set twice).
for v in $(env | sed -n 's/^\\(ETCD_[A-Za-z0-9_]*\\)=.*/\\1/p'); do unset "$v"; done
t0=$(date +%s 2>/dev/null); case $t0 in ''|*[!0-9]*) t0=0 ;; esac
${etcd} --data-dir "$verify" --name=${DRILL_NAME} --listen-client-urls=${DRILL_CLIENT_URL} --advertise-client-urls=${DRILL_CLIENT_URL} \\
  --listen-peer-urls=${DRILL_PEER_URL} --initial-advertise-peer-urls=${DRILL_PEER_URL} --initial-cluster=${DRILL_NAME}=${DRILL_PEER_URL} >"$work/drill.log" 2>&1 &
drill_pid=$!
i=0
while :; do
  sleep 1
  if ! kill -0 "$drill_pid" 2>/dev/null; then
    wait "$drill_pid"; rc=$?; drill_pid=
    l=$(grep -v '^[[:space:]]*$' "$work/drill.log" | grep -i -E 'panic|fatal|error' | tail -n 1 | cut -c 1-300)
    [ -n "$l" ] || l=$(tail -n 1 "$work/drill.log" | cut -c 1-300)
    fail ${SCHEDULE_EXIT.verification} "the snapshot of $src fails the restore drill: etcd exited with code $rc: $l"
  fi
  if ${ctl} ${poll} endpoint status -w json >"$work/drill" 2>"$err"; then break; fi
  i=$((i + 1))
  [ "$i" -lt 60 ] || fail ${SCHEDULE_EXIT.verification} "the snapshot of $src fails the restore drill: etcd did not answer within 60 s: $(why 1)"
done
t1=$(date +%s 2>/dev/null); case $t1 in ''|*[!0-9]*) t1=$t0 ;; esac
dnum() { sed -n "s/.*\\"$1\\":\\([0-9][0-9]*\\).*/\\1/p" "$work/drill"; }
served_rev=$(dnum revision)
# etcd starts at revision 1 at least: a snapshot of a cluster never written to has revision 0.
want_rev=$revision; [ "$want_rev" -ge 1 ] || want_rev=1
[ "$served_rev" = "$want_rev" ] || fail ${SCHEDULE_EXIT.verification} "the snapshot of $src fails the restore drill: etcd serves revision \${served_rev:-?}, the snapshot has $revision"
${ctl} ${at} endpoint hashkv -w json >"$work/drill" 2>"$err" || fail ${SCHEDULE_EXIT.verification} "the snapshot of $src fails the restore drill: endpoint hashkv: $(why 1)"
served_hash=$(dnum hash); served_compact=$(sed -n 's/.*"compact_revision":\\(-\\{0,1\\}[0-9][0-9]*\\).*/\\1/p' "$work/drill")
# The count of every key (etcdctl 3.4 has no --count-only; the JSON answer counts them all).
${ctl} ${at} get '' --from-key --keys-only --limit=1 -w json >"$work/drill" 2>"$err" || fail ${SCHEDULE_EXIT.verification} "the snapshot of $src fails the restore drill: get: $(why 1)"
served_keys=$(dnum count)
kill -TERM "$drill_pid" 2>/dev/null; wait "$drill_pid" 2>/dev/null; drill_pid=
case $served_hash in ''|*[!0-9]*) fail ${SCHEDULE_EXIT.verification} "the snapshot of $src fails the restore drill: endpoint hashkv printed no hash" ;; esac
drill_at=$(date -u +%Y-%m-%dT%H:%M:%SZ 2>/dev/null)
drill_version=
case $etcd_version in ?*) drill_version="\\"etcdVersion\\": \\"$etcd_version\\", " ;; esac
drills="  \\"drills\\": [{ \\"at\\": \\"$drill_at\\", \\"where\\": \\"schedule\\", $drill_version\\"restoredWith\\": \\"${restoredWith}\\", \\"startedInMs\\": $(( (t1 - t0) * 1000 )), \\"expectedRevision\\": $want_rev, \\"served\\": { \\"revision\\": $served_rev, \\"keys\\": \${served_keys:-0}, \\"hash\\": $served_hash, \\"compactRevision\\": \${served_compact:--1} }, \\"outcome\\": \\"passed\\" }],"
log "restore drill passed: etcd served revision $served_rev, \${served_keys:-0} keys, hashkv $served_hash"
`;
}

function check(ok: boolean, message: string): asserts ok {
  if (!ok) throw new RangeError(`schedule script: ${message}`);
}

function hasControl(s: string): boolean {
  return /[\u0000-\u001f\u007f]/.test(s);
}

/** An absolute path without trailing slashes or control characters. */
function absolute(path: string, what: string): string {
  check(path.startsWith('/') && !hasControl(path), `${what} must be an absolute path without control characters, not "${path}"`);
  return posix.normalize(path).replace(/(.)\/+$/, '$1');
}
