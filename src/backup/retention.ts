import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parseBackupFileName } from './naming.js';

/** Picks the backups to delete so that the newest `keep` of this namespace/workload remain. */
export function selectBackupsToPrune(files: string[], namespace: string, workload: string, keep: number): string[] {
  const ours = files
    .map((file) => ({ file, parsed: parseBackupFileName(file, namespace, workload) }))
    .filter((b): b is { file: string; parsed: { time: Date; revision: number } } => b.parsed !== undefined)
    .sort((a, b) => b.parsed.time.getTime() - a.parsed.time.getTime() || b.parsed.revision - a.parsed.revision);
  return ours.slice(Math.max(0, keep)).map((b) => b.file);
}

/** Deletes older backups (and their .json sidecars) in `dir`, keeping `keep`; returns the deleted file names. */
export async function pruneBackups(dir: string, namespace: string, workload: string, keep: number): Promise<string[]> {
  const victims = selectBackupsToPrune(await readdir(dir), namespace, workload, keep);
  for (const file of victims) {
    await rm(join(dir, file), { force: true });
    await rm(join(dir, `${file}.json`), { force: true });
  }
  return victims;
}
