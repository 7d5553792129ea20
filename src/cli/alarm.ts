import type { Command } from 'commander';
import { formatRecord, parseOutputFormat } from '../ui/format.js';
import { renderTable } from '../ui/table.js';
import { loadCluster, workloadOptions, type WorkloadFlags } from './cluster.js';

/** Flags of `alarm list` and `alarm disarm` as commander parses them. */
interface AlarmFlags extends WorkloadFlags {
  output?: string;
  dryRun?: boolean;
  force?: boolean;
}

/** Finds the cluster, asks every member for its status, and lists the alarms through one that answered. */
async function load(flags: AlarmFlags, command: Command) {
  const cluster = await loadCluster(flags, command);
  const alarm = await import('../etcd/alarm.js');
  const statuses = cluster.rows.map((r) => r.status);
  const asker = alarm.answeringMember(cluster.topology.members, statuses);
  const alarms = await alarm.listAlarms(cluster.run, asker, statuses);
  return { topology: cluster.topology, run: cluster.run, rows: statuses, asker, alarms, alarm };
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
