import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PluginError } from '../errors.js';
import { parseBackupFileName } from './naming.js';
import { MAX_SIDECAR_BYTES, ownerOfRecord, readSidecarOwner, type BackupOwner } from './record.js';
import { s3Url, type ObjectStore } from '../storage/location.js';

/**
 * Picks the backups to delete so that the newest `keep` of this namespace/workload remain.
 * A file name alone is not proof of ownership (`uc1` + `kube-etcd` and `uc1-kube` + `etcd` share
 * the stem `uc1-kube-etcd`, and so do workloads that differ only in characters fileSafe replaces):
 * only files whose sidecar names exactly this namespace and workload count; files without a
 * readable sidecar are never touched.
 */
export function selectBackupsToPrune(
  files: string[],
  ownerOf: (file: string) => BackupOwner | undefined,
  namespace: string,
  workload: string,
  keep: number,
): string[] {
  const ours = files
    .map((file) => ({ file, parsed: parseBackupFileName(file, namespace, workload) }))
    .filter((b): b is { file: string; parsed: { time: Date; revision?: number } } => b.parsed !== undefined)
    .filter((b) => {
      const owner = ownerOf(b.file);
      return owner?.namespace === namespace && owner.workload === workload;
    })
    .sort((a, b) => b.parsed.time.getTime() - a.parsed.time.getTime() || (b.parsed.revision ?? 0) - (a.parsed.revision ?? 0));
  return ours.slice(Math.max(0, keep)).map((b) => b.file);
}

/** Deletes older backups (and their .json sidecars) of this namespace/workload in `dir`, keeping `keep`; returns the deleted file names. */
export async function pruneBackups(dir: string, namespace: string, workload: string, keep: number): Promise<string[]> {
  let files: string[];
  try {
    files = await readdir(dir);
  } catch (err) {
    throw new PluginError(`cannot list "${dir}" to prune old backups: ${codeOf(err)}`, 'the new backup is saved; check the directory, or drop --keep');
  }
  const owners = new Map<string, BackupOwner | undefined>();
  for (const file of files) {
    if (parseBackupFileName(file, namespace, workload)) owners.set(file, await readSidecarOwner(join(dir, `${file}.json`)));
  }
  const victims = selectBackupsToPrune(files, (f) => owners.get(f), namespace, workload, keep);
  for (const file of victims) {
    for (const path of [join(dir, file), join(dir, `${file}.json`)]) {
      try {
        await rm(path, { force: true });
      } catch (err) {
        throw new PluginError(`cannot remove old backup "${path}": ${codeOf(err)}`, 'the new backup is saved; remove old ones by hand, or check the permissions of the directory');
      }
    }
  }
  return victims;
}

function codeOf(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
}

/**
 * --to s3://… --keep N: deletes older backups (and their `.json` records) of this
 * namespace/workload directly under `folder`, as pruneBackups does in a directory: only objects
 * whose record names this workload; returns the deleted keys.
 */
export async function pruneStoredBackups(store: ObjectStore, folder: string, namespace: string, workload: string, keep: number, justWritten?: string): Promise<string[]> {
  const saved = 'the new backup is saved; check that the credentials may list, read and delete objects there, or drop --keep';
  let victims: string[];
  try {
    const objects = await store.list(folder);
    const names = objects.map((o) => o.key.slice(folder.length));
    const owners = new Map<string, BackupOwner | undefined>();
    for (const name of names) {
      if (!parseBackupFileName(name, namespace, workload)) continue;
      const text = await store.getText(`${folder}${name}.json`, MAX_SIDECAR_BYTES);
      owners.set(name, text === undefined ? undefined : ownerOfRecord(text));
    }
    // Never the backup just written (a clock behind another writer's could make its name the oldest).
    victims = selectBackupsToPrune(names, (f) => owners.get(f), namespace, workload, keep).filter((v) => `${folder}${v}` !== justWritten);
  } catch (err) {
    throw new PluginError(`cannot list old backups in ${s3Url(store.bucket, folder)} to prune them: ${(err as Error).message}`, saved);
  }
  if (!victims.length) return [];
  try {
    // The snapshots first: a record left without its snapshot is harmless, a snapshot without its record is never pruned.
    await store.delete(victims.map((v) => `${folder}${v}`));
    await store.delete(victims.map((v) => `${folder}${v}.json`));
  } catch (err) {
    throw new PluginError(`cannot remove old backups in ${s3Url(store.bucket, folder)}: ${(err as Error).message}`, 'the new backup is saved; check that the credentials may delete objects, or drop --keep');
  }
  return victims.map((v) => s3Url(store.bucket, `${folder}${v}`));
}
