import { BOLT_MAGIC, BOLT_VERSION, PAGE_HEADER_SIZE, toSafeNumber } from './layout.js';

/** A bbolt meta page, decoded. */
export interface BoltMeta {
  pageSize: number;
  flags: number;
  root: number;
  freelist: bigint;
  /** High-water mark: pages [0, pgid) are in use or free. */
  pgid: number;
  txid: bigint;
}

/** Outcome of decoding one meta page. */
export type MetaReading =
  | { outcome: 'valid'; meta: BoltMeta }
  | { outcome: 'bad-magic' | 'bad-version' | 'bad-checksum' | 'cut-short'; detail: string };

const META_SIZE = 64;
const CHECKSUM_AT = PAGE_HEADER_SIZE + 56;

/** FNV-1a 64-bit over buf, as bbolt's meta.sum64 computes it. */
export function fnv64a(buf: Uint8Array): bigint {
  let h = 0xcbf29ce484222325n;
  for (const b of buf) h = BigInt.asUintN(64, (h ^ BigInt(b)) * 0x100000001b3n);
  return h;
}

/** Decodes and validates (magic, version, checksum) the meta page held at the start of page. */
export function readMeta(page: Buffer): MetaReading {
  if (page.length < PAGE_HEADER_SIZE + META_SIZE) return { outcome: 'cut-short', detail: 'meta page is cut short' };
  const magic = page.readUInt32LE(PAGE_HEADER_SIZE);
  if (magic !== BOLT_MAGIC) return { outcome: 'bad-magic', detail: `magic 0x${magic.toString(16)} is not bbolt's` };
  const version = page.readUInt32LE(PAGE_HEADER_SIZE + 4);
  if (version !== BOLT_VERSION) return { outcome: 'bad-version', detail: `format version ${version} is not ${BOLT_VERSION}` };
  const checksum = page.readBigUInt64LE(CHECKSUM_AT);
  // bbolt skips the check when the stored checksum is zero; so do we.
  if (checksum !== 0n && checksum !== fnv64a(page.subarray(PAGE_HEADER_SIZE, CHECKSUM_AT))) {
    return { outcome: 'bad-checksum', detail: 'meta checksum does not match' };
  }
  try {
    return {
      outcome: 'valid',
      meta: {
        pageSize: page.readUInt32LE(PAGE_HEADER_SIZE + 8),
        flags: page.readUInt32LE(PAGE_HEADER_SIZE + 12),
        root: toSafeNumber(page.readBigUInt64LE(PAGE_HEADER_SIZE + 16), 'root page id'),
        freelist: page.readBigUInt64LE(PAGE_HEADER_SIZE + 32),
        pgid: toSafeNumber(page.readBigUInt64LE(PAGE_HEADER_SIZE + 40), 'high-water page id'),
        txid: page.readBigUInt64LE(PAGE_HEADER_SIZE + 48),
      },
    };
  } catch (err) {
    return { outcome: 'bad-checksum', detail: (err as Error).message };
  }
}

/** The meta bbolt would use: the valid one with the higher txid, plus what was wrong with the other. */
export type MetaChoice =
  | { outcome: 'chosen'; meta: BoltMeta; index: 0 | 1; problems: string[] }
  | { outcome: 'none-valid'; problems: string[] };

/** Picks between the two meta pages the way bbolt's DB.meta() does. */
export function chooseMeta(m0: MetaReading, m1: MetaReading): MetaChoice {
  const problems: string[] = [];
  if (m0.outcome !== 'valid') problems.push(`meta page 0: ${m0.detail}`);
  if (m1.outcome !== 'valid') problems.push(`meta page 1: ${m1.detail}`);
  const valid = [m0, m1]
    .map((m, index) => ({ m, index: index as 0 | 1 }))
    .filter((x): x is { m: { outcome: 'valid'; meta: BoltMeta }; index: 0 | 1 } => x.m.outcome === 'valid');
  if (valid.length === 0) return { outcome: 'none-valid', problems };
  valid.sort((a, b) => (a.m.meta.txid > b.m.meta.txid ? -1 : a.m.meta.txid < b.m.meta.txid ? 1 : a.index - b.index));
  return { outcome: 'chosen', meta: valid[0].m.meta, index: valid[0].index, problems };
}
