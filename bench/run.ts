// `npm run bench [-- --quick | --huge] [--etcd 3.4|3.5] [--rounds N] [--restore-rounds N] [--cluster DIR] [--keep-cluster]`
// (development: --sizes 64,512 --no-restore --no-build --dev-build; --cluster reuses a cluster left by --keep-cluster)
//
// The plugin timed is what users run: the shipped single executable (built for linux-x64 first),
// or with --dev-build the development build (bin/kubectl-etcd, node loading dist/ and node_modules/).
//
// Benchmarks kubectl-etcd against the local test cluster (real etcd, real kubectl): backup at
// 64 MiB and 512 MiB (and 2 GiB with --huge) against the in-pod floor and the manual kubectl
// way, restore against the manual runbook, inspect against etcd's own reader, start-up against
// kubectl. Every member runs etcd --etcd (3.4 unless told), and so do the runbook's and
// inspect's tools (etcdutl on 3.5). Prints a table and writes bench/results/<UTC date>.json
// (<date>-quick.json with --quick, <date>-etcd3.5.json with --etcd 3.5).
// Never part of `npm test`. Progress goes to stderr, the table to stdout.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from '../test/sim/apiserver/procs.js';
import { DEFAULT_ETCD_MINOR, ETCD_MINORS, etcdBinaries, isEtcdMinor, type EtcdMinor } from '../test/sim/etcd-versions.js';
import { requireCommand, requireRoot } from '../test/sim/harness.js';
import { BenchCluster } from './lib/cluster.js';
import { must, rssMethod } from './lib/proc.js';
import { availableParallelism } from 'node:os';
import { renderReport, verdicts, type BenchResults } from './lib/report.js';
import { benchBackupAtSize, growTo } from './sections/backup.js';
import { benchInspect } from './sections/inspect.js';
import { benchRestore } from './sections/restore.js';
import { benchStartup } from './sections/startup.js';

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    huge: { type: 'boolean', default: false },
    etcd: { type: 'string', default: DEFAULT_ETCD_MINOR },
    rounds: { type: 'string' },
    'restore-rounds': { type: 'string' },
    cluster: { type: 'string' },
    'keep-cluster': { type: 'boolean', default: false },
    'no-build': { type: 'boolean', default: false },
    'dev-build': { type: 'boolean', default: false },
    'no-restore': { type: 'boolean', default: false },
    sizes: { type: 'string' },
  },
});

const log = (l: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${l}\n`);
const MIB = 1024 * 1024;

/** The etcd minor of `--etcd`, with every host binary the bench runs for it present. */
function etcdMinorFlag(): EtcdMinor {
  const minor = flags.etcd!;
  if (!isEtcdMinor(minor)) throw new Error(`--etcd ${minor}: the bench runs etcd ${ETCD_MINORS.join(' or ')}`);
  const bins = etcdBinaries(minor);
  for (const bin of [bins.etcd, bins.etcdctl, ...(bins.etcdutl ? [bins.etcdutl] : [])]) {
    requireCommand(bin, minor === '3.4' ? 'install etcd-server and etcd-client (apt-get install -y etcd-server etcd-client)' : 'run `npm run setup` to unpack etcd 3.5');
  }
  return minor;
}

async function main(): Promise<void> {
  requireRoot();
  requireCommand('kubectl', 'install kubectl 1.30 or newer');
  requireCommand('age-keygen', 'install the reference age tool (apt-get install -y age), for the encrypted backup row');
  const etcd = etcdMinorFlag();
  const quick = flags.quick!;
  const sizes = flags.sizes ? flags.sizes.split(',').map(Number) : quick ? [64] : [64, 512, ...(flags.huge ? [2048] : [])];
  // Several rounds per figure; fewer at the large sizes, where one round takes minutes.
  const roundsAt = (mib: number) => Number(flags.rounds ?? (quick || mib > 64 ? 3 : 5));
  const rounds = roundsAt(sizes[sizes.length - 1]!);
  const restoreRounds = Number(flags['restore-rounds'] ?? (quick ? 1 : 3));
  const started = new Date();
  const shipped = join(REPO_ROOT, 'release', 'build', 'linux-x64', 'kubectl-etcd');
  if (!flags['no-build']) {
    log('building the plugin (npm run build)');
    await must('npm', ['run', 'build'], { cwd: REPO_ROOT });
    log('building the shipped single executable (npm run release -- --platform linux-x64)');
    await must('npm', ['run', 'release', '--', '--platform', 'linux-x64'], { cwd: REPO_ROOT });
  }
  const storage = flags.huge ? '8Gi' : quick ? '1Gi' : '3Gi';
  const pluginDir = !flags['dev-build'] && existsSync(shipped) ? dirname(shipped) : join(REPO_ROOT, 'bin');
  const pluginBuild = pluginDir === join(REPO_ROOT, 'bin') ? 'the development build (bin/kubectl-etcd)' : 'the shipped single executable (linux-x64)';
  log(`timing ${pluginBuild}`);
  const cluster = flags.cluster ? BenchCluster.attach(flags.cluster, pluginDir) : await BenchCluster.start({ storage, etcd, log, pluginDir });
  const outDir = mkdtempSync(join(tmpdir(), 'kubectl-etcd-bench-out-'));
  const results: BenchResults = { etcd: { minor: etcd, release: '?' }, cores: availableParallelism(), backup: [] };
  if (!flags.cluster && !flags['keep-cluster']) {
    // Ctrl-C must not leave a cluster behind on a shared machine.
    process.once('SIGINT', () => {
      log('interrupted; stopping the cluster');
      rmSync(outDir, { recursive: true, force: true });
      void cluster.down().finally(() => process.exit(130));
    });
  }
  try {
    results.etcd.release = await cluster.etcdRelease(etcd);
    log(`every member runs etcd ${results.etcd.release}`);
    log('start-up');
    results.startup = await benchStartup(cluster, quick ? 5 : 9, shipped);
    const kept = join(outDir, 'largest.db');
    for (const mib of sizes) {
      const bytes = await growTo(cluster, mib * MIB, log);
      log(`backup at ${mib} MiB (database ${(bytes / MIB).toFixed(0)} MiB), ${roundsAt(mib)} rounds`);
      results.backup.push(await benchBackupAtSize(cluster, { targetMiB: mib, rounds: roundsAt(mib), outDir, keepFile: mib === sizes[sizes.length - 1] ? kept : undefined, log }));
    }
    log('inspect');
    results.inspect = await benchInspect(cluster, etcd, kept, rounds, log);
    rmSync(kept, { force: true });
    if (!flags['no-restore']) {
      log(`restore, ${restoreRounds} round(s)`);
      try {
        results.restore = await benchRestore(cluster, etcd, restoreRounds, outDir, log);
      } catch (err) {
        results.restoreError = (err as Error).message.split('\n')[0];
        log(`restore failed: ${(err as Error).message}`);
      }
    }
  } finally {
    rmSync(outDir, { recursive: true, force: true });
    if (!flags.cluster && !flags['keep-cluster']) await cluster.down();
    else log(`cluster left running in ${cluster.dir}; stop it with: npm run sim -- down --dir ${cluster.dir}`);
  }
  const finished = new Date();
  const header = [
    `kubectl-etcd benchmark on etcd ${results.etcd.release} (--etcd ${etcd}), ${started.toISOString().slice(0, 16)}Z to ${finished.toISOString().slice(11, 16)}Z UTC${quick ? ' (--quick)' : ''}${flags.huge ? ' (--huge)' : ''}`,
    `alternating rounds per figure: backup ${sizes.map((m) => `${m} MiB ×${roundsAt(m)}`).join(', ')}, inspect ×${rounds}, restore ×${restoreRounds}, start-up ×${quick ? 5 : 9}`,
    environment(),
    `local test cluster (test/sim): real etcd in pods, every member and etcd tool on ${results.etcd.release}, real kubectl; peak RSS: ${rssMethod()}`,
    `plugin timed: ${pluginBuild}`,
  ];
  const text = renderReport(results, header);
  process.stdout.write(text + '\n');
  const dir = join(REPO_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const suffix = `${etcd === DEFAULT_ETCD_MINOR ? '' : `-etcd${etcd}`}${quick ? '-quick' : ''}${flags.sizes || flags.cluster || flags['no-restore'] ? '-partial' : ''}${flags.huge ? '-huge' : ''}`;
  const file = join(dir, `${started.toISOString().slice(0, 10)}${suffix}.json`);
  writeFileSync(file, JSON.stringify({ started, finished, etcd: results.etcd, quick, huge: flags.huge, rounds, restoreRounds, header, results, verdicts: verdicts(results), table: text }, null, 2) + '\n');
  log(`wrote ${file}`);
}

function environment(): string {
  const line = (cmd: string, args: string[]) => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0]!.trim();
    } catch {
      return '?';
    }
  };
  const kubectl = line('kubectl', ['version', '--client']).replace('Client Version: ', '');
  return `node ${process.version}, kubectl ${kubectl}, ${line('nproc', [])} cores`;
}

main().catch((err: unknown) => {
  log(`failed: ${(err as Error).message}`);
  process.exitCode = 1;
});
