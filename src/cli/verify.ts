import type { Command } from 'commander';
import { withSnapshotFile } from '../crypt/plaintext.js';
import { PluginError, UsageError } from '../errors.js';
import { defaultStateDir } from '../restore/state-dir.js';
import { isS3Url, parseEndpoint, parseS3Url } from '../storage/location.js';
import { parseOutputFormat } from '../ui/format.js';
import { createLogger } from '../ui/log.js';
import type { DrillPlace } from '../verify/run.js';
import { loadCluster, workloadOptions, type WorkloadFlags } from './cluster.js';
import { verbosityOf, type GlobalKubeOptions } from './kubeflags.js';

/** Flags of `verify` as commander parses them. */
interface VerifyFlags extends WorkloadFlags {
  restore?: boolean;
  etcd?: string;
  inCluster?: boolean;
  utilityImage?: string;
  identity: string[];
  output?: string;
  stateDir?: string;
  s3Endpoint?: string;
}

/** Registers `kubectl etcd verify SNAPSHOT [--restore]`. */
export function register(program: Command): void {
  const verify = program
    .command('verify')
    .description('check a backup as inspect does, and with --restore prove it restores: restore it into a throwaway etcd, start it and compare what it serves')
    .argument('<snapshot>', 'snapshot file (plain or .age), a member/snap/db file, or s3://BUCKET/KEY')
    .option('--restore', 'run a restore drill: restore into a private directory of the state dir, start etcd there (on unix sockets), compare revision, key count and KV hash; the outcome is added to the backup\'s record')
    .option('--etcd <path>', 'with --restore: the etcd binary to run (default: etcd on PATH; its etcdutl or etcdctl restores)')
    .option('--in-cluster', 'with --restore: drill in a throwaway pod of the etcd namespace (-n) with the members\' own image instead of on this machine; the pod is deleted after')
    .option('--utility-image <image>', 'with --in-cluster, for an etcd image without a shell: the shell image the drill pod runs beside it (default docker.io/library/busybox:1.36)')
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
  kubectl etcd verify uc1-kube-etcd-20261125T180405Z-rev42.db --restore --in-cluster -n uc1

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
      if (flags.inCluster && !flags.restore) throw new UsageError('--in-cluster works only with --restore', 'add --restore to run a restore drill in a pod of the cluster');
      if (flags.inCluster && flags.etcd !== undefined) throw new UsageError('--etcd and --in-cluster exclude each other: --etcd runs the drill on this machine', 'drop one of them');
      const clusterFlags = ['utilityImage', 'statefulset', 'pod', 'selector', 'container'] as const;
      const stray = clusterFlags.find((f) => flags[f] !== undefined);
      if (stray && !flags.inCluster) throw new UsageError(`--${stray.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} works only with --in-cluster`, 'add --restore --in-cluster to drill in a pod of the cluster');
      const say = (l: string) => log.debug(1, l);
      const drill = !flags.restore ? undefined : flags.inCluster ? await clusterDrill(flags, command, say, log.warn) : await localDrill(flags.etcd, stateDir);

      // Run.
      const { verifySnapshot } = await import('../verify/run.js');
      const { sidecarPlace, storedRecordPlace } = await import('../verify/record.js');
      const decrypt = { identityFiles: flags.identity, stateDir, warn: log.warn };
      const base = {
        displayPath: snapshot,
        ...(drill ? { drill } : {}),
        ...(output ? { output } : {}),
        log: say,
        warn: log.warn,
      };
      if (location) {
        const { withStoredSnapshot } = await import('../storage/fetch.js');
        const { openS3Store } = await import('../storage/s3.js');
        // Only a drill is recorded.
        const store = drill ? await openS3Store({ bucket: location.bucket, ...(endpoint ? { endpoint } : {}) }) : undefined;
        await withStoredSnapshot(snapshot, { ...(endpoint ? { endpoint } : {}), stateDir, warn: log.warn }, (local) =>
          withSnapshotFile(local, { ...decrypt, label: snapshot }, (plain) =>
            verifySnapshot({ ...base, snapshot: plain, ...(store ? { record: storedRecordPlace(store, location.key, snapshot) } : {}) }, process.stdout)));
        return;
      }
      await withSnapshotFile(snapshot, decrypt, (plain) =>
        verifySnapshot({ ...base, snapshot: plain, ...(drill ? { record: sidecarPlace(snapshot) } : {}) }, process.stdout));
    });
  workloadOptions(verify);
}

/** The drill on this machine: etcd on PATH or --etcd, with its restore tool. */
async function localDrill(etcd: string | undefined, stateDir: string): Promise<DrillPlace> {
  const { findLocalEtcd } = await import('../verify/local-etcd.js');
  const tools = await findLocalEtcd(etcd);
  if (!tools) {
    throw new PluginError('the restore drill needs etcd on this machine and there is none on PATH',
      'install etcd of your cluster\'s release (Debian: etcd-server and etcd-client), pass --etcd PATH, or drill in a throwaway pod of the cluster with --in-cluster -n NAMESPACE');
  }
  const { runLocalDrill } = await import('../verify/drill.js');
  return { version: tools.version, open: (use) => use({ version: tools.version, run: (input) => runLocalDrill({ ...input, stateDir, tools }) }) };
}

/**
 * The drill in a throwaway pod of the etcd namespace: the cluster is found and a running member
 * asked what its image has before anything is read or made; the pod is created only when the
 * drill runs (after the integrity check) and deleted after it.
 */
async function clusterDrill(flags: VerifyFlags, command: Command, say: (l: string) => void, warn: (l: string) => void): Promise<DrillPlace> {
  const { askMembers, withDrillPod } = await import('../verify/pod-drill.js');
  const { kube, run, rows } = await loadCluster(flags, command);
  const { spec, version } = await askMembers(run, rows.map((r) => ({ member: r.member, healthy: r.status.healthy, version: r.status.version })), flags.utilityImage);
  if (flags.utilityImage !== undefined && !spec.shellImage) warn(`--utility-image ${flags.utilityImage} is not used: image "${spec.image}" has a shell, and the drill runs in it`);
  return { ...(version ? { version } : {}), open: (use) => withDrillPod(kube, run, spec, say, (pod) => use({ version: pod.version, run: (input) => pod.drill(input) })) };
}
