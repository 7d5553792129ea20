// Start-up: `kubectl etcd --help` (kubectl finds the dev build on PATH, node loads it) and the
// shipped single executable's `kubectl-etcd --help` (when built: `npm run release -- --platform
// linux-x64`, which the bench runs unless --no-build), against `kubectl version --client`,
// alternating.
import { existsSync } from 'node:fs';
import type { BenchCluster } from '../lib/cluster.js';
import { measure } from '../lib/proc.js';
import { alternate, median } from '../lib/stats.js';

/** Median wall times in seconds. */
export interface StartupRow {
  pluginSeconds: number;
  kubectlSeconds: number;
  /** The shipped single executable run directly, when it was built. */
  shippedSeconds?: number;
}

/** Times the commands `rounds` times; `shipped` is the single executable's path. */
export async function benchStartup(c: BenchCluster, rounds: number, shipped?: string): Promise<StartupRow> {
  const timed = (args: string[]) => async () => {
    const r = await c.kubectlMust(args);
    return r.seconds;
  };
  const shippedRun = shipped && existsSync(shipped)
    ? [{
      name: 'shipped',
      run: async () => {
        const r = await measure(shipped, ['--help']);
        if (r.code !== 0) throw new Error(`${shipped} --help failed (exit ${r.code}): ${r.stderr.trim()}`);
        return r.seconds;
      },
    }]
    : [];
  const samples = await alternate(
    [
      { name: 'plugin', run: timed(['etcd', '--help']) },
      { name: 'kubectl', run: timed(['version', '--client']) },
      ...shippedRun,
    ],
    rounds,
  );
  const s = samples.get('shipped');
  return { pluginSeconds: median(samples.get('plugin')!), kubectlSeconds: median(samples.get('kubectl')!), ...(s ? { shippedSeconds: median(s) } : {}) };
}
