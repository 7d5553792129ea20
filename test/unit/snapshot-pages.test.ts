import { randomBytes } from 'node:crypto';
import { mkdtemp, open, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BoltCorruption } from '../../src/etcd/snapshot/layout.js';
import { BLOCK_SIZE, PageFile } from '../../src/etcd/snapshot/pages.js';

// A file of random 4 KiB pages, 14 blocks and 5 pages long (more blocks than the cache holds),
// each page headed by its own id, read back through PageFile. Pages 70, 200 and 400 carry 100
// overflow pages each (large values across blocks); page 890 claims 20, past the end of the file.
const PAGE = 4096;
const PER_BLOCK = BLOCK_SIZE / PAGE;
const PAGES = 14 * PER_BLOCK + 5;
let dir: string;
let bytes: Buffer;
let fh: FileHandle;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'snapshot-pages-'));
  bytes = randomBytes(PAGES * PAGE);
  for (let id = 0; id < PAGES; id++) {
    bytes.writeBigUInt64LE(BigInt(id), id * PAGE);
    bytes.writeUInt16LE(0x02, id * PAGE + 8);
    bytes.writeUInt16LE(0, id * PAGE + 10);
    bytes.writeUInt32LE(0, id * PAGE + 12);
  }
  for (const [id, overflow] of [[70, 100], [200, 100], [400, 100], [890, 20]]) bytes.writeUInt32LE(overflow, id * PAGE + 12);
  await writeFile(join(dir, 'file'), bytes);
  fh = await open(join(dir, 'file'), 'r');
});

afterAll(async () => {
  await fh?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const whole = () => new PageFile(fh, PAGE, bytes.length, PAGES);
const pageBytes = (id: number, overflow = 0) => bytes.subarray(id * PAGE, (id + overflow + 1) * PAGE);

describe('PageFile', () => {
  it.each([
    ['in the first block', 2],
    ['the last of a block', PER_BLOCK - 1],
    ['the first of a block', PER_BLOCK],
    ['the last, in the short last block', PAGES - 1],
  ])('reads a page %s exactly as the file holds it, cached or not', async (_what, id) => {
    const file = whole();
    expect((await file.readPage(id)).buf.equals(pageBytes(id))).toBe(true);
    expect((await file.readPage(id)).buf.equals(pageBytes(id))).toBe(true);
  });

  it.each([
    ['its first block not cached', false],
    ['its first block cached', true],
  ])('reads a page with its overflow pages across blocks, %s', async (_what, cacheFirst) => {
    const file = whole();
    if (cacheFirst) await file.readPage(PER_BLOCK); // page 70's block
    const page = await file.readPage(70);
    expect(page.header).toEqual({ id: 70, flags: 0x02, count: 0, overflow: 100 });
    expect(page.buf.equals(pageBytes(70, 100))).toBe(true);
  });

  it('lends the memory of a released value to the next one, and only then', async () => {
    const file = whole();
    const first = await file.readPage(200);
    file.release(first);
    const second = await file.readPage(400);
    expect(second.buf.buffer).toBe(first.buf.buffer);
    expect(second.buf.equals(pageBytes(400, 100))).toBe(true);
    const third = await file.readPage(70); // second not released: new memory
    expect(third.buf.buffer).not.toBe(second.buf.buffer);
    expect(second.buf.equals(pageBytes(400, 100))).toBe(true);
    expect(third.buf.equals(pageBytes(70, 100))).toBe(true);
  });

  it('keeps unreleased pages intact while the cache reuses released blocks', async () => {
    const file = whole();
    const kept = [3, 180, 321, 513];
    const held = await Promise.all(kept.map((id) => file.readPage(id)));
    for (const id of [577, 641, 705, 769, 833, 2, 190, 330, 520]) file.release(await file.readPage(id));
    held.forEach((page, i) => expect(page.buf.equals(pageBytes(kept[i]))).toBe(true));
  });

  it('refuses a page past the database part of the file', async () => {
    const file = new PageFile(fh, PAGE, 2 * BLOCK_SIZE, 2 * PER_BLOCK + 10);
    await expect(file.readPage(2 * PER_BLOCK + 1)).rejects.toThrow(BoltCorruption);
    await expect(file.readPage(2 * PER_BLOCK + 1)).rejects.toThrow(`needs bytes up to ${(2 * PER_BLOCK + 2) * PAGE}`);
  });

  // PageFile is told the database part is 2 blocks longer than the file.
  it.each([
    ['a page past the end of the file', PAGES],
    ['a value running past the end of the file, across a block boundary', 890],
  ])('reports %s as truncated', async (_what, id) => {
    const size = bytes.length;
    const file = new PageFile(fh, PAGE, size + 2 * BLOCK_SIZE, (size + 2 * BLOCK_SIZE) / PAGE);
    await expect(file.readPage(id)).rejects.toThrow(`truncated: file ends at ${size}`);
  });
});
