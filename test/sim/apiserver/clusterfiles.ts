// The files that describe one simulated cluster: DIR/sim.json, DIR/tokens.csv, DIR/kubeconfig,
// DIR/components.kubeconfig and DIR/users/NAME.kubeconfig.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ensureCA } from '../pki.js';
import { parseTokens } from './auth.js';
import type { ClientConfig } from './client.js';
import type { ServerMinor } from './discovery.js';

/** How nodes' `kubernetes.io/hostname` labels relate to their names (kubelet/nodes.ts, nodeHostname). */
export type HostnameLabels = 'name' | 'differ';

/** DIR/sim.json. */
export interface SimConfig {
  port: number;
  nodes: string[];
  podCIDR: string;
  id: string;
  /** `differ`: each node's hostname label is not its name (`sim up --hostname-labels`). */
  hostnameLabels?: HostnameLabels;
  /** The Kubernetes version the API server pretends to be (`sim up --server-version`; 1.32 when absent). */
  serverVersion?: ServerMinor;
}

/** A port on 127.0.0.1 that nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

function writeAtomic(file: string, text: string, mode = 0o600): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode });
  renameSync(tmp, file);
}

/** Reads DIR/sim.json. */
export function readSimConfig(dir: string): SimConfig {
  const file = join(dir, 'sim.json');
  if (!existsSync(file)) throw new Error(`no cluster in "${dir}"; run \`npm run sim -- up --dir ${dir}\` first`);
  return JSON.parse(readFileSync(file, 'utf8')) as SimConfig;
}

/** Writes sim.json (keeping port and id of an existing one), the CA, tokens.csv and the kubeconfigs. */
export async function writeClusterFiles(dir: string, nodeCount: number, hostnameLabels: HostnameLabels = 'name', serverVersion?: ServerMinor): Promise<SimConfig> {
  mkdirSync(join(dir, 'logs'), { recursive: true });
  mkdirSync(join(dir, 'pids'), { recursive: true });
  mkdirSync(join(dir, 'users'), { recursive: true });
  const old = existsSync(join(dir, 'sim.json')) ? readSimConfig(dir) : undefined;
  const sim: SimConfig = {
    port: old?.port ?? await freePort(),
    nodes: Array.from({ length: nodeCount }, (_, i) => `node-${i + 1}`),
    podCIDR: '10.88.0.0/16',
    id: old?.id ?? randomBytes(3).toString('hex'),
    ...(hostnameLabels !== 'name' ? { hostnameLabels } : {}),
    ...(serverVersion && serverVersion !== '1.32' ? { serverVersion } : {}),
  };
  writeAtomic(join(dir, 'sim.json'), JSON.stringify(sim, null, 2) + '\n', 0o644);
  ensureCA(join(dir, 'pki'), 'ca');
  ensureToken(dir, 'admin', ['system:masters']);
  ensureToken(dir, 'system:kube-controller-manager', ['system:masters']);
  writeKubeconfig(dir, join(dir, 'kubeconfig'), 'admin');
  writeKubeconfig(dir, join(dir, 'components.kubeconfig'), 'system:kube-controller-manager');
  return sim;
}

/** The token of user (created, with groups, when missing). */
export function ensureToken(dir: string, user: string, groups: string[]): string {
  const file = join(dir, 'tokens.csv');
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  for (const [token, u] of parseTokens(text)) if (u.name === user) return token;
  const token = randomBytes(24).toString('hex');
  const line = `${token},${user},${user},"${groups.join(',')}"\n`;
  writeAtomic(file, text + (text && !text.endsWith('\n') ? '\n' : '') + line);
  return token;
}

/** Connection settings for a user of the cluster in dir. */
export function clientConfig(dir: string, user = 'admin'): ClientConfig {
  const sim = readSimConfig(dir);
  const text = readFileSync(join(dir, 'tokens.csv'), 'utf8');
  const token = [...parseTokens(text)].find(([, u]) => u.name === user)?.[0];
  if (!token) throw new Error(`user "${user}" not found in ${join(dir, 'tokens.csv')}; run \`npm run sim -- user --dir ${dir} ${user}\``);
  return { server: `https://127.0.0.1:${sim.port}`, ca: readFileSync(join(dir, 'pki', 'ca.crt'), 'utf8'), token };
}

/** Writes a kubeconfig for user (context "sim", CA embedded, bearer token). */
export function writeKubeconfig(dir: string, file: string, user: string): void {
  const cfg = clientConfig(dir, user);
  const doc = {
    apiVersion: 'v1', kind: 'Config', 'current-context': 'sim', preferences: {},
    clusters: [{ name: 'sim', cluster: { server: cfg.server, 'certificate-authority-data': Buffer.from(cfg.ca).toString('base64') } }],
    users: [{ name: user, user: { token: cfg.token } }],
    contexts: [{ name: 'sim', context: { cluster: 'sim', user } }],
  };
  writeAtomic(file, stringify(doc));
}
