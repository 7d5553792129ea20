import { Command, CommanderError } from 'commander';
import { exitCodeOf, formatError, ExitCode } from '../errors.js';
import { VERSION } from '../version.js';
import { addKubeFlags } from './kubeflags.js';
import * as backup from './backup.js';
import * as inspect from './inspect.js';
import * as restore from './restore.js';
import * as status from './status.js';

/** Builds the `kubectl etcd` command tree; each subcommand registers itself from its own file. */
export function buildProgram(): Command {
  const program = new Command('kubectl etcd')
    .description('Back up and restore etcd clusters that run inside Kubernetes')
    .version(VERSION, '--plugin-version', 'print the plugin version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  program
    .command('version')
    .description('print the plugin version')
    .action(() => {
      process.stdout.write(`kubectl-etcd ${VERSION}\n`);
    });
  addKubeFlags(program);
  for (const command of [backup, restore, inspect, status]) command.register(program);
  return program;
}

/** Entry point: parses argv, runs the command, maps any error to one stderr line and an exit code. */
export async function run(argv: string[]): Promise<void> {
  const program = buildProgram();
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
