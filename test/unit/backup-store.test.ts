// backup --to s3://… (runBackup's store destination) against an in-memory object store that
// behaves as the S3 store does (src/storage/s3.ts): it reads the body to its end before it
// commits, aborts (commits nothing) when the body fails, and destroys the body when a part is
// refused. The failure orders a real run meets: a transport that fails without touching its sink,
// a refused part, a signal after the last byte, a snapshot that fails its trailer.
import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { runBackup, type BackupDeps } from '../../src/backup/run.js';
import type { SnapshotTransport } from '../../src/backup/transport.js';
import { formatError } from '../../src/errors.js';
import type { EtcdMember, EtcdTopology } from '../../src/etcd/topology.js';
import { StoreError, type ObjectStore } from '../../src/storage/location.js';
import { silentLogger } from '../helpers/log.js';

/** A snapshot-shaped byte string: a body and etcd's sha256 trailer. */
function snapshot(n: number): Buffer {
  const body = randomBytes(n);
  return Buffer.concat([body, createHash('sha256').update(body).digest()]);
}

class MemoryStore implements ObjectStore {
  readonly bucket = 'bkt';
  readonly objects = new Map<string, Buffer>();
  aborted = 0;
  constructor(private readonly refuseAfter?: number) {}
  async checkBucket(): Promise<void> {}
  async upload(key: string, body: Readable): Promise<void> {
    const chunks: Buffer[] = [];
    let n = 0;
    try {
      for await (const c of body) {
        chunks.push(c as Buffer);
        n += (c as Buffer).length;
        if (this.refuseAfter !== undefined && n > this.refuseAfter) {
          // As lib-storage: the part is refused, the body's iterator is returned (destroying it).
          const err = new StoreError('cannot upload s3://bkt/x: AccessDenied: part refused', 'check the credentials');
          body.destroy();
          throw err;
        }
      }
    } catch (err) {
      this.aborted++;
      throw err;
    }
    this.objects.set(key, Buffer.concat(chunks));
  }
  async put(key: string, text: string): Promise<void> {
    this.objects.set(key, Buffer.from(text));
  }
  async getText(key: string): Promise<string | undefined> {
    return this.objects.get(key)?.toString();
  }
  async get(key: string): Promise<{ body: Readable; size: number }> {
    const b = this.objects.get(key)!;
    const s = new PassThrough();
    s.end(b);
    return { body: s, size: b.length };
  }
  async head(key: string): Promise<{ size: number } | undefined> {
    const b = this.objects.get(key);
    return b ? { size: b.length } : undefined;
  }
  async list(prefix: string) {
    return [...this.objects.keys()].filter((k) => k.startsWith(prefix)).map((key) => ({ key, size: this.objects.get(key)!.length }));
  }
  async delete(keys: string[]): Promise<void> {
    for (const k of keys) this.objects.delete(k);
  }
}

const member = { pod: 'etcd-0', namespace: 'ns1', container: 'etcd', name: 'etcd-0', endpoint: 'https://127.0.0.1:1', clientPort: 1, peerUrl: '', dataDir: '/d', tls: {}, clientTlsEnabled: true, image: 'etcd', ready: true } as unknown as EtcdMember;
const topology: EtcdTopology = { namespace: 'ns1', workload: { kind: 'StatefulSet', name: 'etcd' }, members: [member], image: 'etcd' };

interface SignalsFake {
  handlers: Map<string, (sig: NodeJS.Signals) => void>;
  host: BackupDeps['signals'];
}

function signalsFake(): SignalsFake {
  const handlers = new Map<string, (sig: NodeJS.Signals) => void>();
  return { handlers, host: { on: (sig: string, h: (s: NodeJS.Signals) => void) => { handlers.set(sig, h); }, off: () => {}, kill: () => {}, pid: 0 } as unknown as BackupDeps['signals'] };
}

function deps(transport: SnapshotTransport, signals = signalsFake()): BackupDeps {
  return {
    transports: { exec: transport, stream: transport },
    canExec: async () => true,
    probe: async (m) => ({ pod: m.pod, quota: { source: 'default' }, name: m.name, endpoint: m.endpoint, alarms: [], healthy: true, version: '3.5.16', memberId: 'a', clusterId: 'b', dbSize: 1 }),
    readSummary: async () => { throw new Error('no bbolt walk for a streamed backup'); },
    stdout: new PassThrough(),
    signals: signals.host,
    progress: () => ({ add: () => {}, setTotal: () => {}, done: () => {} }),
    log: silentLogger(),
    now: () => new Date('2026-12-06T12:00:05Z'),
    pluginVersion: '0.1.0',
  };
}

const backup = (store: MemoryStore, transport: SnapshotTransport, signals?: SignalsFake) =>
  runBackup({ topology, destination: { kind: 'store', store, folder: 'etcd/' } }, deps(transport, signals));

/** A transport that writes `data` in 64 KiB chunks and ends the sink. */
const writes = (data: Buffer, after?: () => Promise<void>): SnapshotTransport => ({
  kind: 'exec', overlaps: true,
  take: async (_m, sink) => {
    for (let i = 0; i < data.length; i += 65536) {
      if (!sink.write(data.subarray(i, i + 65536))) await new Promise((r) => sink.once('drain', r));
    }
    sink.end();
    await after?.();
    return { expectedSize: data.length };
  },
});

describe('backup to an object store', () => {
  it('commits the snapshot and its record, with the stored digest', async () => {
    const store = new MemoryStore();
    const data = snapshot(300_000);
    const record = await backup(store, writes(data));
    expect([...store.objects.keys()].sort()).toEqual(['etcd/ns1-etcd-20261206T120005Z.db', 'etcd/ns1-etcd-20261206T120005Z.db.json']);
    expect(store.objects.get('etcd/ns1-etcd-20261206T120005Z.db')!.equals(data)).toBe(true);
    expect(record).toMatchObject({ file: 's3://bkt/etcd/ns1-etcd-20261206T120005Z.db', size: data.length, verified: { sha256Trailer: true, bbolt: false } });
  });

  it('a transport that fails without touching its sink ends the upload with its error (it used to wait for ever)', async () => {
    const store = new MemoryStore();
    const failing: SnapshotTransport = { kind: 'exec', overlaps: true, take: async () => { throw new Error('etcdctl snapshot save failed in pod "etcd-0": exit 1'); } };
    const outcome = await Promise.race([
      backup(store, failing).then(() => 'resolved', (e: Error) => e.message),
      new Promise((r) => setTimeout(() => r('still waiting after 5 s'), 5000)),
    ]);
    expect(outcome).toBe('etcdctl snapshot save failed in pod "etcd-0": exit 1');
    expect(store.objects.size).toBe(0);
  });

  it('a part the store refuses is reported as the store\'s error, not as a broken body', async () => {
    const store = new MemoryStore(100_000);
    const err = await backup(store, writes(snapshot(300_000))).catch((e: unknown) => e);
    expect(formatError(err)).toBe('error: cannot upload s3://bkt/x: AccessDenied: part refused; check the credentials');
    expect(store.objects.size).toBe(0);
  });

  it('a snapshot that fails its trailer is never committed', async () => {
    const store = new MemoryStore();
    const data = snapshot(200_000);
    data[10] ^= 1;
    const err = await backup(store, writes(data)).catch((e: unknown) => e);
    expect(formatError(err)).toMatch(/^error: the snapshot from pod "etcd-0" fails its sha256 trailer check; nothing was stored/);
    expect((err as { exitCode: number }).exitCode).toBe(3);
    expect(store.objects.size).toBe(0);
    expect(store.aborted).toBe(1);
  });

  it('a signal after the last byte (the transport still cleaning up in the pod) commits nothing', async () => {
    const store = new MemoryStore();
    const signals = signalsFake();
    const err = await backup(store, writes(snapshot(200_000), async () => { signals.handlers.get('SIGINT')?.('SIGINT'); }), signals).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/^backup interrupted by SIGINT; nothing was stored in s3:\/\/bkt\/etcd\//);
    expect(store.objects.size).toBe(0);
  });
});
