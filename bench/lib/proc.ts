// Running commands for the benchmark: wall time, exit code, output, and the peak RSS of the
// process tree. Peak RSS comes from GNU time (`/usr/bin/time -f %M`, the kernel's ru_maxrss of
// the largest process in the tree, which survives kubectl exec'ing the plugin) when it is
// installed, and otherwise from polling VmHWM in /proc/PID/status for the process and its
// descendants every 20 ms.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** What one run of a command did. */
export interface Measured {
  code: number;
  seconds: number;
  stdout: string;
  stderr: string;
  /** Peak resident set size in MiB of the largest process of the tree (only when asked for). */
  peakRssMiB?: number;
}

/** Options for one run. */
export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  input?: string;
  timeoutMs?: number;
  /** Measure the peak RSS of the process tree. */
  rss?: boolean;
}

const GNU_TIME = '/usr/bin/time';

/** How peak RSS is measured on this machine (for the report). */
export function rssMethod(): string {
  return existsSync(GNU_TIME) ? 'GNU time %M (ru_maxrss of the largest process in the tree)' : 'VmHWM of the process tree polled every 20 ms';
}

/** Runs a command to completion and times it; never throws on a non-zero exit. */
export async function measure(cmd: string, args: string[], opts: RunOptions = {}): Promise<Measured> {
  const useTime = opts.rss === true && existsSync(GNU_TIME);
  const tmp = useTime ? await mkdtemp(join(tmpdir(), 'bench-time-')) : undefined;
  const timeFile = tmp ? join(tmp, 'rss') : undefined;
  const [bin, argv] = timeFile ? [GNU_TIME, ['-f', '%M', '-o', timeFile, cmd, ...args]] : [cmd, args];
  const started = process.hrtime.bigint();
  const child = spawn(bin, argv, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  let polledKiB = 0;
  const poll = opts.rss && !useTime && child.pid ? setInterval(() => { polledKiB = Math.max(polledKiB, treeHwmKiB(child.pid!)); }, 20) : undefined;
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30 * 60_000);
  child.stdin.end(opts.input ?? '');
  const code = await new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c) => resolve(c ?? -1));
  }).finally(() => {
    clearTimeout(timer);
    if (poll) clearInterval(poll);
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  let peakRssMiB: number | undefined;
  if (timeFile) {
    const text = await readFile(timeFile, 'utf8').catch(() => '');
    const kib = Number(text.trim().split('\n').pop());
    if (Number.isFinite(kib) && kib > 0) peakRssMiB = kib / 1024;
    await rm(tmp!, { recursive: true, force: true });
  } else if (opts.rss && polledKiB > 0) peakRssMiB = polledKiB / 1024;
  return { code, seconds, stdout, stderr, peakRssMiB };
}

/** Like measure, but throws with the command's stderr when it fails. */
export async function must(cmd: string, args: string[], opts: RunOptions = {}): Promise<Measured> {
  const r = await measure(cmd, args, opts);
  if (r.code !== 0) {
    const shown = [cmd, ...args].join(' ').replace(/\s*\n\s*/g, '; ').slice(0, 200);
    throw new Error(`\`${shown}\` failed (exit ${r.code}): ${(r.stderr.trim() || r.stdout.trim()).split('\n').slice(-3).join(' | ')}`);
  }
  return r;
}

/** The largest VmHWM (KiB) among pid and its descendants. */
function treeHwmKiB(pid: number): number {
  let max = 0;
  for (const p of [pid, ...descendants(pid)]) {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      if (m) max = Math.max(max, Number(m[1]));
    } catch {
      // gone between listing and reading
    }
  }
  return max;
}

function descendants(pid: number): number[] {
  const out: number[] = [];
  const queue = [pid];
  while (queue.length) {
    const p = queue.shift()!;
    let kids: number[] = [];
    try {
      kids = readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      // gone
    }
    out.push(...kids);
    queue.push(...kids);
  }
  return out;
}
