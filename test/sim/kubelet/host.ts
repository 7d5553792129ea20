// Host command helpers for the simulated kubelet (ip, mount, losetup, mkfs). Nothing here
// differs from a real kubelet's intent; a real one uses syscalls and CRI instead of tools.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Result of a finished host command. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a host command to completion and returns its output; never throws for a non-zero exit. */
export function run(cmd: string, args: string[], input?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, sig) => resolve({ code: code ?? (sig ? 128 : 1), stdout, stderr }));
    child.stdin.end(input);
  });
}

/** Runs a host command and throws with its stderr when it fails. */
export async function must(cmd: string, args: string[], input?: string): Promise<string> {
  const r = await run(cmd, args, input);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

/** Mount points currently listed in /proc/mounts (host mount namespace), octal escapes decoded. */
export function hostMounts(): string[] {
  return readFileSync('/proc/mounts', 'utf8').split('\n').filter(Boolean)
    .map((l) => l.split(' ')[1].replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8))));
}

/** Quotes a string for a POSIX shell. */
export function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
