// Starting the simulated API server in-process: PKI, store, seed objects, HTTPS listener.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureCA, issueCert } from '../pki.js';
import { builtinResources } from './registry.js';
import { seedCluster } from './seed.js';
import { createApiServer, listenOn } from './server.js';
import { ObjectStore } from './store.js';

/** Starts the API server for the cluster in dir (port from DIR/sim.json); resolves once it listens. */
export async function runApiServer(dir: string): Promise<{ close(): Promise<void> }> {
  const sim = JSON.parse(readFileSync(join(dir, 'sim.json'), 'utf8')) as { port: number };
  const pki = join(dir, 'pki');
  ensureCA(pki, 'ca');
  const serving = issueCert(pki, 'ca', 'apiserver', {
    commonName: 'kube-apiserver', dnsNames: ['localhost', 'kubernetes', 'kubernetes.default'], ips: ['127.0.0.1'], usage: 'server',
  });
  const store = new ObjectStore(join(dir, 'state'));
  store.open();
  seedCluster(store, builtinResources());
  const { server, gate, close } = createApiServer({ dir, port: sim.port, cert: serving.cert, key: serving.key, store });
  await listenOn(server, sim.port);
  gate.start();
  return { close: async () => { await close(); store.close(); } };
}
