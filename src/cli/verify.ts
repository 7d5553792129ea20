import type { Command } from 'commander';
import { withSnapshotFile } from '../crypt/plaintext.js';
import { PluginError, UsageError } from '../errors.js';
import { defaultStateDir } from '../restore/journal-find.js';
import { isS3Url, parseEndpoint, parseS3Url } from '../storage/location.js';
import { parseOutputFormat } from '../ui/format.js';
import { createLogger } from '../ui/log.js';
import { verbosityOf, type GlobalKubeOptions } from './kubeflags.js';

/** Flags of `verify` as commander parses them. */
interface VerifyFlags {
  restore?: boolean;
  etcd?: string;
  identity: string[];
  output?: string;
  stateDir?: string;
  s3Endpoint?: string;
}

/** Registers `kubectl etcd verify SNAPSHOT [--restore]`. */
export function register(program: Command): void {
  program
    .command('verify')
    .description('check a backup as inspect does, and with --restore prove it restores: restore it into a throwaway etcd, start it and compare what it serves')
    .argument('<snapshot>', 'snapshot file (plain or .age), a member/snap/db file, or s3://BUCKET/KEY')
    .option('--restore', 'run a restore drill: restore into a private directory of the state dir, start etcd there (on unix sockets), compare revision, key count and KV hash; the outcome is added to the backup\'s record')
    .option('--etcd <path>', 'with --restore: the etcd binary to run (default: etcd on PATH; its etcdutl or etcdctl restores)')
    .option('-i, --identity <file>', 'age identity file (age-keygen) to read an encrypted snapshot (.age) with (repeatable)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('-o, --output <format>', 'output format: table (default), json or yaml')
    .option('--s3-endpoint <url>', 'with s3://: an S3-compatible store (MinIO, Ceph, R2 …), addressed path-style')
    .option('--state-dir <dir>', 'where downloads, decrypted copies and the drill\'s data live while it runs, 0600/0700, removed after (default $KUBECTL_ETCD_STATE_DIR or ~/.kube/kubectl-etcd)')
    .addHelpText(
      'after',
      `
Examples:
  kubectl etcd verify /backups/uc1-kube-etcd-20261125T180405Z-rev42.db --restore
  kubectl etcd verify uc1-kube-etcd-20261125T180405Z-rev42.db.age --restore -i ~/.config/age/etcd-backups.txt
  kubectl etcd verify s3://my-bucket/etcd/uc1-kube-etcd-20261125T180405Z.db --restore -o json

Exit codes: 0 verified, 3 the snapshot is damaged or the drill failed (it would not restore), 1 it could not be checked.`,
    )
    .action(async (snapshot: string, flags: VerifyFlags, command: Command) => {
      // Complete and validate: every refusal before anything is downloaded, decrypted or started.
      const globals = command.optsWithGlobals<GlobalKubeOptions>();
      const output = flags.output === 'table' ? undefined : parseOutputFormat(flags.output);
      if (flags.etcd !== undefined && !flags.restore) throw new UsageError('--etcd works only with --restore', 'add --restore to run a restore drill');
      const s3 = isS3Url(snapshot);
      if (!s3 && flags.s3Endpoint !== undefined) throw new UsageError('--s3-endpoint works only with an s3:// snapshot', 'drop it, or pass s3://BUCKET/KEY');
      const endpoint = flags.s3Endpoint !== undefined ? parseEndpoint(flags.s3Endpoint) : undefined;
      const location = s3 ? parseS3Url(snapshot) : undefined;
      const stateDir = flags.stateDir ?? defaultStateDir();
      const log = createLogger(process.stderr, verbosityOf(globals));
      const { findLocalEtcd } = await import('../verify/local-etcd.js');
      const tools = flags.restore ? await findLocalEtcd(flags.etcd) : undefined;
      if (flags.restore && !tools) {
        throw new PluginError('the restore drill needs etcd on this machine and there is none on PATH', 'install etcd of your cluster\'s release (Debian: etcd-server and etcd-client), or pass --etcd PATH');
      }

      // Run.
      const { verifySnapshot } = await import('../verify/run.js');
      const { runLocalDrill } = await import('../verify/drill.js');
      const { sidecarPlace, storedRecordPlace } = await import('../verify/record.js');
      const decrypt = { identityFiles: flags.identity, stateDir, warn: log.warn };
      const base = {
        displayPath: snapshot,
        ...(tools ? { drill: { tools, stateDir } } : {}),
        ...(output ? { output } : {}),
        log: (l: string) => log.debug(1, l),
        warn: log.warn,
        runDrill: runLocalDrill,
      };
      if (location) {
        const { withStoredSnapshot } = await import('../storage/fetch.js');
        const { openS3Store } = await import('../storage/s3.js');
        // Only a drill is recorded.
        const store = tools ? await openS3Store({ bucket: location.bucket, ...(endpoint ? { endpoint } : {}) }) : undefined;
        await withStoredSnapshot(snapshot, { ...(endpoint ? { endpoint } : {}), stateDir, warn: log.warn }, (local) =>
          withSnapshotFile(local, { ...decrypt, label: snapshot }, (plain) =>
            verifySnapshot({ ...base, snapshot: plain, ...(store ? { record: storedRecordPlace(store, location.key, snapshot) } : {}) }, process.stdout)));
        return;
      }
      await withSnapshotFile(snapshot, decrypt, (plain) =>
        verifySnapshot({ ...base, snapshot: plain, ...(tools ? { record: sidecarPlace(snapshot) } : {}) }, process.stdout));
    });
}
