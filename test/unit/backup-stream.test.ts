// The stream transport and the run orchestration against a real etcd 3.4 with client TLS, on
// 127.0.0.1. The "port-forward" is the identity here (the pod port is reachable directly); the
// e2e tests cover the real Kubernetes port-forward.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, connect as netConnect, type AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup, type BackupDeps } from '../../src/backup/run.js';
import { streamTransport } from '../../src/backup/stream-transport.js';
import { connectEtcdClient } from '../../src/etcd/client.js';
import type { SnapshotTransport } from '../../src/backup/transport.js';
import { silentLogger } from '../helpers/log.js';
import { PhaseClock } from '../../src/ui/phases.js';
import type { EtcdMember, EtcdTopology } from '../../src/etcd/topology.js';
import { ensureCA, issueCert } from '../sim/pki.js';

let dir: string;
let etcd: ChildProcess;
let port: number;
let pki: string;

function etcdctl(args: string[]): string {
  return execFileSync('etcdctl', [`--endpoints=https://127.0.0.1:${port}`, `--cacert=${pki}/ca.crt`, `--cert=${pki}/client.crt`, `--key=${pki}/client.key`, ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ETCDCTL_API: '3' },
  });
}

async function startEtcd(): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    port = 20000 + Math.floor(Math.random() * 30000);
    const peer = port + 1;
    etcd = spawn('etcd', [
      '--name=m0', `--data-dir=${dir}/data`,
      `--listen-client-urls=https://127.0.0.1:${port}`, `--advertise-client-urls=https://127.0.0.1:${port}`,
      `--listen-peer-urls=http://127.0.0.1:${peer}`, `--initial-advertise-peer-urls=http://127.0.0.1:${peer}`,
      `--initial-cluster=m0=http://127.0.0.1:${peer}`,
      `--cert-file=${pki}/server.crt`, `--key-file=${pki}/server.key`, `--trusted-ca-file=${pki}/ca.crt`, '--client-cert-auth',
    ], { stdio: 'ignore' });
    for (let i = 0; i < 50; i++) {
      await new Promise((r) => setTimeout(r, 200));
      if (etcd.exitCode !== null) break;
      try {
        etcdctl(['endpoint', 'health']);
        return;
      } catch {
        // not up yet
      }
    }
    etcd.kill('SIGKILL');
  }
  throw new Error('etcd did not start; install it with `apt-get install -y etcd-server etcd-client`');
}

beforeAll(async () => {
  try {
    execFileSync('etcd', ['--version'], { stdio: 'ignore' });
  } catch {
    throw new Error('etcd is not installed; run `apt-get install -y etcd-server etcd-client`');
  }
  dir = await mkdtemp(join(tmpdir(), 'kubectl-etcd-stream-'));
  pki = join(dir, 'pki');
  ensureCA(pki, 'ca');
  issueCert(pki, 'ca', 'server', { commonName: 'etcd', dnsNames: ['etcd-0.etcd', 'localhost'], ips: ['127.0.0.1'], usage: 'server' });
  issueCert(pki, 'ca', 'client', { commonName: 'backup', usage: 'client' });
  await startEtcd();
  for (let i = 0; i < 20; i++) etcdctl(['put', `/registry/k${i}`, `v${i}`]);
});

afterAll(() => {
  etcd?.kill('SIGKILL');
});

const member = (): EtcdMember =>
  ({
    pod: 'etcd-0', namespace: 'ns1', container: 'etcd', name: 'etcd-0', endpoint: `https://127.0.0.1:${port}`, clientPort: port,
    peerUrl: '', dataDir: '/var/lib/etcd', tls: {}, clientTlsEnabled: true, image: 'gcr.io/etcd-development/etcd:v3.4.23', ready: true,
  }) as EtcdMember;

const topology = (): EtcdTopology => ({ namespace: 'ns1', workload: { kind: 'StatefulSet', name: 'etcd' }, members: [member()], image: 'x' });

function deps(overrides: Partial<BackupDeps> = {}): BackupDeps {
  const stream = streamTransport({
    forward: async (_ns, _pod, p) => ({ localPort: p, lastError: () => undefined, close: async () => {} }),
    resolveTls: async () => ({
      ca: execFileSync('cat', [`${pki}/ca.crt`]),
      cert: execFileSync('cat', [`${pki}/client.crt`]),
      key: execFileSync('cat', [`${pki}/client.key`]),
    }),
  });
  const unused: SnapshotTransport = { kind: 'exec', overlaps: false, take: async () => { throw new Error('exec transport must not be used'); } };
  return {
    transports: { exec: unused, stream },
    canExec: async () => false,
    probe: async (m) => ({ pod: m.pod, quota: { source: 'default' }, name: m.name, endpoint: m.endpoint, alarms: [], healthy: true, version: '3.4.23', memberId: 'abc', clusterId: 'def', dbSize: 1 }),
    readSummary: async (path) => {
      const s = JSON.parse(execFileSync('etcdctl', ['snapshot', 'status', '-w', 'json', path], { encoding: 'utf8' }));
      return { revision: s.revision, totalKeys: s.totalKey, hash: s.hash };
    },
    stdout: new PassThrough(),
    signals: { on: () => {}, off: () => {}, kill: () => {}, pid: 0 },
    progress: () => ({ add: () => {}, setTotal: () => {}, done: () => {} }),
    log: silentLogger(),
    now: () => new Date('2026-11-25T10:00:00Z'),
    pluginVersion: '0.1.0',
    ...overrides,
  };
}

describe('backup over the stream transport (real etcd, client TLS)', () => {
  it('writes a verified 0600 snapshot whose revision matches the live cluster', async () => {
    const out = await mkdtemp(join(tmpdir(), 'kubectl-etcd-out-'));
    const rev = JSON.parse(etcdctl(['endpoint', 'status', '-w', 'json']))[0].Status.header.revision;
    const phases = new PhaseClock();
    const record = await runBackup({ topology: topology(), destination: { kind: 'file', path: join(out, 'snap.db') } }, { ...deps(), phases });
    expect(record.transport).toBe('stream');
    // stream saves and copies at once: one phase for both
    expect(phases.list().map((p) => p.name)).toEqual(['probe', 'save+copy', 'verify', 'commit']);
    expect(record.revision).toBe(rev);
    expect(record.verified).toEqual({ size: true, sha256Trailer: true, bbolt: true });
    expect(await readdir(out)).toEqual(['snap.db']);
    expect((await stat(join(out, 'snap.db'))).mode & 0o777).toBe(0o600);
    const status = JSON.parse(execFileSync('etcdctl', ['snapshot', 'status', '-w', 'json', join(out, 'snap.db')], { encoding: 'utf8' }));
    expect(status.revision).toBe(rev);
    expect(record.size).toBe((await stat(join(out, 'snap.db'))).size);
  });

  it('a TLS member: the window is sized from the round trip asked after the handshake that read the names', async () => {
    const tls = { ca: execFileSync('cat', [`${pki}/ca.crt`]), cert: execFileSync('cat', [`${pki}/client.crt`]), key: execFileSync('cat', [`${pki}/client.key`]) };
    let handshakes = 0;
    const counting = createServer((local) => {
      handshakes++;
      const remote = netConnect(port, '127.0.0.1');
      local.pipe(remote).pipe(local);
      local.on('error', () => remote.destroy());
      remote.on('error', () => local.destroy());
    });
    await new Promise<void>((r) => counting.listen(0, '127.0.0.1', r));
    const asked: number[] = [];
    try {
      const conn = await connectEtcdClient({
        port: (counting.address() as AddressInfo).port,
        tls,
        preferredNames: ['localhost'],
        roundTripMs: async () => {
          asked.push(handshakes); // a real forward has measured nothing before its first connection
          return 3;
        },
      });
      try {
        expect(asked).toEqual([1]);
        expect(conn).toMatchObject({ roundTripMs: 3, flowControlWindow: 4 << 20 });
        expect(await conn.client.get('/registry/k1').string()).toBe('v1');
      } finally {
        conn.client.close();
      }
    } finally {
      counting.close();
    }
  });

  it('--via exec on an image without sh/tar is refused naming --via stream', async () => {
    const out = await mkdtemp(join(tmpdir(), 'kubectl-etcd-out-'));
    await expect(runBackup({ topology: topology(), via: 'exec', destination: { kind: 'file', path: join(out, 'snap.db') } }, deps())).rejects.toThrow(
      'image "gcr.io/etcd-development/etcd:v3.4.23" of pod "etcd-0" has no shell or tar, so --via exec cannot work',
    );
    expect(await readdir(out)).toEqual([]);
  });

  it('--dir names the file, writes the sidecar, and --keep 2 keeps two', async () => {
    const out = await mkdtemp(join(tmpdir(), 'kubectl-etcd-out-'));
    const times = ['2026-11-25T10:00:00Z', '2026-11-25T11:00:00Z', '2026-11-25T12:00:00Z'];
    for (const t of times) {
      etcdctl(['put', '/registry/tick', t]);
      await runBackup({ topology: topology(), destination: { kind: 'dir', dir: out, keep: 2 } }, deps({ now: () => new Date(t) }));
    }
    const files = (await readdir(out)).sort();
    expect(files).toHaveLength(4);
    expect(files.filter((f) => f.endsWith('.db')).map((f) => f.replace(/-rev\d+/, ''))).toEqual([
      'ns1-etcd-20261125T110000Z.db',
      'ns1-etcd-20261125T120000Z.db',
    ]);
    const newest = files.filter((f) => f.endsWith('.db')).pop()!;
    const sidecar = JSON.parse(await readFile(join(out, `${newest}.json`), 'utf8'));
    expect(sidecar).toMatchObject({ namespace: 'ns1', workload: 'etcd', sourcePod: 'etcd-0', etcdVersion: '3.4.23', pluginVersion: '0.1.0', file: join(out, newest) });
    expect(newest).toContain(`-rev${sidecar.revision}.db`);
    expect((await stat(join(out, `${newest}.json`))).mode & 0o777).toBe(0o600);
  });

  it('-f - streams a valid snapshot to stdout', async () => {
    const stdout = new PassThrough();
    const chunks: Buffer[] = [];
    stdout.on('data', (c: Buffer) => chunks.push(c));
    const record = await runBackup({ topology: topology(), destination: { kind: 'stdout' } }, deps({ stdout }));
    const out = await mkdtemp(join(tmpdir(), 'kubectl-etcd-out-'));
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(out, 'piped.db'), Buffer.concat(chunks));
    const status = JSON.parse(execFileSync('etcdctl', ['snapshot', 'status', '-w', 'json', join(out, 'piped.db')], { encoding: 'utf8' }));
    expect(status.totalKey).toBeGreaterThan(20);
    expect(record).toMatchObject({ file: '-', verified: { sha256Trailer: true, bbolt: false } });
  });

  it('a transport failure mid-copy leaves no partial file', async () => {
    const out = await mkdtemp(join(tmpdir(), 'kubectl-etcd-out-'));
    const cut: SnapshotTransport = {
      kind: 'stream', overlaps: true,
      take: async (_m, sink) => {
        sink.write(Buffer.alloc(4096, 1));
        throw new Error('the snapshot stream from pod "etcd-0" broke: connection reset');
      },
    };
    await expect(
      runBackup({ topology: topology(), destination: { kind: 'file', path: join(out, 'snap.db') } }, deps({ transports: { exec: cut, stream: cut } })),
    ).rejects.toThrow('broke: connection reset');
    expect(await readdir(out)).toEqual([]);
  });

  it('a short stream fails verification (exit code 3) and leaves nothing', async () => {
    const out = await mkdtemp(join(tmpdir(), 'kubectl-etcd-out-'));
    const short: SnapshotTransport = {
      kind: 'stream', overlaps: true,
      take: async (_m, sink) => {
        sink.end(Buffer.alloc(4096, 1));
        return { expectedSize: 8192 };
      },
    };
    const err = await runBackup({ topology: topology(), destination: { kind: 'file', path: join(out, 'snap.db') } }, deps({ transports: { exec: short, stream: short } })).catch((e) => e);
    expect(err.message).toBe('snapshot from pod "etcd-0" is 4096 bytes but 8192 were expected');
    expect(err.exitCode).toBe(3);
    expect(await readdir(out)).toEqual([]);
  });
});
