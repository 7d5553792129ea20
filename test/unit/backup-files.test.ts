import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { ByteCounter, SnapshotDigester, digestFile } from '../../src/backup/digest.js';
import { PartialFile } from '../../src/backup/partial.js';
import { MAX_SIDECAR_BYTES, readSidecarText } from '../../src/backup/record.js';
import { requireVerified, verifySnapshot, verifyWrittenFile } from '../../src/backup/verify.js';

const tmp = () => mkdtemp(join(tmpdir(), 'kubectl-etcd-partial-'));

/** A fake snapshot: a body followed by its sha256, the way etcd writes one. */
function fakeSnapshot(size: number): Buffer {
  const body = Buffer.alloc(size, 7);
  for (let i = 0; i < size; i += 97) body[i] = i % 251;
  return Buffer.concat([body, createHash('sha256').update(body).digest()]);
}

function chunked(buf: Buffer, sizes: number[]): Readable {
  const parts: Buffer[] = [];
  let off = 0;
  for (let i = 0; off < buf.length; i++) {
    const n = sizes[i % sizes.length]!;
    parts.push(buf.subarray(off, off + n));
    off += n;
  }
  return Readable.from(parts);
}

describe('SnapshotDigester', () => {
  it.each([[[1]], [[5, 31, 32, 33]], [[4096]], [[100_000]]])('checks the sha256 trailer across chunk sizes %j', async (sizes) => {
    const snap = fakeSnapshot(10_000);
    const d = new SnapshotDigester();
    await pipeline(chunked(snap, sizes), d, async function* (src) {
      for await (const _ of src);
    });
    expect(d.digest()).toEqual({ size: snap.length, sha256: createHash('sha256').update(snap).digest('hex'), trailerValid: true });
  });

  it.each([
    ['a flipped bit', (b: Buffer) => ((b[100] ^= 1), b)],
    ['a cut tail', (b: Buffer) => b.subarray(0, b.length - 10)],
    ['too short to hold a trailer', (b: Buffer) => b.subarray(0, 20)],
  ])('reports %s as an invalid trailer', async (_name, damage) => {
    const d = new SnapshotDigester();
    await pipeline(Readable.from([damage(fakeSnapshot(5000))]), d, async function* (src) {
      for await (const _ of src);
    });
    expect(d.digest().trailerValid).toBe(false);
  });
});

describe('digestFile (the written file, hashed once after the copy)', () => {
  // 40 MiB takes the worker thread (32 MiB and up); the others are hashed in this thread
  it.each([[10_000], [40 << 20]])('gives what SnapshotDigester gives for the same bytes (%i-byte body)', async (size) => {
    const snap = fakeSnapshot(size);
    const path = join(await tmp(), 'snap.db');
    await writeFile(path, snap);
    const streamed = new SnapshotDigester();
    await pipeline(Readable.from([snap]), streamed, async function* (src) {
      for await (const _ of src);
    });
    expect(await digestFile(path)).toEqual(streamed.digest());
    expect((await digestFile(path)).trailerValid).toBe(true);
  });

  it.each([
    ['a flipped bit', (b: Buffer) => ((b[100] ^= 1), b)],
    ['a flipped bit past 32 MiB', (b: Buffer) => ((b[(33 << 20) + 5] ^= 1), b)],
    ['a cut tail', (b: Buffer) => b.subarray(0, b.length - 10)],
    ['too short to hold a trailer', (b: Buffer) => b.subarray(0, 20)],
    ['empty', (b: Buffer) => b.subarray(0, 0)],
  ])('reports %s as an invalid trailer, with the sha256 of what is there', async (_name, damage) => {
    const bytes = damage(fakeSnapshot(34 << 20));
    const path = join(await tmp(), 'snap.db');
    await writeFile(path, bytes);
    expect(await digestFile(path)).toEqual({ size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), trailerValid: false });
  });
});

describe('ByteCounter', () => {
  it('passes every byte through and counts them; the count is refused before the end', async () => {
    const snap = fakeSnapshot(10_000);
    const c = new ByteCounter();
    expect(() => c.digest()).toThrow('before the stream ended');
    const out: Buffer[] = [];
    await pipeline(chunked(snap, [1, 4096, 33]), c, async function* (src) {
      for await (const b of src) out.push(b as Buffer);
    });
    expect(Buffer.concat(out).equals(snap)).toBe(true);
    expect(c.digest()).toEqual({ size: snap.length });
  });
});

describe('verifyWrittenFile outcomes (from the file on disk)', () => {
  const readable = async () => ({ revision: 5, totalKeys: 9 });
  const written = async (bytes: Buffer) => {
    const path = join(await tmp(), 'snap.db');
    await writeFile(path, bytes);
    return path;
  };

  it('ok: the digest is the file\'s', async () => {
    const snap = fakeSnapshot(5000);
    const { outcome, digest } = await verifyWrittenFile(await written(snap), snap.length, snap.length, readable);
    expect(outcome).toEqual({ kind: 'ok', summary: { revision: 5, totalKeys: 9 } });
    expect(digest).toEqual({ size: snap.length, sha256: createHash('sha256').update(snap).digest('hex'), trailerValid: true });
  });

  it('a file shorter than what was written is a size mismatch, before its trailer is looked at', async () => {
    const snap = fakeSnapshot(5000);
    const { outcome } = await verifyWrittenFile(await written(snap.subarray(0, 4000)), snap.length, snap.length, readable);
    expect(outcome).toEqual({ kind: 'size-mismatch', expected: snap.length, actual: 4000 });
  });

  it('the size the source reported is checked against the file', async () => {
    const snap = fakeSnapshot(5000);
    const { outcome } = await verifyWrittenFile(await written(snap), snap.length, snap.length + 1, readable);
    expect(outcome).toEqual({ kind: 'size-mismatch', expected: snap.length + 1, actual: snap.length });
  });

  it('a damaged byte on disk fails the trailer even when bbolt reads (the walk runs beside the hash, its failure unreported)', async () => {
    const snap = fakeSnapshot(5000);
    snap[7] ^= 1;
    const broken = async () => {
      throw new Error('page 3 is not a leaf');
    };
    expect((await verifyWrittenFile(await written(snap), snap.length, snap.length, readable)).outcome).toEqual({ kind: 'trailer-mismatch' });
    expect((await verifyWrittenFile(await written(snap), snap.length, snap.length, broken)).outcome).toEqual({ kind: 'trailer-mismatch' });
  });

  it('a sound trailer over a file bbolt cannot read is unreadable', async () => {
    const snap = fakeSnapshot(5000);
    const broken = async () => {
      throw new Error('page 3 is not a leaf\nmore');
    };
    expect((await verifyWrittenFile(await written(snap), snap.length, undefined, broken)).outcome).toEqual({ kind: 'unreadable', reason: 'page 3 is not a leaf' });
  });
});

describe('PartialFile', () => {
  it('syncAhead (called twice) then commit: the committed file holds every byte, and nothing else is left', async () => {
    const dir = await tmp();
    const dest = join(dir, 'snap.db');
    const p = await PartialFile.create(dest);
    const snap = fakeSnapshot(100_000);
    await pipeline(Readable.from([snap]), p.writable());
    p.syncAhead();
    p.syncAhead();
    await p.commit();
    expect((await readFile(dest)).equals(snap)).toBe(true);
    expect(await readdir(dir)).toEqual(['snap.db']);
  });

  it('syncAhead: a failed flush fails commit, which renames nothing, and discard removes the file', async () => {
    const dir = await tmp();
    const p = await PartialFile.create(join(dir, 'snap.db'));
    // the handle's fsync fails once (EIO), as a disk error would; a second fsync would succeed, which is why the first must not be lost
    const handle = (p as unknown as { handle: { sync(): Promise<void> } }).handle;
    const realSync = handle.sync.bind(handle);
    let calls = 0;
    handle.sync = () => (calls++ === 0 ? Promise.reject(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' })) : realSync());
    p.syncAhead();
    await expect(p.commit()).rejects.toThrow(/cannot write ".*snap\.db\.partial": EIO/);
    expect(await readdir(dir)).toEqual(['snap.db.partial']);
    await p.discard();
    expect(await readdir(dir)).toEqual([]);
  });


  it('writes <dest>.partial with mode 0600 and renames it on commit', async () => {
    const dir = await tmp();
    const dest = join(dir, 'snap.db');
    const p = await PartialFile.create(dest);
    expect(p.path).toBe(`${dest}.partial`);
    expect((await stat(p.path)).mode & 0o777).toBe(0o600);
    await pipeline(Readable.from([Buffer.from('hello')]), p.writable());
    await p.commit();
    await p.discard();
    expect(await readdir(dir)).toEqual(['snap.db']);
    expect(await readFile(dest, 'utf8')).toBe('hello');
    expect((await stat(dest)).mode & 0o777).toBe(0o600);
  });

  it('commits under a name chosen after writing', async () => {
    const dir = await tmp();
    const p = await PartialFile.create(join(dir, 'a.db'));
    await pipeline(Readable.from([Buffer.from('x')]), p.writable());
    await p.commit(join(dir, 'a-rev7.db'));
    expect(await readdir(dir)).toEqual(['a-rev7.db']);
  });

  it('discard removes the partial file and leaves nothing behind', async () => {
    const dir = await tmp();
    const p = await PartialFile.create(join(dir, 'snap.db'));
    await pipeline(Readable.from([Buffer.from('half')]), p.writable());
    await p.discard();
    expect(await readdir(dir)).toEqual([]);
  });

  it('refuses to reuse an existing partial file', async () => {
    const dir = await tmp();
    await writeFile(join(dir, 'snap.db.partial'), 'someone else');
    await expect(PartialFile.create(join(dir, 'snap.db'))).rejects.toThrow(`file "${join(dir, 'snap.db.partial')}" already exists`);
    expect(await readFile(join(dir, 'snap.db.partial'), 'utf8')).toBe('someone else');
  });

  it('names the missing directory of -f FILE', async () => {
    const dir = join(await tmp(), 'nope');
    await expect(PartialFile.create(join(dir, 'snap.db'))).rejects.toThrow(`directory "${dir}" does not exist`);
  });

  it('discardSync removes it (the signal-handler path)', async () => {
    const dir = await tmp();
    const p = await PartialFile.create(join(dir, 'snap.db'));
    p.discardSync();
    expect(await readdir(dir)).toEqual([]);
    await p.discard();
  });
});

describe('verifySnapshot outcomes', () => {
  const digest = { size: 100, sha256: 'ab', trailerValid: true };
  const readable = async () => ({ revision: 5, totalKeys: 9 });
  const broken = async () => {
    throw new Error('page 3 is not a leaf\nmore');
  };

  it.each([
    ['ok', digest, 100, readable, { kind: 'ok', summary: { revision: 5, totalKeys: 9 } }],
    ['size-mismatch', digest, 120, readable, { kind: 'size-mismatch', expected: 120, actual: 100 }],
    ['trailer-mismatch', { ...digest, trailerValid: false }, 100, readable, { kind: 'trailer-mismatch' }],
    ['unreadable', digest, undefined, broken, { kind: 'unreadable', reason: 'page 3 is not a leaf' }],
  ] as const)('%s', async (_name, d, expected, read, outcome) => {
    expect(await verifySnapshot('/x', d, expected, read)).toEqual(outcome);
  });

  it('failures become verification errors (exit code 3) naming the source', () => {
    expect(() => requireVerified({ kind: 'trailer-mismatch' }, 'pod "etcd-0"')).toThrow('snapshot from pod "etcd-0" failed its sha256 trailer check');
    try {
      requireVerified({ kind: 'size-mismatch', expected: 2, actual: 1 }, 'pod "etcd-0"');
    } catch (err) {
      expect((err as { exitCode: number }).exitCode).toBe(3);
    }
  });
});

describe('readSidecarText', () => {
  it('reads a record, and gives up one byte past the cap on a file that never ends (a device named like a record)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sidecar-'));
    await writeFile(join(dir, 'a.db.json'), '{"namespace":"uc1"}\n');
    expect(await readSidecarText(join(dir, 'a.db.json'))).toBe('{"namespace":"uc1"}\n');
    expect(await readSidecarText(join(dir, 'missing.json'))).toBeUndefined();
    await writeFile(join(dir, 'big.db.json'), Buffer.alloc(MAX_SIDECAR_BYTES + 1, 0x20));
    expect(await readSidecarText(join(dir, 'big.db.json'))).toBeUndefined();
    expect(await readSidecarText('/dev/zero')).toBeUndefined();
  });
});
