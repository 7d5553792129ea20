/**
 * Entry point of the simulator's controller-manager:
 * `node --import tsx test/sim/controllers/main.ts --dir DIR`. Reads DIR/components.kubeconfig,
 * runs until SIGTERM/SIGINT, logs one line per notable action to stderr.
 *
 * Differs from kube-controller-manager: see manager.ts and each controller's header.
 */
import { KubeConfig } from '@kubernetes/client-node';
import path from 'node:path';
import { makeClusterApi } from './api.js';
import { startControllerManager } from './manager.js';

function parseDir(argv: string[]): string {
  const i = argv.indexOf('--dir');
  const dir = i >= 0 ? argv[i + 1] : argv.find((a) => a.startsWith('--dir='))?.slice('--dir='.length);
  if (!dir) {
    process.stderr.write('error: missing --dir; run as `controllers/main.ts --dir DIR` with DIR from `sim up`\n');
    process.exit(2);
  }
  return path.resolve(dir);
}

const dir = parseDir(process.argv.slice(2));
const log = (line: string): void => {
  process.stderr.write(`${new Date().toISOString()} ${line}\n`);
};
const kc = new KubeConfig();
kc.loadFromFile(path.join(dir, 'components.kubeconfig'));
const manager = startControllerManager(kc, makeClusterApi(kc), dir, log);
void manager.synced.then(() => log('controller-manager: caches synced, controllers running'));
log(`controller-manager: started for ${dir}`);

const shutdown = (signal: string): void => {
  log(`controller-manager: ${signal}, stopping`);
  manager.stop();
  process.exit(0);
};
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
