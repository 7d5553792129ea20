/** What a self-describing backup file name encodes. */
export interface BackupName {
  namespace: string;
  workload: string;
  time: Date;
  revision: number;
}

const PATTERN = /^(.+)-(\d{8}T\d{6}Z)-rev(\d+)\.db$/;

/** Formats a UTC time as YYYYMMDDTHHMMSSZ. */
export function compactUtc(time: Date): string {
  return time.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

/** `<namespace>-<workload>-<YYYYMMDDTHHMMSSZ>-rev<revision>.db` */
export function backupFileName(name: BackupName): string {
  return `${name.namespace}-${name.workload}-${compactUtc(name.time)}-rev${name.revision}.db`;
}

/** The file-name prefix shared by every backup of one namespace/workload. */
export function backupPrefix(namespace: string, workload: string): string {
  return `${namespace}-${workload}-`;
}

/** Parses a file name made by backupFileName for the given namespace/workload; undefined if it is not one. */
export function parseBackupFileName(
  file: string,
  namespace: string,
  workload: string,
): { time: Date; revision: number } | undefined {
  const prefix = backupPrefix(namespace, workload);
  if (!file.startsWith(prefix)) return undefined;
  const m = PATTERN.exec(file);
  if (!m || m[1] !== `${namespace}-${workload}`) return undefined;
  const t = m[2];
  const iso = `${t.slice(0, 4)}-${t.slice(4, 6)}-${t.slice(6, 8)}T${t.slice(9, 11)}:${t.slice(11, 13)}:${t.slice(13, 15)}Z`;
  const time = new Date(iso);
  if (Number.isNaN(time.getTime())) return undefined;
  return { time, revision: Number(m[3]) };
}
