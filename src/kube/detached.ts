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
 * One exec claims DIR and starts the command, or finds DIR claimed already, then waits a few
 * seconds for the run to end (writing a dot each tenth, so the stream is never idle) and answers
 * its state, with its output once it ended; a run that goes on is waited for by the same exec
 * again. Claiming DIR (mkdir) is atomic, so a retried or resumed start never starts a second run:
 * it finds the marker and waits for that run, or takes its status and output. Each exec is retried
 * while it fails transiently; the marker is removed only once the output was read. The marker
 * lives in the container's own /tmp, so it goes with the container and its processes.
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
  /**
   * Leave the marker of a run that ended for the caller to remove (with `removeRunsCommand`, in the
   * exec that removes its other leftovers): one exec fewer.
   */
  keepMarker?: boolean;
}

/** What a poll of the marker says. */
export type RunState = { state: 'absent' | 'starting' | 'running' | 'dead' } | { state: 'done'; exitCode: number };

/** How long a claimed marker may lack its pid before the start is taken as never having happened. */
const START_GRACE_MS = 15_000;

// The long poll POLL and RUN share ($d: the marker folder; $n: how many tenths of a second to
// wait for a live run to end, or for a claimed run to write its pid, before answering: the answer
// comes within a tenth of the end, not at the next poll). While it waits it writes a dot to stderr
// every step, so no load balancer takes the exec for idle. Liveness is read before rc: a run that
// ended has written rc first. `sleep 0.1` is not POSIX: where it fails, whole seconds. With
// $with_output set, a "done" answer carries the run's output: its stdout after the "done RC" line,
// its stderr on stderr after a newline that ends the dots.
const WAIT = [
  // One look at the run: $started (its pid file was there) and $alive (its process was) are read
  // together, and every decision below uses that look, never a second test of the pid file: the
  // runner writes its pid file at any moment, and a run seen not started by one test and started
  // by the next would read as started and not alive, "dead", while it runs.
  'live() {',
  '  alive=; started=',
  '  if [ -f "$d/pid" ] && read p <"$d/pid"; then',
  '    started=1',
  '    if kill -0 "$p" 2>/dev/null; then',
  '      s=; read s <"/proc/$p/stat" 2>/dev/null || s=',
  '      case "$s" in *") Z "*) ;; *) alive=1;; esac',
  '    fi',
  '  fi',
  '}',
  'live',
  // a run being started (claimed, no pid yet) is waited for as well
  'while [ "$n" -gt 0 ] && [ ! -f "$d/rc" ] && { [ -n "$alive" ] || { [ -z "$started" ] && [ -d "$d" ]; }; }; do',
  '  if sleep 0.1 2>/dev/null; then n=$((n - 1)); else sleep 1; n=$((n - 10)); fi',
  '  printf . >&2',
  '  live',
  'done',
  'if [ -f "$d/rc" ]; then',
  '  read rc <"$d/rc"; echo "done $rc"',
  '  if [ -n "$with_output" ]; then cat "$d/out" && printf "\\n" >&2 && cat "$d/err" >&2 || exit 98; fi',
  'elif [ -n "$alive" ]; then echo running',
  'elif [ -n "$started" ]; then echo dead',
  'elif [ -d "$d" ]; then echo starting',
  'else echo absent; fi',
];

// $1: the marker folder; $2: tenths of a second to wait (WAIT). Answers the run's state.
const POLL = ['d=$1; n=${2:-0}; with_output=', ...WAIT].join('\n');

// $1: the marker folder; $2: tenths of a second to wait; the rest: the command. Starts the command
// unless the marker is claimed already (a run started earlier, perhaps by a caller that was cut or
// killed), then waits like POLL and answers the run's state, with its output once it is done: one
// exec where a poll, a start, a poll and a read of the output took four.
const RUN = [
  'd=$1; n=$2; shift 2; with_output=1',
  'umask 077',
  'mkdir -p "${d%/*}" || exit 97',
  'if mkdir "$d" 2>/dev/null; then',
  // The runner shell writes its own pid first, so a pid file never names a run that did not start.
  `  sh -c 'd=$1; shift; echo $$ >"$d/pid.tmp" && mv "$d/pid.tmp" "$d/pid"; "$@" >"$d/out" 2>"$d/err"; echo $? >"$d/rc.tmp"; mv "$d/rc.tmp" "$d/rc"' sh "$d" "$@" </dev/null >/dev/null 2>&1 &`,
  'fi',
  ...WAIT,
].join('\n');

/** The marker folder of a command in its container. */
export function runDir(name: string): string {
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error(`invalid detached run name "${name}"`);
  return `${RUNS_DIR}/${name}`;
}

/** How long one poll waits for a running command to end before it answers "running". */
export const LONG_POLL_SECONDS = 5;

/** Reads the state of a run from its marker; with `waitSeconds`, a live run is waited for that long first. */
export async function pollRun(run: ContainerCommand, target: ContainerRef, name: string, onRetry?: (err: unknown) => void, waitSeconds = 0): Promise<RunState> {
  const r = await retrying(() => run(target, ['sh', '-c', POLL, 'sh', runDir(name), tenths(waitSeconds)]), onRetry);
  return parseState(r, name, target).state;
}

function tenths(seconds: number): string {
  return String(Math.round(seconds * 10));
}

/** The state a POLL or RUN answered, with the run's output when RUN answered "done". */
function parseState(r: CommandResult, name: string, target: ContainerRef): { state: RunState; output?: { stdout: string; stderr: string } } {
  const nl = r.stdout.indexOf('\n');
  const line = (nl < 0 ? r.stdout : r.stdout.slice(0, nl)).trim();
  const done = /^done (\d+)$/.exec(line);
  if (done && r.exitCode === 0) {
    // stderr: the dots of the wait, the newline that ends them, then the run's own stderr
    const cut = r.stderr.search(/^\.*\n/) === 0 ? r.stderr.indexOf('\n') + 1 : 0;
    return { state: { state: 'done', exitCode: Number(done[1]) }, output: { stdout: nl < 0 ? '' : r.stdout.slice(nl + 1), stderr: r.stderr.slice(cut) } };
  }
  if (r.exitCode === 0 && (line === 'absent' || line === 'starting' || line === 'running' || line === 'dead')) return { state: { state: line } };
  throw new PluginError(
    `checking the run "${name}" in pod "${target.pod}" failed (exit code ${r.exitCode}): ${lastLine(r.stderr.replace(/^\.+/, '') || r.stdout) || 'no output'}`,
    'check that the container has a POSIX shell with mkdir, mv and cat, and a writable /tmp',
  );
}

/**
 * A command that removes `paths` (a run's marker folder among them) and then RUNS_DIR once it is
 * empty; exits with rm's status.
 */
export function removeRunsCommand(paths: string[]): string[] {
  return ['sh', '-c', `rm -rf -- "$@" || exit $?; rmdir ${RUNS_DIR} 2>/dev/null; exit 0`, 'sh', ...paths];
}

/** Removes a run's marker (after its result was read, or when it never started), and RUNS_DIR once empty. */
export async function forgetRun(run: ContainerCommand, target: ContainerRef, name: string, onRetry?: (err: unknown) => void): Promise<void> {
  const r = await retrying(() => run(target, removeRunsCommand([runDir(name)])), onRetry);
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
  const wait = tenths(opts.longPollSeconds ?? LONG_POLL_SECONDS);
  let pause = opts.pollMs ?? 250;
  let startingSince: number | undefined;
  for (;;) {
    // Starts the command unless its marker is there, waits for it, and reads its output once done.
    const r = await retrying(() => run(target, ['sh', '-c', RUN, 'sh', dir, wait, ...cmd.argv]), opts.onRetry);
    if (r.exitCode === 97) {
      throw new PluginError(
        `starting "${cmd.argv[0]}" in ${where} failed (exit code 97): ${lastLine(r.stderr.replace(/^\.+/, '')) || 'no output'}`,
        'check that the container has a POSIX shell with mkdir, mv and cat, and a writable /tmp',
      );
    }
    const { state: s, output } = parseState(r, cmd.name, target);
    if (s.state === 'done') {
      if (!opts.keepMarker) await forgetRun(run, target, cmd.name, opts.onRetry);
      return { exitCode: s.exitCode, stdout: output!.stdout, stderr: output!.stderr };
    }
    if (s.state === 'dead') {
      await forgetRun(run, target, cmd.name, opts.onRetry);
      throw new PluginError(`"${cmd.argv[0]}" in ${where} ended without an exit status (killed?)`, 'check the pod (kubectl describe pod) and run the command again');
    }
    if (s.state === 'running') {
      // The exec itself waited for the end.
      startingSince = undefined;
      continue;
    }
    // Claimed but no pid yet: a start in progress, or one cut before the runner began ("absent"
    // only if the marker went between the claim and the answer).
    startingSince ??= Date.now();
    if (Date.now() - startingSince > START_GRACE_MS) {
      await forgetRun(run, target, cmd.name, opts.onRetry);
      startingSince = undefined;
      pause = opts.pollMs ?? 250;
      continue;
    }
    await new Promise((res) => setTimeout(res, pause));
    pause = Math.min(pause * 2, opts.maxPollMs ?? 2000);
  }
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
