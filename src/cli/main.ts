import { Command, CommanderError } from 'commander';
import { exitCodeOf, formatError, ExitCode } from '../errors.js';
import { VERSION } from '../version.js';
import { complete, formatCompletion } from './completion.js';
import { keepYoungGenerationSmall } from './heap.js';
import { addKubeFlags } from './kubeflags.js';
import * as alarm from './alarm.js';
import * as backup from './backup.js';
import * as inspect from './inspect.js';
import * as restore from './restore.js';
import * as schedule from './schedule.js';
import * as snapshots from './snapshots.js';
import * as space from './space.js';
import * as member from './member.js';
import * as status from './status.js';
import * as verify from './verify.js';
import * as version from './version.js';

const ROOT_HELP = `
Examples:
  # Take a verified snapshot of the etcd StatefulSet in namespace uc1
  kubectl etcd backup -n uc1 -f snapshot.db

  # The same against another context of a merged KUBECONFIG, result as JSON
  kubectl etcd backup --context admin -n uc1 --dir /backups --keep 7 -o json

  # Check a snapshot offline, then look at the live members
  kubectl etcd inspect snapshot.db
  kubectl etcd status -n uc1

Exit codes: 0 ok, 1 failure, 2 usage error, 3 verification failed, 130/143 interrupted (SIGINT/SIGTERM),
141 stdout closed by its reader (as kubectl).
Output: data on stdout (-o json|yaml for machines); progress and logs on stderr, progress
only on a terminal; NO_COLOR=1 turns colour off. -v N prints more to stderr.`;

/** Builds the `kubectl etcd` command tree; each subcommand registers itself from its own file. */
export function buildProgram(): Command {
  const program = new Command('kubectl etcd')
    .description('Back up, restore and maintain etcd clusters that run inside Kubernetes')
    .version(VERSION, '--plugin-version', 'print the plugin version')
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText('after', ROOT_HELP)
    .exitOverride();
  // V8's heap flags before any command's work (not at start: node:v8 costs --help ~2 ms, and
  // help and usage errors allocate nothing worth them). A parent's preAction hook runs before
  // every subcommand's action.
  program.hook('preAction', keepYoungGenerationSmall);
  addKubeFlags(program);
  for (const command of [backup, restore, inspect, verify, snapshots, schedule, status, alarm, space, member, version]) command.register(program);
  return program;
}

/** The exit status of a process a SIGPIPE ended (128 + 13), as a shell reports it. */
export const EXIT_CLOSED_STDOUT = 141;

/**
 * Watches stdout for write errors no command handles. A reader that stopped reading
 * (`kubectl etcd --help | head -1`, `status -o json | head`) ends the command at once and quietly
 * with status 141, as SIGPIPE ends a C or Go tool such as kubectl; any other error is one line on
 * stderr and status 1. A command that writes data to stdout and watches it itself (backup -f -,
 * where a closed reader is a failed backup) has its own 'error' listener, and this one leaves the
 * error to it.
 */
export function watchStdout(stdout: NodeJS.EventEmitter, exit: (code: number) => void, stderr: { write(s: string): unknown }): void {
  const onError = (err: NodeJS.ErrnoException) => {
    if (stdout.listenerCount('error') > 1) return;
    if (err.code === 'EPIPE') return exit(EXIT_CLOSED_STDOUT);
    stderr.write(`error: cannot write to stdout: ${err.code ?? err.message}\n`);
    exit(ExitCode.failure);
  };
  stdout.on('error', onError);
}

/** Entry point: parses argv, runs the command, maps any error to one stderr line and an exit code. */
export async function run(argv: string[]): Promise<void> {
  watchStdout(process.stdout, (code) => process.exit(code), process.stderr);
  const program = buildProgram();
  // kubectl_complete-etcd (kubectl's plugin completion) calls `kubectl-etcd __complete WORD… CURRENT`.
  if (argv[2] === '__complete' || argv[2] === '__completeNoDesc') {
    await keepYoungGenerationSmall(); // before the lazy chunk: its code cache was made under these flags
    const { clusterCompletionSources } = await import('./kubecontext.js');
    const result = await complete(program, argv.slice(3), clusterCompletionSources());
    process.stdout.write(formatCompletion(result, argv[2] === '__complete'));
    return;
  }
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
      return;
    }
    process.stderr.write(formatError(err) + '\n');
    process.exitCode = exitCodeOf(err);
  }
}
