/**
 * Long commands in a container that survive cut exec streams. A load balancer cuts a stream that
 * carried no bytes for a while (60 s is common) and the process in the container goes on (the CRI
 * exec process outlives its stream); retrying the exec would start a second run beside the first.
 * So a long command runs detached, with a marker folder of its own in the container:
 *
 *     DIR/pid   the pid of the shell that runs the command (written by that shell itself)
 *     DIR/rc    its exit status, written once it ended (atomically, rc.tmp then mv)
 *     DIR/out   its stdout;  DIR/err  its stderr        (all 0600: umask 077)
 *
 * and is observed with short execs. Claiming DIR (mkdir) is atomic, so a retried or resumed start
 * never starts a second run: a retry first reads the marker — running: wait; finished: use its
 * status and output; absent: start. Each short exec is retried while it fails transiently. The
 * marker lives in the container's own /tmp, so it goes with the container and its processes.
 */
import { PluginError } from '../errors.js';
import type { CommandResult, ContainerCommand, ContainerRef } from './exec.js';
import { retrying } from './retry.js';

/** Where run markers live in a container. */
export const RUNS_DIR = '/tmp/kubectl-etcd-runs';

/** A long command and the marker folder that is its own (one per step: a second start finds it). */
export interface DetachedCommand {
  /** A name unique to the step, used as the folder below RUNS_DIR ([A-Za-z0-9._-] only). */
  name: string;
  /** The command, as argv (no shell string is built from it). */
  argv: string[];
}

/** How a detached run is watched. */
export interface DetachedOptions {
  /** First pause between polls of a run not yet started; it doubles up to maxPollMs. */
  pollMs?: number;
  /** How long one poll waits for a running command to end (default LONG_POLL_SECONDS). */
  longPollSeconds?: number;
  maxPollMs?: number;
  /** Called for every transient failure of a short exec before it is tried again. */
  onRetry?: (err: unknown) => void;
}

/** What a poll of the marker says. */
export type RunState = { state: 'absent' | 'starting' | 'running' | 'dead' } | { state: 'done'; exitCode: number };

/** How long a claimed marker may lack its pid before the start is taken as never having happened. */
const START_GRACE_MS = 15_000;

// $1: the marker folder; the rest: the command. Prints "started" or "exists".
const START = [
  'd=$1; shift',
  'umask 077',
  'mkdir -p "${d%/*}" || exit 97',
  'if ! mkdir "$d" 2>/dev/null; then echo exists; exit 0; fi',
  // The runner shell writes its own pid first, so a pid file never names a run that did not start.
  `sh -c 'd=$1; shift; echo $$ >"$d/pid.tmp" && mv "$d/pid.tmp" "$d/pid"; "$@" >"$d/out" 2>"$d/err"; echo $? >"$d/rc.tmp"; mv "$d/rc.tmp" "$d/rc"' sh "$d" "$@" </dev/null >/dev/null 2>&1 &`,
  'echo started',
].join('\n');

// $1: the marker folder; $2: how many tenths of a second to wait for a live run to end before
// answering (a long poll: the answer comes within a tenth of the end, not at the next poll). While
// it waits it writes a dot to stderr every step, so no load balancer takes the exec for idle.
// Liveness is read before rc: a run that ended has written rc first. `sleep 0.1` is not POSIX:
// where it fails, whole seconds.
const POLL = [
  'd=$1; n=${2:-0}',
  'live() {',
  '  alive=',
  '  if [ -f "$d/pid" ] && read p <"$d/pid" && kill -0 "$p" 2>/dev/null; then',
  '    s=; read s <"/proc/$p/stat" 2>/dev/null || s=',
  '    case "$s" in *") Z "*) ;; *) alive=1;; esac',
  '  fi',
  '}',
  'live',
  'while [ "$n" -gt 0 ] && [ -n "$alive" ] && [ ! -f "$d/rc" ]; do',
  '  if sleep 0.1 2>/dev/null; then n=$((n - 1)); else sleep 1; n=$((n - 10)); fi',
  '  printf . >&2',
  '  live',
  'done',
  'if [ -f "$d/rc" ]; then read rc <"$d/rc"; echo "done $rc"',
  'elif [ -n "$alive" ]; then echo running',
  'elif [ -f "$d/pid" ]; then echo dead',
  'elif [ -d "$d" ]; then echo starting',
  'else echo absent; fi',
].join('\n');

const READ = 'cat "$1/out" && cat "$1/err" >&2';

/** The marker folder of a command in its container. */
export function runDir(name: string): string {
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error(`invalid detached run name "${name}"`);
  return `${RUNS_DIR}/${name}`;
}

/** How long one poll waits for a running command to end before it answers "running". */
export const LONG_POLL_SECONDS = 5;

/** Reads the state of a run from its marker; with `waitSeconds`, a live run is waited for that long first. */
export async function pollRun(run: ContainerCommand, target: ContainerRef, name: string, onRetry?: (err: unknown) => void, waitSeconds = 0): Promise<RunState> {
  const r = await retrying(() => run(target, ['sh', '-c', POLL, 'sh', runDir(name), String(Math.round(waitSeconds * 10))]), onRetry);
  const line = r.stdout.trim();
  const done = /^done (\d+)$/.exec(line);
  if (done) return { state: 'done', exitCode: Number(done[1]) };
  if (r.exitCode === 0 && (line === 'absent' || line === 'starting' || line === 'running' || line === 'dead')) return { state: line };
  throw new PluginError(
    `checking the run "${name}" in pod "${target.pod}" failed (exit code ${r.exitCode}): ${lastLine(r.stderr.replace(/^\.+/, '') || r.stdout) || 'no output'}`,
    'check that the container has a POSIX shell with mkdir, mv and cat',
  );
}

// $1: the marker folder; RUNS_DIR goes too once it is empty.
const FORGET = 'rm -rf "$1" && { rmdir "${1%/*}" 2>/dev/null; true; }';

/** Removes a run's marker (after its result was read, or when it never started), and RUNS_DIR once empty. */
export async function forgetRun(run: ContainerCommand, target: ContainerRef, name: string, onRetry?: (err: unknown) => void): Promise<void> {
  const r = await retrying(() => run(target, ['sh', '-c', FORGET, 'sh', runDir(name)]), onRetry);
  if (r.exitCode !== 0) throw new PluginError(`removing the marker of run "${name}" in pod "${target.pod}" failed: ${lastLine(r.stderr) || `exit code ${r.exitCode}`}`);
}

/**
 * Runs a long command detached in the container, or joins the run of it that is already there;
 * resolves with its exit code and output once it ended, and removes its marker. Never starts the
 * command while an earlier run of it may still be alive.
 */
export async function runDetached(run: ContainerCommand, target: ContainerRef, cmd: DetachedCommand, opts: DetachedOptions = {}): Promise<CommandResult> {
  const dir = runDir(cmd.name);
  const where = `pod "${target.pod}"`;
  let pause = opts.pollMs ?? 250;
  let startingSince: number | undefined;
  let exitCode: number;
  for (;;) {
    const s = await pollRun(run, target, cmd.name, opts.onRetry, opts.longPollSeconds ?? LONG_POLL_SECONDS);
    if (s.state === 'done') {
      exitCode = s.exitCode;
      break;
    }
    if (s.state === 'dead') {
      await forgetRun(run, target, cmd.name, opts.onRetry);
      throw new PluginError(`"${cmd.argv[0]}" in ${where} ended without an exit status (killed?)`, 'check the pod (kubectl describe pod) and run the command again');
    }
    if (s.state === 'absent') {
      const started = await retrying(() => run(target, ['sh', '-c', START, 'sh', dir, ...cmd.argv]), opts.onRetry);
      if (started.exitCode !== 0) {
        throw new PluginError(
          `starting "${cmd.argv[0]}" in ${where} failed (exit code ${started.exitCode}): ${lastLine(started.stderr) || 'no output'}`,
          'check that the container has a POSIX shell with mkdir, mv and cat, and a writable /tmp',
        );
      }
      pause = opts.pollMs ?? 250;
      continue;
    }
    if (s.state === 'starting') {
      // Claimed but no pid yet: a start in progress, or one cut before the runner began.
      startingSince ??= Date.now();
      if (Date.now() - startingSince > START_GRACE_MS) {
        await forgetRun(run, target, cmd.name, opts.onRetry);
        startingSince = undefined;
        continue;
      }
    } else {
      // Running: the poll itself waited for the end.
      startingSince = undefined;
      continue;
    }
    await new Promise((r) => setTimeout(r, pause));
    pause = Math.min(pause * 2, opts.maxPollMs ?? 2000);
  }
  const out = await retrying(() => run(target, ['sh', '-c', READ, 'sh', dir]), opts.onRetry);
  if (out.exitCode !== 0) throw new PluginError(`reading the output of "${cmd.argv[0]}" in ${where} failed: ${lastLine(out.stderr) || `exit code ${out.exitCode}`}`);
  await forgetRun(run, target, cmd.name, opts.onRetry);
  return { exitCode, stdout: out.stdout, stderr: out.stderr };
}

/**
 * Waits until no run under the marker `name` is alive (none there, or it ended), then removes the
 * marker: for work that must not overlap a run an earlier, interrupted caller left going (a
 * roll-back removing what a restore still writes).
 */
export async function settleRun(run: ContainerCommand, target: ContainerRef, name: string, opts: DetachedOptions = {}): Promise<void> {
  let pause = opts.pollMs ?? 250;
  for (let since = Date.now(); ;) {
    const s = await pollRun(run, target, name, opts.onRetry, opts.longPollSeconds ?? LONG_POLL_SECONDS);
    if (s.state === 'absent') return;
    if (s.state === 'done' || s.state === 'dead' || (s.state === 'starting' && Date.now() - since > START_GRACE_MS)) {
      return forgetRun(run, target, name, opts.onRetry);
    }
    if (s.state === 'running') continue;
    await new Promise((r) => setTimeout(r, pause));
    pause = Math.min(pause * 2, opts.maxPollMs ?? 2000);
  }
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n').filter((l) => l.trim() !== '');
  return (lines[lines.length - 1] ?? '').trim();
}
