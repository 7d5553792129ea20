// Inspect: `kubectl etcd inspect FILE` against `etcdctl snapshot status FILE` (which also reads
// every key to hash it) on the same snapshot, alternating; MB/s and the plugin's peak RSS.
import { stat } from 'node:fs/promises';
import type { BenchCluster } from '../lib/cluster.js';
import { measure } from '../lib/proc.js';
import { alternate, median } from '../lib/stats.js';

/** Medians of both readers on one file. */
export interface InspectRow {
  file: string;
  bytes: number;
  plugin: { seconds: number; mbPerSecond: number; peakRssMiB?: number };
  etcdctl: { seconds: number; mbPerSecond: number; peakRssMiB?: number };
}

/** Times both readers `rounds` times on `file`. */
export async function benchInspect(c: BenchCluster, file: string, rounds: number, log: (l: string) => void): Promise<InspectRow> {
  const bytes = (await stat(file)).size;
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
        name: 'etcdctl',
        run: async () => {
          const r = await measure('etcdctl', ['snapshot', 'status', file, '-w', 'json'], { env: { ...process.env, ETCDCTL_API: '3' }, rss: true, timeoutMs: 3_600_000 });
          if (r.code !== 0) throw new Error(`etcdctl snapshot status failed (exit ${r.code}): ${r.stderr.trim()}`);
          return r;
        },
      },
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
  return { file, bytes, plugin: fig('plugin'), etcdctl: fig('etcdctl') };
}
