/**
 * A restore drill on this machine: the snapshot is restored with the etcd release's own tool into
 * a private directory of the state dir (0700), a one-member etcd is started on it with its client
 * and peer listeners as unix sockets in that directory (so no other user of the machine can read
 * the cluster's Secrets from it), and what the member serves (revision, key count, HashKV and its
 * compaction revision) is compared with what was read offline from the file.
 * The directory is removed on every way out (return, error, SIGINT/SIGTERM, SIGHUP/SIGQUIT, exit),
 * the member and the restore tool killed first; after a SIGKILL the member dies with this process
 * (setpriv --pdeathsig, where setpriv has it) and the next run that uses the state dir removes the
 * directory (sweepStalePlaintext).
 * A snapshot the tool or etcd refuses, or whose numbers differ, is a failed drill (exit 3, recorded);
 * a machine that cannot run the drill (no space, no permission, killed, too slow) is an error
 * (exit 1, nothing recorded).
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Etcd3, type IHashKVRequest, type IHashKVResponse } from 'etcd3';
import { guardSignals } from '../backup/signals.js';
import { hostTag, plaintextDir, sweepStalePlaintext, trackTemporary } from '../crypt/plaintext.js';
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
  /** On this machine, or in a throwaway pod of the cluster (pod-drill.ts: then its name, namespace and image). */
  where: 'local' | 'pod';
  pod?: string;
  namespace?: string;
  image?: string;
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

/**
 * A drill the pod of a scheduled backup ran before it saved the backup (`schedule create
 * --verify-restore`, schedule/script.ts): etcd started on the restored snapshot, its revision
 * checked against what `snapshot status` read; it has no offline KV hash to compare with, so it
 * records what etcd served. Only passed drills are recorded: a failed one fails the run.
 */
export interface PodDrillReport {
  at: string;
  where: 'schedule';
  etcdVersion?: string;
  restoredWith: string;
  startedInMs?: number;
  expectedRevision: number;
  served: Served;
  outcome: 'passed';
}

/** Inputs of a local drill. */
export interface LocalDrillOptions {
  /** The plaintext snapshot file. */
  snapshot: string;
  /** A raw bbolt file (no sha256 trailer) needs `--skip-hash-check`. */
  skipHashCheck: boolean;
  stateDir: string;
  tools: LocalEtcdTools;
  /** What inspect read offline, hashed by the rules of tools.version. */
  expected: KvHash;
  /** Progress lines for stderr. */
  log(line: string): void;
  /** How long the member may take to answer (default 120 s). */
  startTimeoutMs?: number;
  now?: () => Date;
}

const MEMBER = 'drill';
// Relative to the member's working directory (the drill's directory): etcd takes a unix URL's host as the socket's path.
const CLIENT_SOCKET = 'client.sock:0';
const PEER_URL = 'unix://peer.sock:0';
// A unix socket's path must fit sockaddr_un.sun_path (108 bytes on Linux, 104 on macOS, with its NUL).
const MAX_SOCKET_PATH = 100;

/** Restores and starts the snapshot with local etcd, compares, cleans up; a refused snapshot is a failed report, a broken machine an error. */
export async function runLocalDrill(opts: LocalDrillOptions): Promise<DrillReport> {
  const now = opts.now ?? (() => new Date());
  const base = { at: now().toISOString(), where: 'local' as const, etcdVersion: opts.tools.version, restoredWith: `${opts.tools.restore.kind} ${opts.tools.version}`, expected: opts.expected };
  const work = new DrillWorkDir(opts.stateDir);
  const guard = guardSignals(process, () => work.removeSync());
  try {
    const socket = join(work.path, CLIENT_SOCKET);
    if (socket.length > MAX_SOCKET_PATH) {
      throw new PluginError(`the drill's socket path would be ${socket.length} characters, more than a unix socket takes (${MAX_SOCKET_PATH})`, 'pass a shorter --state-dir');
    }
    const data = join(work.path, 'data');
    opts.log(`restoring with ${opts.tools.restore.path} into a private directory of the state dir`);
    const refused = await restoreInto(opts, data, guard.signal);
    if (refused !== undefined) return { ...base, outcome: 'failed', reason: refused };
    opts.log(`starting ${opts.tools.etcd} (etcd ${opts.tools.version}) on a unix socket in that directory`);
    const member = work.start(opts.tools.etcd, [
      '--name', MEMBER, '--data-dir', data,
      '--listen-client-urls', `unix://${CLIENT_SOCKET}`, '--advertise-client-urls', `unix://${CLIENT_SOCKET}`,
      '--listen-peer-urls', PEER_URL, '--initial-advertise-peer-urls', PEER_URL, '--initial-cluster', `${MEMBER}=${PEER_URL}`,
      '--log-outputs', 'stderr',
    ]);
    const endpoint = `unix://${socket}`;
    const started = Date.now();
    const refusedToStart = await firstAnswer(endpoint, member, opts.startTimeoutMs ?? 120_000, guard.signal);
    if (refusedToStart !== undefined) return { ...base, outcome: 'failed', reason: refusedToStart };
    const startedInMs = Date.now() - started;
    opts.log(`etcd answered after ${(startedInMs / 1000).toFixed(1)} s; comparing what it serves`);
    const served = await query(endpoint, opts.expected);
    guard.signal.throwIfAborted();
    const mismatch = compare(opts.expected, served);
    return { ...base, startedInMs, served, outcome: mismatch ? 'failed' : 'passed', ...(mismatch ? { reason: mismatch } : {}) };
  } catch (err) {
    // A signal killed the member or the tool under a call: report the interruption, not the broken call.
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

/** What in a log says the machine, not the snapshot, stopped the tool or the member. */
export const MACHINE_TROUBLE = /no space left on device|permission denied|read-only file system|cannot allocate memory|too many open files|disk quota exceeded/i;

/** The environment of the tool and the member: none of the operator's ETCD_* / ETCDCTL_* settings (they would change the member). */
function drillEnv(): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ETCD_') && !k.startsWith('ETCDCTL_')));
  return { ...env, ETCDCTL_API: '3' };
}

/** Runs `snapshot restore`; returns why the tool refused the snapshot, or undefined when it restored. */
async function restoreInto(opts: LocalDrillOptions, data: string, signal: AbortSignal): Promise<string | undefined> {
  const { kind, path } = opts.tools.restore;
  const args = ['snapshot', 'restore', opts.snapshot, '--data-dir', data, '--name', MEMBER, '--initial-cluster', `${MEMBER}=${PEER_URL}`, '--initial-advertise-peer-urls', PEER_URL];
  if (opts.skipHashCheck) args.push('--skip-hash-check');
  return new Promise((resolve, reject) => {
    execFile(path, args, { env: drillEnv(), maxBuffer: 4 << 20, signal }, (err, _stdout, stderr) => {
      if (!err) return resolve(undefined);
      if (signal.aborted) return reject(signal.reason);
      if (typeof err.code === 'string') return reject(new PluginError(`cannot run ${path}: ${err.code}`, 'pass a working etcd with --etcd'));
      const line = failureLine(stderr);
      if (err.signal) return reject(new PluginError(`${kind} snapshot restore was killed by ${err.signal} (out of memory?)`, 'run the drill where there is more memory'));
      if (MACHINE_TROUBLE.test(stderr)) return reject(new PluginError(`${kind} snapshot restore could not write the drill's data: ${line}`, 'free space in the state dir, or pass another --state-dir'));
      resolve(`${kind} snapshot restore refused the snapshot: ${line}`);
    });
  });
}

/** Waits for the member's first answer; returns why etcd refused the data when it exited, undefined when it answers. */
async function firstAnswer(endpoint: string, member: RunningMember, timeoutMs: number, signal: AbortSignal): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  const client = new Etcd3({ hosts: endpoint, dialTimeout: 1000 });
  try {
    while (Date.now() < deadline) {
      signal.throwIfAborted();
      const exit = member.exit();
      if (exit) {
        const log = member.log();
        const line = failureLine(log);
        if (exit.spawnError) throw new PluginError(`cannot start ${exit.spawnError}`, 'pass a working etcd with --etcd');
        if (exit.signal) throw new PluginError(`the drill's etcd was killed by ${exit.signal} (out of memory?): ${line}`, 'run the drill where there is more memory');
        if (MACHINE_TROUBLE.test(log)) throw new PluginError(`the drill's etcd could not use its data: ${line}`, 'free space in the state dir, or pass another --state-dir');
        return `etcd exited with code ${exit.code} on the restored data: ${line}`;
      }
      try {
        await client.maintenance.status();
        return undefined;
      } catch {
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    throw new PluginError(`the drill's etcd did not answer within ${Math.round(timeoutMs / 1000)} s: ${failureLine(member.log())}`, 'run the drill again on a less busy machine');
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

let pdeathsig: string | null | undefined;

/** setpriv when it can set the parent-death signal (util-linux 2.33+), else null. */
function setprivWithPdeathsig(): string | null {
  if (pdeathsig !== undefined) return pdeathsig;
  const setpriv = onPath('setpriv');
  pdeathsig = null;
  if (setpriv) {
    try {
      if (execFileSync(setpriv, ['--help'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).includes('--pdeathsig')) pdeathsig = setpriv;
    } catch {
      // no usable setpriv
    }
  }
  return pdeathsig;
}

/** How a member process ended. */
interface MemberExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  spawnError?: string;
}

/** A member process of the drill. */
interface RunningMember {
  exit(): MemberExit | undefined;
  log(): string;
}

/**
 * The drill's directory `<state>/tmp/drill-<host>_<pid>-<random>` (0700) and its member: removed,
 * the member killed, on every way out; synchronously when the process exits or is signalled.
 */
class DrillWorkDir {
  readonly path: string;
  private child: ChildProcess | undefined;
  private logFd: number | undefined;
  private readonly untrack: () => void;

  constructor(stateDir: string) {
    const dir = plaintextDir(stateDir);
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      sweepStalePlaintext(dir);
      this.path = join(dir, `drill-${hostTag()}_${process.pid}-${randomBytes(6).toString('hex')}`);
      mkdirSync(this.path, { mode: 0o700 });
    } catch (err) {
      throw new PluginError(`cannot create the drill's directory in "${dir}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'pass a --state-dir you can write to');
    }
    this.untrack = trackTemporary(this.path, () => this.child?.kill('SIGKILL'));
  }

  /**
   * Starts the member in the directory, its log in a file there, not a pipe: a member writing to a
   * pipe whose reader died would die of SIGPIPE only when it next logs, which an idle one may not.
   */
  start(bin: string, args: string[]): RunningMember {
    const logPath = join(this.path, 'etcd.log');
    this.logFd = openSync(logPath, 'w', 0o600);
    const options = { cwd: this.path, env: drillEnv(), stdio: ['ignore', 'ignore', this.logFd] as ['ignore', 'ignore', number] };
    const setpriv = setprivWithPdeathsig();
    const child = setpriv ? spawn(setpriv, ['--pdeathsig', 'KILL', '--', bin, ...args], options) : spawn(bin, args, options);
    this.child = child;
    let ended: MemberExit | undefined;
    child.on('error', (err) => {
      ended = { code: null, signal: null, spawnError: `${bin}: ${err.message}` };
    });
    child.on('exit', (code, signal) => {
      ended ??= { code, signal };
    });
    return { exit: () => ended, log: () => tail(logPath) };
  }

  /** Stops the member: SIGTERM, then SIGKILL after 10 s. */
  private async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    await new Promise<void>((resolve) => {
      const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      child.kill('SIGTERM');
    });
  }

  /** Kills the member, then removes the directory (retried: a member that has not died yet may still add a file). */
  removeSync(): void {
    this.child?.kill('SIGKILL');
    rmSync(this.path, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 });
  }

  async remove(): Promise<void> {
    await this.stop();
    if (this.logFd !== undefined) closeSync(this.logFd);
    this.logFd = undefined;
    rmSync(this.path, { recursive: true, force: true });
    this.untrack();
  }
}
