/**
 * Entry point of the simulator's kubelet: `node --import tsx test/sim/kubelet/main.ts --dir DIR`.
 * Reads DIR/components.kubeconfig and DIR/sim.json, runs every pod bound to the cluster's nodes
 * until SIGTERM/SIGINT, then stops them and removes everything it made (see kubelet.ts).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ApiClient } from './api.js';
import { Kubelet, type SimInfo } from './kubelet.js';

function parseDir(argv: string[]): string {
  const i = argv.indexOf('--dir');
  const dir = i >= 0 ? argv[i + 1] : argv.find((a) => a.startsWith('--dir='))?.slice('--dir='.length);
  if (!dir) {
    process.stderr.write('error: missing --dir; run as `kubelet/main.ts --dir DIR` with DIR from `sim up`\n');
    process.exit(2);
  }
  return path.resolve(dir);
}

const dir = parseDir(process.argv.slice(2));
const log = (line: string): void => {
  process.stderr.write(`${new Date().toISOString()} ${line}\n`);
};
const sim = JSON.parse(readFileSync(path.join(dir, 'sim.json'), 'utf8')) as SimInfo;
const api = await ApiClient.fromKubeconfig(path.join(dir, 'components.kubeconfig'));
const kubelet = new Kubelet(dir, sim, api, log);

let stopping = false;
const shutdown = (signal: string): void => {
  if (stopping) return;
  stopping = true;
  log(`kubelet: ${signal}, stopping every pod`);
  kubelet.shutdown().then(
    () => process.exit(0),
    (err: unknown) => {
      log(`kubelet: shutdown failed: ${(err as Error).message}`);
      process.exit(1);
    },
  );
};
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('unhandledRejection', (err) => log(`kubelet: unhandled rejection: ${(err as Error)?.stack ?? String(err)}`));

await kubelet.start();
log(`kubelet: started for ${dir}, nodes ${sim.nodes.join(', ')}`);
