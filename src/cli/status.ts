import type { Command } from 'commander';
import { CheckFailedError, PluginError } from '../errors.js';
import { collectStatus, execStatusProbe, statusProblems, type MemberStatus } from '../etcd/status.js';
import { formatRecord, parseOutputFormat } from '../ui/format.js';
import { renderStatusTable } from '../ui/status-table.js';
import type { GlobalKubeOptions } from './kubeflags.js';
import { NEARLY_FULL } from '../etcd/quota.js';

/** Flags of `status` as commander parses them. */
interface StatusFlags {
  statefulset?: string;
  pod?: string;
  selector?: string;
  container?: string;
  output?: string;
  check?: boolean;
}

/** The error for a cluster with unhealthy members (exit code 1), or undefined when all are healthy. */
export function unhealthyError(rows: MemberStatus[]): PluginError | undefined {
  const bad = rows.filter((r) => !r.healthy);
  if (bad.length === 0) return undefined;
  return new PluginError(
    `${bad.length} of ${rows.length} etcd members unhealthy: ${bad.map((r) => `"${r.pod}" (${r.error ?? 'unhealthy'})`).join(', ')}`,
    'check the pods with kubectl describe and kubectl logs',
  );
}

/** The error of `status --check` (exit code 3) when anything is wrong, or undefined. */
export function checkError(rows: MemberStatus[]): CheckFailedError | undefined {
  const problems = statusProblems(rows);
  if (problems.length === 0) return undefined;
  return new CheckFailedError(
    `check failed: ${problems.join(', ')}`,
    problems.some((p) => /NOSPACE|% of its quota/.test(p))
      ? 'free space with kubectl etcd compact and defrag (or raise --quota-backend-bytes), then kubectl etcd alarm disarm'
      : 'check the pods with kubectl describe and kubectl logs',
  );
}

/** Registers `kubectl etcd status`. */
export function register(program: Command): void {
  program
    .command('status')
    .description('show every etcd member: health, leader, version, DB size, raft term and index, revision, alarms')
    .option('--statefulset <name>', 'the etcd StatefulSet (default: the only etcd workload in the namespace)')
    .option('--pod <name>', 'an etcd pod (selects its workload)')
    .option('-l, --selector <selector>', 'label selector of the etcd pods (e.g. component=etcd)')
    .option('-c, --container <name>', 'the etcd container (default: detected)')
    .option('-o, --output <format>', 'output format: table (default), json or yaml')
    .option('--check', `exit 3 when a member is unhealthy, has an alarm, or its db fills ${Math.round(NEARLY_FULL * 100)}% of its quota (for scripts and monitoring)`)
    .addHelpText('after', '\nExamples:\n  kubectl etcd status -n uc1\n  kubectl etcd status -n uc1 --check   # exit code 3 when anything is wrong\n  kubectl etcd status -n kube-system -l component=etcd -o json')
    .action(async (flags: StatusFlags, command: Command) => {
      const output = flags.output === 'table' ? undefined : parseOutputFormat(flags.output);
      // Loaded on use: they pull in @kubernetes/client-node, which --help does not need.
      const { kubeContextFromOptions } = await import('./kubecontext.js');
      const { discoverTarget } = await import('../etcd/discovery/lister.js');
      const { containerCommand } = await import('../kube/exec.js');
      const kube = kubeContextFromOptions(command.optsWithGlobals<GlobalKubeOptions>());
      const topology = await discoverTarget(kube, { statefulSet: flags.statefulset, pod: flags.pod, selector: flags.selector, container: flags.container });
      const rows = await collectStatus(topology.members, execStatusProbe(containerCommand(kube)));
      const record = { namespace: topology.namespace, workload: topology.workload.name, members: rows };
      process.stdout.write(output ? await formatRecord(record, output) : renderStatusTable(rows));
      const err = flags.check ? checkError(rows) : unhealthyError(rows);
      if (err) throw err;
    });
}
