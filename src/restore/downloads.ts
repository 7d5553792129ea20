/**
 * A backup downloaded for a restore (`restore s3://…`, `restore --from-schedule`) is a copy of
 * every Secret of the cluster on this machine. Such copies live in `<state>/downloads` (the
 * plugin's own folder: every file in it is one of them) and stay only while something needs them:
 * - a restore journal in the state dir names it (`--resume` reads it again), or
 * - a running restore holds a lease on it: `<copy>.lease-<pid>`, taken before the copy is made or
 *   reused (storage/fetch.ts) and given back when the restore ends.
 * When a restore ends (verified, rolled back, refused before its first change, a dry run, or
 * failed) it gives back its lease and removes every copy nothing needs — its own, and any an
 * interrupted restore left (Ctrl-C at the prompt, a kill: their pids are gone). The original is
 * still where it came from.
 */
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pidAlive } from '../crypt/plaintext.js';
import type { Logger } from '../ui/log.js';
import { isJournalFileName } from './journal-find.js';

const LEASE = /^(.*)\.lease-(\d+)$/;

/** `<stateDir>/downloads`. */
export function downloadsDirOf(stateDir: string): string {
  return join(stateDir, 'downloads');
}

/** Takes this process's lease on a copy (before it is made or reused). */
export async function leaseDownload(copy: string): Promise<void> {
  await writeFile(`${copy}.lease-${process.pid}`, '', { mode: 0o600 });
}

/** Another live restore (ours are given back by the caller). */
function alive(pid: number): boolean {
  return pid !== process.pid && pidAlive(pid);
}

/** The snapshot paths the restore journals in the state dir name (every namespace; the journal's and its plan's). */
async function journalSnapshots(stateDir: string): Promise<Set<string>> {
  const paths = new Set<string>();
  for (const f of await readdir(stateDir)) {
    if (!isJournalFileName(f)) continue;
    const state = JSON.parse(await readFile(join(stateDir, f), 'utf8')) as { snapshot?: { path?: unknown }; plan?: { snapshot?: { path?: unknown } } };
    for (const p of [state.snapshot?.path, state.plan?.snapshot?.path]) if (typeof p === 'string') paths.add(resolve(p));
  }
  return paths;
}

/**
 * Gives back this process's leases and removes every downloaded copy that no journal names and no
 * live restore holds. Returns the copies removed, and a warning when it could not tell (a journal
 * it cannot read keeps every copy).
 */
export async function sweepDownloads(stateDir: string): Promise<{ removed: string[]; warning?: string }> {
  const dir = downloadsDirOf(stateDir);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return { removed: [] };
  }
  const held = new Set<string>();
  for (const n of names) {
    const m = LEASE.exec(n);
    if (!m) continue;
    if (alive(Number(m[2]))) held.add(m[1]!);
    else await rm(join(dir, n), { force: true });
  }
  let named: Set<string>;
  try {
    named = await journalSnapshots(stateDir);
  } catch (err) {
    return { removed: [], warning: `downloaded copies in "${dir}" are kept: a restore journal in "${stateDir}" cannot be read (${(err as Error).message}); remove them by hand once no restore needs them` };
  }
  const removed: string[] = [];
  for (const n of names) {
    if (LEASE.test(n) || held.has(n)) continue;
    const path = join(dir, n);
    if (named.has(resolve(path))) continue;
    try {
      await rm(path, { force: true });
      removed.push(path);
    } catch (err) {
      return { removed, warning: `cannot remove the downloaded copy "${path}" (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): remove it by hand` };
    }
  }
  return { removed };
}

/**
 * Runs a restore command (its download included), then removes the downloaded copies (every
 * Secret) that no journal and no running restore needs (downloads.ts), however it ended.
 */
export async function withDownloadsSwept(stateDir: string, log: Pick<Logger, 'info' | 'warn'>, run: () => Promise<void>): Promise<void> {
  try {
    await run();
  } finally {
    const swept = await sweepDownloads(stateDir).catch((err: Error) => ({ removed: [] as string[], warning: `downloaded copies were not checked: ${err.message}` }));
    for (const path of swept.removed) log.info(`removed the downloaded copy "${path}" (the backup itself is where it was)`);
    if (swept.warning) log.warn(swept.warning);
  }
}
