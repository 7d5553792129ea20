/**
 * A restore drill on this machine: the snapshot is restored with the etcd release's own tool into
 * a private directory of the state dir, a one-member etcd is started on it on 127.0.0.1, and what
 * the member serves (revision, key count, HashKV and its compaction revision) is compared with
 * what was read offline from the file. The directory holds a cluster's Secrets: it is 0700 and is
 * removed on every way out (return, error, SIGINT/SIGTERM, exit), the member killed first; after a
 * SIGKILL the member dies with this process (setpriv --pdeathsig, where there is setpriv) and the
 * next run that uses the state dir removes the directory.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Etcd3, type IHashKVRequest, type IHashKVResponse } from 'etcd3';
import { guardSignals } from '../backup/signals.js';
import { hostFileTag, plaintextDir, sweepStalePlaintext } from '../crypt/plaintext.js';
import { PluginError } from '../errors.js';
import type { KvHash } from '../etcd/snapshot/kvhash.js';
import { onPath, type LocalEtcdTools } from './local-etcd.js';

/** What the started member served. */
export interface Served {
  revision: number;
  keys: number;
  hash: number;
  compactRevision: number;
}

/** The outcome of one drill, as printed and recorded beside the backup. */
export interface DrillReport {
  at: string;
  where: 'local';
  etcdVersion: string;
  restoredWith: string;
  /** Milliseconds from the member's start to its first answer. */
  startedInMs?: number;
  expected: KvHash;
  served?: Served;
  outcome: 'passed' | 'failed';
  /** Why it failed, one line. */
  reason?: string;
}

/** Inputs of a local drill. */
export interface LocalDrillOptions {
  /** The plaintext snapshot file. */
  snapshot: string;
  /** A raw bbolt file (no sha256 trailer) needs `--skip-hash-check`. */
  skipHashCheck: boolean;
  stateDir: string;
  tools: LocalEtcdTools;
  /** What inspect read offline. */
  expected: KvHash;
  /** Progress lines for stderr. */
  log(line: string): void;
  /** How long the member may take to answer (default 120 s). */
  startTimeoutMs?: number;
  now?: () => Date;
}

const MEMBER = 'drill';

/** Restores and starts the snapshot with local etcd, compares, cleans up; a refused snapshot is a failed report, a broken machine an error. */
export async function runLocalDrill(opts: LocalDrillOptions): Promise<DrillReport> {
  const now = opts.now ?? (() => new Date());
  const base = { at: now().toISOString(), where: 'local' as const, etcdVersion: opts.tools.version, restoredWith: `${opts.tools.restore.kind} ${opts.tools.version}`, expected: opts.expected };
  const work = new DrillWorkDir(opts.stateDir);
  const guard = guardSignals(process, () => work.removeSync());
  try {
    for (let attempt = 1; ; attempt++) {
      const ports = [await loopbackPort(), await loopbackPort()] as const;
      const client = `http://127.0.0.1:${ports[0]}`;
      const peer = `http://127.0.0.1:${ports[1]}`;
      const data = work.freshDataDir();
      opts.log(`restoring with ${opts.tools.restore.path} into a private directory of the state dir`);
      const restored = await restoreInto(opts, data, peer);
      guard.signal.throwIfAborted();
      if (restored !== undefined) return { ...base, outcome: 'failed', reason: restored };
      opts.log(`starting ${opts.tools.etcd} (etcd ${opts.tools.version}) on ${client}`);
      const member = work.start(opts.tools.etcd, [
        '--name', MEMBER, '--data-dir', data,
        '--listen-client-urls', client, '--advertise-client-urls', client,
        '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `${MEMBER}=${peer}`,
        '--log-outputs', 'stderr',
      ]);
      const started = Date.now();
      const answer = await firstAnswer(client, member, opts.startTimeoutMs ?? 120_000, guard.signal);
      if (answer.kind === 'port-taken' && attempt < 3) {
        await work.stop();
        continue;
      }
      if (answer.kind !== 'up') {
        guard.signal.throwIfAborted();
        return { ...base, outcome: 'failed', reason: answer.reason };
      }
      const startedInMs = Date.now() - started;
      opts.log(`etcd answered after ${(startedInMs / 1000).toFixed(1)} s; comparing what it serves`);
      const served = await query(client, opts.expected);
      guard.signal.throwIfAborted();
      const mismatch = compare(opts.expected, served);
      return { ...base, startedInMs, served, outcome: mismatch ? 'failed' : 'passed', ...(mismatch ? { reason: mismatch } : {}) };
    }
  } catch (err) {
    // A signal killed the member under a call: report the interruption, not the broken call.
    if (guard.signal.aborted) throw guard.signal.reason;
    throw err;
  } finally {
    await work.remove();
    guard.dispose();
  }
}

/** The first difference between what was read offline and what the member serves, or undefined. */
export function compare(expected: KvHash, served: Served): string | undefined {
  if (served.revision < expected.revision) return `the member serves revision ${served.revision}, the snapshot holds revision ${expected.revision}`;
  if (served.keys !== expected.liveKeys) return `the member serves ${served.keys} keys at revision ${expected.revision}, the snapshot holds ${expected.liveKeys}`;
  if (served.compactRevision !== expected.compactRevision) return `the member reports compaction at revision ${served.compactRevision}, the snapshot at ${expected.compactRevision}`;
  if (served.hash !== expected.hash) return `the member's KV hash is ${served.hash}, the snapshot's ${expected.hash}`;
  return undefined;
}

async function restoreInto(opts: LocalDrillOptions, data: string, peer: string): Promise<string | undefined> {
  const { kind, path } = opts.tools.restore;
  const args = ['snapshot', 'restore', opts.snapshot, '--data-dir', data, '--name', MEMBER, '--initial-cluster', `${MEMBER}=${peer}`, '--initial-advertise-peer-urls', peer];
  if (opts.skipHashCheck) args.push('--skip-hash-check');
  return new Promise((resolve, reject) => {
    execFile(path, args, { env: { ...process.env, ETCDCTL_API: '3' }, maxBuffer: 4 << 20 }, (err, _stdout, stderr) => {
      if (!err) return resolve(undefined);
      if (typeof err.code === 'string') return reject(new PluginError(`cannot run ${path}: ${err.code}`, 'pass a working etcd with --etcd'));
      resolve(`${kind} snapshot restore refused the snapshot: ${failureLine(stderr)}`);
    });
  });
}

type Answer = { kind: 'up' } | { kind: 'exited' | 'timeout'; reason: string } | { kind: 'port-taken'; reason: string };

/** Waits for the member to answer a status call, for it to exit, or for the timeout. */
async function firstAnswer(endpoint: string, member: RunningMember, timeoutMs: number, signal: AbortSignal): Promise<Answer> {
  const deadline = Date.now() + timeoutMs;
  const client = new Etcd3({ hosts: endpoint, dialTimeout: 1000 });
  try {
    while (Date.now() < deadline) {
      signal.throwIfAborted();
      if (member.exitCode() !== null) {
        const log = member.log();
        if (/address already in use/.test(log)) return { kind: 'port-taken', reason: failureLine(log) };
        return { kind: 'exited', reason: `etcd ${member.describeExit()} on the restored data: ${failureLine(log)}` };
      }
      try {
        await client.maintenance.status();
        return { kind: 'up' };
      } catch {
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    return { kind: 'timeout', reason: `etcd did not answer within ${Math.round(timeoutMs / 1000)} s on the restored data: ${failureLine(member.log())}` };
  } finally {
    client.close();
  }
}

/** Asks the member at the snapshot's revision (its current one when that is compacted away, as after `--mark-compacted`). */
async function query(endpoint: string, expected: KvHash): Promise<Served> {
  const client = new Etcd3({ hosts: endpoint, dialTimeout: 5000 });
  try {
    const status = await client.maintenance.status();
    const at = expected.revision > expected.compactRevision ? expected.revision : 0;
    // etcd3 1.1.2's maintenance.hashKV calls a method grpc-js names `hashKv`: call that one.
    const pool = (client.maintenance as unknown as { client: { exec(service: 'Maintenance', method: string, req: IHashKVRequest): Promise<IHashKVResponse> } }).client;
    const hashed = await pool.exec('Maintenance', 'hashKv', { revision: at });
    const keys = await client.getAll().revision(at || status.header.revision).count();
    return { revision: Number(status.header.revision), keys, hash: Number(hashed.hash), compactRevision: Number(hashed.compact_revision) };
  } catch (err) {
    throw new PluginError(`the drill's etcd stopped answering: ${(err as Error).message.split('\n')[0]}`, 'run the drill again');
  } finally {
    client.close();
  }
}

/** The line of an etcd or tool log that says why it stopped: a panic or fatal entry's message, else the last line. */
export function failureLine(log: string): string {
  const lines = log.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  for (const line of [...lines].reverse()) {
    if (line.startsWith('{')) {
      try {
        const entry = JSON.parse(line) as { level?: string; msg?: string; error?: string };
        if (entry.level === 'panic' || entry.level === 'fatal') return [entry.msg, entry.error].filter(Boolean).join(': ');
      } catch {
        // not JSON after all
      }
    } else if (/^panic: /.test(line) || / (C|F) \| /.test(line)) {
      return line.replace(/^\S+ \S+ (C|F) \| /, '');
    }
  }
  const last = lines.at(-1) ?? 'no output';
  return last.length > 300 ? `${last.slice(0, 300)}…` : last;
}

/** A free TCP port on 127.0.0.1 (bound and released: another process may take it, hence the retries). */
function loopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** The last 16 KiB of a log file ('' when it is gone). */
function tail(path: string): string {
  try {
    const size = statSync(path).size;
    const length = Math.min(size, 16_384);
    const fd = openSync(path, 'r');
    try {
      const buf = Buffer.alloc(length);
      readSync(fd, buf, 0, length, size - length);
      return buf.toString('utf8');
    } finally {
      closeSync(fd);
    }
  } catch {
    return '';
  }
}

/** A member process of the drill. */
interface RunningMember {
  exitCode(): number | null;
  describeExit(): string;
  log(): string;
}

/**
 * The drill's directory `<state>/tmp/drill-<host>_<pid>-<random>` (0700) and its member: removed,
 * the member killed, on every way out, synchronously when the process exits or is signalled.
 */
class DrillWorkDir {
  readonly path: string;
  private child: ChildProcess | undefined;
  private exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private logFd: { close(): void } | undefined;
  private round = 0;
  private readonly onExit = () => this.removeSync();

  constructor(stateDir: string) {
    const dir = plaintextDir(stateDir);
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      sweepStalePlaintext(dir);
      this.path = join(dir, `drill-${hostFileTag()}_${process.pid}-${randomBytes(6).toString('hex')}`);
      mkdirSync(this.path, { mode: 0o700 });
    } catch (err) {
      throw new PluginError(`cannot create the drill's directory in "${dir}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'pass a --state-dir you can write to');
    }
    process.on('exit', this.onExit);
  }

  /** A data dir path that does not exist yet (the restore tool creates it). */
  freshDataDir(): string {
    return join(this.path, `data-${++this.round}`);
  }

  /**
   * Starts the member with its log in a file of the directory, not a pipe: a member writing to a
   * pipe whose reader died would die of SIGPIPE only when it next logs, which an idle one may not.
   */
  start(bin: string, args: string[]): RunningMember {
    this.exited = undefined;
    this.logFd?.close();
    const logPath = join(this.path, `etcd-${this.round}.log`);
    const fd = openSync(logPath, 'w', 0o600);
    this.logFd = { close: () => closeSync(fd) };
    // Where setpriv exists (Linux), the member gets SIGKILL when this process dies, even by SIGKILL.
    const setpriv = onPath('setpriv');
    const stdio: ['ignore', 'ignore', number] = ['ignore', 'ignore', fd];
    const child = setpriv ? spawn(setpriv, ['--pdeathsig', 'KILL', '--', bin, ...args], { stdio }) : spawn(bin, args, { stdio });
    this.child = child;
    let spawnError = '';
    child.on('error', (err) => {
      spawnError = err.message;
      this.exited = { code: -1, signal: null };
    });
    child.on('exit', (code, signal) => {
      this.exited = { code, signal };
    });
    return {
      exitCode: () => (this.exited ? (this.exited.code ?? -1) : null),
      describeExit: () => (this.exited?.signal ? `was killed by ${this.exited.signal}` : `exited with code ${this.exited?.code}`),
      log: () => `${tail(logPath)}${spawnError ? `\n${spawnError}` : ''}`,
    };
  }

  /** Stops the member: SIGTERM, then SIGKILL after 10 s. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      child.kill('SIGTERM');
    });
  }

  removeSync(): void {
    this.child?.kill('SIGKILL');
    rmSync(this.path, { recursive: true, force: true });
  }

  async remove(): Promise<void> {
    await this.stop();
    this.logFd?.close();
    this.logFd = undefined;
    rmSync(this.path, { recursive: true, force: true });
    process.off('exit', this.onExit);
  }
}
