// Starting and stopping the simulator's component processes (detached, `node --import tsx FILE
// --dir DIR` or the bundle of FILE, see ../bundle.ts; logs in DIR/logs/NAME.log, pid in
// DIR/pids/NAME.pid).
import { spawn } from 'node:child_process';
import { existsSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeArgsFor } from '../bundle.js';

/** The repository root (where node_modules/tsx lives). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** The simulator components in start order, with their entry files. */
export const COMPONENTS = [
  { name: 'apiserver', file: 'test/sim/apiserver/main.ts' },
  { name: 'controller-manager', file: 'test/sim/controllers/main.ts' },
  { name: 'kubelet', file: 'test/sim/kubelet/main.ts' },
] as const;

/** True when the component's entry file exists in this checkout. */
export function componentPresent(file: string): boolean {
  return existsSync(join(REPO_ROOT, file));
}

/** Starts a component detached; returns its pid. */
export function startComponent(dir: string, name: string, file: string): number {
  const log = openSync(join(dir, 'logs', `${name}.log`), 'a');
  const child = spawn(process.execPath, [...nodeArgsFor(REPO_ROOT, file), '--dir', dir], {
    cwd: REPO_ROOT, detached: true, stdio: ['ignore', log, log],
  });
  closeSync(log);
  child.unref();
  if (!child.pid) throw new Error(`could not start ${name}; see ${join(dir, 'logs', `${name}.log`)}`);
  writeFileSync(join(dir, 'pids', `${name}.pid`), `${child.pid}\n`);
  return child.pid;
}

/** The pid of a running component of the cluster in dir, or undefined. */
export function runningPid(dir: string, name: string): number | undefined {
  const file = join(dir, 'pids', `${name}.pid`);
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').trim());
  if (!pid) return undefined;
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (!cmd.includes(dir)) return undefined; // the pid was reused by something else
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (/\) Z /.test(stat)) return undefined;
    return pid;
  } catch {
    return undefined;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** SIGTERMs a component, waits up to graceMs, then SIGKILLs its process group; true if it had to be killed. */
export async function stopComponent(dir: string, name: string, graceMs: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<boolean> {
  const pid = runningPid(dir, name);
  const pidFile = join(dir, 'pids', `${name}.pid`);
  if (!pid) { rmSync(pidFile, { force: true }); return false; }
  try { process.kill(pid, signal); } catch { /* already gone */ }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && runningPid(dir, name)) await sleep(100);
  let killed = false;
  if (runningPid(dir, name)) {
    killed = true;
    try { process.kill(-pid, 'SIGKILL'); } catch { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    for (let i = 0; i < 50 && runningPid(dir, name); i++) await sleep(100);
  }
  rmSync(pidFile, { force: true });
  return killed;
}

/** Processes still running whose command line mentions dir (leftovers after down). */
export function processesMentioning(dir: string): { pid: number; cmd: string }[] {
  const out: { pid: number; cmd: string }[] = [];
  const mine = ancestors();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || mine.has(Number(entry))) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim();
      if (cmd.includes(dir) && !/\) Z /.test(readFileSync(`/proc/${entry}/stat`, 'utf8'))) out.push({ pid: Number(entry), cmd });
    } catch { /* exited */ }
  }
  return out;
}

function ancestors(): Set<number> {
  const out = new Set<number>();
  let pid = process.pid;
  while (pid > 1 && !out.has(pid)) {
    out.add(pid);
    try { pid = Number(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')[1]); } catch { break; }
  }
  return out;
}

/** Mount points under dir still mounted. */
export function mountsUnder(dir: string): string[] {
  try {
    return readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1]).filter((m) => m && m.startsWith(dir));
  } catch {
    return [];
  }
}
