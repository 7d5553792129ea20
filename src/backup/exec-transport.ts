import { randomBytes } from 'node:crypto';
import { Transform, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { dirname } from 'node:path';
import { extract } from 'tar-stream';
import { ForbiddenError, PluginError } from '../errors.js';
import { etcdctlConnectionArgs } from '../etcd/status.js';
import type { EtcdMember } from '../etcd/topology.js';
import type { SnapshotTransport, TransportContext, TransportResult } from './transport.js';

/** The container an exec runs in. */
export interface ExecTarget {
  namespace: string;
  pod: string;
  container: string;
}

/** Streaming exec into a container; resolves with the exit code from the status channel. */
export interface ContainerExec {
  exec(
    target: ExecTarget,
    command: string[],
    io: { stdout?: Writable; stderr?: Writable; stdin?: Readable; signal?: AbortSignal },
  ): Promise<{ exitCode: number }>;
}

/** Quotes a string for POSIX sh. */
export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Where a member keeps room for a temporary snapshot when /tmp is too small. */
export function dataVolumeDir(member: EtcdMember): string {
  return member.dataVolume?.mountPath ?? dirname(member.dataDir);
}

/** The sh script that saves a snapshot to a temp file in /tmp (or `fallbackDir` when /tmp lacks room) and prints path and size. */
export function snapshotSaveScript(member: EtcdMember, fileName: string, fallbackDir: string, needBytes: number): string {
  const etcdctl = ['etcdctl', ...etcdctlConnectionArgs(member)].map(shQuote).join(' ');
  return [
    'set -e',
    'export ETCDCTL_API=3',
    'dir=/tmp',
    `need=${Math.max(0, Math.ceil(needBytes))}`,
    "avail=$(df -Pk /tmp 2>/dev/null | tail -n 1 | tr -s ' ' | cut -d ' ' -f 4) || avail=",
    'case "$avail" in ""|*[!0-9]*) avail=;; esac',
    `if [ -n "$avail" ] && [ $((avail * 1024)) -lt "$need" ]; then dir=${shQuote(fallbackDir)}; fi`,
    `f="$dir"/${shQuote(fileName)}`,
    'echo "$f"',
    `${etcdctl} snapshot save "$f" >&2`,
    'wc -c < "$f"',
  ].join('\n');
}

/** Options for the exec transport. */
export interface ExecTransportOptions {
  exec: ContainerExec;
  /** Random suffix source (injectable for tests). */
  randomName?: () => string;
}

/** `etcdctl snapshot save` inside the container, then `tar cf -` on exec stdout parsed straight into the sink. */
export function execTransport(opts: ExecTransportOptions): SnapshotTransport {
  const randomName = opts.randomName ?? (() => `kubectl-etcd-${randomBytes(6).toString('hex')}.db`);
  return {
    kind: 'exec',
    async take(member: EtcdMember, sink: Writable, ctx: TransportContext): Promise<TransportResult> {
      const target = { namespace: member.namespace, pod: member.pod, container: member.container };
      const name = randomName();
      const fallbackDir = dataVolumeDir(member);
      const where = `pod "${member.pod}"`;
      try {
        const out = new Collector();
        const err = new Collector();
        const script = snapshotSaveScript(member, name, fallbackDir, (ctx.dbSize ?? 0) * 1.2 + (64 << 20));
        ctx.log.debug(2, `exec in ${where}: sh -c <snapshot save to ${name}>`);
        const saved = await opts.exec.exec(target, ['sh', '-c', script], { stdout: out, stderr: err, signal: ctx.signal });
        if (saved.exitCode !== 0) {
          throw new PluginError(
            `etcdctl snapshot save failed in ${where} (exit ${saved.exitCode}): ${lastLine(err.text()) || 'no output'}`,
            'check the member with `kubectl etcd status` or pick another with --member',
          );
        }
        const [path, sizeText] = out.text().trim().split('\n');
        const expectedSize = Number(sizeText?.trim());
        if (!path || !Number.isFinite(expectedSize)) throw new PluginError(`unexpected output from snapshot save in ${where}: ${out.text().trim()}`);
        ctx.onTotal(expectedSize);
        ctx.log.debug(1, `snapshot saved in ${where} at ${path} (${expectedSize} bytes); copying out`);
        await copyOut(opts.exec, target, path, sink, ctx, where);
        return { expectedSize };
      } finally {
        await removeTemp(opts.exec, target, [`/tmp/${name}`, `${fallbackDir}/${name}`], ctx, where);
      }
    },
  };
}

async function copyOut(exec: ContainerExec, target: ExecTarget, path: string, sink: Writable, ctx: TransportContext, where: string): Promise<void> {
  const tar = extract();
  const err = new Collector();
  let found = false;
  const entries = new Promise<void>((resolve, reject) => {
    tar.on('entry', (header, stream, next) => {
      if (found || header.type !== 'file') {
        stream.resume();
        stream.on('end', next);
        return;
      }
      found = true;
      const count = new Transform({
        transform(chunk: Buffer, _e, cb) {
          ctx.onBytes(chunk.length);
          cb(null, chunk);
        },
      });
      pipeline(stream, count, sink).then(() => next(), reject);
    });
    tar.on('finish', () => resolve());
    tar.on('error', reject);
  });
  const dir = dirname(path);
  const file = path.slice(dir.length + 1);
  const feed = new Writable({
    write(chunk: Buffer, _e, cb) {
      if (tar.write(chunk)) cb();
      else tar.once('drain', () => cb());
    },
    final(cb) {
      (tar as unknown as Writable).end();
      cb();
    },
  });
  const ran = exec.exec(target, ['tar', 'cf', '-', '-C', dir, file], { stdout: feed, stderr: err, signal: ctx.signal });
  const [result] = await Promise.all([ran, entries]).catch((e: Error) => {
    tar.destroy();
    throw new PluginError(`copying the snapshot out of ${where} failed: ${lastLine(e.message)}`, 'run the backup again; check the network to the cluster');
  });
  if (result.exitCode !== 0) {
    throw new PluginError(`tar failed in ${where} (exit ${result.exitCode}): ${lastLine(err.text()) || 'no output'}`, 'run the backup again');
  }
  if (!found) throw new PluginError(`the copy out of ${where} held no snapshot file`, 'run the backup again');
}

async function removeTemp(exec: ContainerExec, target: ExecTarget, paths: string[], ctx: TransportContext, where: string): Promise<void> {
  const all = paths.flatMap((p) => [p, `${p}.part`]);
  try {
    const r = await exec.exec(target, ['rm', '-f', ...all], {});
    if (r.exitCode !== 0) throw new Error(`rm exited with ${r.exitCode}`);
  } catch (e) {
    if (e instanceof ForbiddenError) return; // exec was never allowed, so nothing was created
    ctx.log.warn(`could not remove the temporary snapshot ${paths[0]} in ${where}: ${lastLine((e as Error).message)}; remove it with kubectl exec`);
  }
}

/** A Writable that keeps what it receives (for small outputs only). */
export class Collector extends Writable {
  private chunks: Buffer[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.chunks.push(Buffer.from(chunk));
    cb();
  }
  /** Everything written so far, as UTF-8. */
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n').filter((l) => l.trim() !== '');
  return (lines[lines.length - 1] ?? '').trim();
}
