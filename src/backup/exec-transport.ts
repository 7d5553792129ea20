import { randomBytes } from 'node:crypto';
import type { Writable } from 'node:stream';
import { dirname } from 'node:path';
import { ForbiddenError, PluginError } from '../errors.js';
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

/** Options for the exec transport. */
export interface ExecTransportOptions {
  run: ContainerCommand;
  copyOut: ContainerCopyOut;
  /** Random suffix source (injectable for tests). */
  randomName?: () => string;
}

/**
 * `etcdctl snapshot save` inside the container to a temp file, copied out as a tar stream, then
 * removed (also on failure and on abort). The save runs detached (kube/detached.ts): it carries no
 * bytes for as long as it takes, so a load balancer may cut its stream, and polling it with short
 * execs never starts a second save. An abort during the save lets the save finish (its file must
 * exist before it can be removed); an abort during the copy ends the copy at once.
 */
export function execTransport(opts: ExecTransportOptions): SnapshotTransport {
  const randomName = opts.randomName ?? (() => `kubectl-etcd-${randomBytes(6).toString('hex')}.db`);
  return {
    kind: 'exec',
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
        const saved = await runDetached(opts.run, target, { name: run, argv: ['sh', '-c', script] }, {
          keepMarker: true,
          onRetry: (err) => ctx.log.debug(1, `exec in ${where} failed, trying again: ${lastLine((err as Error).message)}`),
        });
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
          throw new PluginError(`copying the snapshot out of ${where} failed: ${lastLine((err as Error).message)}`, 'run the backup again; check the network to the cluster');
        }
        return { expectedSize };
      } finally {
        ctx.phase?.('cleanup');
        await removeTemp(opts.run, target, [`/tmp/${name}`, `${fallbackDir}/${name}`], runDir(run), ctx, where);
      }
    },
  };
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
