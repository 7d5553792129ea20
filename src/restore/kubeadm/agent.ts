/**
 * The node agent of a kubeadm restore (issue 18): the POSIX sh script a privileged pod runs on
 * each control-plane node, by itself, while the API server is gone with the etcd it serves. It
 * does that node's part of the manual runbook (RUNBOOKS.md, kubeadm; kubernetes.io
 * tasks/administer-cluster/configure-upgrade-etcd "Restoring an etcd cluster"):
 *
 *   stop     move kube-apiserver.yaml, then etcd.yaml, out of the kubelet's manifest folder
 *            into KEEP (beside it, same filesystem), and wait until the local etcd no longer
 *            answers (the kubelet stopped it);
 *   restore  restore the snapshot (already on the node, its sha256 checked before the window)
 *            into WORK/restored with this member's name and peer URL, the shared initial
 *            cluster and a new token (etcdutl from 3.5, with --bump-revision --mark-compacted;
 *            etcdctl on 3.4);
 *   swap     move DATA/member aside to DATA/member.pre-restore-STAMP (kept, never deleted) and
 *            the restored member dir in, marked with its stamp (DATA/member/kubectl-etcd-restored);
 *   start    put etcd.yaml back, wait until the local etcd answers, put kube-apiserver.yaml back
 *            (copies: both stay in KEEP, as the user's own copies of the manifests).
 *
 * Each step reads the node first, so a run cut off anywhere (the pod killed, the node rebooted)
 * finishes when run again; `rollback` puts the node back as it was from any point (the restored
 * data kept aside as DATA/member.restored-STAMP). A node whose etcd does not stop (its kubelet
 * down) gets its manifests back and fails with nothing else changed. The outcome goes to
 * WORK/outcome (`restored`, `rolled-back`, `failed: <why>`) and each step to WORK/log, on the
 * node's disk: the plugin reads them once the API is back (the agent pod may be gone by then: a
 * restored API server does not know a pod made after the snapshot, and its kubelet stops it).
 *
 * Written for dash and busybox sh with mv, cp, rm, mkdir, head, stat, chown, sleep, date, cat, tail and etcdctl/etcdutl
 * on PATH (an etcd image with a shell; a distroless one will need the shell image beside it, as
 * restore/manifests.ts toolsExec does). Every value is a positional argument, never part of the
 * script text.
 */

/** Where a member's restore keeps its work on the node (the data dir's filesystem: renames are atomic). */
export function agentWorkDir(dataDir: string, stamp: string): string {
  return `${dataDir.replace(/\/+$/, '')}/kubectl-etcd-restore-${stamp}`;
}

/** The outcome an agent recorded, with the run that recorded it (`run RUN` on the second line). */
export type AgentOutcome = ({ kind: 'restored' } | { kind: 'rolled-back' } | { kind: 'failed'; why: string } | { kind: 'none' }) & { run?: string };

/** Reads WORK/outcome as the script writes it. */
export function parseAgentOutcome(text: string | undefined): AgentOutcome {
  const [first, second] = (text ?? '').split('\n');
  const line = (first ?? '').trim();
  const runMatch = /^run (\S+)$/.exec((second ?? '').trim());
  const run = runMatch ? { run: runMatch[1]! } : {};
  if (line === 'restored' || line === 'rolled-back') return { kind: line, ...run };
  if (line.startsWith('failed: ')) return { kind: 'failed', why: line.slice('failed: '.length), ...run };
  return { kind: 'none' };
}

/** What one node's agent needs. Paths are the node's own (the agent pod mounts them at the same place). */
export interface AgentOptions {
  mode: 'restore' | 'rollback';
  stamp: string;
  /** This run's name (`restore-1`, `rollback-3`): written with the outcome, so an earlier run's is never taken for it. */
  run: string;
  /** The member's data dir (kubeadm: /var/lib/etcd). */
  dataDir: string;
  /** The kubelet's static pod folder (kubeadm: /etc/kubernetes/manifests). */
  manifestDir: string;
  /** The snapshot on the node. */
  snapshot: string;
  /** Where the old member dir is kept (kept.ts keptCopyPath: DATA/member.pre-restore-STAMP). */
  asideDir: string;
  /** Where rollback keeps the restored member dir (DATA/member.restored-STAMP). */
  restoredAsideDir: string;
  /**
   * The restore command (plan.ts restoreArgvFor) with its --data-dir the agent's
   * WORK/restored (agentRestoreDir): etcdutl from 3.5 with the revision bump, etcdctl on 3.4.
   */
  restoreArgv: string[];
  /** The local member's client URL and TLS files, for `etcdctl endpoint status` (answered without quorum). */
  endpoint: string;
  tls: { caFile?: string; certFile?: string; keyFile?: string };
  /** How long etcd may take to stop, and to answer once started (s). */
  stopTimeoutSeconds: number;
  startTimeoutSeconds: number;
}

/** The dir the restore command writes (its --data-dir), inside the agent's work dir. */
export function agentRestoreDir(dataDir: string, stamp: string): string {
  return `${agentWorkDir(dataDir, stamp)}/restored`;
}

/** The marker in a restored member dir: the stamp of the restore that put it there. */
const RESTORED_MARKER = 'kubectl-etcd-restored';

/** The agent's argv: `sh -c SCRIPT sh ARGS… RESTORE-ARGV…`. */
export function agentArgv(o: AgentOptions): string[] {
  return ['sh', '-c', AGENT_SCRIPT, 'sh', o.mode, o.stamp, o.dataDir, o.manifestDir, o.snapshot, o.asideDir, o.restoredAsideDir,
    o.endpoint, o.tls.caFile ?? '', o.tls.certFile ?? '', o.tls.keyFile ?? '', String(o.stopTimeoutSeconds), String(o.startTimeoutSeconds), o.run,
    ...o.restoreArgv];
}

const AGENT_SCRIPT = [
  'set -u',
  'mode=$1 stamp=$2 data=$3 manifests=$4 snapshot=$5 aside=$6 restored_aside=$7 endpoint=$8 cacert=$9',
  'shift 9',
  'cert=$1 key=$2 stop_timeout=$3 start_timeout=$4 run=$5',
  'shift 5',
  // What is left is the restore command; ETCDCTL_API for an etcdctl (3.4) one.
  'export ETCDCTL_API=3',
  'tool=${1:-}',
  'work="$data/kubectl-etcd-restore-$stamp"',
  'keep="${manifests%/*}/kubectl-etcd-restore-$stamp"',
  'marker=' + RESTORED_MARKER,
  'mkdir -p "$work" "$keep" || { echo "failed: cannot make $work or $keep" >&2; exit 1; }',
  'log() { echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $*" >> "$work/log"; echo "$*" >&2; }',
  'outcome() { printf \'%s\\nrun %s\\n\' "$1" "$run" > "$work/outcome.tmp" && mv -f "$work/outcome.tmp" "$work/outcome"; }',
  'fail() { log "failed: $*"; outcome "failed: $*"; exit 1; }',
  // etcdctl endpoint status is answered by the local member alone (no quorum needed).
  'answers() {',
  '  set -- --endpoints="$endpoint" --command-timeout=2s --dial-timeout=2s',
  '  [ -n "$cacert" ] && set -- "$@" --cacert="$cacert"',
  '  [ -n "$cert" ] && set -- "$@" --cert="$cert" --key="$key"',
  '  etcdctl "$@" endpoint status >/dev/null 2>&1',
  '}',
  'is_restored() { j=""; [ -f "$data/member/$marker" ] && read -r j < "$data/member/$marker"; [ "$j" = "$stamp" ]; }',
  // Moves a manifest out (into keep) when it is in the manifest folder; fails when it is in neither.
  'take_out() {',
  '  if [ -f "$manifests/$1" ]; then mv -f "$manifests/$1" "$keep/$1" || fail "cannot move $manifests/$1 to $keep"; log "moved $manifests/$1 to $keep"',
  '  elif [ ! -f "$keep/$1" ]; then fail "$1 is neither in $manifests nor in $keep"; fi',
  '}',
  // A copy goes back (made beside as a dotfile, which the kubelet skips, then renamed): the file stays in KEEP.
  'put_back() {',
  '  if [ -f "$keep/$1" ] && [ ! -f "$manifests/$1" ]; then',
  '    { cp -p "$keep/$1" "$manifests/.$1.tmp" && mv -f "$manifests/.$1.tmp" "$manifests/$1"; } || fail "cannot put $1 back into $manifests"',
  '    log "put $1 back into $manifests (kept in $keep too)"',
  '  fi',
  '}',
  // Stopped: no answer three times in a row, a second apart.
  'wait_stopped() {',
  '  t=0 quiet=0',
  '  while [ "$quiet" -lt 3 ]; do',
  '    if answers; then quiet=0; else quiet=$((quiet + 1)); fi',
  '    [ "$quiet" -ge 3 ] && return 0',
  '    [ "$t" -ge "$stop_timeout" ] && return 1',
  '    sleep 1; t=$((t + 1))',
  '  done',
  '}',
  'wait_answers() {',
  '  t=0',
  '  until answers; do',
  '    [ "$t" -ge "$start_timeout" ] && return 1',
  '    sleep 1; t=$((t + 1))',
  '  done',
  '}',
  // Both manifests back (etcd first, then kube-apiserver once etcd answers, or after the wait).
  'start() {',
  '  put_back etcd.yaml',
  '  if wait_answers; then log "etcd answers on $endpoint"; started=1; else log "etcd does not answer on $endpoint after $start_timeout s"; started=0; fi',
  '  put_back kube-apiserver.yaml',
  '}',
  // A run that changes nothing puts both manifests back at once: etcd on its own data may not start
  // (a full disk), and waiting for it would only keep the outcome from the plugin.
  'back_as_was() { put_back etcd.yaml; put_back kube-apiserver.yaml; }',
  'stop() {',
  '  take_out kube-apiserver.yaml',
  '  take_out etcd.yaml',
  '  if ! wait_stopped; then',
  '    put_back etcd.yaml; put_back kube-apiserver.yaml',
  '    fail "etcd on this node still answers $stop_timeout s after its manifest was moved out (is its kubelet running?); the manifests are back, its data untouched"',
  '  fi',
  '  log "etcd stopped"',
  '}',
  'case "$mode" in',
  'restore)',
  '  if [ -f "$work/outcome" ] && [ "$(head -n 1 "$work/outcome")" = restored ] && is_restored && [ -f "$manifests/etcd.yaml" ] && [ -f "$manifests/kube-apiserver.yaml" ]; then log "restored already"; outcome restored; exit 0; fi',
  '  rm -f "$work/outcome"',
  // A run cut off after the swap goes on from there: the restored member is not stopped again.
  '  if ! is_restored; then',
  '    stop',
  '    [ -f "$snapshot" ] || { back_as_was; fail "the snapshot $snapshot is not on this node; the manifests are back, its data untouched"; }',
  '    rm -rf "$work/restored"',
  '    "$@" > "$work/restore.out" 2>&1',
  '    rc=$?',
  '    if [ "$rc" -ne 0 ] || [ ! -d "$work/restored/member" ]; then',
  '      why=$(tail -n 1 "$work/restore.out" 2>/dev/null)',
  // Its partial output goes (it is ours, and a full disk is a likely cause): etcd gets the space back.
  '      rm -rf "$work/restored"',
  '      back_as_was',
  '      fail "$tool snapshot restore failed (exit $rc: $why); the manifests are back, its data untouched"',
  '    fi',
  '    echo "$stamp" > "$work/restored/member/$marker" || { back_as_was; fail "cannot write to $work/restored/member"; }',
  '    log "restored the snapshot into $work/restored"',
  // The restored files are the etcd user's, as the old ones were (kubeadm's RootlessControlPlane runs etcd as another user).
  '    if [ -d "$data/member" ]; then owner=$(stat -c %u:%g "$data/member") && chown -R "$owner" "$work/restored/member" || { rm -rf "$work/restored"; back_as_was; fail "cannot hand the restored data to the owner of $data/member"; }; fi',
  '    if [ -d "$data/member" ] && [ ! -e "$aside" ]; then',
  '      mv "$data/member" "$aside" || { back_as_was; fail "cannot move $data/member aside"; }',
  '      log "moved $data/member to $aside (kept)"',
  '    elif [ -d "$data/member" ]; then',
  '      back_as_was; fail "$data/member and $aside are both there: not the restore this run left; the manifests are back, nothing moved"',
  '    fi',
  '    mv "$work/restored/member" "$data/member" || fail "cannot move the restored data to $data/member (the old data is at $aside); run the restore again, or roll back"',
  '    log "the restored data is $data/member"',
  '  fi',
  '  start',
  '  [ "$started" = 1 ] || fail "etcd did not answer on $endpoint $start_timeout s after it was started on the restored data"',
  '  outcome restored; log "restored"',
  '  ;;',
  'rollback)',
  '  if [ -f "$work/outcome" ] && [ "$(head -n 1 "$work/outcome")" = rolled-back ] && [ -f "$manifests/etcd.yaml" ]; then log "rolled back already"; outcome rolled-back; exit 0; fi',
  '  rm -f "$work/outcome"',
  // etcd is stopped only when its data must change: the restored data in place, or none there.
  '  if is_restored || { [ ! -e "$data/member" ] && [ -d "$aside" ]; }; then',
  '    stop',
  '    if is_restored; then',
  '      [ -e "$restored_aside" ] && { back_as_was; fail "$restored_aside is there already; the manifests are back, nothing moved"; }',
  '      mv "$data/member" "$restored_aside" || { back_as_was; fail "cannot move the restored data aside"; }',
  '      log "moved the restored data to $restored_aside (kept)"',
  '    fi',
  '    if [ ! -e "$data/member" ] && [ -d "$aside" ]; then',
  '      mv "$aside" "$data/member" || fail "cannot move $aside back to $data/member"',
  '      log "moved $aside back to $data/member"',
  '    fi',
  '  fi',
  '  start',
  '  [ "$started" = 1 ] || fail "etcd did not answer on $endpoint $start_timeout s after it was started on its old data"',
  '  outcome rolled-back; log "rolled back"',
  '  ;;',
  '*) echo "unknown mode $mode" >&2; exit 2 ;;',
  'esac',
].join('\n');
