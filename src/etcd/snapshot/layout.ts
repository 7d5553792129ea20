// bbolt on-disk layout (go.etcd.io/bbolt v1.3, as used by etcd 3.4/3.5), little endian:
//   page header (16 bytes): id u64 | flags u16 | count u16 | overflow u32
//   meta (at 16):           magic u32 | version u32 | pageSize u32 | flags u32 | root bucket
//                           {root u64, sequence u64} | freelist u64 | pgid u64 | txid u64 | checksum u64
//                           checksum = FNV-64a over the 56 meta bytes before it
//   branch element (16):    pos u32 | ksize u32 | pgid u64         (pos is relative to the element)
//   leaf element (16):      flags u32 | pos u32 | ksize u32 | vsize u32 (flags 1 = nested bucket)
//   bucket value:           {root u64, sequence u64}; root 0 = inline bucket, its page follows

/** Size of a page header and of each branch or leaf element. */
export const PAGE_HEADER_SIZE = 16;
/** Size of one branch or leaf element. */
export const ELEMENT_SIZE = 16;
/** Size of the bucket header that starts every bucket value. */
export const BUCKET_HEADER_SIZE = 16;
/** Magic number in every bbolt meta page. */
export const BOLT_MAGIC = 0xed0cdaed;
/** The only bbolt file format version. */
export const BOLT_VERSION = 2;
/** Page type flags. */
export const PageFlag = { branch: 0x01, leaf: 0x02, meta: 0x04, freelist: 0x10 } as const;
/** Leaf element flag marking a nested bucket. */
export const BUCKET_LEAF_FLAG = 0x01;
/** Meta `freelist` value when the freelist is not persisted (NoFreelistSync). */
export const NO_FREELIST = 0xffffffffffffffffn;

/** Raised inside the reader when the file breaks bbolt's rules; facts.ts turns it into a "corrupt" outcome. */
export class BoltCorruption extends Error {}

/** A parsed page header. */
export interface PageHeader {
  id: number;
  flags: number;
  count: number;
  overflow: number;
}

/** Parses the 16-byte page header at the start of buf. */
export function parsePageHeader(buf: Buffer): PageHeader {
  if (buf.length < PAGE_HEADER_SIZE) throw new BoltCorruption('page header is cut short');
  return {
    id: toSafeNumber(buf.readBigUInt64LE(0), 'page id'),
    flags: buf.readUInt16LE(8),
    count: buf.readUInt16LE(10),
    overflow: buf.readUInt32LE(12),
  };
}

/** Converts a u64 to a number, rejecting values JavaScript cannot hold exactly. */
export function toSafeNumber(v: bigint, what: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new BoltCorruption(`${what} ${v} is out of range`);
  return Number(v);
}

/** Name of a page type for messages, as bbolt prints it. */
export function pageTypeName(flags: number): string {
  if (flags & PageFlag.branch) return 'branch';
  if (flags & PageFlag.leaf) return 'leaf';
  if (flags & PageFlag.meta) return 'meta';
  if (flags & PageFlag.freelist) return 'freelist';
  return `unknown<${flags.toString(16).padStart(2, '0')}>`;
}

/** One key/value (or key/child page) element of a branch or leaf page. */
export interface Element {
  flags: number;
  key: Buffer;
  value: Buffer;
  child: number;
}

/** Decodes element i of a branch or leaf page held in buf; bounds are checked, never trusted. */
export function readElement(buf: Buffer, flags: number, i: number): Element {
  const at = PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
  if (at + ELEMENT_SIZE > buf.length) throw new BoltCorruption('element table runs past the page');
  if (flags & PageFlag.branch) {
    const pos = buf.readUInt32LE(at);
    const ksize = buf.readUInt32LE(at + 4);
    const child = toSafeNumber(buf.readBigUInt64LE(at + 8), 'child page id');
    const start = at + pos;
    if (start + ksize > buf.length) throw new BoltCorruption('branch key runs past the page');
    return { flags: 0, key: buf.subarray(start, start + ksize), value: EMPTY, child };
  }
  const eflags = buf.readUInt32LE(at);
  const pos = buf.readUInt32LE(at + 4);
  const ksize = buf.readUInt32LE(at + 8);
  const vsize = buf.readUInt32LE(at + 12);
  const start = at + pos;
  if (start + ksize + vsize > buf.length) throw new BoltCorruption('leaf key or value runs past the page');
  return {
    flags: eflags,
    key: buf.subarray(start, start + ksize),
    value: buf.subarray(start + ksize, start + ksize + vsize),
    child: 0,
  };
}

const EMPTY = Buffer.alloc(0);
