import type { Command } from 'commander';
import { inspectSnapshot, type InspectOptions } from '../etcd/snapshot/inspect.js';
import { withSnapshotFile } from '../crypt/plaintext.js';
import { defaultStateDir } from '../restore/state-dir.js';
import { parseOutputFormat } from '../ui/format.js';
import { UsageError } from '../errors.js';
import { isS3Url, parseEndpoint, parseS3Url } from '../storage/location.js';

/** Flags of `inspect` as commander parses them. */
interface InspectFlags {
  byNamespace?: boolean;
  output?: string;
  identity: string[];
  stateDir?: string;
  s3Endpoint?: string;
}

/** Turns the parsed flags into InspectOptions (-o table is the default human format). */
export function inspectOptions(snapshot: string, flags: InspectFlags): InspectOptions {
  const output = flags.output === 'table' ? undefined : parseOutputFormat(flags.output);
  return { snapshot, byNamespace: flags.byNamespace === true, output };
}

/** Registers `kubectl etcd inspect SNAPSHOT`: offline integrity, etcd status numbers and object counts. */
export function register(program: Command): void {
  program
    .command('inspect')
    .description('check a snapshot file offline: sha256 trailer, bbolt integrity, revision, keys and Kubernetes objects')
    .argument('<snapshot>', 'snapshot file (from etcdctl snapshot save or kubectl etcd backup), a member/snap/db file, or s3://BUCKET/KEY')
    .option('--by-namespace', 'count Kubernetes objects per namespace as well as per resource')
    .option('-o, --output <format>', 'output format: table (default), json or yaml')
    .option('-i, --identity <file>', 'age identity file (age-keygen) to read an encrypted snapshot (.age) with (repeatable)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--s3-endpoint <url>', 'with s3://: an S3-compatible store (MinIO, Ceph, R2 …), addressed path-style')
    .option('--state-dir <dir>', 'where the downloaded or decrypted copy of an encrypted snapshot lives while it is read, 0600, removed after (default $KUBECTL_ETCD_STATE_DIR or ~/.kube/kubectl-etcd)')
    .addHelpText(
      'after',
      `
Examples:
  kubectl etcd inspect snapshot.db
  kubectl etcd inspect /backups/uc1-kube-etcd-20261125T180405Z-rev42.db --by-namespace
  kubectl etcd inspect snapshot.db -o json
  kubectl etcd inspect uc1-kube-etcd-20261125T180405Z-rev42.db.age --identity ~/.config/age/etcd-backups.txt
  kubectl etcd inspect s3://my-bucket/etcd/uc1-kube-etcd-20261125T180405Z.db

Exit codes: 0 the snapshot is valid, 3 it is damaged (truncated, corrupt or wrong trailer), 1 it cannot be read.`,
    )
    .action(async (snapshot: string, flags: InspectFlags) => {
      const opts = inspectOptions(snapshot, flags);
      const warn = (l: string) => process.stderr.write(`warning: ${l}\n`);
      const decrypt = { identityFiles: flags.identity, stateDir: flags.stateDir ?? defaultStateDir(), warn };
      if (isS3Url(snapshot)) {
        const endpoint = flags.s3Endpoint !== undefined ? parseEndpoint(flags.s3Endpoint) : undefined;
        parseS3Url(snapshot);
        // Loaded on use: the AWS SDK is needed only here.
        const { withStoredSnapshot } = await import('../storage/fetch.js');
        await withStoredSnapshot(snapshot, { ...(endpoint ? { endpoint } : {}), stateDir: decrypt.stateDir, warn }, (local) =>
          withSnapshotFile(local, { ...decrypt, label: snapshot }, (plain) => inspectSnapshot({ ...opts, snapshot: plain, displayPath: snapshot }, process.stdout)));
        return;
      }
      if (flags.s3Endpoint !== undefined) throw new UsageError('--s3-endpoint works only with an s3:// snapshot', 'drop it, or pass s3://BUCKET/KEY');
      await withSnapshotFile(snapshot, decrypt, async (plain, encrypted) => {
        await inspectSnapshot({ ...opts, snapshot: plain, ...(encrypted ? { displayPath: snapshot } : {}) }, process.stdout);
      });
    });
}
