import type { Command } from 'commander';
import type { GlobalKubeOptions } from './kubeflags.js';

/** The flags that pick the etcd cluster, as the maintenance commands take them. */
export interface WorkloadFlags {
  statefulset?: string;
  pod?: string;
  selector?: string;
  container?: string;
}

/** Adds the flags that pick the etcd cluster. */
export function workloadOptions(command: Command): Command {
  return command
    .option('--statefulset <name>', 'the etcd StatefulSet (default: the only etcd workload in the namespace)')
    .option('--pod <name>', 'an etcd pod (selects its workload)')
    .option('-l, --selector <selector>', 'label selector of the etcd pods (e.g. component=etcd)')
    .option('-c, --container <name>', 'the etcd container (default: detected)');
}

/**
 * Finds the cluster and asks every member for its status (etcdctl in the members' containers).
 * `statuses` asks again. Loaded on use: it pulls in @kubernetes/client-node, which --help does not need.
 */
export async function loadCluster(flags: WorkloadFlags, command: Command) {
  const { kubeContextFromOptions } = await import('./kubecontext.js');
  const { discoverTarget } = await import('../etcd/discovery/lister.js');
  const { containerCommand } = await import('../kube/exec.js');
  const { collectStatus, execStatusProbe } = await import('../etcd/status.js');
  const kube = kubeContextFromOptions(command.optsWithGlobals<GlobalKubeOptions>());
  const topology = await discoverTarget(kube, { statefulSet: flags.statefulset, pod: flags.pod, selector: flags.selector, container: flags.container });
  const run = containerCommand(kube);
  const probe = execStatusProbe(run);
  const statuses = async () => (await collectStatus(topology.members, probe)).map((status, i) => ({ member: topology.members[i]!, status }));
  const rows = await statuses();
  return { kube, topology, run, probe, rows, statuses };
}
