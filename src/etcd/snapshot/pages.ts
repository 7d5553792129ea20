import { readSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import {
  BUCKET_HEADER_SIZE,
  BoltCorruption,
  PAGE_HEADER_SIZE,
  PageFlag,
  parsePageHeader,
  pageTypeName,
  readElement,
  toSafeNumber,
  type Element,
  type PageHeader,
} from './layout.js';

/** A page (with its overflow pages) read from the file, or an inline bucket's page. */
export interface Page {
  header: PageHeader;
  buf: Buffer;
}

/** Where a bucket's tree starts: a page id, or the inline page carried in its parent's value. */
export type BucketRef = { kind: 'paged'; root: number } | { kind: 'inline'; page: Buffer };

/**
 * Decodes a bucket value (bucket header, then the inline page when root is 0). An inline page
 * is copied: the value's page may be reused once forEachElement is done with it.
 */
export function bucketRef(value: Buffer): BucketRef {
  if (value.length < BUCKET_HEADER_SIZE) throw new BoltCorruption('bucket value is shorter than a bucket header');
  const root = toSafeNumber(value.readBigUInt64LE(0), 'bucket root page id');
  return root === 0 ? { kind: 'inline', page: Buffer.from(value.subarray(BUCKET_HEADER_SIZE)) } : { kind: 'paged', root };
}

/** Called for every page read while walking trees (the consistency checker listens here). */
export type PageObserver = (header: PageHeader, depth: number) => void;

/**
 * Size of the aligned blocks PageFile reads and caches for pages that fit one (a multiple of
 * bbolt's usual page sizes). Small enough that the cache stays a few MiB; large enough that a
 * walk over small pages makes one read per 64 pages of 4 KiB.
 */
export const BLOCK_SIZE = 1 << 18;
// Blocks kept (least recently used evicted): a walk returns to a block while it visits pages bbolt allocated together.
const BLOCKS_CACHED = 8;

/**
 * Synchronous positional reads over a bbolt file: pages that fit a block come from a small cache
 * of aligned 256 KiB blocks (one read per block, not per page); a page whose overflow crosses
 * blocks (a large value) is read on its own, into memory reused once its reader releases it.
 * Memory stays bounded: the cached blocks, the pages on the current path, one large value.
 */
export class PageFile {
  private readonly blocks = new Map<number, Buffer>();
  private readonly header = Buffer.alloc(PAGE_HEADER_SIZE);
  // The memory of the last span read, and of a span its reader released (see release()).
  private lastSpan: Buffer | undefined;
  private spare: ArrayBuffer | undefined;

  constructor(
    private readonly fh: FileHandle,
    /** Page size from the meta page. */
    readonly pageSize: number,
    /** Bytes of the file that belong to the database (the file minus any sha256 trailer). */
    readonly dataSize: number,
    /** High-water page id: no page at or past it may be referenced. */
    readonly highWater: number,
    private readonly observe: PageObserver = () => {},
  ) {}

  /** Reads page id and its overflow pages; checks bounds and that the header names the same page. */
  async readPage(id: number): Promise<Page> {
    if (id < 2 || id >= this.highWater) throw new BoltCorruption(`page ${id}: out of bounds: ${this.highWater}`);
    const offset = id * this.pageSize;
    const header = parsePageHeader(this.headerAt(offset) ?? (await this.readBytes(offset, this.pageSize)));
    if (header.id !== id) throw new BoltCorruption(`page ${id}: header names page ${header.id}`);
    if (id + header.overflow >= this.highWater) {
      throw new BoltCorruption(`page ${id}: overflow of ${header.overflow} pages runs past page ${this.highWater}`);
    }
    return { header, buf: await this.readBytes(offset, (header.overflow + 1) * this.pageSize) };
  }

  // The header of the page at offset read on its own when its block is not cached, so a large
  // value is read once, into its own memory, without loading a block it mostly fills; undefined
  // when the block is cached or the page is past the end (readBytes then reads or reports it).
  private headerAt(offset: number): Buffer | undefined {
    if (this.blocks.has(Math.floor(offset / BLOCK_SIZE)) || offset + this.pageSize > this.dataSize) return undefined;
    const n = readSync(this.fh.fd, this.header, 0, PAGE_HEADER_SIZE, offset);
    return n === PAGE_HEADER_SIZE ? this.header : undefined;
  }

  /**
   * Exactly length bytes at offset, or reports the file as truncated. Bytes within a block are
   * copied out of the cache (whose memory is reused); bytes across blocks are valid until
   * release() of their page.
   */
  async readBytes(offset: number, length: number): Promise<Buffer> {
    if (offset + length > this.dataSize) {
      throw new BoltCorruption(`truncated: needs bytes up to ${offset + length} but the database part of the file ends at ${this.dataSize}`);
    }
    const index = Math.floor(offset / BLOCK_SIZE);
    if (Math.floor((offset + length - 1) / BLOCK_SIZE) !== index) return this.readSpan(offset, length);
    const block = this.cachedBlock(index) ?? this.loadBlock(index);
    const at = offset - index * BLOCK_SIZE;
    if (at + length > block.length) throw new BoltCorruption(`truncated: file ends at ${index * BLOCK_SIZE + block.length}`);
    return Buffer.from(block.subarray(at, at + length));
  }

  // A hit moves the block to the back, so the least recently used one is evicted first.
  private cachedBlock(index: number): Buffer | undefined {
    const block = this.blocks.get(index);
    if (block) {
      this.blocks.delete(index);
      this.blocks.set(index, block);
    }
    return block;
  }

  // Reads a block into the memory of the one it evicts (nothing outside the cache refers to a
  // block), so a walk over a large file allocates BLOCKS_CACHED blocks in all.
  private loadBlock(index: number): Buffer {
    let memory: ArrayBuffer | undefined;
    if (this.blocks.size >= BLOCKS_CACHED) {
      const [oldest, evicted] = this.blocks.entries().next().value!;
      this.blocks.delete(oldest);
      memory = evicted.buffer as ArrayBuffer;
    }
    const start = index * BLOCK_SIZE;
    const buf = Buffer.from(memory ?? Buffer.allocUnsafeSlow(BLOCK_SIZE).buffer, 0, Math.min(BLOCK_SIZE, this.dataSize - start));
    const block = buf.subarray(0, this.fill(buf, 0, start));
    this.blocks.set(index, block);
    return block;
  }

  // Bytes across a block boundary (a value of many overflow pages): the part in the first block
  // is copied from the cache when it is there, the rest read.
  private readSpan(offset: number, length: number): Buffer {
    const index = Math.floor(offset / BLOCK_SIZE);
    const buf = this.spanBuffer(length);
    const cached = this.blocks.get(index)?.copy(buf, 0, offset - index * BLOCK_SIZE) ?? 0;
    const got = this.fill(buf, cached, offset + cached);
    if (got < length) throw new BoltCorruption(`truncated: file ends at ${offset + got}`);
    return buf;
  }

  // Memory for a span: the spare one when it is large enough, else a new one rounded up to whole
  // blocks (so values of similar sizes reuse it), never from Buffer's shared pool.
  private spanBuffer(length: number): Buffer {
    let memory = this.spare;
    this.spare = undefined;
    if (!memory || memory.byteLength < length) memory = Buffer.allocUnsafeSlow(Math.ceil(length / BLOCK_SIZE) * BLOCK_SIZE).buffer;
    this.lastSpan = Buffer.from(memory, 0, length);
    return this.lastSpan;
  }

  /**
   * Tells the reader nothing refers to this page's bytes any more, so a page read across blocks
   * (a large value) lends its memory to the next one: memory stays flat however many there are.
   */
  release(page: Page): void {
    if (page.buf === this.lastSpan) {
      this.spare = page.buf.buffer as ArrayBuffer;
      this.lastSpan = undefined;
    }
  }

  // Reads into buf from index from on, at file offset position, until buf is full or the file
  // ends; returns how many bytes of buf are filled. Synchronous: the walk is CPU-bound between
  // reads anyway, and a read from the page cache takes less than the hop to libuv's pool and back.
  private fill(buf: Buffer, from: number, position: number): number {
    let done = from;
    while (done < buf.length) {
      const bytesRead = readSync(this.fh.fd, buf, done, buf.length - done, position + done - from);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done;
  }

  /** Yields the leaf pages of a bucket in key order (branch pages are read and observed on the way). */
  async *leaves(ref: BucketRef): AsyncGenerator<Page> {
    if (ref.kind === 'inline') {
      const header = parsePageHeader(ref.page);
      if (!(header.flags & PageFlag.leaf)) throw new BoltCorruption(`inline bucket page: invalid type: ${pageTypeName(header.flags)}`);
      yield { header, buf: ref.page };
      return;
    }
    yield* this.subtree(ref.root, 0);
  }

  private async *subtree(id: number, depth: number): AsyncGenerator<Page> {
    if (depth > 64) throw new BoltCorruption(`page ${id}: tree is deeper than 64 levels (a page cycle)`);
    const page = await this.readPage(id);
    this.observe(page.header, depth);
    const { flags, count } = page.header;
    if (flags & PageFlag.leaf) {
      yield page;
    } else if (flags & PageFlag.branch) {
      for (let i = 0; i < count; i++) yield* this.subtree(readElement(page.buf, flags, i).child, depth + 1);
    } else {
      throw new BoltCorruption(`page ${id}: invalid type: ${pageTypeName(flags)}`);
    }
  }
}

/**
 * Calls fn for every element of a bucket in key order, like bbolt's Bucket.ForEach. The key and
 * value are valid only during the call: fn copies what it keeps (bucketRef does).
 */
export async function forEachElement(file: PageFile, ref: BucketRef, fn: (e: Element) => void): Promise<void> {
  for await (const page of file.leaves(ref)) {
    for (let i = 0; i < page.header.count; i++) fn(readElement(page.buf, page.header.flags, i));
    file.release(page);
  }
}
