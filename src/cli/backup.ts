import { Option, type Command } from 'commander';
import { UsageError } from '../errors.js';
import type { BackupRecord } from '../backup/record.js';
import type { BackupDestination, BackupOptions } from '../backup/run.js';
import { restrictStdoutFile } from '../backup/stdout.js';
import type { TransportKind } from '../backup/transport.js';
import { formatBytes } from '../ui/bytes.js';
import { formatRecord, parseOutputFormat, type OutputFormat } from '../ui/format.js';
import { createLogger } from '../ui/log.js';
import { PhaseClock, renderPhases } from '../ui/phases.js';
import { checkRecipients, parseRecipients } from '../crypt/age.js';
import { defaultStateDir } from '../restore/state-dir.js';
import { verbosityOf, type GlobalKubeOptions } from './kubeflags.js';
import { asFolder, isS3Url, parseEndpoint, parseS3Url } from '../storage/location.js';



/** Flags of `backup` as commander parses them. */
export interface BackupFlags {
  statefulset?: string;
  pod?: string;
  selector?: string;
  container?: string;
  member?: string;
  file?: string;
  dir?: string;
  keep?: string;
  via?: string;
  cacert?: string;
  cert?: string;
  key?: string;
  output?: string;
  encryptTo?: string[];
  stateDir?: string;
  to?: string;
  s3Endpoint?: string;
}

/** Where the snapshot goes, as the flags say; `s3` becomes a store destination once the store is open. */
export type ParsedDestination = Exclude<BackupDestination, { kind: 'store' }> | { kind: 's3'; bucket: string; folder: string; keep?: number; endpoint?: string };

/**
 * Checks flag combinations and turns them into the destination, transport and output format.
 * `stdoutIsTerminal`: a binary snapshot is never written to a terminal.
 */
export function backupFlagsToOptions(
  flags: BackupFlags,
  stdoutIsTerminal = false,
): { destination: ParsedDestination; via?: TransportKind; output?: OutputFormat; encryptTo?: string[] } {
  const output = parseOutputFormat(flags.output);
  const given = [flags.file !== undefined ? '-f' : undefined, flags.dir !== undefined ? '--dir' : undefined, flags.to !== undefined ? '--to' : undefined].filter(Boolean);
  if (given.length > 1) throw new UsageError(`${given.join(' and ')} cannot be used together`, 'pass one of them');
  if (given.length === 0) throw new UsageError('no destination given', 'pass -f FILE, -f - (stdout), --dir DIR or --to s3://BUCKET/PREFIX');
  if (flags.keep !== undefined && flags.dir === undefined && flags.to === undefined) throw new UsageError('--keep works only with --dir or --to', 'pass --dir DIR or --to s3://BUCKET/PREFIX');
  if (flags.s3Endpoint !== undefined && flags.to === undefined) throw new UsageError('--s3-endpoint works only with --to', 'pass --to s3://BUCKET/PREFIX');
  if ([flags.statefulset, flags.pod, flags.selector].filter((v) => v !== undefined).length > 1) {
    throw new UsageError('--statefulset, --pod and -l select the same thing', 'pass only one of them');
  }
  let keep: number | undefined;
  if (flags.keep !== undefined) {
    keep = Number(flags.keep);
    if (!Number.isInteger(keep) || keep < 1) throw new UsageError(`--keep "${flags.keep}" is not a positive whole number`, 'pass --keep 1 or more');
  }
  if ((flags.cert === undefined) !== (flags.key === undefined) || ((flags.cert || flags.key) && !flags.cacert)) {
    throw new UsageError('--cacert, --cert and --key go together', 'pass all three (or --cacert alone for a server without client auth)');
  }
  let destination: ParsedDestination;
  if (flags.to !== undefined) {
    if (!isS3Url(flags.to)) throw new UsageError(`--to "${flags.to}" is not an object-storage URL`, 'pass --to s3://BUCKET/PREFIX (for a local directory, --dir)');
    const loc = parseS3Url(flags.to);
    const endpoint = flags.s3Endpoint !== undefined ? parseEndpoint(flags.s3Endpoint) : undefined;
    destination = { kind: 's3', bucket: loc.bucket, folder: asFolder(loc.key), ...(keep !== undefined ? { keep } : {}), ...(endpoint ? { endpoint } : {}) };
  } else {
    destination = flags.file === '-' ? { kind: 'stdout' } : flags.file !== undefined ? { kind: 'file', path: flags.file } : { kind: 'dir', dir: flags.dir!, keep };
  }
  if (destination.kind === 'stdout' && output) throw new UsageError('-o cannot be used with -f - (stdout carries the snapshot)', 'write to a file, or drop -o');
  if (destination.kind === 'stdout' && stdoutIsTerminal) {
    throw new UsageError('refusing to write a binary snapshot to the terminal', 'redirect stdout ((umask 077; kubectl etcd backup … -f - > snapshot.db)) or pass -f FILE');
  }
  const encryptTo = flags.encryptTo?.length ? parseRecipients(flags.encryptTo) : undefined;
  return { destination, via: flags.via as TransportKind | undefined, output, ...(encryptTo ? { encryptTo } : {}) };
}

/** One human line describing a finished backup. */
export function describeBackup(r: BackupRecord): string {
  const where = (r.file === '-' ? 'stdout' : r.file) + (r.encryption ? ` (age-encrypted to ${r.encryption.recipients.length} recipient${r.encryption.recipients.length === 1 ? '' : 's'})` : '');
  const facts = [formatBytes(r.size), r.revision !== undefined ? `revision ${r.revision}` : undefined, r.totalKeys !== undefined ? `${r.totalKeys} keys` : undefined]
    .filter(Boolean)
    .join(', ');
  return `backed up ${r.namespace}/${r.workload} from pod "${r.sourcePod}" via ${r.transport} to ${where} (${facts})`;
}

/** Registers `kubectl etcd backup`. */
export function register(program: Command): void {
  program
    .command('backup')
    .description('take a verified snapshot of an etcd cluster running in Kubernetes')
    .option('--statefulset <name>', 'the etcd StatefulSet (default: the only etcd workload in the namespace)')
    .option('--pod <name>', 'an etcd pod (selects its workload)')
    .option('-l, --selector <selector>', 'label selector of the etcd pods (e.g. component=etcd)')
    .option('-c, --container <name>', 'the etcd container (default: detected)')
    .option('--member <name>', 'back up from this member (pod, etcd name or member ID) instead of any healthy one')
    .option('-f, --file <file>', 'write the snapshot to FILE, or to stdout with -f -')
    .option('--dir <dir>', 'write to DIR with a self-describing name and a .json sidecar')
    .option('--keep <n>', 'with --dir or --to: keep only the newest N backups of this workload')
    .option('--to <url>', 'stream the snapshot to object storage, s3://BUCKET/PREFIX, with a self-describing name and a .json record beside it (credentials: the AWS default chain)')
    .option('--s3-endpoint <url>', 'with --to: an S3-compatible store (MinIO, Ceph, R2, GCS interoperability), addressed path-style')
    .addOption(new Option('--via <transport>', 'how to bring the snapshot home (default: exec when the image has sh and tar, else stream)').choices(['exec', 'stream']))
    .option('--cacert <file>', 'etcd CA certificate (default: from the member’s cert Secret)')
    .option('--cert <file>', 'etcd client certificate')
    .option('--key <file>', 'etcd client key')
    .option('--encrypt-to <recipient>', 'encrypt the snapshot with age to this X25519 public key (age1…; repeatable); the file gets .age appended', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--state-dir <dir>', 'where an encrypted backup keeps its plaintext copy until it is encrypted and checked (default $KUBECTL_ETCD_STATE_DIR or ~/.kube/kubectl-etcd)')
    .option('-o, --output <format>', 'print the result record as json or yaml')
    .addHelpText(
      'after',
      `
Examples:
  kubectl etcd backup -n uc1 -f snapshot.db
  kubectl etcd backup -n uc1 --dir /backups --keep 7 -o json
  kubectl etcd backup -n uc1 --to s3://my-bucket/etcd/ --keep 14
  kubectl etcd backup -n uc1 --to s3://backups/uc1/ --s3-endpoint https://minio.example:9000 --encrypt-to age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
  kubectl etcd backup -n uc1 --dir /backups --encrypt-to age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
  (umask 077; kubectl etcd backup -n kube-system -l component=etcd --via stream -f - > snapshot.db)

Interrupted by Ctrl-C (SIGINT) or SIGTERM, backup removes its partial file and the temporary
snapshot in the pod, then exits 130 (SIGINT) or 143 (SIGTERM); a second signal quits at once.`,
    )
    .action(async (flags: BackupFlags, command: Command) => {
      const phases = new PhaseClock();
      phases.sinceProcessStart('start-up');
      const globals = command.optsWithGlobals<GlobalKubeOptions>();
      const parsed = backupFlagsToOptions(flags, process.stdout.isTTY === true);
      phases.start('load'); // checking a recipient loads the age code
      if (parsed.encryptTo) await checkRecipients(parsed.encryptTo); // a typo in a key: refused before anything is taken
      let destination: BackupDestination;
      if (parsed.destination.kind === 's3') {
        // Wrong credentials, a missing bucket, an endpoint that does not answer: one line, before anything is taken.
        const { bucket, folder, keep, endpoint } = parsed.destination;
        const { openS3Store } = await import('../storage/s3.js');
        const store = await openS3Store({ bucket, ...(endpoint ? { endpoint } : {}) });
        phases.start('check bucket');
        await store.checkBucket();
        destination = { kind: 'store', store, folder, ...(keep !== undefined ? { keep } : {}) };
      } else {
        destination = parsed.destination;
      }
      // Loaded on use: they pull in @kubernetes/client-node and etcd3, which --help does not need.
      const { kubeContextFromOptions } = await import('./kubecontext.js');
      const { kubeBackupDeps } = await import('../backup/cluster.js');
      const { discoverTarget } = await import('../etcd/discovery/lister.js');
      const { runBackup } = await import('../backup/run.js');
      const kube = kubeContextFromOptions(globals);
      const log = createLogger(process.stderr, verbosityOf(globals));
      phases.start('discover');
      const topology = await discoverTarget(kube, { statefulSet: flags.statefulset, pod: flags.pod, selector: flags.selector, container: flags.container });
      const options: BackupOptions = {
        topology, destination, member: flags.member ?? flags.pod, via: parsed.via,
        ...(parsed.encryptTo ? { encryptTo: parsed.encryptTo, stateDir: flags.stateDir ?? defaultStateDir() } : {}),
      };
      if (parsed.destination.kind === 'stdout' && restrictStdoutFile(1)) log.debug(1, 'stdout is a regular file: made it mode 0600');
      const record = await runBackup(options, { ...kubeBackupDeps(kube, flags, log), phases });
      log.debug(1, `where the time went: ${renderPhases(phases.list())}`);
      if (parsed.output) process.stdout.write(await formatRecord({ ...record, phases: phases.list() }, parsed.output));
      else (record.file === '-' ? process.stderr : process.stdout).write(describeBackup(record) + '\n');
    });
}
