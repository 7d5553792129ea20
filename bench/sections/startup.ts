// Start-up: `kubectl etcd --help` (kubectl finds the plugin on PATH, node loads it) against
// `kubectl version --client`, alternating.
import type { BenchCluster } from '../lib/cluster.js';
import { alternate, median } from '../lib/stats.js';

/** Median wall times in seconds. */
export interface StartupRow {
  pluginSeconds: number;
  kubectlSeconds: number;
}

/** Times both commands `rounds` times. */
export async function benchStartup(c: BenchCluster, rounds: number): Promise<StartupRow> {
  const timed = (args: string[]) => async () => {
    const r = await c.kubectlMust(args);
    return r.seconds;
  };
  const samples = await alternate(
    [
      { name: 'plugin', run: timed(['etcd', '--help']) },
      { name: 'kubectl', run: timed(['version', '--client']) },
    ],
    rounds,
  );
  return { pluginSeconds: median(samples.get('plugin')!), kubectlSeconds: median(samples.get('kubectl')!) };
}
