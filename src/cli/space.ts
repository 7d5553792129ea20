import type { Command } from 'commander';
import { PluginError } from '../errors.js';
import { formatRecord, parseOutputFormat } from '../ui/format.js';
import { formatBytes } from '../ui/bytes.js';
import { renderTable } from '../ui/table.js';
import { loadCluster, workloadOptions, type WorkloadFlags } from './cluster.js';
import type { DefragResult } from '../etcd/maintenance.js';

/** Flags of `compact`, `defrag` and `recover-space` as commander parses them. */
interface SpaceFlags extends WorkloadFlags {
  output?: string;
  dryRun?: boolean;
  keepRevisions?: string;
  physical?: boolean;
}

/** The cluster flags plus --dry-run and -o. */
function spaceOptions(command: Command): Command {
  return workloadOptions(command)
    .option('--dry-run', 'print what would be done, change nothing')
    .option('-o, --output <format>', 'output format of the result: table (default), json or yaml');
}

/** Finds the cluster and asks every member for its status; the maintenance modules with it. */
async function load(flags: SpaceFlags, command: Command) {
  const cluster = await loadCluster(flags, command);
  return { ...cluster, maintenance: await import('../etcd/maintenance.js'), alarm: await import('../etcd/alarm.js') };
}

const say = (line: string): void => void process.stderr.write(line + '\n');

function defragTable(results: DefragResult[]): string {
  return renderTable(['pod', 'role', 'before', 'after', 'seconds'], results.map((r) => [r.pod, r.role, r.before === undefined ? '-' : formatBytes(r.before), r.after === undefined ? '-' : formatBytes(r.after), r.seconds.toFixed(1)]));
}

/** Registers `kubectl etcd compact`, `defrag` and `recover-space`. */
export function register(program: Command): void {
  spaceOptions(program.command('compact').description("compact etcd's key history to the current revision (or keep the last N revisions); the whole cluster, in one request"))
    .option('--keep-revisions <n>', 'keep this many revisions of history before the current one (default 0)')
    .option('--physical', 'wait until the member that compacts has removed the compacted revisions from its database (the others follow on their own)')
    .addHelpText('after', '\nExamples:\n  kubectl etcd compact -n uc1\n  kubectl etcd compact -n uc1 --keep-revisions 10000 --physical')
    .action(async (flags: SpaceFlags, command: Command) => {
      const output = flags.output === 'table' ? undefined : parseOutputFormat(flags.output);
      const keep = (await import('../etcd/maintenance.js')).parseKeep(flags.keepRevisions);
      const { maintenance: m, alarm, rows, run } = await load(flags, command);
      const head = m.headRevision(rows);
      const target = m.compactionTarget(head, keep);
      const via = alarm.answeringMember(rows.map((r) => r.member), rows.map((r) => r.status));
      if (target === undefined) {
        process.stdout.write(`nothing to compact: the head revision is ${head} and ${keep} revisions are kept\n`);
        return;
      }
      if (flags.dryRun) {
        process.stdout.write(`would compact to revision ${target} (head ${head}, keeping ${keep}) (dry run: nothing changed)\n`);
        return;
      }
      const result = await m.compact(run, via, target, flags.physical === true);
      const record = { head, keep, ...result, physical: flags.physical === true };
      if (output) process.stdout.write(await formatRecord(record, output));
      else process.stdout.write(result.already ? `already compacted at or past revision ${target}\n` : `compacted to revision ${target} (head ${head}, kept ${keep})\n`);
    });

  spaceOptions(program.command('defrag').description('defragment every member in turn, followers first and the leader last, each answering again before the next; prints the size before and after'))
    .addHelpText('after', '\nExamples:\n  kubectl etcd defrag -n uc1 --dry-run\n  kubectl etcd defrag -n uc1')
    .action(async (flags: SpaceFlags, command: Command) => {
      const output = flags.output === 'table' ? undefined : parseOutputFormat(flags.output);
      const { maintenance: m, rows, run, probe } = await load(flags, command);
      const order = m.defragOrder(rows);
      if (flags.dryRun) {
        process.stdout.write(`would defragment, in this order: ${order.map((r) => `"${r.member.pod}" (${r.status.isLeader ? 'leader' : 'follower'}${r.status.dbSize !== undefined ? `, ${formatBytes(r.status.dbSize)}` : ''})`).join(', ')} (dry run: nothing changed)\n`);
        return;
      }
      const results = await m.rollingDefrag(run, probe, rows, say);
      process.stdout.write(output ? await formatRecord({ members: results }, output) : defragTable(results));
    });

  spaceOptions(program.command('recover-space').description("recover from NOSPACE (\"mvcc: database space exceeded\"): compact to the current revision, defragment every member, disarm the alarm; refuses to disarm while the data itself still fills the quota"))
    .addHelpText('after', '\nExamples:\n  kubectl etcd recover-space -n uc1 --dry-run\n  kubectl etcd recover-space -n uc1')
    .action(async (flags: SpaceFlags, command: Command) => {
      const output = flags.output === 'table' ? undefined : parseOutputFormat(flags.output);
      const { maintenance: m, alarm, rows, run, probe, statuses } = await load(flags, command);
      const members = rows.map((r) => r.member);
      const via = alarm.answeringMember(members, rows.map((r) => r.status));
      const alarms = await alarm.listAlarms(run, via, rows.map((r) => r.status));
      // Every refusal before the first change: a CORRUPT alarm, a member that does not answer.
      const corrupt = alarm.disarmRefusal(alarms.filter((a) => a.alarm === 'CORRUPT'), []);
      if (corrupt) throw corrupt;
      if (!alarms.some((a) => a.alarm === 'NOSPACE')) {
        process.stdout.write('no NOSPACE alarm: nothing to recover (kubectl etcd compact and defrag free space without one)\n');
        return;
      }
      const order = m.defragOrder(rows).map((r) => `"${r.member.pod}"`).join(', ');
      const head = m.headRevision(rows);
      if (flags.dryRun) {
        process.stdout.write(`would compact to revision ${head}, defragment ${order} in that order, then disarm ${alarms.map((a) => `${a.alarm} on ${alarm.describe(a)}`).join(', ')} (dry run: nothing changed)\n`);
        return;
      }
      say(`compacting to revision ${head}`);
      const compacted = await m.compact(run, via, head, true);
      const results = await m.rollingDefrag(run, probe, await statuses(), say);
      const after = await statuses();
      const full = alarm.disarmRefusal(alarms, after.map((r) => r.status));
      if (full) {
        throw new PluginError(
          `compacted and defragmented (${results.map((r) => `"${r.pod}" ${m.sizeChange(r)}`).join(', ')}), but the data itself still fills the quota: ${full.message.replace(/^refusing to disarm NOSPACE: /, '')}; NOSPACE stays raised`,
          'raise the quota (--quota-backend-bytes or ETCD_QUOTA_BACKEND_BYTES on every member, then restart them one at a time) or delete keys you do not need, then run kubectl etcd recover-space again',
        );
      }
      await alarm.disarmAlarms(run, via, after.map((r) => r.status), alarms);
      const record = { compactedTo: compacted.revision, members: results, disarmed: alarms };
      if (output) process.stdout.write(await formatRecord(record, output));
      else process.stdout.write(`${defragTable(results)}compacted to revision ${compacted.revision}; disarmed ${alarms.map((a) => `${a.alarm} on ${alarm.describe(a)}`).join(', ')}\n`);
    });
}
