import { createInterface } from 'node:readline';
import { createReadStream } from 'node:fs';
import type { Command } from 'commander';
import { apiPodLister, kubeBackupDeps } from '../backup/cluster.js';
import { runBackup } from '../backup/run.js';
import { discoverTopology } from '../etcd/discovery/index.js';
import { PluginError } from '../errors.js';
import { checkAccess } from '../kube/access.js';
import type { KubeContext } from '../kube/client.js';
import { apiError } from '../kube/errors.js';
import { execCapture } from '../kube/exec.js';
import { etcdRestoreVerifier, kubeConfigMaps, kubeRestoreCluster, kubeRestorePodIO, memberExec, nodeOfClaim } from '../restore/cluster.js';
import { defaultStateDir, restoreCommand, type RestoreDeps, type RestoreOptions } from '../restore/command.js';
import { quantityBytes } from '../restore/preflight.js';
import { parseQuiesceRef } from '../restore/quiesce.js';
import { parseOutputFormat } from '../ui/format.js';
import { createLogger, type Logger } from '../ui/log.js';
import { kubeContextFromOptions, verbosityOf, type GlobalKubeOptions } from './kubeflags.js';

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
    stateDir: flags.stateDir ?? defaultStateDir(),
  };
}

function ask(question: string): Promise<string | undefined> {
  if (!process.stdin.isTTY || !process.stderr.isTTY) return Promise.resolve(undefined);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  return new Promise((resolve) => {
    rl.question(question, (answer) => {
      rl.close();
      resolve(answer);
    });
  });
}

/** Builds the restore's collaborators over the kube seam, as the backup CLI does. */
export function restoreDeps(kube: KubeContext, log: Logger): RestoreDeps {
  const lister = apiPodLister(kube);
  const onRetry = (err: unknown) => log.warn(`the API server did not answer (${(err as Error).message.split('\n')[0]}); retrying`);
  return {
    discover: (namespace, statefulSet) => discoverTopology(lister, { namespace, statefulSet }),
    async templateImage(topology) {
      const sts = await lister.getStatefulSet(topology.namespace, topology.workload.name);
      const container = topology.members[0]?.container;
      return sts?.spec?.template?.spec?.containers?.find((c) => c.name === container)?.image ?? topology.image;
    },
    async listWorkloads(namespace) {
      try {
        const [sts, deps, pdbs] = await Promise.all([
          kube.apps.listNamespacedStatefulSet({ namespace }),
          kube.apps.listNamespacedDeployment({ namespace }),
          kube.policy.listNamespacedPodDisruptionBudget({ namespace }),
        ]);
        return { statefulSets: sts.items, deployments: deps.items, pdbs: pdbs.items };
      } catch (err) {
        throw apiError(err, `list workloads in namespace "${namespace}"`);
      }
    },
    async resolveNodes(topology) {
      for (const m of topology.members) if (!m.node) m.node = await nodeOfClaim(kube, m);
    },
    preflight: {
      checkAccess: (checks) => checkAccess(kube, checks),
      async nodeReady(node) {
        try {
          const n = await kube.core.readNode({ name: node });
          const c = n.status?.conditions?.find((x) => x.type === 'Ready');
          return { ready: c?.status === 'True', reason: c?.status === 'True' ? undefined : c?.reason ?? c?.message };
        } catch {
          return undefined;
        }
      },
      async execInMember(m, argv) {
        if (m.ready === undefined && !m.node) return undefined;
        try {
          return await execCapture(kube, { namespace: m.namespace, pod: m.pod, container: m.container, command: argv });
        } catch (err) {
          if ((err as { name?: string }).name === 'ForbiddenError') throw err;
          return undefined;
        }
      },
      async claimCapacity(m) {
        if (m.dataVolume?.kind !== 'pvc') return undefined;
        try {
          const pvc = await kube.core.readNamespacedPersistentVolumeClaim({ name: m.dataVolume.claimName, namespace: m.namespace });
          return quantityBytes(pvc.status?.capacity?.['storage'] ?? pvc.spec?.resources?.requests?.['storage']);
        } catch {
          return undefined;
        }
      },
    },
    configMaps: kubeConfigMaps(kube),
    cluster: (namespace) => kubeRestoreCluster(kube, namespace, onRetry),
    pods: (namespace) => kubeRestorePodIO(kube, namespace, onRetry),
    verifier: (plan) => etcdRestoreVerifier(memberExec(kube), { liveKeys: plan.snapshot.liveKeys }),
    openSnapshot: (path) => () => createReadStream(path),
    async safetyBackup(topology, dir) {
      try {
        const record = await runBackup({ topology, destination: { kind: 'dir', dir } }, kubeBackupDeps(kube, {}, log));
        return record.file;
      } catch (err) {
        if (err instanceof PluginError && /no healthy etcd member answered/.test(err.message)) return undefined;
        throw new PluginError(`the safety backup failed: ${(err as Error).message}`, 'fix the cause, or pass --no-safety-backup if the current data does not matter');
      }
    },
    ask,
    log,
    stdout: process.stdout,
    stderr: process.stderr,
    now: () => new Date(),
  };
}

/** Registers `kubectl etcd restore`. */
export function register(program: Command): void {
  program
    .command('restore')
    .description('restore every member of an etcd cluster running in Kubernetes from one snapshot (plan, confirm, act, verify)')
    .argument('[snapshot]', 'the snapshot file (from `kubectl etcd backup` or `etcdctl snapshot save`)')
    .option('--statefulset <name>', 'the etcd StatefulSet (default: the only etcd workload in the namespace)')
    .option('--quiesce <kind/name>', 'also scale this workload to 0 during the restore (repeatable), e.g. deployment/gke-master-etcd-maintenance', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--dry-run', 'print the plan and change nothing')
    .option('-y, --yes', 'do not ask for confirmation')
    .option('--force', 'go on despite a version mismatch, a NotReady node or too little space')
    .option('--resume', 'finish an interrupted restore from its journal')
    .option('--abort', 'roll an interrupted restore back: old data, replicas and PDBs')
    .option('--no-safety-backup', 'do not back up the current cluster first')
    .option('--utility-image <image>', 'image of the utility pods (default: the etcd image)')
    .option('--in-place', 'not implemented yet: restore beside the stopped members and roll the StatefulSet (the runbook order)')
    .option('--state-dir <dir>', 'where the local journal and safety backups go (default $KUBECTL_ETCD_STATE_DIR or ~/.kube/kubectl-etcd)')
    .option('-o, --output <format>', 'print the plan (--dry-run) or the result as json or yaml')
    .addHelpText(
      'after',
      `
Examples:
  kubectl etcd restore snapshot.db -n uc1 --dry-run -o yaml
  kubectl etcd restore snapshot.db -n uc1 --quiesce deployment/gke-master-etcd-maintenance --yes
  kubectl etcd restore -n uc1 --resume
  kubectl etcd restore -n uc1 --abort`,
    )
    .action(async (snapshot: string | undefined, flags: RestoreFlags, command: Command) => {
      const globals = command.optsWithGlobals<GlobalKubeOptions>();
      const kube = kubeContextFromOptions(globals);
      const log = createLogger(process.stderr, verbosityOf(globals));
      await restoreCommand(restoreFlagsToOptions(snapshot, flags, kube.namespace), restoreDeps(kube, log));
    });
}
