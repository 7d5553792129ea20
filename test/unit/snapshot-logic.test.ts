import { describe, expect, it } from 'vitest';
import { Crc32c } from '../../src/etcd/snapshot/crc32c.js';
import { chooseMeta, fnv64a, readMeta, type MetaReading } from '../../src/etcd/snapshot/meta.js';
import { decodeKeyValue, decodeRevision } from '../../src/etcd/snapshot/mvcc.js';
import { classifyKey, ObjectCounter } from '../../src/etcd/snapshot/objects.js';
import { hasTrailer } from '../../src/etcd/snapshot/trailer.js';

describe('classifyKey', () => {
  it.each([
    ['/registry/pods/default/web-0', { kind: 'object', resource: 'pods', namespace: 'default', name: 'web-0' }],
    ['/registry/namespaces/kube-system', { kind: 'object', resource: 'namespaces', namespace: null, name: 'kube-system' }],
    ['/registry/services/specs/default/kubernetes', { kind: 'object', resource: 'services/specs', namespace: 'default', name: 'kubernetes' }],
    ['/registry/services/endpoints/default/kubernetes', { kind: 'object', resource: 'services/endpoints', namespace: 'default', name: 'kubernetes' }],
    [
      '/registry/apiextensions.k8s.io/customresourcedefinitions/widgets.example.com',
      { kind: 'object', resource: 'apiextensions.k8s.io/customresourcedefinitions', namespace: null, name: 'widgets.example.com' },
    ],
    ['/registry/example.com/widgets/team-a/w1', { kind: 'object', resource: 'example.com/widgets', namespace: 'team-a', name: 'w1' }],
    ['compact_rev_key', { kind: 'other' }],
    ['/registry/masterleases/', { kind: 'other' }],
    ['/registry/a/b/c/d', { kind: 'other' }],
  ])('%s', (key, expected) => {
    expect(classifyKey(key)).toEqual(expected);
  });
});

/** Encodes a protobuf varint (test-side, independent of the decoder). */
function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

function keyValue(key: string, value: Buffer, rev: { create: number; mod: number; version: number }): Buffer {
  const bytes = (field: number, b: Buffer) => [...varint(field * 8 + 2), ...varint(b.length), ...b];
  const num = (field: number, n: number) => [...varint(field * 8), ...varint(n)];
  return Buffer.from([
    ...bytes(1, Buffer.from(key)),
    ...num(2, rev.create),
    ...num(3, rev.mod),
    ...num(4, rev.version),
    ...bytes(5, value),
  ]);
}

function revisionKey(main: number, sub: number, tombstone = false): Buffer {
  const b = Buffer.alloc(tombstone ? 18 : 17);
  b.writeBigUInt64BE(BigInt(main), 0);
  b[8] = 0x5f;
  b.writeBigUInt64BE(BigInt(sub), 9);
  if (tombstone) b[17] = 0x74;
  return b;
}

describe('mvcc decoding', () => {
  it('decodes an mvccpb.KeyValue with large revisions', () => {
    const kv = decodeKeyValue(keyValue('/registry/pods/a/b', Buffer.from('v'), { create: 300, mod: 2 ** 40, version: 7 }));
    expect(kv.key.toString()).toBe('/registry/pods/a/b');
    expect(kv.value.toString()).toBe('v');
    expect([kv.createRevision, kv.modRevision, kv.version]).toEqual([300, 2 ** 40, 7]);
  });

  it('rejects a KeyValue whose field runs past the value', () => {
    expect(() => decodeKeyValue(Buffer.from([0x0a, 0x10, 0x41]))).toThrow('runs past');
  });

  it('decodes revision keys and tombstones', () => {
    expect(decodeRevision(revisionKey(42, 3))).toEqual({ main: 42, sub: 3, tombstone: false });
    expect(decodeRevision(revisionKey(43, 0, true))).toEqual({ main: 43, sub: 0, tombstone: true });
  });

  it('keeps the latest state of each key: a delete then a re-create is live', () => {
    const c = new ObjectCounter();
    const v = (k: string) => keyValue(k, Buffer.from('x'), { create: 1, mod: 1, version: 1 });
    c.add(revisionKey(2, 0), v('/registry/pods/ns/a'));
    c.add(revisionKey(3, 0), v('/registry/pods/ns/b'));
    c.add(revisionKey(4, 0, true), v('/registry/pods/ns/a'));
    c.add(revisionKey(5, 0, true), v('/registry/pods/ns/b'));
    c.add(revisionKey(6, 0), v('/registry/pods/ns/b'));
    expect(c.result()).toEqual({
      liveKeys: 1,
      revisions: 5,
      objects: 1,
      other: 0,
      byResource: { pods: 1 },
      byNamespace: { ns: { pods: 1 } },
    });
  });
});

describe('the revision bump of etcdutl', () => {
  it('the empty entry `etcdutl snapshot restore --bump-revision` writes at the bumped revision is no live key', () => {
    const c = new ObjectCounter();
    c.add(revisionKey(2, 0), keyValue('a', Buffer.from('1'), { create: 2, mod: 2, version: 1 }));
    c.add(revisionKey(1002, 0), Buffer.alloc(0));
    expect(c.result()).toMatchObject({ liveKeys: 1, revisions: 2, other: 1 });
  });
});

describe('hashes', () => {
  it('CRC-32C of "123456789" is the standard check value', () => {
    const c = new Crc32c();
    c.update(Buffer.from('1234'));
    c.update(Buffer.from('56789'));
    expect(c.digest()).toBe(0xe3069283);
  });

  it('FNV-1a 64 matches the reference vectors', () => {
    expect(fnv64a(Buffer.from(''))).toBe(0xcbf29ce484222325n);
    expect(fnv64a(Buffer.from('a'))).toBe(0xaf63dc4c8601ec8cn);
  });
});

describe('meta pages', () => {
  function metaPage(txid: number, corrupt = false): Buffer {
    const b = Buffer.alloc(4096);
    b.writeUInt16LE(0x04, 8);
    b.writeUInt32LE(0xed0cdaed, 16);
    b.writeUInt32LE(2, 20);
    b.writeUInt32LE(4096, 24);
    b.writeBigUInt64LE(3n, 32);
    b.writeBigUInt64LE(0xffffffffffffffffn, 48);
    b.writeBigUInt64LE(4n, 56);
    b.writeBigUInt64LE(BigInt(txid), 64);
    b.writeBigUInt64LE(fnv64a(b.subarray(16, 72)), 72);
    if (corrupt) b[64] ^= 1;
    return b;
  }

  it('picks the valid meta with the higher txid', () => {
    const choice = chooseMeta(readMeta(metaPage(5)), readMeta(metaPage(6)));
    expect(choice).toMatchObject({ outcome: 'chosen', index: 1, problems: [] });
  });

  it('falls back to the other meta when the newer one has a bad checksum, and says so', () => {
    const choice = chooseMeta(readMeta(metaPage(5)), readMeta(metaPage(6, true)));
    expect(choice).toMatchObject({ outcome: 'chosen', index: 0, problems: ['meta page 1: meta checksum does not match'] });
  });

  it('reports none valid when both are bad', () => {
    const bad: MetaReading = readMeta(Buffer.alloc(4096));
    expect(chooseMeta(bad, bad).outcome).toBe('none-valid');
  });
});

describe('hasTrailer', () => {
  it.each([
    [4096 * 8 + 32, true],
    [4096 * 8, false],
    [4096 * 8 - 5000, false],
  ])('size %i → %s', (size, expected) => {
    expect(hasTrailer(size)).toBe(expected);
  });
});
