import type { Command } from 'commander';
import { formatRecord, parseOutputFormat } from '../ui/format.js';
import { renderTable } from '../ui/table.js';
import type { GlobalKubeOptions } from './kubeflags.js';

/** Flags of `alarm list` and `alarm disarm` as commander parses them. */
interface AlarmFlags {
  statefulset?: string;
  pod?: string;
  selector?: string;
  container?: string;
  output?: string;
  dryRun?: boolean;
  force?: boolean;
}

/** The workload flags both subcommands take. */
function workloadOptions(command: Command): Command {
  return command
    .option('--statefulset <name>', 'the etcd StatefulSet (default: the only etcd workload in the namespace)')
    .option('--pod <name>', 'an etcd pod (selects its workload)')
    .option('-l, --selector <selector>', 'label selector of the etcd pods (e.g. component=etcd)')
    .option('-c, --container <name>', 'the etcd container (default: detected)');
}

/** Finds the cluster, asks every member for its status, and lists the alarms through one that answered. */
async function load(flags: AlarmFlags, command: Command) {
  // Loaded on use: they pull in @kubernetes/client-node, which --help does not need.
  const { kubeContextFromOptions } = await import('./kubecontext.js');
  const { discoverTarget } = await import('../etcd/discovery/lister.js');
  const { containerCommand } = await import('../kube/exec.js');
  const { collectStatus, execStatusProbe } = await import('../etcd/status.js');
  const alarm = await import('../etcd/alarm.js');
  const kube = kubeContextFromOptions(command.optsWithGlobals<GlobalKubeOptions>());
  const topology = await discoverTarget(kube, { statefulSet: flags.statefulset, pod: flags.pod, selector: flags.selector, container: flags.container });
  const run = containerCommand(kube);
  const rows = await collectStatus(topology.members, execStatusProbe(run));
  const asker = alarm.answeringMember(topology.members, rows);
  const alarms = await alarm.listAlarms(run, asker, rows);
  return { topology, run, rows, asker, alarms, alarm };
}

/** Registers `kubectl etcd alarm list|disarm`. */
export function register(program: Command): void {
  const group = program
    .command('alarm')
    .description("list or disarm etcd's alarms (NOSPACE: the database reached its quota; CORRUPT: a member's data differs)");
  workloadOptions(group.command('list').description('list the raised alarms with the member and pod each is on'))
    .option('-o, --output <format>', 'output format: table (default), json or yaml')
    .addHelpText('after', '\nExamples:\n  kubectl etcd alarm list -n uc1\n  kubectl etcd alarm list -n etcd -o json')
    .action(async (flags: AlarmFlags, command: Command) => {
      const output = flags.output === 'table' ? undefined : parseOutputFormat(flags.output);
      const { topology, alarms } = await load(flags, command);
      const record = { namespace: topology.namespace, workload: topology.workload.name, alarms };
      if (output) process.stdout.write(await formatRecord(record, output));
      else if (alarms.length === 0) process.stdout.write('no alarms\n');
      else process.stdout.write(renderTable(['member id', 'pod', 'alarm'], alarms.map((a) => [a.memberId, a.pod ?? '-', a.alarm])));
    });
  workloadOptions(group.command('disarm').description('disarm every raised alarm, refusing while a database is still too full for writes or a member is CORRUPT'))
    .option('--dry-run', 'say what would be disarmed, change nothing')
    .option('--force', 'disarm NOSPACE even while a database still fills 90% of its quota or more')
    .addHelpText('after', '\nExamples:\n  kubectl etcd alarm disarm -n uc1 --dry-run\n  kubectl etcd alarm disarm -n uc1')
    .action(async (flags: AlarmFlags, command: Command) => {
      const { run, rows, asker, alarms, alarm } = await load(flags, command);
      if (alarms.length === 0) {
        process.stdout.write('no alarms: nothing to disarm\n');
        return;
      }
      const refusal = alarm.disarmRefusal(alarms, rows);
      if (refusal && !(flags.force && !alarms.some((a) => a.alarm === 'CORRUPT'))) throw refusal;
      const what = alarms.map((a) => `${a.alarm} on ${alarm.describe(a)}`).join(', ');
      if (flags.dryRun) {
        process.stdout.write(`would disarm: ${what} (dry run: nothing changed)\n`);
        return;
      }
      await alarm.disarmAlarms(run, asker, rows, alarms);
      process.stdout.write(`disarmed: ${what}\n`);
    });
}
