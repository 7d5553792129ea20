// Test harness for the local test cluster: start one through the same `sim` CLI users run, run
// real kubectl against it, and stop it. Also the prerequisite checks e2e tests start with.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './apiserver/procs.js';
import { nodeArgsFor } from './bundle.js';

/** What a finished command printed and its exit code. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options for one kubectl run. */
export interface KubectlOptions {
  /** kubectl binary (default `kubectl`, e.g. /usr/lib/google-cloud-sdk/bin/kubectl.1.30). */
  bin?: string;
  /** Kubeconfig to use instead of the admin one. */
  kubeconfig?: string;
  /** Text for stdin. */
  input?: string;
  timeoutMs?: number;
}

/** A running cluster for a test. */
export interface SimCluster {
  dir: string;
  kubeconfig: string;
  kubectl(args: string[], opts?: KubectlOptions): Promise<CommandResult>;
  /** Runs `npm run sim -- ARGS` against this cluster's DIR (e.g. ['fault', 'restart-apiserver']). */
  sim(args: string[]): Promise<CommandResult>;
  down(): Promise<void>;
}

/** Runs a command to completion, never throwing on a non-zero exit. */
export function run(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: REPO_ROOT, env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', (err) => { clearTimeout(timer); reject(err); });
    child.on('close', (code) => { clearTimeout(timer); resolve({ code: code ?? -1, stdout, stderr }); });
    child.stdin.on('error', () => { /* the command exited without reading its input (EPIPE): its exit code tells */ });
    child.stdin.end(opts.input ?? '');
  });
}

function simCli(args: string[], timeoutMs = 300_000): Promise<CommandResult> {
  return run(process.execPath, [...nodeArgsFor(REPO_ROOT, 'test/sim/cli.ts'), ...args], { timeoutMs });
}

/** Throws a clear error unless this process is root and can create mount and network namespaces. */
export function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new Error('the local test cluster needs root (mount and network namespaces); run the tests as root');
  try {
    execFileSync('unshare', ['--mount', '--net', 'true'], { stdio: 'pipe' });
  } catch (err) {
    throw new Error(`cannot create mount and network namespaces (${(err as Error).message.split('\n')[0]}); run the tests as root on a host that allows unshare (install util-linux)`);
  }
}

/** Throws a clear error when a program the tests need is not installed. */
export function requireCommand(bin: string, hint: string): void {
  const found = bin.includes('/') ? existsSync(bin) : (() => {
    try { execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'pipe' }); return true; } catch { return false; }
  })();
  if (!found) throw new Error(`"${bin}" is not installed; ${hint}`);
}

/** Starts a cluster in a fresh temporary DIR with `sim up`; throws with the CLI's output when it fails. */
export async function startCluster(opts: { fixtures?: string[]; nodes?: number; hostnameLabels?: 'name' | 'differ'; serverVersion?: '1.32' | '1.35'; etcd?: string } = {}): Promise<SimCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'sim-'));
  const args = ['up', '--dir', dir, ...(opts.fixtures ?? []).flatMap((f) => ['--fixture', f]), ...(opts.nodes ? ['--nodes', String(opts.nodes)] : []),
    ...(opts.etcd ? ['--etcd', opts.etcd] : []),
    ...(opts.hostnameLabels ? ['--hostname-labels', opts.hostnameLabels] : []),
    ...(opts.serverVersion ? ['--server-version', opts.serverVersion] : [])];
  const up = await simCli(args);
  const kubeconfig = join(dir, 'kubeconfig');
  const cluster: SimCluster = {
    dir,
    kubeconfig,
    kubectl: (kargs, kopts = {}) => run(kopts.bin ?? 'kubectl', ['--kubeconfig', kopts.kubeconfig ?? kubeconfig, ...kargs],
      { input: kopts.input, timeoutMs: kopts.timeoutMs }),
    sim: (sargs) => simCli([sargs[0], '--dir', dir, ...sargs.slice(1)]),
    down: async () => {
      const r = await simCli(['down', '--dir', dir]);
      if (r.code !== 0) throw new Error(`sim down failed: ${r.stderr.trim() || r.stdout.trim()}`);
      // SIM_KEEP=1 keeps the cluster's directory (logs, audit log, state) to read after a failure.
      if (!process.env['SIM_KEEP']) rmSync(dir, { recursive: true, force: true });
    },
  };
  if (up.code !== 0) {
    await simCli(['down', '--dir', dir]).catch(() => undefined);
    throw new Error(`sim up failed (exit ${up.code}): ${up.stderr.trim() || up.stdout.trim()}`);
  }
  return cluster;
}


/** Asserts a command succeeded, showing its stderr when it did not; returns stdout. */
export function ok(r: CommandResult): string {
  if (r.code !== 0) throw new Error(`command failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

/** The kubectl binaries the conformance tests run, by version. */
export const KUBECTLS: [string, string][] = [
  ['1.32', 'kubectl'],
  ['1.30', '/usr/lib/google-cloud-sdk/bin/kubectl.1.30'],
];

/** Starts cmd and resolves with its stdout once it matches re (then kills it), or rejects after timeoutMs. */
export function runUntil(cmd: string, args: string[], re: RegExp, timeoutMs = 30_000): { started: Promise<void>; done: Promise<string> } {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let startedResolve: () => void;
  const started = new Promise<void>((r) => { startedResolve = r; });
  const done = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`no match for ${re} within ${timeoutMs} ms; stdout: ${out}; stderr: ${err}`)); }, timeoutMs);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      startedResolve();
      if (re.test(out)) { clearTimeout(timer); child.kill('SIGTERM'); resolve(out); }
    });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('close', (code) => { clearTimeout(timer); if (!re.test(out)) reject(new Error(`exited ${code} before matching ${re}; stdout: ${out}; stderr: ${err}`)); });
  });
  done.catch(() => undefined); // a test that failed before awaiting `done` must not also get an unhandled rejection
  return { started, done };
}

/**
 * An e2e file's afterAll: clears injected faults (when asked), takes the cluster down and removes
 * the file's work dir. Either may be missing when beforeAll failed early.
 */
export async function teardown(cluster: SimCluster | undefined, work: string | undefined, opts: { clearFaults?: boolean } = {}): Promise<void> {
  if (opts.clearFaults) await cluster?.sim(['fault', 'clear']).catch(() => undefined);
  await cluster?.down();
  if (work) await rm(work, { recursive: true, force: true });
}

/** Polls until check() returns a value (not undefined); fails with the last error after timeoutMs. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60_000, pollMs = 300): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}
