import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { formatRecord, parseOutputFormat } from '../ui/format.js';
import { renderTable } from '../ui/table.js';
import { loadCluster, workloadOptions, type WorkloadFlags } from './cluster.js';
import type { GlobalKubeOptions } from './kubeflags.js';

/** Flags of `schedule create` as commander parses them. */
interface CreateFlags extends WorkloadFlags {
  name?: string;
  every?: string;
  keep?: string;
  to?: string;
  size?: string;
  storageClass?: string;
  timeZone: string;
  deadline: string;
  dryRun?: boolean;
  output?: string;
  utilityImage?: string;
  verifyRestore?: boolean;
}

const say = (line: string): void => void process.stderr.write(line + '\n');

async function kubeOf(command: Command) {
  const { kubeContextFromOptions } = await import('./kubecontext.js');
  return kubeContextFromOptions(command.optsWithGlobals<GlobalKubeOptions>());
}

/** Registers `kubectl etcd schedule create|list|status|delete`. */
export function register(program: Command): void {
  const group = program.command('schedule').description('back up by itself, in the cluster: a CronJob that takes a verified snapshot with the etcd image and keeps the newest N on a volume');
  workloadOptions(group.command('create').description('create the CronJob, its ServiceAccount (no token, no rights: it talks only to etcd) and its backup volume'))
    .requiredOption('--every <cron>', 'when to back up: a five-field cron schedule, e.g. "0 */6 * * *" (in --time-zone)')
    .requiredOption('--keep <n>', 'how many backups of this cluster the volume keeps (older ones are deleted after each good backup)')
    .option('--name <name>', 'the schedule\'s name, also its CronJob\'s (default: <workload>-backup)')
    .option('--to <pvc/NAME>', 'write to this existing claim in the etcd namespace (default: a new claim, <name>s)')
    .option('--size <quantity>', 'size of the new claim (default: keep+1 copies of the largest db and a quarter more, at least 1Gi)')
    .option('--storage-class <name>', 'storage class of the new claim (default: the cluster\'s default)')
    .option('--time-zone <tz>', 'the time zone --every is read in', 'Etc/UTC')
    .option('--deadline <duration>', 'how long one backup may take before it is failed', '1h')
    .option('--utility-image <image>', 'for an etcd image without a shell (distroless): the shell image the backup script runs in, the etcd image beside it as a sidecar (default docker.io/library/busybox:1.36)')
    .option('--verify-restore', 'a restore drill before each backup is saved: etcd of the members\' release started on the restored snapshot in the pod must serve its revision (recorded in the backup\'s record)')
    .option('--dry-run', 'check everything (server-side dry run of each object) and create nothing')
    .option('-o, --output <format>', 'with --dry-run, print the objects: yaml or json')
    .addHelpText('after', [
      '',
      'Each run tries the members in order (followers first), verifies the snapshot (etcdctl/etcdutl snapshot status,',
      'a restore of it, its sha256) and writes it with its JSON record as `kubectl etcd backup --dir` does; a failed run',
      'fails its Job (an Event) and kubectl etcd schedule status says why.',
      '',
      'Examples:',
      '  kubectl etcd schedule create -n uc1 --every "0 */6 * * *" --keep 7',
      '  kubectl etcd schedule create -n uc1 --every "30 2 * * *" --keep 14 --to pvc/etcd-backups --dry-run -o yaml',
    ].join('\n'))
    .action(async (flags: CreateFlags, command: Command) => {
      const output = parseOutputFormat(flags.output);
      if (output && !flags.dryRun) throw new UsageError('-o prints the objects of a --dry-run', 'add --dry-run');
      const keep = Number(flags.keep);
      if (!/^\d+$/.test(flags.keep ?? '') || keep < 1) throw new UsageError(`--keep must be a whole number of at least 1, not "${flags.keep}"`, 'e.g. --keep 7');
      const { parseRequestTimeout } = await import('../kube/config.js');
      const deadlineMs = parseRequestTimeout(flags.deadline, '--deadline');
      if (!deadlineMs || deadlineMs < 60_000) throw new UsageError(`--deadline "${flags.deadline}" is too short`, 'give a minute or more, e.g. --deadline 1h');
      const { topology, run, rows } = await loadCluster(flags, command);
      const { planSchedule, admitSchedule, createSchedule } = await import('../schedule/create.js');
      const { listMembers } = await import('../etcd/replace.js');
      const kube = await kubeOf(command);
      const plan = await planSchedule({ kube, run, listMembers: (asker) => listMembers(run, asker), warn: (l) => say(`warning: ${l}`) }, topology, rows.map((r) => r.status), {
        ...(flags.name ? { name: flags.name } : {}), every: flags.every!, keep, ...(flags.to !== undefined ? { to: flags.to } : {}),
        ...(flags.size ? { size: flags.size } : {}), ...(flags.storageClass ? { storageClass: flags.storageClass } : {}),
        timeZone: flags.timeZone, deadlineSeconds: Math.ceil(deadlineMs / 1000), ...(flags.utilityImage ? { utilityImage: flags.utilityImage } : {}), verifyRestore: flags.verifyRestore === true,
      });
      const { spec } = plan;
      await admitSchedule(kube, plan);
      say(`schedule "${spec.name}" in namespace "${spec.namespace}": back up ${spec.workload} at "${spec.every}" (${spec.timeZone}), keep ${spec.keep}, on claim "${spec.volume.claimName}"${spec.volume.create ? ` (new, ${spec.volume.create.size})` : ''}`);
      say(`  members, in order: ${plan.endpoints.map((e) => `${e.pod ?? e.member} (${e.url})`).join(', ')}; ${plan.viaTools ? `image ${spec.tools!.image} (no shell: ${plan.tool} run from ${spec.image} beside it)` : `image ${spec.image} (${plan.tool})`}`);
      if (flags.dryRun) {
        if (output) process.stdout.write(await formatRecord({ apiVersion: 'v1', kind: 'List', items: plan.objects.map((o) => o.manifest) }, output));
        else process.stdout.write(`dry run: the API server admits ${plan.objects.map((o) => `${o.kind.toLowerCase()}/${o.name}`).join(', ')}; nothing created\n`);
        return;
      }
      await createSchedule(kube, plan);
      process.stdout.write(`created ${plan.objects.map((o) => `${o.kind.toLowerCase()}/${o.name}`).join(', ')}\n`);
      process.stdout.write(`first backup now: kubectl create job --from=cronjob/${spec.name} ${spec.name}-first -n ${spec.namespace}\n`);
    });

  group.command('list').description('list the schedules of the namespace, with their last good backup and last failure')
    .option('-o, --output <format>', 'output format: table (default), json or yaml')
    .addHelpText('after', '\nExamples:\n  kubectl etcd schedule list -n uc1')
    .action(async (flags: { output?: string }, command: Command) => {
      const output = flags.output === 'table' ? undefined : parseOutputFormat(flags.output);
      const kube = await kubeOf(command);
      const { listSchedules } = await import('../schedule/ops.js');
      const states = await listSchedules(kube, kube.namespace);
      if (output) process.stdout.write(await formatRecord({ namespace: kube.namespace, schedules: states }, output));
      else if (states.length === 0) process.stdout.write(`no schedules in namespace "${kube.namespace}"\n`);
      else {
        process.stdout.write(renderTable(['name', 'every', 'keep', 'volume', 'last good backup', 'last failure'],
          states.map((s) => [s.name, `${s.schedule}${s.suspended ? ' (suspended)' : ''}`, String(s.keep ?? '-'), s.volume ?? '-', s.lastSuccess ?? 'none', s.lastFailure ? `${s.lastFailure.at ?? ''} ${s.lastFailure.reason}`.trim() : '-'])));
      }
    });

  group.command('status').argument('<name>', 'the schedule').description('when the schedule last produced a good backup, and why its last run failed')
    .option('--max-age <duration>', 'exit 3 when the newest good backup is older than this (e.g. 25h, 2d) or there is none (for monitoring)')
    .option('-o, --output <format>', 'output format: text (default), json or yaml')
    .addHelpText('after', '\nExamples:\n  kubectl etcd schedule status kube-etcd-backup -n uc1\n  kubectl etcd schedule status kube-etcd-backup -n uc1 --max-age 7h   # exit code 3 when too old')
    .action(async (name: string, flags: { maxAge?: string; output?: string }, command: Command) => {
      const output = flags.output === undefined || flags.output === 'text' ? undefined : parseOutputFormat(flags.output);
      const { getSchedule, checkAge, parseMaxAge } = await import('../schedule/ops.js');
      const maxAge = flags.maxAge !== undefined ? parseMaxAge(flags.maxAge) : undefined;
      const kube = await kubeOf(command);
      const s = await getSchedule(kube, kube.namespace, name);
      if (output) process.stdout.write(await formatRecord(s, output));
      else {
        process.stdout.write([
          `schedule "${s.name}" (namespace "${s.namespace}"): ${s.workload ?? '?'} at "${s.schedule}"${s.timeZone ? ` (${s.timeZone})` : ''}${s.suspended ? ', suspended' : ''}, keep ${s.keep ?? '?'} on claim "${s.volume ?? '?'}"`,
          `last good backup: ${s.lastSuccess ?? 'none yet'}`,
          `last run started: ${s.lastRun ?? 'never'}${s.active ? ` (${s.active} running now)` : ''}`,
          ...(s.lastFailure ? [`last failure: ${s.lastFailure.at ?? ''} job ${s.lastFailure.job}: ${s.lastFailure.reason}`] : []),
        ].join('\n') + '\n');
      }
      if (maxAge !== undefined) checkAge(s, maxAge);
    });

  group.command('delete').argument('<name>', 'the schedule').description('delete the CronJob with its jobs and pods, and its ServiceAccount; the backup volume is kept unless --delete-backups')
    .option('--delete-backups', 'also delete the backup volume the schedule created, and every backup on it')
    .option('--timeout <duration>', 'how long to wait for the jobs and pods to go', '120s')
    .addHelpText('after', '\nExamples:\n  kubectl etcd schedule delete kube-etcd-backup -n uc1\n  kubectl etcd schedule delete kube-etcd-backup -n uc1 --delete-backups')
    .action(async (name: string, flags: { deleteBackups?: boolean; timeout: string }, command: Command) => {
      const { parseRequestTimeout } = await import('../kube/config.js');
      const timeoutMs = parseRequestTimeout(flags.timeout, '--timeout') ?? 120_000;
      const { deleteSchedule } = await import('../schedule/ops.js');
      const kube = await kubeOf(command);
      const r = await deleteSchedule(kube, kube.namespace, name, { deleteBackups: flags.deleteBackups === true, timeoutMs }, say);
      process.stdout.write(`schedule "${name}" deleted${r.kept ? `; the backups stay on claim "${r.kept}" (kubectl delete pvc ${r.kept} -n ${kube.namespace} removes them)` : ''}\n`);
    });
}
