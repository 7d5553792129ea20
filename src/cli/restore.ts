import type { Command } from 'commander';
import type { RestoreOptions } from '../restore/command.js';
import { UsageError } from '../errors.js';
import { isS3Url, parseEndpoint, parseS3Url } from '../storage/location.js';
import { DEFAULT_KEEP, parseKeepCount } from '../restore/keep-count.js';
import { parseQuiesceRef } from '../restore/quiesce.js';
import { defaultStateDir } from '../restore/state-dir.js';
import { withDownloadsSwept } from '../restore/downloads.js';
import { parseOutputFormat } from '../ui/format.js';
import { createLogger } from '../ui/log.js';
import { PhaseClock } from '../ui/phases.js';
import { verbosityOf, type GlobalKubeOptions } from './kubeflags.js';

/** Flags of `restore` as commander parses them. */
interface RestoreFlags {
  statefulset?: string;
  quiesce: string[];
  dryRun?: boolean;
  yes?: boolean;
  force?: boolean;
  resume?: boolean;
  abort?: boolean;
  safetyBackup: boolean;
  utilityImage?: string;
  inPlace?: boolean;
  output?: string;
  stateDir?: string;
  pruneKept?: boolean;
  keep?: string;
  identity: string[];
  s3Endpoint?: string;
  fromSchedule?: string;
}

/** Turns parsed flags into restore options. */
export function restoreFlagsToOptions(snapshot: string | undefined, flags: RestoreFlags, namespace: string): RestoreOptions {
  return {
    snapshot,
    namespace,
    statefulSet: flags.statefulset,
    quiesce: flags.quiesce.map(parseQuiesceRef),
    dryRun: !!flags.dryRun,
    yes: !!flags.yes,
    force: !!flags.force,
    resume: !!flags.resume,
    abort: !!flags.abort,
    safetyBackup: flags.safetyBackup,
    utilityImage: flags.utilityImage,
    inPlace: !!flags.inPlace,
    output: parseOutputFormat(flags.output),
    pruneKept: !!flags.pruneKept,
    keep: flags.keep === undefined ? undefined : parseKeepCount(flags.keep),
    stateDir: flags.stateDir ?? defaultStateDir(),
    identityFiles: flags.identity,
  };
}

/** Registers `kubectl etcd restore`. */
export function register(program: Command): void {
  program
    .command('restore')
    .description('restore every member of an etcd cluster running in Kubernetes from one snapshot (plan, confirm, act, verify)')
    .argument('[snapshot]', 'the snapshot file (from `kubectl etcd backup` or `etcdctl snapshot save`), or s3://BUCKET/KEY')
    .option('--statefulset <name>', 'the etcd StatefulSet (default: the only etcd workload in the namespace)')
    .option('--quiesce <kind/name>', 'also scale this workload to 0 during the restore (repeatable), e.g. deployment/gke-master-etcd-maintenance', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--dry-run', 'print the plan and change nothing')
    .option('-y, --yes', 'do not ask for confirmation')
    .option('--force', 'go on despite a version mismatch, a NotReady node or too little space')
    .option('--resume', 'finish an interrupted restore from its journal')
    .option('--abort', 'roll an interrupted restore back: old data, replicas and PDBs')
    .option('--no-safety-backup', 'do not back up the current cluster first')
    .option('--utility-image <image>', 'image of the utility pods (default: the etcd image; when it has no shell, busybox beside it, the etcd image still running etcdctl/etcdutl)')
    .option('--in-place', 'never scale etcd: restore beside the running or crash-looping members, then delete their pods at once (the runbook order; for an operator that scales the StatefulSet back up)')
    .option('--prune-kept', 'delete the old data that earlier restores (member.pre-restore-*, once verified) and member replaces (member.pre-replace-*, once finished) kept on the member volumes; the newest --keep copies stay')
    .option('--keep <n>', `with --prune-kept: how many of the newest kept copies stay on each volume (default ${DEFAULT_KEEP})`)
    .option('--state-dir <dir>', 'where the local journal and safety backups go (default $KUBECTL_ETCD_STATE_DIR or ~/.kube/kubectl-etcd)')
    .option('-i, --identity <file>', 'age identity file (age-keygen) to decrypt an encrypted snapshot (.age) with (repeatable; needed again for --resume)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--s3-endpoint <url>', 'with an s3:// snapshot: an S3-compatible store (MinIO, Ceph, R2 …), addressed path-style')
    .option('--from-schedule <name|latest>', 'restore the newest backup on the volume of this schedule (kubectl etcd schedule create; latest: the namespace\'s only schedule), or NAME/FILE for one of them')
    .option('-o, --output <format>', 'print the plan (--dry-run) or the result as json or yaml')
    .addHelpText(
      'after',
      `
Examples:
  kubectl etcd restore snapshot.db -n uc1 --dry-run -o yaml
  kubectl etcd restore snapshot.db -n uc1 --quiesce deployment/gke-master-etcd-maintenance --yes
  kubectl etcd restore uc1-kube-etcd-20261125T180405Z-rev42.db.age -n uc1 --identity ~/.config/age/etcd-backups.txt
  kubectl etcd restore s3://my-bucket/etcd/uc1/uc1-kube-etcd-20261206T120005Z.db -n uc1 --yes
  kubectl etcd restore -n uc1 --from-schedule latest --dry-run
  kubectl etcd restore -n uc1 --resume
  kubectl etcd restore -n uc1 --abort
  kubectl etcd restore -n uc1 --prune-kept --dry-run`,
    )
    .action(async (snapshot: string | undefined, flags: RestoreFlags, command: Command) => {
      const phases = new PhaseClock();
      phases.sinceProcessStart('start-up');
      const globals = command.optsWithGlobals<GlobalKubeOptions>();
      phases.start('load');
      // Loaded on use: they pull in @kubernetes/client-node and etcd3, which --help does not need,
      // and the restore's own code (100 KB of the command line's 270 when it was loaded at start).
      const { kubeContextFromOptions } = await import('./kubecontext.js');
      const { restoreDeps } = await import('../restore/deps.js');
      const { restoreCommand, validateRestoreOptions } = await import('../restore/command.js');
      const kube = kubeContextFromOptions(globals);
      const log = createLogger(process.stderr, verbosityOf(globals));
      phases.end();
      const opts = restoreFlagsToOptions(snapshot, flags, kube.namespace);
      // A backup downloaded for it (s3://, --from-schedule) is removed once nothing needs it, however the command ends.
      await withDownloadsSwept(opts.stateDir, log, async () => {
        if (flags.fromSchedule !== undefined) {
          // Every refusal of the flags before the reader pod is made.
          if (snapshot) throw new UsageError('pass a snapshot or --from-schedule, not both', 'drop one');
          if (opts.resume || opts.abort || opts.pruneKept) throw new UsageError('--from-schedule starts a restore; --resume, --abort and --prune-kept go on from the journal', 'drop --from-schedule');
          if (flags.s3Endpoint !== undefined) throw new UsageError('--s3-endpoint works only with an s3:// snapshot', 'drop it');
          validateRestoreOptions({ ...opts, snapshot: 'from-schedule' });
          phases.start('download');
          const { fetchFromSchedule } = await import('../schedule/restore.js');
          const { readForRestore } = await import('../storage/fetch.js');
          opts.snapshot = await fetchFromSchedule(kube, flags.fromSchedule, { stateDir: opts.stateDir, warn: (l) => log.warn(l), info: (l) => log.info(l) }, readForRestore);
          phases.end();
        }
        if (flags.s3Endpoint !== undefined && !(snapshot && isS3Url(snapshot))) throw new UsageError('--s3-endpoint works only with an s3:// snapshot', 'drop it, or pass s3://BUCKET/KEY');
        if (snapshot && isS3Url(snapshot)) {
          validateRestoreOptions(opts);
          parseS3Url(snapshot);
          const endpoint = flags.s3Endpoint !== undefined ? parseEndpoint(flags.s3Endpoint) : undefined;
          phases.start('download');
          // Downloaded into the state dir and checked against its record, before the cluster is asked anything; kept while the journal names it (restore/downloads.ts).
          const { downloadForRestore } = await import('../storage/fetch.js');
          opts.snapshot = await downloadForRestore(snapshot, { ...(endpoint ? { endpoint } : {}), stateDir: opts.stateDir, warn: (l) => log.warn(l) });
          log.info(`downloaded ${snapshot} to ${opts.snapshot}`);
          phases.end();
        }
        await restoreCommand(opts, { ...restoreDeps(kube, log), phases });
      });
    });
}
