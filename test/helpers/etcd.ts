import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { etcdBinaries, type EtcdMinor } from '../sim/etcd-versions.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A real etcd 3.4 process on random 127.0.0.1 ports with its own data dir. */
export interface LocalEtcd {
  /** Client URL, e.g. http://127.0.0.1:40123. */
  endpoint: string;
  /** The etcd --data-dir (member/snap/db lives under it). */
  dataDir: string;
  /** Runs etcdctl (API v3) against this member and returns stdout. */
  ctl(args: string[], input?: string): Promise<string>;
  /** Stops the process (SIGTERM, then waits for exit); the data dir stays. */
  stop(): Promise<void>;
  /** Stops the process and deletes its temp dir. */
  destroy(): Promise<void>;
}

/** Options for startEtcd. */
export interface StartEtcdOptions {
  /** Reuse an existing data dir (e.g. to restart a stopped member). */
  dataDir?: string;
  /** Extra etcd flags. */
  args?: string[];
  /** The etcd minor to run (default 3.4, the host's; 3.5 from the cache scripts/setup.sh fills). */
  minor?: EtcdMinor;
}

/** Host paths of etcd and etcdctl of a minor; 3.4 by name on PATH, as before. */
function binsOf(minor: EtcdMinor = '3.4'): { etcd: string; etcdctl: string } {
  if (minor === '3.4') return { etcd: 'etcd', etcdctl: 'etcdctl' };
  const b = etcdBinaries(minor);
  if (!existsSync(b.etcd)) throw new Error(`etcd ${minor} is not at ${b.etcd}; run npm run setup (scripts/setup.sh)`);
  return { etcd: b.etcd, etcdctl: b.etcdctl };
}

/** Finds a free TCP port on 127.0.0.1 (bind to 0, read, close). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** Fails with an install hint when a binary is missing from PATH. */
export async function requireBinary(name: string, debianPackage: string): Promise<void> {
  try {
    await run('sh', ['-c', `command -v ${name}`]);
  } catch {
    throw new Error(`"${name}" not found on PATH; install the Debian package ${debianPackage} (apt-get install ${debianPackage})`);
  }
}

/** Starts etcd and resolves once it answers /health; retries with new ports if they were taken. */
export async function startEtcd(opts: StartEtcdOptions = {}): Promise<LocalEtcd> {
  await requireBinary('etcd', 'etcd-server');
  await requireBinary('etcdctl', 'etcd-client');
  const bins = binsOf(opts.minor);
  const tmp = await mkdtemp(join(tmpdir(), 'kubectl-etcd-test-'));
  const dataDir = opts.dataDir ?? join(tmp, 'data');
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const [clientPort, peerPort] = [await freePort(), await freePort()];
    const endpoint = `http://127.0.0.1:${clientPort}`;
    const peer = `http://127.0.0.1:${peerPort}`;
    const child = spawn(
      bins.etcd,
      [
        '--name', 'test',
        '--data-dir', dataDir,
        '--listen-client-urls', endpoint,
        '--advertise-client-urls', endpoint,
        '--listen-peer-urls', peer,
        '--initial-advertise-peer-urls', peer,
        '--initial-cluster', `test=${peer}`,
        '--log-outputs', 'stderr',
        ...(opts.args ?? []),
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    try {
      await waitHealthy(endpoint, child, () => stderr);
      return handle(endpoint, dataDir, tmp, child, bins.etcdctl);
    } catch (err) {
      lastErr = err;
      await stopChild(child);
    }
  }
  await rm(tmp, { recursive: true, force: true });
  throw lastErr;
}

function handle(endpoint: string, dataDir: string, tmp: string, child: ChildProcess, etcdctl: string): LocalEtcd {
  return {
    endpoint,
    dataDir,
    ctl: async (args, input) => {
      const env = { ...process.env, ETCDCTL_API: '3' };
      if (input === undefined) return (await run(etcdctl, ['--endpoints', endpoint, ...args], { env, maxBuffer: 64 << 20 })).stdout;
      return new Promise((resolve, reject) => {
        const p = execFile(etcdctl, ['--endpoints', endpoint, ...args], { env, maxBuffer: 64 << 20 }, (err, stdout) =>
          err ? reject(err) : resolve(stdout),
        );
        p.stdin!.end(input);
      });
    },
    stop: () => stopChild(child),
    destroy: async () => {
      await stopChild(child);
      await rm(tmp, { recursive: true, force: true });
    },
  };
}

async function waitHealthy(endpoint: string, child: ChildProcess, log: () => string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`etcd exited with code ${child.exitCode}: ${log().split('\n').slice(-3).join(' ')}`);
    try {
      const res = await fetch(`${endpoint}/health`);
      if (res.ok && ((await res.json()) as { health?: string }).health === 'true') return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`etcd at ${endpoint} did not become healthy: ${log().split('\n').slice(-3).join(' ')}`);
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** What seedKubernetesShapedKeys wrote, as a user would count it afterwards. */
export interface SeededCounts {
  byResource: Record<string, number>;
  byNamespace: Record<string, Record<string, number>>;
  other: number;
}

/**
 * Writes Kubernetes-shaped data through a real etcd client: `configMaps` ConfigMaps over five
 * namespaces (JSON), protobuf-ish Secrets (one larger than `bigValueBytes`, so overflow pages
 * appear), a CRD, a service, a non-/registry key, then compacts, overwrites and deletes.
 */
export async function seedKubernetesShapedKeys(etcd: LocalEtcd, configMaps = 20_000, bigValueBytes = 200_000): Promise<SeededCounts> {
  const { Etcd3 } = await import('etcd3');
  const client = new Etcd3({ hosts: etcd.endpoint });
  try {
    const put = (k: string, v: string | Buffer) => client.put(k).value(v).exec();
    const cm = (i: number) => `/registry/configmaps/ns-${i % 5}/cm-${i}`;
    for (let b = 0; b < configMaps; b += 500) {
      const batch = [];
      for (let i = b; i < Math.min(b + 500, configMaps); i++) {
        batch.push(put(cm(i), JSON.stringify({ kind: 'ConfigMap', apiVersion: 'v1', metadata: { name: `cm-${i}` }, data: { i: String(i) } })));
      }
      await Promise.all(batch);
    }
    const protobufish = (n: number) => Buffer.concat([Buffer.from('k8s\0'), Buffer.alloc(n, 0x5a)]);
    for (let i = 0; i < 5; i++) await put(`/registry/namespaces/ns-${i}`, protobufish(60));
    await put('/registry/secrets/ns-0/small', protobufish(100));
    await put('/registry/secrets/ns-0/tls', protobufish(2_000));
    await put('/registry/secrets/ns-1/huge', protobufish(bigValueBytes));
    await put('/registry/apiextensions.k8s.io/customresourcedefinitions/widgets.example.com', '{"kind":"CustomResourceDefinition"}');
    await put('/registry/services/specs/default/kubernetes', protobufish(80));
    await put('compact_rev_key', 'x');
    const { header } = await client.get('compact_rev_key').exec();
    await client.kv.compact({ revision: header.revision, physical: true });
    for (let n = 0; n < 3; n++) await put(cm(0), `{"kind":"ConfigMap","overwrite":${n}}`);
    await put('/registry/secrets/ns-0/gone', protobufish(10));
    await client.delete().key('/registry/secrets/ns-0/gone').exec();
    const deleted = Math.min(100, Math.max(0, configMaps - 1));
    await Promise.all(Array.from({ length: deleted }, (_, j) => client.delete().key(cm(j + 1)).exec()));
    const byNamespace: Record<string, Record<string, number>> = {
      '': { namespaces: 5, 'apiextensions.k8s.io/customresourcedefinitions': 1 },
      default: { 'services/specs': 1 },
    };
    for (let i = 0; i < configMaps; i++) {
      if (i >= 1 && i <= deleted) continue;
      const ns = (byNamespace[`ns-${i % 5}`] ??= {});
      ns.configmaps = (ns.configmaps ?? 0) + 1;
    }
    byNamespace['ns-0'] = { ...byNamespace['ns-0'], secrets: 2 };
    byNamespace['ns-1'] = { ...byNamespace['ns-1'], secrets: 1 };
    const byResource: Record<string, number> = {};
    for (const perResource of Object.values(byNamespace)) {
      for (const [r, n] of Object.entries(perResource)) byResource[r] = (byResource[r] ?? 0) + n;
    }
    return { byResource, byNamespace, other: 1 };
  } finally {
    client.close();
  }
}

/** The fields `etcdctl snapshot status -w json` prints for a file. */
export async function etcdctlSnapshotStatus(file: string, minor: EtcdMinor = '3.4'): Promise<{ hash: number; revision: number; totalKey: number; totalSize: number }> {
  const { stdout } = await run(...snapshotTool(minor, ['status', '-w', 'json', file]), { env: { ...process.env, ETCDCTL_API: '3' } });
  return JSON.parse(stdout);
}

/**
 * The command a user of that etcd minor runs for `snapshot SUBCOMMAND`: 3.4's etcdctl, 3.5's
 * etcdutl (its etcdctl's copies are deprecated there and gone in 3.6).
 */
export function snapshotTool(minor: EtcdMinor, args: string[]): [string, string[]] {
  if (minor === '3.4') return ['etcdctl', ['snapshot', ...args]];
  const etcdutl = etcdBinaries(minor).etcdutl!;
  if (!existsSync(etcdutl)) throw new Error(`etcdutl ${minor} is not at ${etcdutl}; run npm run setup (scripts/setup.sh)`);
  return [etcdutl, ['snapshot', ...args]];
}
