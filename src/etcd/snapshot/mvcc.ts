import { BoltCorruption } from './layout.js';

// etcd's mvcc layer inside bbolt: bucket "key" maps revision bytes to mvccpb.KeyValue protobufs.
// Revision bytes: main u64 big endian | '_' | sub u64 big endian, plus a trailing 't' for a
// tombstone (a delete), whose value is a KeyValue carrying only the key.

/** A decoded etcd revision. */
export interface Revision {
  main: number;
  sub: number;
  tombstone: boolean;
}

/** Decodes revision bytes as etcd's bytesToRev does (main from the first 8 bytes). */
export function decodeRevision(k: Buffer): Revision {
  if (k.length < 8) throw new BoltCorruption(`revision key of ${k.length} bytes is shorter than 8`);
  const main = Number(k.readBigUInt64BE(0));
  const sub = k.length >= 17 ? Number(k.readBigUInt64BE(9)) : 0;
  return { main, sub, tombstone: k.length === 18 && k[17] === 0x74 };
}

/** The fields of mvccpb.KeyValue this tool uses. */
export interface KeyValue {
  key: Buffer;
  createRevision: number;
  modRevision: number;
  version: number;
  value: Buffer;
  lease: number;
}

/** Decodes an mvccpb.KeyValue protobuf (fields 1 key, 2 create_revision, 3 mod_revision, 4 version, 5 value, 6 lease). */
export function decodeKeyValue(buf: Buffer): KeyValue {
  const kv: KeyValue = { key: EMPTY, createRevision: 0, modRevision: 0, version: 0, value: EMPTY, lease: 0 };
  let at = 0;
  const varint = (): number => {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (at >= buf.length) throw new BoltCorruption('KeyValue varint runs past the value');
      const b = buf[at++];
      result += (b & 0x7f) * scale;
      if (b < 0x80) return result;
      scale *= 128;
    }
    throw new BoltCorruption('KeyValue varint is longer than 10 bytes');
  };
  while (at < buf.length) {
    const tag = varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (wire === 0) {
      const v = varint();
      if (field === 2) kv.createRevision = v;
      else if (field === 3) kv.modRevision = v;
      else if (field === 4) kv.version = v;
      else if (field === 6) kv.lease = v;
    } else if (wire === 2) {
      const len = varint();
      if (at + len > buf.length) throw new BoltCorruption('KeyValue field runs past the value');
      if (field === 1) kv.key = buf.subarray(at, at + len);
      else if (field === 5) kv.value = buf.subarray(at, at + len);
      at += len;
    } else if (wire === 1) {
      at += 8;
    } else if (wire === 5) {
      at += 4;
    } else {
      throw new BoltCorruption(`KeyValue has unknown wire type ${wire}`);
    }
  }
  if (at > buf.length) throw new BoltCorruption('KeyValue field runs past the value');
  return kv;
}

const EMPTY = Buffer.alloc(0);
