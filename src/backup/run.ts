import { mkdir } from 'node:fs/promises';
import { resolve, join } from 'node:path';
import { finished, pipeline } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import { PluginError, UsageError } from '../errors.js';
import type { MemberStatus, StatusProbe } from '../etcd/status.js';
import type { EtcdMember, EtcdTopology } from '../etcd/topology.js';
import type { Logger } from '../ui/log.js';
import type { Progress } from '../ui/progress.js';
import { orderCandidates } from './choose.js';
import { SnapshotDigester } from './digest.js';
import { backupFileName, backupStem, compactUtc } from './naming.js';
import { PartialFile } from './partial.js';
import { writeSidecar, type BackupRecord } from './record.js';
import { pruneBackups } from './retention.js';
import { guardSignals, type SignalHost } from './signals.js';
import type { SnapshotTransport, TransportKind } from './transport.js';
import { requireVerified, verifySnapshot, type SnapshotSummaryReader } from './verify.js';

/** Where the snapshot goes. */
export type BackupDestination =
  | { kind: 'file'; path: string }
  | { kind: 'stdout' }
  | { kind: 'dir'; dir: string; keep?: number };

/** What the user asked for, after flags are parsed and the topology is discovered. */
export interface BackupOptions {
  topology: EtcdTopology;
  destination: BackupDestination;
  /** Pod, etcd name or member ID to force. */
  member?: string;
  via?: TransportKind;
}

/** Decides whether a member's container can run the exec transport (has sh and tar). */
export type ExecCapabilityProbe = (member: EtcdMember) => Promise<boolean>;

/** Everything runBackup talks to, passed in. */
export interface BackupDeps {
  transports: Record<TransportKind, SnapshotTransport>;
  canExec: ExecCapabilityProbe;
  probe: StatusProbe;
  readSummary: SnapshotSummaryReader;
  stdout: Writable;
  signals: SignalHost;
  progress: (label: string) => Progress;
  log: Logger;
  now: () => Date;
  pluginVersion: string;
}

/** Takes one verified snapshot of the cluster and writes it where asked; returns the record. */
export async function runBackup(opts: BackupOptions, deps: BackupDeps): Promise<BackupRecord> {
  const { topology } = opts;
  if (topology.members.length === 0) {
    throw new PluginError(`no etcd members found in namespace "${topology.namespace}"`, 'pass --statefulset, --pod or -l');
  }
  const candidates = orderCandidates(topology.members, opts.member);
  const transport = await chooseTransport(candidates[0]!, opts.via, deps);
  const { member, status } = await chooseHealthyMember(candidates, opts.member !== undefined, deps);
  deps.log.debug(1, `backing up member "${member.name}" (pod "${member.pod}") via ${transport.kind}`);
  const startedAt = deps.now();
  const base = {
    etcdVersion: status?.version,
    clusterId: status?.clusterId,
    memberId: status?.memberId ?? member.memberId,
    namespace: topology.namespace,
    workload: topology.workload.name,
    sourcePod: member.pod,
    sourceMember: member.name,
    transport: transport.kind,
    startedAt: startedAt.toISOString(),
    pluginVersion: deps.pluginVersion,
  };
  if (opts.destination.kind === 'stdout') {
    return { ...base, ...(await backupToStdout(member, transport, status, deps)), time: deps.now().toISOString() };
  }
  const dest = opts.destination;
  if (dest.kind === 'dir') await ensureBackupDir(resolve(dest.dir));
  const partialTarget =
    dest.kind === 'file'
      ? resolve(dest.path)
      : join(resolve(dest.dir), `${backupStem(topology.namespace, topology.workload.name)}-${compactUtc(startedAt)}.db`);
  const partial = await PartialFile.create(partialTarget);
  const digester = new SnapshotDigester();
  const guard = guardSignals(deps.signals, () => {
    partial.discardSync();
    digester.destroy(new Error('interrupted'));
  });
  const progress = deps.progress(`snapshot ${member.pod}`);
  try {
    const written = drain(digester, partial.writable(), true);
    const result = await transport.take(member, digester, {
      signal: guard.signal,
      onBytes: (n) => progress.add(n),
      onTotal: (n) => progress.setTotal(n),
      log: deps.log,
      dbSize: status?.dbSize,
    });
    await written;
    guard.signal.throwIfAborted();
    const digest = digester.digest();
    const outcome = await verifySnapshot(partial.path, digest, result.expectedSize, deps.readSummary);
    const summary = requireVerified(outcome, `pod "${member.pod}"`);
    const finalPath =
      dest.kind === 'file'
        ? partialTarget
        : join(resolve(dest.dir), backupFileName({ namespace: topology.namespace, workload: topology.workload.name, time: startedAt, revision: summary.revision }));
    guard.signal.throwIfAborted();
    await partial.commit(finalPath);
    const record: BackupRecord = {
      ...base,
      file: finalPath,
      size: digest.size,
      sha256: digest.sha256,
      revision: summary.revision,
      totalKeys: summary.totalKeys,
      hash: summary.hash,
      time: deps.now().toISOString(),
      verified: { size: result.expectedSize !== undefined, sha256Trailer: true, bbolt: true },
    };
    if (dest.kind === 'dir') {
      await writeSidecar(finalPath, record);
      if (dest.keep !== undefined) {
        const pruned = await pruneBackups(resolve(dest.dir), topology.namespace, topology.workload.name, dest.keep);
        for (const f of pruned) deps.log.debug(1, `pruned old backup ${f}`);
      }
    }
    return record;
  } catch (err) {
    throw guard.signal.aborted ? new PluginError(`backup interrupted; partial file "${partial.path}" removed`) : err;
  } finally {
    progress.done();
    guard.dispose();
    await partial.discard();
  }
}

async function backupToStdout(member: EtcdMember, transport: SnapshotTransport, status: MemberStatus | undefined, deps: BackupDeps) {
  const digester = new SnapshotDigester();
  const guard = guardSignals(deps.signals, () => digester.destroy(new Error('interrupted')));
  const progress = deps.progress(`snapshot ${member.pod}`);
  try {
    const written = drain(digester, deps.stdout, false);
    const result = await transport.take(member, digester, {
      signal: guard.signal,
      onBytes: (n) => progress.add(n),
      onTotal: (n) => progress.setTotal(n),
      log: deps.log,
      dbSize: status?.dbSize,
    });
    await written;
    const digest = digester.digest();
    if (result.expectedSize !== undefined && result.expectedSize !== digest.size) {
      requireVerified({ kind: 'size-mismatch', expected: result.expectedSize, actual: digest.size }, `pod "${member.pod}"`);
    }
    if (!digest.trailerValid) requireVerified({ kind: 'trailer-mismatch' }, `pod "${member.pod}"`);
    deps.log.info('snapshot written to stdout: size and sha256 trailer verified; bbolt structure not verified (streamed), run `kubectl etcd inspect` on the file');
    return {
      file: '-',
      size: digest.size,
      sha256: digest.sha256,
      verified: { size: result.expectedSize !== undefined, sha256Trailer: true, bbolt: false },
    };
  } finally {
    progress.done();
    guard.dispose();
  }
}

/** Creates the --dir directory (and its parents) when missing, mode 0700: it will hold every Secret of the cluster. */
async function ensureBackupDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new PluginError(`cannot create directory "${dir}": ${code}`, 'pass a --dir you can write to');
  }
}

/** Pipes the digester into `out` (ending it only when `endOut`); the promise settles when every byte has left the digester. */
function drain(digester: SnapshotDigester, out: Writable, endOut: boolean): Promise<void> {
  let done: Promise<void>;
  if (endOut) {
    done = pipeline(digester, out);
  } else {
    digester.pipe(out, { end: false });
    done = finished(digester);
  }
  done.catch(() => {});
  return done;
}

async function chooseTransport(member: EtcdMember, via: TransportKind | undefined, deps: BackupDeps): Promise<SnapshotTransport> {
  if (via === 'stream') return deps.transports.stream;
  const ok = await deps.canExec(member);
  if (ok) return deps.transports.exec;
  if (via === 'exec') {
    throw new UsageError(
      `image "${member.image}" of pod "${member.pod}" has no shell or tar, so --via exec cannot work`,
      'use --via stream',
    );
  }
  deps.log.debug(1, `image "${member.image}" has no shell or tar; using the stream transport`);
  return deps.transports.stream;
}

async function chooseHealthyMember(
  candidates: EtcdMember[],
  forced: boolean,
  deps: BackupDeps,
): Promise<{ member: EtcdMember; status?: MemberStatus }> {
  const failures: string[] = [];
  for (const member of candidates) {
    const status = await deps.probe(member);
    if (status.healthy) return { member, status };
    if (forced) {
      deps.log.warn(`member "${member.pod}" is not healthy (${status.error ?? 'unknown'}); trying it anyway because --member was given`);
      return { member, status };
    }
    failures.push(`${member.pod}: ${status.error ?? 'unhealthy'}`);
  }
  throw new PluginError(`no healthy etcd member answered (${failures.join('; ')})`, 'check the cluster with `kubectl etcd status`');
}
