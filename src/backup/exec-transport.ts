import { randomBytes } from 'node:crypto';
import type { Writable } from 'node:stream';
import { dirname } from 'node:path';
import { ForbiddenError, PluginError, TransientError } from '../errors.js';
import { snapshotSave, targetOf } from '../etcd/etcdctl.js';
import { shellQuote } from '../etcd/shell.js';
import { memberContainer, type EtcdMember } from '../etcd/topology.js';
import { removeRunsCommand, runDetached, runDir } from '../kube/detached.js';
import type { ContainerCommand, ContainerRef } from '../kube/exec.js';
import type { SnapshotTransport, TransportContext, TransportResult } from './transport.js';

/** Streams one file out of a container (tar on exec stdout) into `destination`, ending it; `signal` ends the exec. */
export type ContainerCopyOut = (
  target: ContainerRef & { path: string },
  destination: Writable,
  onProgress: (totalBytes: number) => void,
  signal?: AbortSignal,
) => Promise<{ bytes: number }>;

/** How long removing the temporary snapshot may take before we give up and say so. */
const CLEANUP_TIMEOUT_MS = 60_000;

/** Where a member keeps room for a temporary snapshot when /tmp is too small. */
export function dataVolumeDir(member: EtcdMember): string {
  return member.dataVolume?.mountPath ?? dirname(member.dataDir);
}

/** The sh script that saves a snapshot to a temp file in /tmp (or `fallbackDir` when /tmp lacks room) and prints path and size. */
export function snapshotSaveScript(member: EtcdMember, fileName: string, fallbackDir: string, needBytes: number): string {
  // The file is the script's own "$f": every word before it is quoted, the variable is not.
  const save = snapshotSave(targetOf(member), '"$f"').argv;
  const saveLine = [...save.slice(0, -1).map(shellQuote), save[save.length - 1]].join(' ');
  return [
    'set -e',
    'export ETCDCTL_API=3',
    'dir=/tmp',
    `need=${Math.max(0, Math.ceil(needBytes))}`,
    "avail=$(df -Pk /tmp 2>/dev/null | tail -n 1 | tr -s ' ' | cut -d ' ' -f 4) || avail=",
    'case "$avail" in ""|*[!0-9]*) avail=;; esac',
    `if [ -n "$avail" ] && [ $((avail * 1024)) -lt "$need" ]; then dir=${shellQuote(fallbackDir)}; fi`,
    `f="$dir"/${shellQuote(fileName)}`,
    'echo "$f"',
    `${saveLine} >&2`,
    'wc -c < "$f"',
  ].join('\n');
}

/**
 * Runs a command in a container and streams its stdout into `destination`, leaving it open (more
 * may follow); `onBytes` counts what arrived. Resolves with the exit code once every byte is written.
 */
export type ContainerStreamOut = (
  target: ContainerRef,
  argv: string[],
  destination: Writable,
  onBytes: (bytes: number) => void,
  signal?: AbortSignal,
) => Promise<{ exitCode: number; stderr: string }>;

/** The follow script's exit code when the image's tail cannot read from an offset (`tail -c +N`). */
export const FOLLOW_UNSUPPORTED = 64;
/** The follow script's exit code when the save ended without naming its file. */
const FOLLOW_NO_FILE = 65;
/** The follow script's exit code once the save has ended while it followed: the rest is read from the finished file. */
const FOLLOW_SAVE_ENDED = 66;

/**
 * The sh script that streams the snapshot while `etcdctl snapshot save` writes it: $1 is the save's
 * marker folder (kube/detached.ts), $2 how many bytes the caller has already. It reads the file's
 * path from the save's first line of output and follows the growing `$f.part` from that offset
 * with `tail -f` (etcdctl writes it, fsyncs it and renames it to `$f`; tail follows the open file
 * through the rename). Once the save has ended it stops tail and exits FOLLOW_SAVE_ENDED: the caller
 * knows how many bytes arrived and runs the script again, which then reads the finished file from
 * there. Not `tail --pid`: the save's shell is not our child, and where nothing reaps it (etcd as
 * PID 1 reaps nothing) it stays a zombie that `tail --pid` takes for alive. Only the snapshot's
 * bytes go to stdout.
 */
export const FOLLOW_SCRIPT = [
  'd=$1; from=$(($2 + 1))',
  `tail -c +1 /dev/null >/dev/null 2>&1 || exit ${FOLLOW_UNSUPPORTED}`,
  'nap() { sleep 0.05 2>/dev/null || sleep 1; }',
  'f=; i=0',
  'while [ -z "$f" ]; do',
  '  [ -s "$d/out" ] && read -r f <"$d/out"',
  `  if [ -z "$f" ]; then [ -f "$d/rc" ] && exit ${FOLLOW_NO_FILE}; i=$((i + 1)); [ "$i" -gt 1200 ] && exit ${FOLLOW_NO_FILE}; nap; fi`,
  'done',
  'while :; do',
  '  if [ -f "$d/rc" ]; then exec tail -c +"$from" "$f"; fi',
  '  [ -f "$f.part" ] && break',
  '  nap',
  'done',
  'tail -c +"$from" -f "$f.part" & t=$!',
  'while [ ! -f "$d/rc" ] && kill -0 "$t" 2>/dev/null; do nap; done',
  'kill "$t" 2>/dev/null; wait "$t"',
  `exit ${FOLLOW_SAVE_ENDED}`,
].join('\n');

/** Options for the exec transport. */
export interface ExecTransportOptions {
  run: ContainerCommand;
  copyOut: ContainerCopyOut;
  /** Streams the snapshot while it is saved (FOLLOW_SCRIPT); without it, the save is copied once it ended. */
  streamOut?: ContainerStreamOut;
  /** Random suffix source (injectable for tests). */
  randomName?: () => string;
}

/**
 * `etcdctl snapshot save` inside the container to a temp file, streamed out while it is written
 * (FOLLOW_SCRIPT, taken up again at its offset when a stream is cut), then removed (also on failure
 * and on abort). Without `streamOut`, or where the image's tail cannot read from an offset, the
 * finished file is copied out as a tar stream instead. The save runs detached (kube/detached.ts):
 * its own exec carries no bytes for as long as it takes, so a load balancer may cut it, and polling
 * it with short execs never starts a second save. An abort lets the save finish (its file must
 * exist before it can be removed) and ends the copy at once.
 */
export function execTransport(opts: ExecTransportOptions): SnapshotTransport {
  const randomName = opts.randomName ?? (() => `kubectl-etcd-${randomBytes(6).toString('hex')}.db`);
  return {
    kind: 'exec',
    overlaps: opts.streamOut !== undefined,
    async take(member: EtcdMember, sink: Writable, ctx: TransportContext): Promise<TransportResult> {
      const target = memberContainer(member);
      const name = randomName();
      const run = `backup-${name.replace(/\.db$/, '')}`;
      const fallbackDir = dataVolumeDir(member);
      const where = `pod "${member.pod}"`;
      try {
        const script = snapshotSaveScript(member, name, fallbackDir, (ctx.dbSize ?? 0) * 1.2 + (64 << 20));
        ctx.log.debug(2, `exec in ${where}: sh -c <etcdctl snapshot save to ${name}>, detached (marker ${runDir(run)})`);
        // its marker goes with the temporary snapshot, below
        const saving = runDetached(opts.run, target, { name: run, argv: ['sh', '-c', script] }, {
          keepMarker: true,
          onRetry: (err) => ctx.log.debug(1, `exec in ${where} failed, trying again: ${lastLine((err as Error).message)}`),
        });
        // Copying starts while the save writes: one pass where save-then-copy took two.
        const stopFollowing = new AbortController();
        let saveEnded = false;
        const following = opts.streamOut
          ? follow(opts.streamOut, target, runDir(run), sink, ctx, AbortSignal.any([ctx.signal, stopFollowing.signal]), () => saveEnded, where)
          : Promise.resolve('unsupported' as const);
        following.catch(() => {}); // read once the save has ended
        // An abort during the save lets the save finish: its file must exist before it can be removed.
        const saved = await saving.catch((err: unknown) => ({ failed: err }));
        saveEnded = true;
        ctx.log.debug(3, `the save in ${where} has ended`);
        // a failed save has nothing more to follow
        if ('failed' in saved || saved.exitCode !== 0) stopFollowing.abort(new Error('the snapshot save failed'));
        const followed = await following.then((value) => ({ value }), (err: unknown) => ({ failed: err }));
        if ('failed' in saved) throw saved.failed;
        ctx.signal.throwIfAborted();
        if (saved.exitCode !== 0) {
          throw new PluginError(
            `etcdctl snapshot save failed in ${where} (exit ${saved.exitCode}): ${lastLine(saved.stderr) || 'no output'}`,
            'check the member with `kubectl etcd status` or pick another with --member',
          );
        }
        const [path, sizeText] = saved.stdout.trim().split('\n');
        const expectedSize = Number(sizeText?.trim());
        if (!path || !sizeText || !Number.isFinite(expectedSize)) {
          const first = saved.stdout.trim().split('\n')[0]?.slice(0, 200) ?? '';
          throw new PluginError(
            `snapshot save in ${where} did not print the file's path and size (first line of its output: "${first}")`,
            'check that the image has df and wc, or use --via stream',
          );
        }
        ctx.onTotal(expectedSize);
        if ('failed' in followed) {
          ctx.signal.throwIfAborted();
          throw copyFailed(followed.failed, where);
        }
        if (followed.value === 'streamed') {
          ctx.log.debug(1, `snapshot saved in ${where} at ${path} (${expectedSize} bytes), streamed while it was written`);
          // as a copy does: the sink ends with the last byte
          await new Promise<void>((resolve, reject) => sink.end((err?: Error | null) => (err ? reject(err) : resolve())));
          return { expectedSize };
        }
        ctx.log.debug(1, `snapshot saved in ${where} at ${path} (${expectedSize} bytes); copying out`);
        let seen = 0;
        ctx.phase?.('copy');
        try {
          await opts.copyOut(
            { ...target, path },
            sink,
            (total) => {
              ctx.onBytes(total - seen);
              seen = total;
            },
            ctx.signal,
          );
        } catch (err) {
          ctx.signal.throwIfAborted();
          throw copyFailed(err, where);
        }
        return { expectedSize };
      } finally {
        ctx.phase?.('cleanup');
        await removeTemp(opts.run, target, [`/tmp/${name}`, `${fallbackDir}/${name}`], runDir(run), ctx, where);
      }
    },
  };
}

function copyFailed(err: unknown, where: string): PluginError {
  if (err instanceof PluginError && !(err instanceof TransientError)) return err;
  return new PluginError(`copying the snapshot out of ${where} failed: ${lastLine((err as Error).message)}`, 'run the backup again; check the network to the cluster');
}

/** How many follow execs in a row may end without a byte once the save has ended. */
const FOLLOW_STALLS = 3;

/**
 * Streams the snapshot while the save writes it (FOLLOW_SCRIPT), from where the last attempt got
 * to: a cut stream is taken up again at its offset. 'unsupported' when the image's tail cannot
 * follow (nothing was written then; the caller copies the finished file).
 */
async function follow(
  streamOut: ContainerStreamOut, target: ContainerRef, marker: string, sink: Writable, ctx: TransportContext,
  signal: AbortSignal, saveEnded: () => boolean, where: string,
): Promise<'streamed' | 'unsupported'> {
  let bytes = 0;
  let stalls = 0;
  for (;;) {
    const before = bytes;
    let failure: unknown;
    try {
      const r = await streamOut(target, ['sh', '-c', FOLLOW_SCRIPT, 'sh', marker, String(bytes)], sink, (n) => {
        bytes += n;
        ctx.onBytes(n);
      }, signal);
      ctx.log.debug(3, `stream from ${where} ended with exit ${r.exitCode} at ${bytes} bytes${saveEnded() ? ', the save has ended' : ''}`);
      if (r.exitCode === 0 && saveEnded()) return 'streamed';
      if (r.exitCode === FOLLOW_UNSUPPORTED && bytes === 0) {
        ctx.log.debug(1, `the image of ${where} has no tail that reads from an offset: the snapshot is copied once saved`);
        return 'unsupported';
      }
      if (r.exitCode === FOLLOW_NO_FILE) return 'unsupported'; // the save's own answer says why
      // FOLLOW_SAVE_ENDED: the rest comes from the finished file, in the next round
      if (r.exitCode !== 0 && r.exitCode !== FOLLOW_SAVE_ENDED) failure = new TransientError(`streaming the snapshot exited with ${r.exitCode}: ${lastLine(r.stderr) || 'no message'}`);
    } catch (err) {
      signal.throwIfAborted();
      if (!(err instanceof TransientError)) throw err;
      failure = err;
    }
    if (failure) ctx.log.debug(1, `streaming the snapshot out of ${where} stopped at ${bytes} bytes, taking it up again: ${lastLine((failure as Error).message)}`);
    if (bytes === before && saveEnded() && ++stalls >= FOLLOW_STALLS) throw failure ?? new TransientError('the snapshot stream ended early, again and again');
    if (bytes > before) stalls = 0;
    if (bytes === before) await new Promise((r) => setTimeout(r, 200));
  }
}

async function removeTemp(run: ContainerCommand, target: ContainerRef, paths: string[], marker: string, ctx: TransportContext, where: string): Promise<void> {
  const all = [...paths.flatMap((p) => [p, `${p}.part`]), marker];
  try {
    // not ctx.signal: this must run after an interrupt too, bounded by its own timeout
    const r = await run(target, removeRunsCommand(all), AbortSignal.timeout(CLEANUP_TIMEOUT_MS));
    if (r.exitCode !== 0) throw new Error(`rm exited with ${r.exitCode}: ${lastLine(r.stderr) || 'no message'}`);
  } catch (e) {
    if (e instanceof ForbiddenError) return; // exec was never allowed, so nothing was created
    ctx.log.warn(
      `could not remove the temporary snapshot "${paths[0]}" (or "${paths[1]}") in ${where}: ${lastLine((e as Error).message)}; ` +
        `remove it with kubectl exec -n ${target.namespace} ${target.pod} ${target.container ? `-c ${target.container} ` : ''}-- rm -rf ${all.map(shellQuote).join(' ')}`,
    );
  }
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n').filter((l) => l.trim() !== '');
  return (lines[lines.length - 1] ?? '').trim();
}
