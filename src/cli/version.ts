import type { Command } from 'commander';
import { isSea } from 'node:sea';
import { VERSION } from '../version.js';
import { formatRecord, parseOutputFormat } from '../ui/format.js';

/** What `kubectl etcd version -o json` prints. */
export interface VersionInfo {
  /** The plugin version with kubectl's "v" prefix, as in the krew manifest. */
  version: string;
  /** The Node.js runtime that runs the plugin (embedded in the single executable, or on PATH). */
  nodeVersion: string;
  /** Go-style os/arch, as krew's selectors name them. */
  platform: string;
  /** True when running as the single executable built by `npm run release`. */
  singleExecutable: boolean;
}

const GO_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386' };
const GO_OS: Record<string, string> = { win32: 'windows' };

/** Collects the version facts of this process. */
export function versionInfo(): VersionInfo {
  return {
    version: `v${VERSION}`,
    nodeVersion: process.version,
    platform: `${GO_OS[process.platform] ?? process.platform}/${GO_ARCH[process.arch] ?? process.arch}`,
    singleExecutable: isSea(),
  };
}

/** The one human line of `kubectl etcd version`. */
export function describeVersion(info: VersionInfo): string {
  return `kubectl-etcd ${info.version} (${info.platform}, node ${info.nodeVersion}${info.singleExecutable ? ', single executable' : ''})`;
}

/** Registers `kubectl etcd version`. */
export function register(program: Command): void {
  program
    .command('version')
    .description('print the plugin version, its platform and the Node.js runtime it carries')
    .option('-o, --output <format>', 'output format: json or yaml')
    .addHelpText('after', '\nExamples:\n  kubectl etcd version\n  kubectl etcd version -o json')
    .action(async (flags: { output?: string }) => {
      const output = parseOutputFormat(flags.output);
      const info = versionInfo();
      process.stdout.write(output ? await formatRecord(info, output) : describeVersion(info) + '\n');
    });
}
