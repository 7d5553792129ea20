import { mkdir } from 'node:fs/promises';
import { resolve, join } from 'node:path';
import { finished, pipeline } from 'node:stream/promises';
import { PassThrough, type Writable } from 'node:stream';
import { NoHealthyMemberError, PluginError, UsageError, VerificationError } from '../errors.js';
import { kubeadmLayoutWarnings } from '../etcd/kubeadm-layout.js';
import type { MemberStatus, StatusProbe } from '../etcd/status.js';
import type { EtcdMember, EtcdTopology } from '../etcd/topology.js';
import type { Logger } from '../ui/log.js';
import type { PhaseClock } from '../ui/phases.js';
import type { Progress } from '../ui/progress.js';
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { encryptStream } from '../crypt/age.js';
import { OpenUploadError, StoreError, s3Url, type ObjectStore } from '../storage/location.js';
import { TempPlaintext } from '../crypt/plaintext.js';
import { orderCandidates } from './choose.js';
import { encryptVerified, type StoredDigest } from './encrypt.js';
import { ByteCounter, SnapshotDigester } from './digest.js';
import { compactUtc } from '../ui/time.js';
import { backupFileName, backupStem, streamedBackupName } from './naming.js';
import { PartialFile } from './partial.js';
import { writeSidecar, type BackupRecord } from './record.js';
import { pruneBackups, pruneStoredBackups } from './retention.js';
import { guardSignals, InterruptedError, type SignalHost } from './signals.js';
import type { SnapshotTransport, TransportContext, TransportKind, TransportResult } from './transport.js';
import { requireVerified, verifyWrittenFile, type SnapshotSummaryReader } from './verify.js';

/** Where the snapshot goes. */
export type BackupDestination =
  | { kind: 'file'; path: string }
  | { kind: 'stdout' }
  | { kind: 'dir'; dir: string; keep?: number }
  /** --to s3://BUCKET/PREFIX: `folder` is the prefix as a folder ('' or ending in '/'); the store was opened and its bucket checked. */
  | { kind: 'store'; store: ObjectStore; folder: string; keep?: number };

/** What the user asked for, after flags are parsed and the topology is discovered. */
export interface BackupOptions {
  topology: EtcdTopology;
  destination: BackupDestination;
  /** Pod, etcd name or member ID to force. */
  member?: string;
  via?: TransportKind;
  /** age X25519 recipients (checked by parseRecipients): the snapshot is stored encrypted, as `<name>.age`. */
  encryptTo?: string[];
  /** Where the plaintext copy of an encrypted backup lives until it is encrypted and checked (0600, removed on every exit). */
  stateDir?: string;
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
  /** Times the phases (probe, save, copy, verify, commit …) for `-v` and the printed record. */
  phases?: PhaseClock;
  /** Every address a node reports (IPs, DNS names, hostname): kubeadm's members are checked against them (kubeadm-layout.ts). */
  nodeAddresses?: (node: string) => Promise<string[] | undefined>;
}

/** Takes one verified snapshot of the cluster and writes it where asked; returns the record. */
export async function runBackup(opts: BackupOptions, deps: BackupDeps): Promise<BackupRecord> {
  const { topology } = opts;
  if (topology.members.length === 0) {
    throw new PluginError(`no etcd members found in namespace "${topology.namespace}"`, 'pass --statefulset, --pod or -l');
  }
  const candidates = orderCandidates(topology.members, opts.member);
  deps.phases?.start('probe');
  // Both ask the first candidate, each with an exec of its own: at once, not one after the other.
  // kubeadm's static pods: a layout a restore would refuse is said now, at the same time.
  const layout = topology.workload.kubeadm && deps.nodeAddresses ? kubeadmLayoutWarnings(topology.members, deps.nodeAddresses) : Promise.resolve([]);
  const [transport, firstStatus, warnings] = await Promise.all([chooseTransport(candidates[0]!, opts.via, deps), deps.probe(candidates[0]!), layout]);
  for (const w of warnings) deps.log.warn(w);
  const { member, status } = await chooseHealthyMember(candidates, opts.member !== undefined, deps, firstStatus);
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
    return { ...base, ...(await backupToStdout(member, transport, status, deps, opts.encryptTo)), time: deps.now().toISOString() };
  }
  if (opts.destination.kind === 'store') {
    return backupToStore(opts.destination, member, transport, status, base, startedAt, deps, opts.encryptTo);
  }
  const dest = opts.destination;
  const recipients = opts.encryptTo?.length ? opts.encryptTo : undefined;
  const suffix = recipients ? AGE_SUFFIX : '';
  if (dest.kind === 'dir') await ensureBackupDir(resolve(dest.dir));
  const partialTarget =
    dest.kind === 'file'
      ? withSuffix(resolve(dest.path), suffix)
      : join(resolve(dest.dir), `${backupStem(topology.namespace, topology.workload.name)}-${compactUtc(startedAt)}.db${suffix}`);
  const partial = await PartialFile.create(partialTarget);
  // Encrypted: the snapshot lands in a plaintext copy in the state dir first (verified there, then encrypted into `partial`).
  // (a TempPlaintext: removed at exit and on INT/TERM/HUP/QUIT too)
  let plain: TempPlaintext | undefined;
  try {
    if (recipients) {
      if (!opts.stateDir) throw new PluginError('an encrypted backup needs a state dir for its plaintext copy', 'pass --state-dir');
      plain = await TempPlaintext.create(opts.stateDir);
    }
  } catch (err) {
    await partial.discard().catch(() => {});
    throw err;
  }
  // only counted on the way: the written file is hashed and checked once it is whole (verifyWrittenFile)
  const digester = new ByteCounter();
  const guard = guardSignals(deps.signals, (sig, first) => {
    partial.discardSync();
    plain?.removeSync();
    digester.destroy(new Error(`interrupted by ${sig}`));
    if (first) deps.log.warn(stoppingLine(sig, transport.kind, member.pod));
  });
  const progress = deps.progress(`snapshot ${member.pod}`);
  try {
    const first = plain?.file ?? partial;
    const { result, digest: written } = await takeSnapshot(member, transport, digester, first.writable(), true, guard.signal, progress, status, deps);
    // the disk takes the bytes while they are read back; commit waits for it (a plaintext copy is never synced)
    if (first === partial) partial.syncAhead();
    deps.phases?.start('verify');
    const { outcome, digest } = await verifyWrittenFile(first.path, written.size, result.expectedSize, deps.readSummary);
    const summary = requireVerified(outcome, `pod "${member.pod}"`);
    const finalPath =
      dest.kind === 'file'
        ? partialTarget
        : join(resolve(dest.dir), backupFileName({ namespace: topology.namespace, workload: topology.workload.name, time: startedAt, revision: summary.revision }) + suffix);
    let stored: StoredDigest | undefined;
    if (plain && recipients) {
      deps.phases?.start('encrypt');
      await plain.file.closeForReading(); // never committed (nor synced): it is removed when encrypted
      stored = await encryptVerified(plain.path, partial, recipients, digest, guard.signal);
      plain.removeSync();
    }
    guard.signal.throwIfAborted();
    deps.phases?.start('commit');
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
      verified: { size: result.expectedSize !== undefined, sha256Trailer: true, bbolt: true, ...(stored ? { decrypts: true } : {}) },
      ...(stored && recipients ? { encryption: { format: 'age' as const, recipients }, stored } : {}),
    };
    if (dest.kind === 'dir') {
      await writeSidecar(finalPath, record);
      if (dest.keep !== undefined) {
        const pruned = await pruneBackups(resolve(dest.dir), topology.namespace, topology.workload.name, dest.keep);
        for (const f of pruned) deps.log.debug(1, `pruned old backup "${f}"`);
      }
    }
    deps.phases?.end();
    return record;
  } catch (err) {
    const sig = guard.received();
    if (sig) throw new InterruptedError(`backup interrupted by ${sig}; partial file "${partial.path}" removed`, sig, 'run the backup again');
    throw err;
  } finally {
    progress.done();
    plain?.removeSync(); // before the signal guard goes: a signal now would find no plaintext
    guard.dispose();
    await partial.discard().catch((err: Error) => deps.log.warn(err.message));
    await plain?.remove().catch((err: Error) => deps.log.warn(`cannot remove the plaintext copy: ${err.message}`));
  }
}

/** What an encrypted backup's name ends with. */
export const AGE_SUFFIX = '.age';

function withSuffix(path: string, suffix: string): string {
  return suffix && !path.endsWith(suffix) ? path + suffix : path;
}

async function backupToStdout(member: EtcdMember, transport: SnapshotTransport, status: MemberStatus | undefined, deps: BackupDeps, encryptTo?: string[]) {
  const digester = new SnapshotDigester();
  // Encrypted: digester → age → stdout, streaming (the plaintext is checked for size and trailer on the way).
  const recipients = encryptTo?.length ? encryptTo : undefined;
  let out: Writable = deps.stdout;
  let encrypted: Promise<void> | undefined;
  let stdoutError: ((err: Error) => void) | undefined;
  if (recipients) {
    const plain = new PassThrough({ highWaterMark: 1 << 20 });
    const enc = await encryptStream(plain, recipients);
    out = plain;
    // stdout's own errors (a reader gone) fail the plaintext side, which stops the transport as a
    // failing stdout does unencrypted (startCopy watches `out`); listening here also keeps the
    // CLI's last-resort EPIPE exit out of it, so cleanup in the pod still runs.
    stdoutError = (err: Error) => {
      const e = new PluginError(`cannot write the snapshot to stdout: ${(err as NodeJS.ErrnoException).code ?? err.message}`, 'check where stdout goes (free space, a pipe still open)');
      enc.output.destroy(e);
      plain.destroy(e);
    };
    deps.stdout.on('error', stdoutError);
    enc.output.pipe(deps.stdout, { end: false });
    encrypted = finished(enc.output);
    encrypted.catch(() => {});
  }
  const guard = guardSignals(deps.signals, (sig, first) => {
    digester.destroy(new Error(`interrupted by ${sig}`));
    if (first) deps.log.warn(stoppingLine(sig, transport.kind, member.pod));
  });
  const progress = deps.progress(`snapshot ${member.pod}`);
  try {
    const { result, digest } = await takeSnapshot(member, transport, digester, out, recipients !== undefined, guard.signal, progress, status, deps);
    await encrypted;
    if (result.expectedSize !== undefined && result.expectedSize !== digest.size) {
      requireVerified({ kind: 'size-mismatch', expected: result.expectedSize, actual: digest.size }, `pod "${member.pod}"`);
    }
    if (!digest.trailerValid) requireVerified({ kind: 'trailer-mismatch' }, `pod "${member.pod}"`);
    deps.phases?.end();
    deps.log.info(`snapshot written to stdout${recipients ? ', age-encrypted' : ''}: size and sha256 trailer verified; bbolt structure not verified (streamed), run \`kubectl etcd inspect${recipients ? ' --identity KEYFILE' : ''}\` on the file`);
    return {
      file: '-',
      size: digest.size,
      sha256: digest.sha256,
      verified: { size: result.expectedSize !== undefined, sha256Trailer: true, bbolt: false },
      ...(recipients ? { encryption: { format: 'age' as const, recipients } } : {}),
    };
  } catch (err) {
    const sig = guard.received();
    if (sig) throw new InterruptedError(`backup to stdout interrupted by ${sig}; what was written is incomplete`, sig, 'delete the output and run the backup again');
    throw err;
  } finally {
    progress.done();
    guard.dispose();
    if (stdoutError) deps.stdout.off('error', stdoutError);
  }
}

/**
 * --to s3://…: digester (→ age) → gate → multipart upload, never whole in memory or on disk. The
 * gate holds back the end of the body until the transport has finished and the snapshot's size
 * and sha256 trailer are checked: a snapshot that fails them ends the body with an error, so the
 * upload is aborted before its last part and nothing is committed. Once the store has the
 * object, its size is read back and must be what was sent; then the record goes beside it (an
 * object whose record cannot be written is deleted again), then --keep prunes.
 */
async function backupToStore(
  dest: Extract<BackupDestination, { kind: 'store' }>, member: EtcdMember, transport: SnapshotTransport, status: MemberStatus | undefined,
  base: Omit<BackupRecord, 'file' | 'size' | 'sha256' | 'time' | 'verified'>, startedAt: Date, deps: BackupDeps, encryptTo?: string[],
): Promise<BackupRecord> {
  const { store, folder } = dest;
  const recipients = encryptTo?.length ? encryptTo : undefined;
  const key = `${folder}${streamedBackupName(base.namespace, base.workload, startedAt)}${recipients ? AGE_SUFFIX : ''}`;
  const url = s3Url(store.bucket, key);
  // Names have one-second resolution, and an upload replaces an object of the same key.
  if (await store.head(key)) throw new PluginError(`${url} exists already (a backup started in the same second?)`, 'run the backup again');
  const digester = new SnapshotDigester();
  let took: (r: TransportResult) => void = () => {};
  let tookFailed: (e: unknown) => void = () => {};
  const taken = new Promise<TransportResult>((res, rej) => { took = res; tookFailed = rej; });
  taken.catch(() => {});
  const stored = createHash('sha256');
  let storedSize = 0;
  const guard = guardSignals(deps.signals, (sig, first) => {
    digester.destroy(new Error(`interrupted by ${sig}`));
    if (first) deps.log.warn(stoppingLine(sig, transport.kind, member.pod));
  });
  const gate = new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _enc, cb) {
      stored.update(chunk);
      storedSize += chunk.length;
      cb(null, chunk);
    },
    flush(cb) {
      taken.then((result) => {
        // A signal after the last byte (the exec transport still cleaning up in the pod): nothing is committed.
        const sig = guard.received();
        if (sig) return cb(new InterruptedError(`backup interrupted by ${sig}`, sig, 'run the backup again'));
        const digest = digester.digest();
        if (result.expectedSize !== undefined && result.expectedSize !== digest.size) {
          return cb(new VerificationError(`the snapshot from pod "${member.pod}" is ${digest.size} bytes, not the ${result.expectedSize} etcd wrote; nothing was stored`, 'run the backup again'));
        }
        if (!digest.trailerValid) return cb(new VerificationError(`the snapshot from pod "${member.pod}" fails its sha256 trailer check; nothing was stored`, 'run the backup again'));
        cb();
      }, (err: Error) => cb(err));
    },
  });
  let out: Writable = gate;
  if (recipients) {
    const plain = new PassThrough({ highWaterMark: 1 << 20 });
    const enc = await encryptStream(plain, recipients);
    // A failure on either side ends the other: the transport watches `plain`, the upload reads `gate`.
    enc.output.on('error', (err) => gate.destroy(err));
    plain.on('error', (err) => gate.destroy(err));
    gate.on('error', (err) => plain.destroy(err));
    enc.output.pipe(gate);
    out = plain;
  }
  // A transport may fail without ending or destroying its sink (etcdctl exits non-zero in the pod):
  // the sink is destroyed with its error here, or the upload would wait for the body for ever.
  const counted: SnapshotTransport = {
    ...transport,
    take: (m, sink, ctx) => transport.take(m, sink, ctx).then((r) => { took(r); return r; }, (e: unknown) => {
      tookFailed(e);
      // (the digester's pipeline passes it on to the body: only after this error is thrown, so it stays the one reported)
      digester.destroy(e instanceof Error ? e : new Error(String(e)));
      throw e;
    }),
  };
  const progress = deps.progress(`snapshot ${member.pod}`);
  let stranded = false; // the object is in the store but has no record yet
  try {
    const uploading = store.upload(key, gate);
    const [snap, up] = await Promise.allSettled([takeSnapshot(member, counted, digester, out, true, guard.signal, progress, status, deps), uploading]);
    stranded = up.status === 'fulfilled';
    // The store's own failure (a refused part, an abort that failed and names the upload left open)
    // explains more than the broken body it left behind.
    if (up.status === 'rejected' && up.reason instanceof StoreError) throw up.reason;
    if (snap.status === 'rejected') throw snap.reason;
    if (up.status === 'rejected') throw up.reason;
    const digest = snap.value.digest;
    deps.phases?.start('verify');
    const head = await store.head(key);
    if (head?.size !== storedSize) {
      throw new VerificationError(`${url} holds ${head ? `${head.size} bytes` : 'nothing'} after the upload, not the ${storedSize} sent; it was deleted`, 'run the backup again, and check the store');
    }
    deps.phases?.start('commit');
    const record: BackupRecord = {
      ...base,
      file: url,
      size: digest.size,
      sha256: digest.sha256,
      time: deps.now().toISOString(),
      verified: { size: snap.value.result.expectedSize !== undefined, sha256Trailer: true, bbolt: false },
      ...(recipients ? { encryption: { format: 'age' as const, recipients } } : {}),
      stored: { size: storedSize, sha256: stored.digest('hex') },
    };
    try {
      await store.put(`${key}.json`, JSON.stringify(record, null, 2) + '\n');
    } catch (err) {
      throw new PluginError(`cannot write the record of ${url}, so the snapshot was deleted again: ${(err as Error).message}`, 'check that the credentials may write to this prefix, and run the backup again');
    }
    stranded = false;
    deps.log.info(`snapshot stored as ${url}: size and sha256 trailer verified while streaming; bbolt structure not verified (streamed), run \`kubectl etcd inspect ${url}\`${recipients ? ' -i KEYFILE' : ''} to walk it`);
    if (dest.keep !== undefined) {
      const pruned = await pruneStoredBackups(store, folder, base.namespace, base.workload, dest.keep, key);
      for (const f of pruned) deps.log.debug(1, `pruned old backup "${f}"`);
    }
    deps.phases?.end();
    return record;
  } catch (err) {
    // Never an object without its record: --keep would never prune it.
    if (stranded) await store.delete([key]).catch((e: Error) => deps.log.warn(`cannot delete ${url}, which has no record: ${e.message}`));
    const sig = guard.received();
    if (sig && !(err instanceof OpenUploadError)) throw new InterruptedError(`backup interrupted by ${sig}; nothing was stored in ${s3Url(store.bucket, folder)}`, sig, 'run the backup again');
    throw err;
  } finally {
    progress.done();
    guard.dispose();
  }
}

/**
 * Runs the transport into the digester while the digester's output is copied to `out`; returns once
 * every byte is written (or throws the write error, which explains a transport failure better).
 */
async function takeSnapshot<Tap extends SnapshotDigester | ByteCounter>(
  member: EtcdMember, transport: SnapshotTransport, digester: Tap, out: Writable, endOut: boolean,
  signal: AbortSignal, progress: Progress, status: MemberStatus | undefined, deps: BackupDeps,
): Promise<{ result: TransportResult; digest: ReturnType<Tap['digest']> }> {
  const copy = startCopy(digester, out, endOut, signal);
  // one phase where the transport copies while it saves; else a save phase, then its own copy phase
  deps.phases?.start(transport.overlaps ? 'save+copy' : 'save');
  let result: TransportResult;
  try {
    result = await transport.take(member, digester, transportContext(copy.signal, progress, status, deps));
  } catch (err) {
    throw copy.writeError() ?? err;
  }
  await copy.written;
  signal.throwIfAborted();
  return { result, digest: digester.digest() as ReturnType<Tap['digest']> };
}

/** What the user sees on the first signal: the exec transport still has a file in the pod to remove. */
function stoppingLine(sig: NodeJS.Signals, kind: TransportKind, pod: string): string {
  if (kind !== 'exec') return `${sig}: stopping the backup`;
  return `${sig}: stopping; removing the temporary snapshot in pod "${pod}" (send ${sig} again to quit at once and leave it there)`;
}

function transportContext(signal: AbortSignal, progress: Progress, status: MemberStatus | undefined, deps: BackupDeps): TransportContext {
  return {
    signal,
    onBytes: (n) => progress.add(n),
    onTotal: (n) => progress.setTotal(n),
    log: deps.log,
    dbSize: status?.dbSize,
    phase: (name) => deps.phases?.start(name),
  };
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

/** The local half of a copy: digester → out, running while the transport fills the digester. */
interface LocalCopy {
  /** Settles when every byte has left the digester (and `out` finished, when it is ended). */
  written: Promise<void>;
  /** Aborts when `interrupt` does or writing to `out` fails (disk full): the transport stops at once. */
  signal: AbortSignal;
  /** The error writing to `out` failed with, if it did (e.g. `cannot write "x.partial": ENOSPC`). */
  writeError(): Error | undefined;
}

/** Pipes the digester into `out` (ending it only when `endOut`) and watches for a local write failure. */
function startCopy(digester: Transform, out: Writable, endOut: boolean, interrupt: AbortSignal): LocalCopy {
  const stop = new AbortController();
  let failed: Error | undefined;
  let sourceFailed = false;
  const asWriteError = (err: Error): Error =>
    err instanceof PluginError
      ? err // PartialFile names its file already
      : new PluginError(`cannot write the snapshot to stdout: ${(err as NodeJS.ErrnoException).code ?? err.message}`, 'check where stdout goes (free space, a pipe still open)');
  // Whichever side fails first is the cause: a failing `out` destroys the digester too, and the other way round.
  digester.on('error', () => {
    if (!failed) sourceFailed = true;
  });
  out.on('error', (err: Error) => {
    if (sourceFailed || failed) return;
    failed = asWriteError(err);
    stop.abort(failed);
  });
  let done: Promise<void>;
  if (endOut) {
    done = pipeline(digester, out);
  } else {
    digester.pipe(out, { end: false });
    done = finished(digester);
  }
  const written = done.then(
    () => {
      if (failed) throw failed;
    },
    (err: Error) => {
      throw failed ?? err;
    },
  );
  written.catch(() => {}); // awaited only when the transport succeeded
  return {
    written,
    signal: AbortSignal.any([interrupt, stop.signal]),
    writeError: () => failed ?? (!sourceFailed && out.errored ? asWriteError(out.errored) : undefined),
  };
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
  firstStatus: MemberStatus,
): Promise<{ member: EtcdMember; status?: MemberStatus }> {
  const failures: string[] = [];
  for (const [i, member] of candidates.entries()) {
    const status = i === 0 ? firstStatus : await deps.probe(member);
    if (status.healthy) return { member, status };
    if (forced) {
      deps.log.warn(`member "${member.pod}" is not healthy (${status.error ?? 'unknown'}); trying it anyway because --member was given`);
      return { member, status };
    }
    failures.push(`pod "${member.pod}": ${status.error ?? 'unhealthy'}`);
  }
  throw new NoHealthyMemberError(`no healthy etcd member answered (${failures.join('; ')})`, 'check the cluster with `kubectl etcd status`, or force one with --member');
}
