import { spawn, execFile, type ChildProcess } from 'node:child_process';
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
  const tmp = await mkdtemp(join(tmpdir(), 'kubectl-etcd-test-'));
  const dataDir = opts.dataDir ?? join(tmp, 'data');
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const [clientPort, peerPort] = [await freePort(), await freePort()];
    const endpoint = `http://127.0.0.1:${clientPort}`;
    const peer = `http://127.0.0.1:${peerPort}`;
    const child = spawn(
      'etcd',
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
      return handle(endpoint, dataDir, tmp, child);
    } catch (err) {
      lastErr = err;
      await stopChild(child);
    }
  }
  await rm(tmp, { recursive: true, force: true });
  throw lastErr;
}

function handle(endpoint: string, dataDir: string, tmp: string, child: ChildProcess): LocalEtcd {
  return {
    endpoint,
    dataDir,
    ctl: async (args, input) => {
      const env = { ...process.env, ETCDCTL_API: '3' };
      if (input === undefined) return (await run('etcdctl', ['--endpoints', endpoint, ...args], { env, maxBuffer: 64 << 20 })).stdout;
      return new Promise((resolve, reject) => {
        const p = execFile('etcdctl', ['--endpoints', endpoint, ...args], { env, maxBuffer: 64 << 20 }, (err, stdout) =>
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
