import type { Command } from 'commander';
import { inspectSnapshot, type InspectOptions } from '../etcd/snapshot/inspect.js';
import { parseOutputFormat } from '../ui/format.js';

/** Flags of `inspect` as commander parses them. */
interface InspectFlags {
  byNamespace?: boolean;
  output?: string;
}

/** Turns the parsed flags into InspectOptions (-o table is the default human format). */
export function inspectOptions(snapshot: string, flags: InspectFlags): InspectOptions {
  const output = flags.output === 'table' ? undefined : parseOutputFormat(flags.output);
  return { snapshot, byNamespace: flags.byNamespace === true, output };
}

/** Registers `kubectl etcd inspect SNAPSHOT`: offline integrity, etcd status numbers and object counts. */
export function register(program: Command): void {
  program
    .command('inspect')
    .description('check a snapshot file offline: sha256 trailer, bbolt integrity, revision, keys and Kubernetes objects')
    .argument('<snapshot>', 'snapshot file (from etcdctl snapshot save or kubectl etcd backup) or a member/snap/db file')
    .option('--by-namespace', 'count Kubernetes objects per namespace as well as per resource')
    .option('-o, --output <format>', 'output format: table (default), json or yaml')
    .addHelpText(
      'after',
      `
Examples:
  kubectl etcd inspect snapshot.db
  kubectl etcd inspect /backups/uc1-kube-etcd-20261125T180405Z-rev42.db --by-namespace
  kubectl etcd inspect snapshot.db -o json

Exit codes: 0 the snapshot is valid, 3 it is damaged (truncated, corrupt or wrong trailer), 1 it cannot be read.`,
    )
    .action(async (snapshot: string, flags: InspectFlags) => {
      await inspectSnapshot(inspectOptions(snapshot, flags), process.stdout);
    });
}
