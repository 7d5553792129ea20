import { compactUtc } from '../ui/time.js';

/** What a self-describing backup file name encodes. */
export interface BackupName {
  namespace: string;
  workload: string;
  time: Date;
  revision: number;
}

/**
 * `.db`, or `.db.age` for an age-encrypted backup. Backups streamed to object storage have no
 * `-rev<N>`: their name is fixed before the first byte, and the revision is known only once the
 * snapshot is read; their record holds it.
 */
const PATTERN = /^(.+)-(\d{8}T\d{6}Z)(?:-rev(\d+))?\.db(?:\.age)?$/;


/**
 * A workload name made safe for a file name: static pods are named by their label selector
 * (`component=etcd,tier=control-plane`), whose `=`, `,` and `!` would need quoting in a shell.
 */
export function fileSafe(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '') || 'etcd';
}

/**
 * `<namespace>-<workload>`, the stem every backup file name of one workload starts with. Readable,
 * not unique: `uc1`/`kube-etcd` and `uc1-kube`/`etcd` share it, so ownership (for --keep) is
 * decided by the sidecar, never by the name alone (see retention.ts).
 */
export function backupStem(namespace: string, workload: string): string {
  return `${namespace}-${fileSafe(workload)}`;
}

/** `<namespace>-<workload>-<YYYYMMDDTHHMMSSZ>-rev<revision>.db` */
export function backupFileName(name: BackupName): string {
  return `${backupStem(name.namespace, name.workload)}-${compactUtc(name.time)}-rev${name.revision}.db`;
}

/** `<namespace>-<workload>-<YYYYMMDDTHHMMSSZ>.db`: the name of a backup streamed to object storage. */
export function streamedBackupName(namespace: string, workload: string, time: Date): string {
  return `${backupStem(namespace, workload)}-${compactUtc(time)}.db`;
}

/** The file-name prefix shared by every backup of one namespace/workload. */
export function backupPrefix(namespace: string, workload: string): string {
  return `${backupStem(namespace, workload)}-`;
}

/** Parses a file name made by backupFileName for the given namespace/workload; undefined if it is not one. */
export function parseBackupFileName(
  file: string,
  namespace: string,
  workload: string,
): { time: Date; revision?: number } | undefined {
  const prefix = backupPrefix(namespace, workload);
  if (!file.startsWith(prefix)) return undefined;
  const m = PATTERN.exec(file);
  if (!m || m[1] !== backupStem(namespace, workload)) return undefined;
  const t = m[2];
  const iso = `${t.slice(0, 4)}-${t.slice(4, 6)}-${t.slice(6, 8)}T${t.slice(9, 11)}:${t.slice(11, 13)}:${t.slice(13, 15)}Z`;
  const time = new Date(iso);
  if (Number.isNaN(time.getTime())) return undefined;
  return { time, ...(m[3] !== undefined ? { revision: Number(m[3]) } : {}) };
}

/** The time and revision in any backup name (whatever its workload); undefined for other names. */
export function parseAnyBackupName(file: string): { stem: string; time: Date; revision?: number } | undefined {
  const m = PATTERN.exec(file);
  if (!m) return undefined;
  const t = m[2]!;
  const time = new Date(`${t.slice(0, 4)}-${t.slice(4, 6)}-${t.slice(6, 8)}T${t.slice(9, 11)}:${t.slice(11, 13)}:${t.slice(13, 15)}Z`);
  if (Number.isNaN(time.getTime())) return undefined;
  return { stem: m[1]!, time, ...(m[3] !== undefined ? { revision: Number(m[3]) } : {}) };
}
