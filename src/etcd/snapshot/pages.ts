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
// Memory kept for reuse once neither the cache nor an unreleased page uses it.
const FREE_KEPT = 4;

/**
 * Synchronous positional reads over a bbolt file: pages that fit a block are views of a small
 * cache of aligned 256 KiB blocks (one read per block, not per page); a page whose overflow
 * crosses blocks (a large value) is read on its own. Memory is reused, not left to the garbage
 * collector: a block's or a large value's memory serves the next read once it has left the
 * cache and every page on it is released. So memory stays flat however large the file.
 */
export class PageFile {
  private readonly blocks = new Map<number, Buffer>();
  // Unreleased pages per memory (a block's or a large value's), and memory ready for reuse.
  private readonly users = new Map<ArrayBufferLike, number>();
  private readonly free: ArrayBufferLike[] = [];
  private readonly header = Buffer.alloc(PAGE_HEADER_SIZE);

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

  /**
   * Reads page id and its overflow pages; checks bounds and that the header names the same page.
   * The page's bytes stay valid until release(page); a page never released is left to the
   * garbage collector instead.
   */
  async readPage(id: number): Promise<Page> {
    if (id < 2 || id >= this.highWater) throw new BoltCorruption(`page ${id}: out of bounds: ${this.highWater}`);
    const offset = id * this.pageSize;
    const header = parsePageHeader(this.headerAt(offset) ?? this.bytesAt(offset, this.pageSize));
    if (header.id !== id) throw new BoltCorruption(`page ${id}: header names page ${header.id}`);
    if (id + header.overflow >= this.highWater) {
      throw new BoltCorruption(`page ${id}: overflow of ${header.overflow} pages runs past page ${this.highWater}`);
    }
    const buf = this.bytesAt(offset, (header.overflow + 1) * this.pageSize);
    this.users.set(buf.buffer, (this.users.get(buf.buffer) ?? 0) + 1);
    return { header, buf };
  }

  /** Declares that nothing refers to the page's bytes any more: their memory may serve another read. */
  release(page: Page): void {
    const memory = page.buf.buffer;
    const count = this.users.get(memory);
    if (count === undefined) return; // an inline page, or released already
    if (count > 1) {
      this.users.set(memory, count - 1);
      return;
    }
    this.users.delete(memory);
    if (!this.isCached(memory)) this.reuse(memory);
  }

  // The header of the page at offset read on its own when its block is not cached, so a large
  // value is read once, into its own memory, without loading a block it mostly fills; undefined
  // when the block is cached or the page is past the end (bytesAt then reads or reports it).
  private headerAt(offset: number): Buffer | undefined {
    if (this.blocks.has(Math.floor(offset / BLOCK_SIZE)) || offset + this.pageSize > this.dataSize) return undefined;
    const n = readSync(this.fh.fd, this.header, 0, PAGE_HEADER_SIZE, offset);
    return n === PAGE_HEADER_SIZE ? this.header : undefined;
  }

  // Exactly length bytes at offset (a view of a cached block, or a span read on its own), or
  // reports the file as truncated.
  private bytesAt(offset: number, length: number): Buffer {
    if (offset + length > this.dataSize) {
      throw new BoltCorruption(`truncated: needs bytes up to ${offset + length} but the database part of the file ends at ${this.dataSize}`);
    }
    const index = Math.floor(offset / BLOCK_SIZE);
    if (Math.floor((offset + length - 1) / BLOCK_SIZE) !== index) return this.readSpan(offset, length);
    const block = this.cachedBlock(index) ?? this.loadBlock(index);
    const at = offset - index * BLOCK_SIZE;
    if (at + length > block.length) throw new BoltCorruption(`truncated: file ends at ${index * BLOCK_SIZE + block.length}`);
    return block.subarray(at, at + length);
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

  private loadBlock(index: number): Buffer {
    if (this.blocks.size >= BLOCKS_CACHED) {
      const [oldest, evicted] = this.blocks.entries().next().value!;
      this.blocks.delete(oldest);
      if (!this.users.has(evicted.buffer)) this.reuse(evicted.buffer);
    }
    const start = index * BLOCK_SIZE;
    const buf = Buffer.from(this.memory(BLOCK_SIZE), 0, Math.min(BLOCK_SIZE, this.dataSize - start));
    const block = buf.subarray(0, this.fill(buf, 0, start));
    this.blocks.set(index, block);
    return block;
  }

  // Bytes across a block boundary (a value of many overflow pages): the part in the first block
  // is copied from the cache when it is there, the rest read.
  private readSpan(offset: number, length: number): Buffer {
    const index = Math.floor(offset / BLOCK_SIZE);
    const buf = Buffer.from(this.memory(length), 0, length);
    const cached = this.blocks.get(index)?.copy(buf, 0, offset - index * BLOCK_SIZE) ?? 0;
    const got = this.fill(buf, cached, offset + cached);
    if (got < length) throw new BoltCorruption(`truncated: file ends at ${offset + got}`);
    return buf;
  }

  // Memory of at least length bytes: a free one large enough, else a new one in whole blocks
  // (so blocks and values of similar sizes can take turns with it), never from Buffer's pool.
  private memory(length: number): ArrayBufferLike {
    const i = this.free.findIndex((m) => m.byteLength >= length);
    if (i >= 0) return this.free.splice(i, 1)[0];
    return Buffer.allocUnsafeSlow(Math.ceil(length / BLOCK_SIZE) * BLOCK_SIZE).buffer;
  }

  private isCached(memory: ArrayBufferLike): boolean {
    for (const block of this.blocks.values()) if (block.buffer === memory) return true;
    return false;
  }

  private reuse(memory: ArrayBufferLike): void {
    if (this.free.length < FREE_KEPT) this.free.push(memory);
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
      this.release(page);
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
