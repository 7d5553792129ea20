/**
 * `kubectl etcd snapshots list LOCATION`: the backups in a directory (--dir) or under an s3://
 * prefix (--to), newest first, with what their records say. A file or object that looks like a
 * backup but has no record is listed as such (prune never touches it).
 */
import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { PluginError, UsageError } from '../errors.js';
import { parseAnyBackupName } from '../backup/naming.js';
import { MAX_SIDECAR_BYTES, readSidecarText, type BackupRecord } from '../backup/record.js';
import { asFolder, isS3Url, parseEndpoint, parseS3Url, s3Url } from '../storage/location.js';
import { formatBytes } from '../ui/bytes.js';
import { formatRecord, parseOutputFormat } from '../ui/format.js';
import { renderTable } from '../ui/table.js';
import type { GlobalKubeOptions } from './kubeflags.js';

/** One backup in a listing. */
interface ListedBackup {
  /** The file path or s3:// URL. */
  location: string;
  name: string;
  time: string;
  size: number;
  record?: BackupRecord;
}

interface Found {
  name: string;
  size: number;
  readRecord(): Promise<string | undefined>;
}

/** Backups among the found names (records beside them are not listed themselves), newest first. */
async function listBackups(found: Found[], where: (name: string) => string): Promise<ListedBackup[]> {
  const out: Array<ListedBackup & { at: number }> = [];
  for (const f of found) {
    const parsed = parseAnyBackupName(f.name);
    if (!parsed) continue;
    let record: BackupRecord | undefined;
    const text = await f.readRecord();
    try {
      const r = text === undefined ? undefined : (JSON.parse(text) as BackupRecord);
      if (r && typeof r.namespace === 'string' && typeof r.workload === 'string') record = r;
    } catch {
      record = undefined;
    }
    out.push({ location: where(f.name), name: f.name, time: parsed.time.toISOString(), size: f.size, ...(record ? { record } : {}), at: parsed.time.getTime() });
  }
  return out.sort((a, b) => b.at - a.at || b.name.localeCompare(a.name)).map(({ at: _at, ...b }) => b);
}

async function listDir(dir: string): Promise<ListedBackup[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    throw new PluginError(`cannot list "${dir}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'pass a directory of backups (kubectl etcd backup --dir)');
  }
  const found: Found[] = [];
  for (const name of names) {
    if (!parseAnyBackupName(name)) continue;
    const st = await stat(join(dir, name)).catch(() => undefined);
    if (!st?.isFile()) continue;
    found.push({
      name, size: st.size,
      readRecord: () => readSidecarText(join(dir, `${name}.json`)).catch(() => undefined),
    });
  }
  return listBackups(found, (n) => join(dir, n));
}

async function listStore(url: string, endpoint: string | undefined): Promise<ListedBackup[]> {
  const { bucket, key } = parseS3Url(url);
  const folder = asFolder(key);
  const { openS3Store } = await import('../storage/s3.js');
  const store = await openS3Store({ bucket, ...(endpoint ? { endpoint } : {}) });
  const objects = await store.list(folder);
  const found = objects.map((o) => ({ name: o.key.slice(folder.length), size: o.size, readRecord: () => store.getText(`${o.key}.json`, MAX_SIDECAR_BYTES) }));
  return listBackups(found, (n) => s3Url(bucket, `${folder}${n}`));
}

/** The table `snapshots list` prints. */
function renderBackups(rows: ListedBackup[]): string {
  if (!rows.length) return '';
  return renderTable(
    ['NAME', 'TIME', 'WORKLOAD', 'REVISION', 'KEYS', 'SIZE', 'ENCRYPTED', 'VERIFIED', 'LAST DRILL'],
    rows.map((b) => {
      const r = b.record;
      const v = r?.verified;
      const checks = !r ? 'no record' : v ? [v.size && 'size', v.sha256Trailer && 'trailer', v.bbolt && 'bbolt', v.decrypts && 'decrypts'].filter(Boolean).join('+') || 'none' : '?';
      const drill = Array.isArray(r?.drills) ? r.drills.at(-1) : undefined;
      return [
        b.name, b.time, r ? `${r.namespace}/${r.workload}` : '?', String(r?.revision ?? '?'), String(r?.totalKeys ?? '?'),
        formatBytes(b.size), r?.encryption ? 'age' : r ? 'no' : '?', checks,
        drill ? `${drill.outcome === 'passed' ? 'passed' : 'FAILED'} ${drill.at}` : r ? 'none' : '?',
      ];
    }),
  );
}

/** The backups on a schedule's volume, read through a reader pod (schedule/volume.ts). */
async function listSchedule(command: Command, name: string | undefined): Promise<{ rows: ListedBackup[]; where: string }> {
  const { kubeContextFromOptions } = await import('./kubecontext.js');
  const { findSchedule, withScheduleVolume } = await import('../schedule/volume.js');
  const kube = kubeContextFromOptions(command.optsWithGlobals<GlobalKubeOptions>());
  const cj = await findSchedule(kube, kube.namespace, name);
  return withScheduleVolume(kube, cj, async (volume) => {
    const files = await volume.list();
    const found = files.filter((f) => parseAnyBackupName(f.name)).map((f) => ({ name: f.name, size: f.size, readRecord: async () => f.record }));
    return { rows: await listBackups(found, (n) => `schedule/${volume.schedule}/${n}`), where: `claim "${volume.claim}" of schedule "${volume.schedule}"` };
  });
}

/** Registers `kubectl etcd snapshots list`. */
export function register(program: Command): void {
  const snapshots = program.command('snapshots').description('list the backups kept in a directory, in object storage or on a schedule\'s volume');
  snapshots
    .command('list')
    .description('list the backups in a directory, under an s3:// prefix or on a schedule\'s volume, newest first, with what their records say')
    .argument('[location]', 'a directory (backup --dir) or s3://BUCKET/PREFIX (backup --to)')
    .option('--schedule [name]', 'the backups on the volume of this schedule (kubectl etcd schedule create) in the namespace; without a name, its only one')
    .option('--s3-endpoint <url>', 'with s3://: an S3-compatible store (MinIO, Ceph, R2 …), addressed path-style')
    .option('-o, --output <format>', 'output format: table (default), json or yaml')
    .addHelpText('after', `
Examples:
  kubectl etcd snapshots list /backups
  kubectl etcd snapshots list s3://my-bucket/etcd/ -o json
  kubectl etcd snapshots list -n uc1 --schedule kube-etcd-backup`)
    .action(async (location: string | undefined, flags: { s3Endpoint?: string; output?: string; schedule?: string | true }, command: Command) => {
      const output = flags.output === 'table' ? undefined : parseOutputFormat(flags.output);
      let rows: ListedBackup[];
      let where = location ?? '';
      if (flags.schedule !== undefined) {
        if (location !== undefined) throw new UsageError('pass a location or --schedule, not both', 'drop one');
        if (flags.s3Endpoint !== undefined) throw new UsageError('--s3-endpoint works only with an s3:// location', 'drop it');
        ({ rows, where } = await listSchedule(command, flags.schedule === true ? undefined : flags.schedule));
      } else if (location === undefined) {
        throw new UsageError('snapshots list needs a location or --schedule', 'e.g. kubectl etcd snapshots list /backups, or -n uc1 --schedule');
      } else if (isS3Url(location)) {
        rows = await listStore(location, flags.s3Endpoint !== undefined ? parseEndpoint(flags.s3Endpoint) : undefined);
      } else {
        if (flags.s3Endpoint !== undefined) throw new UsageError('--s3-endpoint works only with an s3:// location', 'drop it, or pass s3://BUCKET/PREFIX');
        rows = await listDir(resolve(location));
      }
      if (output) process.stdout.write(await formatRecord(rows, output));
      else if (rows.length) process.stdout.write(renderBackups(rows));
      else process.stderr.write(`no backups in ${where}\n`);
    });
}
