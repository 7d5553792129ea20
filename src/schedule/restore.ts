/**
 * `restore --from-schedule NAME|latest|NAME/FILE`: the backup to restore, chosen on a schedule's
 * volume (the newest with a record of the schedule's workload, unless a file is named), streamed
 * out of a reader pod (schedule/volume.ts) into the state dir as an s3:// backup is
 * (storage/fetch.ts readForRestore: 0600, checked against its record's size and sha256 while it
 * arrives, kept while the restore's journal names it: restore/downloads.ts), before the restore
 * asks the cluster anything else.
 */
import { parseAnyBackupName } from '../backup/naming.js';
import type { BackupRecord } from '../backup/record.js';
import { NotFoundError, UsageError } from '../errors.js';
import type { KubeContext } from '../kube/client.js';
import type { readForRestore as ReadForRestore } from '../storage/fetch.js';
import { WORKLOAD_ANNOTATION } from './manifests.js';
import { findSchedule, withScheduleVolume } from './volume.js';

/** Finds, streams and checks the backup; returns the local path the restore reads. */
export async function fetchFromSchedule(kube: KubeContext, value: string, opts: { stateDir: string; warn: (l: string) => void; info: (l: string) => void },
  // storage/fetch.ts's, passed in: storage/ is a chunk of its own in the single executable, loaded by the CLI (krew/bundle.ts).
  readForRestore: typeof ReadForRestore): Promise<string> {
  const m = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)(?:\/([^/]+))?$/.exec(value);
  if (!m) throw new UsageError(`--from-schedule "${value}" is not NAME, latest or NAME/FILE`, 'kubectl etcd schedule list shows the schedules');
  const name = m[1] === 'latest' && !m[3] ? undefined : m[1]!;
  const file = m[3];
  const namespace = kube.namespace;
  const cj = await findSchedule(kube, namespace, name);
  const schedule = cj.metadata!.name!;
  const workload = cj.metadata?.annotations?.[WORKLOAD_ANNOTATION];
  return withScheduleVolume(kube, cj, async (volume) => {
    const files = await volume.list();
    const parse = (text: string | undefined): BackupRecord | undefined => {
      try { return text ? (JSON.parse(text) as BackupRecord) : undefined; } catch { return undefined; }
    };
    const backups = files
      .map((f) => ({ ...f, parsed: parseAnyBackupName(f.name), rec: parse(f.record) }))
      .filter((f) => f.parsed);
    let chosen: (typeof backups)[number] | undefined;
    if (file) {
      chosen = backups.find((f) => f.name === file);
      if (!chosen) throw new NotFoundError(`no backup "${file}" on claim "${volume.claim}" of schedule "${schedule}"`, `kubectl etcd snapshots list -n ${namespace} --schedule ${schedule} shows them`);
    } else {
      chosen = backups
        .filter((f) => f.rec && f.rec.namespace === namespace && (workload === undefined || f.rec.workload === workload))
        .sort((a, b) => b.parsed!.time.getTime() - a.parsed!.time.getTime() || b.name.localeCompare(a.name))[0];
      if (!chosen) {
        throw new NotFoundError(`no backup of ${namespace}/${workload ?? '?'} on claim "${volume.claim}" of schedule "${schedule}"`,
          `kubectl etcd schedule status ${schedule} -n ${namespace} says whether a run has succeeded`);
      }
    }
    const url = `schedule/${schedule}/${chosen.name}`;
    opts.info(`restoring ${chosen.name} from claim "${volume.claim}" of schedule "${schedule}"${chosen.rec?.revision !== undefined ? ` (revision ${chosen.rec.revision})` : ''}`);
    const path = await readForRestore({ url, name: chosen.name, ...(chosen.rec ? { record: chosen.rec } : {}), open: () => volume.read(chosen!.name) }, opts);
    opts.info(`copied ${url} to ${path} (checked against its record)`);
    return path;
  });
}
