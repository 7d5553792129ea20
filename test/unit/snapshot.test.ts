import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NotFoundError } from '../../src/errors.js';
import { readBoltFacts, readSnapshotFacts } from '../../src/etcd/snapshot/facts.js';
import { etcdctlSnapshotStatus, seedKubernetesShapedKeys, startEtcd, type LocalEtcd, type SeededCounts } from '../helpers/etcd.js';

// One real etcd 3.4: Kubernetes-shaped keys (20k ConfigMaps, so branch pages stack up; a 200 KB
// Secret, so overflow pages appear; a compaction, overwrites and deletes), then
// `etcdctl snapshot save`, then the stopped member's raw member/snap/db.
let etcd: LocalEtcd;
let dir: string;
let saved: string;
let raw: string;
let seeded: SeededCounts;
let liveKeysInEtcd: number;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'snapshot-test-'));
  etcd = await startEtcd();
  seeded = await seedKubernetesShapedKeys(etcd);
  liveKeysInEtcd = JSON.parse(await etcd.ctl(['get', '', '--from-key', '--keys-only', '--limit=1', '-w', 'json'])).count;
  saved = join(dir, 'saved.db');
  await etcd.ctl(['snapshot', 'save', saved]);
  await etcd.stop();
  raw = join(dir, 'raw.db');
  await copyFile(join(etcd.dataDir, 'member', 'snap', 'db'), raw);
});

afterAll(async () => {
  await etcd?.destroy();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Copies a file and applies an edit to its bytes (the whole file is small in these tests). */
async function damaged(from: string, name: string, edit: (b: Buffer) => Buffer): Promise<string> {
  const to = join(dir, name);
  await writeFile(to, edit(await readFile(from)));
  return to;
}

describe('a snapshot from etcdctl snapshot save', () => {
  it('is valid with a matching sha256 trailer', async () => {
    const facts = await readSnapshotFacts(saved);
    expect(facts.outcome).toBe('valid');
    expect(facts.trailer).toBe('valid');
    expect(facts.problems).toEqual([]);
  });

  it('reports exactly what etcdctl snapshot status -w json reports', async () => {
    const facts = await readSnapshotFacts(saved);
    const expected = await etcdctlSnapshotStatus(saved);
    expect(facts.status).toEqual(expected);
  });

  it('spans several branch levels and overflow pages (so the test exercises them)', async () => {
    const { bolt } = await readSnapshotFacts(saved);
    expect(bolt!.pageSize).toBe(4096);
    expect(bolt!.maxDepth).toBeGreaterThanOrEqual(2); // root branch → branch → leaf
    expect(bolt!.branchPages).toBeGreaterThan(2);
    expect(bolt!.overflowPages).toBeGreaterThanOrEqual(Math.floor(200_000 / 4096)); // the 200 KB Secret
  });

  it('counts live Kubernetes objects by resource, skipping deleted keys and counting overwrites once', async () => {
    const { objects } = await readSnapshotFacts(saved);
    expect(objects!.byResource).toEqual(seeded.byResource);
    expect(objects!.other).toBe(seeded.other);
    expect(objects!.liveKeys).toBe(liveKeysInEtcd);
  });

  it('counts objects by namespace, cluster-scoped ones under ""', async () => {
    const { objects } = await readSnapshotFacts(saved);
    expect(objects!.byNamespace).toEqual(seeded.byNamespace);
  });
});

describe('readBoltFacts (what a backup reads of the file it wrote)', () => {
  it('gives the same bbolt facts and etcd status as readSnapshotFacts, without the object counts', async () => {
    const full = await readSnapshotFacts(saved);
    const bolt = await readBoltFacts(saved);
    expect(bolt).toEqual({ problems: [], bolt: full.bolt, status: full.status });
    expect(bolt.status).toEqual(await etcdctlSnapshotStatus(saved));
  });

  it('reports a corrupt tree as readSnapshotFacts does', async () => {
    const cut = await damaged(saved, 'cut-bolt.db', (b) => b.subarray(0, Math.floor(b.length / 2)));
    expect((await readBoltFacts(cut)).problems).toEqual((await readSnapshotFacts(cut)).problems);
    expect((await readBoltFacts(cut)).problems.length).toBeGreaterThan(0);
  });
});

describe('a raw member/snap/db copied from a stopped member', () => {
  it('has no trailer, is valid, and matches etcdctl snapshot status', async () => {
    const facts = await readSnapshotFacts(raw);
    expect(facts.trailer).toBe('absent');
    expect(facts.outcome).toBe('valid');
    expect(facts.status).toEqual(await etcdctlSnapshotStatus(raw));
    expect(facts.objects!.byResource).toEqual(seeded.byResource);
  });

  it('is corrupt when both meta pages are damaged', async () => {
    const file = await damaged(raw, 'raw-both-meta.db', (b) => {
      b[16 + 48] ^= 0x01;
      b[4096 + 16 + 48] ^= 0x01;
      return b;
    });
    const facts = await readSnapshotFacts(file);
    expect(facts.outcome).toBe('corrupt');
    expect(facts.problems).toEqual(['meta page 0: meta checksum does not match', 'meta page 1: meta checksum does not match']);
  });

  it('is corrupt when one meta page has a flipped bit, yet still reads through the other like bbolt', async () => {
    const file = await damaged(raw, 'raw-meta0.db', (b) => {
      b[16 + 48] ^= 0x01; // txid of meta 0
      return b;
    });
    const facts = await readSnapshotFacts(file);
    expect(facts.outcome).toBe('corrupt');
    expect(facts.problems).toEqual(['meta page 0: meta checksum does not match']);
    expect(facts.status).toEqual(await etcdctlSnapshotStatus(file));
  });

  it('is corrupt when a tree page has an invalid type, as etcdctl also refuses it', async () => {
    const file = await damaged(raw, 'raw-badpage.db', (b) => {
      const metaIndex = b.readBigUInt64LE(16 + 48) > b.readBigUInt64LE(4096 + 16 + 48) ? 0 : 1;
      const root = Number(b.readBigUInt64LE(metaIndex * 4096 + 16 + 16));
      b.writeUInt16LE(0x20, root * 4096 + 8);
      return b;
    });
    const facts = await readSnapshotFacts(file);
    expect(facts.outcome).toBe('corrupt');
    expect(facts.problems[0]).toMatch(/^page \d+: invalid type: unknown<20>$/);
    await expect(etcdctlSnapshotStatus(file)).rejects.toThrow();
  });
});

describe('damaged snapshot files', () => {
  it('a truncated file is corrupt', async () => {
    const file = await damaged(saved, 'truncated.db', (b) => b.subarray(0, b.length - 5000));
    const facts = await readSnapshotFacts(file);
    expect(facts.outcome).toBe('corrupt');
    expect(facts.problems[0]).toMatch(/^truncated: /);
  });

  it('a file cut at a page boundary is corrupt even though its size looks whole', async () => {
    const file = await damaged(saved, 'cut-pages.db', (b) => b.subarray(0, b.length - 32 - 4096 * 3));
    const facts = await readSnapshotFacts(file);
    expect(facts.trailer).toBe('absent');
    expect(facts.outcome).toBe('corrupt');
    expect(facts.problems[0]).toMatch(/^truncated: /);
  });

  it('a flipped bit in the middle fails the sha256 trailer', async () => {
    const file = await damaged(saved, 'flipped.db', (b) => {
      b[Math.floor(b.length / 2)] ^= 0x10;
      return b;
    });
    const facts = await readSnapshotFacts(file);
    expect(facts.trailer).toBe('mismatch');
    expect(facts.outcome).not.toBe('valid');
  });

  it('a flipped bit in the meta page fails the trailer and names the meta page', async () => {
    const file = await damaged(saved, 'meta-flipped.db', (b) => {
      b[16 + 8] ^= 0x01; // page size field of meta 0
      return b;
    });
    const facts = await readSnapshotFacts(file);
    expect(facts.trailer).toBe('mismatch');
    expect(facts.outcome).toBe('corrupt');
    expect(facts.problems).toContain('meta page 0: meta checksum does not match');
  });

  it('a zero-length file is corrupt', async () => {
    const file = await damaged(saved, 'empty.db', () => Buffer.alloc(0));
    const facts = await readSnapshotFacts(file);
    expect(facts).toMatchObject({ outcome: 'corrupt', trailer: 'absent', problems: ['file is empty'] });
  });

  it('a file that is not bbolt is corrupt', async () => {
    const file = await damaged(saved, 'text.db', () => Buffer.from('this is not a database\n'.repeat(2000)));
    const facts = await readSnapshotFacts(file);
    expect(facts.outcome).toBe('corrupt');
    expect(facts.problems[0]).toMatch(/^meta page 0: magic 0x[0-9a-f]+ is not bbolt's$/);
  });

  it('a missing file is a not-found error naming the file', async () => {
    const missing = join(dir, 'missing.db');
    await expect(readSnapshotFacts(missing)).rejects.toThrow(NotFoundError);
    await expect(readSnapshotFacts(missing)).rejects.toThrow(`snapshot "${missing}" not found`);
  });
});
