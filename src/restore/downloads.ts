/**
 * A backup downloaded for a restore (`restore s3://…`, `restore --from-schedule`) is a copy of
 * every Secret of the cluster on this machine: it stays in `<state>/downloads` only while a
 * restore journal names it (`--resume` reads it again), and goes when the restore ends — verified,
 * rolled back, refused before its first change, or a dry run. The original is still where it came
 * from. A local file the user named is never touched.
 */
import { readdir, readFile, rm } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';

/** Whether path is a file in `<stateDir>/downloads`. */
export function isDownloadedCopy(stateDir: string, path: string): boolean {
  const rel = relative(resolve(stateDir, 'downloads'), resolve(path));
  return rel !== '' && !rel.startsWith('..') && !rel.includes(sep);
}

/** The snapshot paths the restore journals in the state dir name (every namespace). */
async function journalSnapshots(stateDir: string): Promise<Set<string>> {
  const paths = new Set<string>();
  for (const f of await readdir(stateDir)) {
    if (!/^restore-.*\.json(\.tmp)?$/.test(f)) continue;
    const state = JSON.parse(await readFile(join(stateDir, f), 'utf8')) as { snapshot?: { path?: unknown } };
    if (typeof state.snapshot?.path === 'string') paths.add(resolve(state.snapshot.path));
  }
  return paths;
}

/**
 * Removes the downloaded copy at path unless a journal still names it; returns whether it did.
 * When the journals cannot be read the copy stays (a restore may need it).
 */
export async function dropDownloadedCopy(stateDir: string, path: string | undefined): Promise<boolean> {
  if (!path || !isDownloadedCopy(stateDir, path)) return false;
  try {
    if ((await journalSnapshots(stateDir)).has(resolve(path))) return false;
  } catch {
    return false;
  }
  await rm(path, { force: true });
  return true;
}
