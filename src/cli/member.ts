import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { formatRecord, parseOutputFormat } from '../ui/format.js';
import { loadCluster, workloadOptions, type WorkloadFlags } from './cluster.js';

/** Flags of `member replace` as commander parses them. */
interface ReplaceFlags extends WorkloadFlags {
  output?: string;
  dryRun?: boolean;
  yes?: boolean;
  force?: boolean;
  timeout?: string;
  utilityImage?: string;
}

const say = (line: string): void => void process.stderr.write(line + '\n');

/** Registers `kubectl etcd member replace`. */
export function register(program: Command): void {
  const member = program.command('member').description('operate on one etcd member');
  workloadOptions(member.command('replace').argument('<pod>', 'the pod of the failed member')
    .description('bring one failed or corrupt member back while the others keep serving: it rejoins as a new member ID with its own name and peer URL, through its own pod; its old data is set aside on its volume, never deleted'))
    .option('--dry-run', 'print the plan, change nothing')
    .option('-y, --yes', 'do not ask for confirmation')
    .option('--force', 'replace the member even though it is healthy')
    .option('--timeout <duration>', 'how long to wait for the join and for the restarted member, each (default 300s)')
    .option('--utility-image <image>', 'image with a shell for the steps an etcd image without one (distroless) cannot run (default docker.io/library/busybox:1.36)')
    .option('-o, --output <format>', 'output format of the result: text (default), json or yaml')
    .addHelpText('after', [
      '',
      'Refuses, before any change: a pod that is not a member; a cluster whose other members would not keep quorum',
      '(use kubectl etcd restore); another unhealthy member; a healthy target (unless --force); a member volume',
      'without room for a new copy of the data beside the kept one (the largest db, a 64 MB WAL segment, a tenth more).',
      'Needs Kubernetes 1.25+ (ephemeral containers) and the right to update pods/ephemeralcontainers.',
      'Interrupted at any point, running it again finishes.',
      '',
      'Examples:',
      '  kubectl etcd member replace kube-etcd-1 -n uc1 --dry-run',
      '  kubectl etcd member replace kube-etcd-1 -n uc1 --yes',
    ].join('\n'))
    .action(async (pod: string, flags: ReplaceFlags, command: Command) => {
      const output = flags.output === undefined || flags.output === 'text' ? undefined : parseOutputFormat(flags.output);
      const { parseRequestTimeout } = await import('../kube/config.js');
      const timeoutMs = parseRequestTimeout(flags.timeout, '--timeout') ?? 300_000;
      const { topology, run, probe, rows } = await loadCluster({ ...flags, ...(flags.pod || flags.statefulset || flags.selector ? {} : { pod }) }, command);
      const { planReplace, admitJoin, checkReplaceSpace, replaceMember } = await import('../etcd/replace.js');
      const { kubeContextFromOptions } = await import('./kubecontext.js');
      const { compactUtc } = await import('../ui/time.js');
      const kube = kubeContextFromOptions(command.optsWithGlobals());
      const deps = { kube, run, probe, say };
      const opts = { pod, force: flags.force === true, timeoutMs, stamp: compactUtc(new Date()), ...(flags.utilityImage ? { utilityImage: flags.utilityImage } : {}) };
      const plan = await planReplace(deps, topology, rows, opts);
      await admitJoin(deps, plan);
      process.stderr.write(`plan for member "${plan.target.member.name}" (pod "${pod}"):\n${plan.steps.map((s, i) => `  ${i + 1}. ${s.text}`).join('\n')}\n`);
      if (flags.dryRun) {
        const space = await checkReplaceSpace(deps, plan, { dryRun: true, timeoutMs });
        if (space) say(space);
        process.stdout.write('dry run: nothing changed\n');
        return;
      }
      if (!flags.yes) {
        const { ask } = await import('../ui/ask.js');
        const answer = await ask(`this replaces member "${plan.target.member.name}"; type its pod name to go on: `);
        if (answer === undefined) throw new UsageError('member replace changes the cluster and needs confirmation, but there is no terminal to ask on', 'pass --yes, or --dry-run to only see the plan');
        if (answer.trim() !== pod) throw new UsageError(`"${answer.trim()}" is not "${pod}"; nothing was changed`, 'run again and type the pod name, or pass --yes');
      }
      const space = await checkReplaceSpace(deps, plan, { dryRun: false, timeoutMs });
      if (space) say(space);
      const result = await replaceMember(deps, plan, opts);
      if (output) process.stdout.write(await formatRecord(result, output));
      else {
        process.stdout.write(`member "${result.name}" (pod "${result.pod}") replaced: ${result.oldId ? `member ${result.oldId} → ` : ''}member ${result.newId}, in ${result.seconds.toFixed(0)} s\n`);
        if (result.kept.length) process.stdout.write(`old data kept on its volume: ${result.kept.join(', ')}\n`);
      }
    });
}
