// Inspect: `kubectl etcd inspect FILE` against the running minor's own reader on the same
// snapshot, alternating: `etcdctl snapshot status` on 3.4, `etcdutl snapshot status` on 3.5
// (etcdctl's is deprecated there); both also read every key to hash it. MB/s and peak RSS.
// A third row times `openssl dgst -sha256` on the file: the sha256 trailer check inspect makes on
// every byte (etcd's reader makes none), alone, through the OpenSSL the plugin's node also hashes
// with. It is the floor of inspect's time, whatever its bbolt walk costs.
import { execFileSync } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { etcdBinaries, type EtcdMinor } from '../../test/sim/etcd-versions.js';
import type { BenchCluster } from '../lib/cluster.js';
import { measure } from '../lib/proc.js';
import { alternate, median } from '../lib/stats.js';

/** Medians of both readers on one file. */
export interface InspectRow {
  file: string;
  bytes: number;
  plugin: InspectFigure;
  /** The etcd tool's reader, named by `tool` (e.g. `etcdutl snapshot status`). */
  reference: InspectFigure & { tool: string; binary: string };
  /** sha256 of the whole file alone (`openssl dgst -sha256`), when openssl is installed. */
  sha256?: InspectFigure & { tool: string };
}

const SHA256_TOOL = 'openssl dgst -sha256';

function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Median time, throughput and peak RSS of one reader. */
export interface InspectFigure {
  seconds: number;
  mbPerSecond: number;
  peakRssMiB?: number;
}

/** The snapshot reader etcd `etcd` offers on this machine: etcdctl's on 3.4, etcdutl's on 3.5. */
export function referenceReader(etcd: EtcdMinor): { tool: string; binary: string; env: NodeJS.ProcessEnv } {
  const bins = etcdBinaries(etcd);
  if (etcd === '3.4') return { tool: 'etcdctl snapshot status', binary: bins.etcdctl, env: { ...process.env, ETCDCTL_API: '3' } };
  if (!bins.etcdutl) throw new Error(`etcd ${etcd} has no etcdutl here; run \`npm run setup\``);
  return { tool: 'etcdutl snapshot status', binary: bins.etcdutl, env: process.env };
}

/** Times both readers `rounds` times on `file`. */
export async function benchInspect(c: BenchCluster, etcd: EtcdMinor, file: string, rounds: number, log: (l: string) => void): Promise<InspectRow> {
  const bytes = (await stat(file)).size;
  const ref = referenceReader(etcd);
  const withSha256 = hasOpenssl();
  if (!withSha256) log('  inspect: no openssl here, so no sha256 row (apt-get install openssl)');
  const samples = await alternate(
    [
      {
        name: 'plugin',
        run: async () => {
          const r = await c.kubectl(['etcd', 'inspect', file], { rss: true, timeoutMs: 3_600_000 });
          if (r.code !== 0) throw new Error(`kubectl etcd inspect failed (exit ${r.code}): ${r.stderr.trim()}`);
          return r;
        },
      },
      {
        name: ref.tool,
        run: async () => {
          const r = await measure(ref.binary, ['snapshot', 'status', file, '-w', 'json'], { env: ref.env, rss: true, timeoutMs: 3_600_000 });
          if (r.code !== 0) throw new Error(`${ref.binary} snapshot status failed (exit ${r.code}): ${r.stderr.trim()}`);
          return r;
        },
      },
      ...(withSha256
        ? [
            {
              name: SHA256_TOOL,
              run: async () => {
                const r = await measure('openssl', ['dgst', '-sha256', file], { rss: true, timeoutMs: 3_600_000 });
                if (r.code !== 0) throw new Error(`openssl dgst -sha256 failed (exit ${r.code}): ${r.stderr.trim()}`);
                return r;
              },
            },
          ]
        : []),
    ],
    rounds,
    (name, s) => log(`  inspect ${name}: ${s.seconds.toFixed(2)} s, peak RSS ${s.peakRssMiB?.toFixed(0) ?? '?'} MiB`),
  );
  const fig = (name: string) => {
    const list = samples.get(name)!;
    const seconds = median(list.map((s) => s.seconds));
    const rss = list.map((s) => s.peakRssMiB).filter((x): x is number => x !== undefined);
    return { seconds, mbPerSecond: bytes / 1e6 / seconds, peakRssMiB: rss.length ? Math.max(...rss) : undefined };
  };
  return {
    file,
    bytes,
    plugin: fig('plugin'),
    reference: { ...fig(ref.tool), tool: ref.tool, binary: ref.binary },
    ...(withSha256 ? { sha256: { ...fig(SHA256_TOOL), tool: SHA256_TOOL } } : {}),
  };
}
