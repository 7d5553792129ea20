// Backup at each size: the floor (etcdctl snapshot save inside the member pod, to its data disk),
// the plugin via exec and via stream end to end, and the manual runbook with real kubectl
// (`kubectl exec … etcdctl snapshot save` in `/`, then `kubectl cp`). Runs alternate.
import { execFileSync } from 'node:child_process';
import { rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ANTHOS_CERT_DIR } from '../../test/sim/fixtures/anthos.js';
import { BENCH_NS } from '../fixture.js';
import type { BenchCluster } from '../lib/cluster.js';
import { alternate, machineBusySeconds, median } from '../lib/stats.js';

const POD = 'kube-etcd-0';
const MIB = 1024 * 1024;

/** One timed backup. */
export interface BackupSample {
  seconds: number;
  bytes: number;
  peakRssMiB?: number;
  /** Seconds per phase: the plugin's own record (`-o json`), the manual way's two commands. */
  phases?: Record<string, number>;
  /** Busy CPU seconds of the whole machine (every core, every process: etcd, API server, kubelet, clients) during the run. */
  cpuSeconds?: number;
  /** The same, for each of the manual way's two commands. */
  cpuPhases?: Record<string, number>;
}

/** Medians of one variant at one size. */
export interface BackupFigure {
  seconds: number;
  mbPerSecond: number;
  peakRssMiB?: number;
  /** Median seconds per phase, in the order the phases ran. */
  phases?: Array<[string, number]>;
  /** Median busy CPU seconds of the machine during a run, and during each manual command. */
  cpuSeconds?: number;
  cpuPhases?: Array<[string, number]>;
  samples: BackupSample[];
}

/** All variants at one size. */
export interface BackupRow {
  targetMiB: number;
  snapshotBytes: number;
  figures: Record<Exclude<BackupVariant, typeof ENCRYPTED>, BackupFigure> & Partial<Record<typeof ENCRYPTED, BackupFigure>>;
}

/** The encrypted variant (age to one recipient): results written before it existed lack it. */
export const ENCRYPTED = 'plugin --via exec --encrypt-to';

/** The compared ways to take a backup. */
export type BackupVariant = 'floor' | 'plugin --via exec' | 'plugin --via stream' | 'manual kubectl' | typeof ENCRYPTED;

/** The median of each phase over the samples (a phase missing from a sample counts as 0 s there). */
export function medianPhases(list: Array<{ phases?: Record<string, number> }>): Array<[string, number]> | undefined {
  const names = [...new Set(list.flatMap((s) => Object.keys(s.phases ?? {})))];
  if (!names.length) return undefined;
  return names.map((n) => [n, median(list.map((s) => s.phases?.[n] ?? 0))]);
}

/** The current backend size of the bench member (bytes). */
async function dbSize(c: BenchCluster): Promise<number> {
  const r = await c.inEtcd(BENCH_NS, POD, 'etcdctl endpoint status -w json');
  const status = JSON.parse(r.stdout) as Array<{ Status: { dbSize: number } }>;
  return status[0]!.Status.dbSize;
}

let nextKey = 0;

/** Writes 1 MB random values (two writers inside the pod) until the database is at least `targetBytes`. */
export async function growTo(c: BenchCluster, targetBytes: number, log: (l: string) => void): Promise<number> {
  for (;;) {
    const size = await dbSize(c);
    if (size >= targetBytes) return size;
    // Aim a little short: bbolt grows the file ahead of the data, so the last steps are small.
    const count = Math.max(2, Math.ceil(((targetBytes - size) / 1e6) * 0.8));
    const [a, b, e] = [nextKey, nextKey + Math.ceil(count / 2), nextKey + count];
    nextKey = e;
    log(`growing etcd from ${(size / MIB).toFixed(0)} MiB: ${count} values of 1 MB`);
    const script = [
      'put() { i=$1; while [ "$i" -lt "$2" ]; do head -c 1000000 /dev/urandom | etcdctl put /bench/blob-$i >/dev/null || return 1; i=$((i+1)); done; }',
      `put ${a} ${b} & p1=$!`,
      `put ${b} ${e} & p2=$!`,
      'wait $p1 && wait $p2',
    ].join('\n');
    await c.inEtcd(BENCH_NS, POD, script, { timeoutMs: 3_600_000 });
  }
}

const ETCDCTL_FLAGS = `--endpoints=https://127.0.0.1:2379 --cacert=${ANTHOS_CERT_DIR}/etcdCA.crt --cert=${ANTHOS_CERT_DIR}/etcd.crt --key=${ANTHOS_CERT_DIR}/etcd.key`;

/** Measures the four variants at the current database size, `rounds` times each, alternating. */
export async function benchBackupAtSize(
  c: BenchCluster,
  opts: { targetMiB: number; rounds: number; outDir: string; keepFile?: string; log: (l: string) => void },
): Promise<BackupRow> {
  const fileSize = async (f: string) => (await stat(f)).size;
  // a recipient for the encrypted variant; its plaintext copy goes to a state dir beside the outputs
  const keyFile = join(opts.outDir, 'age-key.txt');
  await rm(keyFile, { force: true });
  execFileSync('age-keygen', ['-o', keyFile], { stdio: 'pipe' });
  const recipient = execFileSync('age-keygen', ['-y', keyFile]).toString().trim();
  const plugin = (via: 'exec' | 'stream', encrypt = false) => async (round: number): Promise<BackupSample> => {
    const out = join(opts.outDir, `plugin-${via}${encrypt ? '-age' : ''}-${round}.db${encrypt ? '.age' : ''}`);
    const busy = await machineBusySeconds();
    const extra = encrypt ? ['--encrypt-to', recipient, '--state-dir', join(opts.outDir, 'state')] : [];
    const r = await c.kubectl(['etcd', 'backup', '-n', BENCH_NS, '--via', via, '-f', out, '-o', 'json', ...extra], { rss: true, timeoutMs: 3_600_000 });
    const cpuSeconds = (await machineBusySeconds()) - busy;
    if (r.code !== 0) throw new Error(`kubectl etcd backup --via ${via} failed (exit ${r.code}): ${r.stderr.trim()}`);
    const bytes = await fileSize(out);
    const record = JSON.parse(r.stdout) as { phases?: Array<{ name: string; seconds: number }> };
    const phases = Object.fromEntries((record.phases ?? []).map((p) => [p.name, p.seconds]));
    if (via === 'exec' && !encrypt && opts.keepFile && round === 0) await rename(out, opts.keepFile);
    else await rm(out, { force: true });
    return { seconds: r.seconds, bytes, peakRssMiB: r.peakRssMiB, phases, cpuSeconds };
  };
  const samples = await alternate<BackupSample>(
    [
      {
        name: 'floor',
        run: async () => {
          const f = '/var/lib/etcd/bench-floor.db';
          const busy = await machineBusySeconds();
          const r = await c.kubectlMust(['exec', '-n', BENCH_NS, POD, '-c', 'kube-etcd', '--', 'sh', '-c',
            `ETCDCTL_API=3 etcdctl ${ETCDCTL_FLAGS} snapshot save ${f} >/dev/null 2>&1 && wc -c < ${f}`], { timeoutMs: 3_600_000 });
          const cpuSeconds = (await machineBusySeconds()) - busy;
          await c.kubectlMust(['exec', '-n', BENCH_NS, POD, '-c', 'kube-etcd', '--', 'rm', '-f', f]);
          return { seconds: r.seconds, bytes: Number(r.stdout.trim()), cpuSeconds };
        },
      },
      { name: 'plugin --via exec', run: plugin('exec') },
      { name: 'plugin --via stream', run: plugin('stream') },
      { name: ENCRYPTED, run: plugin('exec', true) },
      {
        name: 'manual kubectl',
        run: async (round) => {
          const out = join(opts.outDir, `manual-${round}.db`);
          const busy0 = await machineBusySeconds();
          const save = await c.kubectlMust(['exec', '-n', BENCH_NS, POD, '-c', 'kube-etcd', '--', 'sh', '-c',
            `cd / && ETCDCTL_API=3 etcdctl ${ETCDCTL_FLAGS} snapshot save snapshot.db`], { timeoutMs: 3_600_000 });
          const busy1 = await machineBusySeconds();
          const cp = await c.kubectlMust(['cp', `${BENCH_NS}/${POD}:/snapshot.db`, out, '-c', 'kube-etcd'], { timeoutMs: 3_600_000 });
          const busy2 = await machineBusySeconds();
          await c.kubectlMust(['exec', '-n', BENCH_NS, POD, '-c', 'kube-etcd', '--', 'rm', '-f', '/snapshot.db']);
          const bytes = await fileSize(out);
          await rm(out, { force: true });
          return {
            seconds: save.seconds + cp.seconds, bytes, phases: { 'kubectl exec … snapshot save': save.seconds, 'kubectl cp': cp.seconds },
            cpuSeconds: busy2 - busy0, cpuPhases: { 'kubectl exec … snapshot save': busy1 - busy0, 'kubectl cp': busy2 - busy1 },
          };
        },
      },
    ],
    opts.rounds,
    (name, s) => opts.log(`  ${opts.targetMiB} MiB ${name}: ${s.seconds.toFixed(2)} s, ${(s.bytes / MIB).toFixed(1)} MiB${s.peakRssMiB ? `, peak RSS ${s.peakRssMiB.toFixed(0)} MiB` : ''}`),
  );
  const figures = {} as BackupRow['figures'];
  for (const [name, list] of samples) {
    const seconds = median(list.map((s) => s.seconds));
    const bytes = median(list.map((s) => s.bytes));
    const rss = list.map((s) => s.peakRssMiB).filter((x): x is number => x !== undefined);
    const cpu = list.map((s) => s.cpuSeconds).filter((x): x is number => x !== undefined);
    figures[name as Exclude<BackupVariant, typeof ENCRYPTED>] = {
      seconds, mbPerSecond: bytes / 1e6 / seconds, peakRssMiB: rss.length ? Math.max(...rss) : undefined, phases: medianPhases(list),
      cpuSeconds: cpu.length ? median(cpu) : undefined, cpuPhases: medianPhases(list.map((s) => ({ phases: s.cpuPhases }))), samples: list,
    };
  }
  return { targetMiB: opts.targetMiB, snapshotBytes: median(samples.get('floor')!.map((s) => s.bytes)), figures };
}
