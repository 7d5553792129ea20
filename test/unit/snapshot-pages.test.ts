import { randomBytes } from 'node:crypto';
import { mkdtemp, open, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BoltCorruption } from '../../src/etcd/snapshot/layout.js';
import { BLOCK_SIZE, PageFile } from '../../src/etcd/snapshot/pages.js';

// A file of random bytes ten and a bit blocks long (more than the cache holds), read back
// through PageFile's block cache.
const PAGE = 4096;
const BLOCKS = 10;
let dir: string;
let bytes: Buffer;
let fh: FileHandle;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'snapshot-pages-'));
  bytes = randomBytes(BLOCKS * BLOCK_SIZE + 5 * PAGE);
  // Page 70 starts in block 1 and claims 100 overflow pages, so it runs into block 2.
  bytes.writeBigUInt64LE(70n, 70 * PAGE);
  bytes.writeUInt16LE(0x02, 70 * PAGE + 8);
  bytes.writeUInt32LE(100, 70 * PAGE + 12);
  await writeFile(join(dir, 'file'), bytes);
  fh = await open(join(dir, 'file'), 'r');
});

afterAll(async () => {
  await fh?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('PageFile', () => {
  it.each([
    ['within the first block', 0, PAGE],
    ['the last bytes of a block', BLOCK_SIZE - 100, 100],
    ['across one block boundary', BLOCK_SIZE - 100, 200],
    ['across two block boundaries', BLOCK_SIZE - 7, BLOCK_SIZE + 14],
    ['the short last block', BLOCKS * BLOCK_SIZE + PAGE, 4 * PAGE],
    ['one byte at the end', BLOCKS * BLOCK_SIZE + 5 * PAGE - 1, 1],
  ])('reads %s exactly as the file holds it, cached or not', async (_what, offset, length) => {
    const file = new PageFile(fh, PAGE, bytes.length, bytes.length / PAGE);
    const expected = bytes.subarray(offset, offset + length);
    expect((await file.readBytes(offset, length)).equals(expected)).toBe(true);
    await file.readBytes(offset, 1); // now its block is cached
    expect((await file.readBytes(offset, length)).equals(expected)).toBe(true);
  });

  it('reads a page with its overflow pages across blocks', async () => {
    const file = new PageFile(fh, PAGE, bytes.length, bytes.length / PAGE);
    const page = await file.readPage(70);
    expect(page.header).toEqual({ id: 70, flags: 0x02, count: page.header.count, overflow: 100 });
    expect(page.buf.equals(bytes.subarray(70 * PAGE, 171 * PAGE))).toBe(true);
  });

  it('lends the memory of a released value to the next value across blocks, and only then', async () => {
    const file = new PageFile(fh, PAGE, bytes.length, bytes.length / PAGE);
    const header = { id: 0, flags: 0x02, count: 0, overflow: 1 };
    const first = await file.readBytes(BLOCK_SIZE - 100, 200);
    file.release({ header, buf: first });
    const second = await file.readBytes(2 * BLOCK_SIZE - 50, 100);
    expect(second.buffer).toBe(first.buffer);
    expect(second.equals(bytes.subarray(2 * BLOCK_SIZE - 50, 2 * BLOCK_SIZE + 50))).toBe(true);
    const third = await file.readBytes(3 * BLOCK_SIZE - 50, 100); // second not released: new memory
    expect(third.buffer).not.toBe(second.buffer);
    expect(second.equals(bytes.subarray(2 * BLOCK_SIZE - 50, 2 * BLOCK_SIZE + 50))).toBe(true);
    expect(third.equals(bytes.subarray(3 * BLOCK_SIZE - 50, 3 * BLOCK_SIZE + 50))).toBe(true);
  });

  it('pages read from blocks keep their bytes after the cache reuses those blocks', async () => {
    const file = new PageFile(fh, PAGE, bytes.length, bytes.length / PAGE);
    const read = [];
    for (let b = 0; b < BLOCKS; b++) read.push({ at: b * BLOCK_SIZE + PAGE, buf: await file.readBytes(b * BLOCK_SIZE + PAGE, PAGE) });
    for (const { at, buf } of read) expect(buf.equals(bytes.subarray(at, at + PAGE))).toBe(true);
  });

  it('refuses bytes past the database part of the file', async () => {
    const file = new PageFile(fh, PAGE, 2 * BLOCK_SIZE, (2 * BLOCK_SIZE) / PAGE);
    await expect(file.readBytes(2 * BLOCK_SIZE - 10, 20)).rejects.toThrow(BoltCorruption);
    await expect(file.readBytes(2 * BLOCK_SIZE - 10, 20)).rejects.toThrow(`needs bytes up to ${2 * BLOCK_SIZE + 10}`);
  });

  // The file ends 10 bytes into the read; PageFile was told the database part is 2 blocks longer.
  it.each([
    ['in the last block', 20],
    ['across a block boundary', BLOCK_SIZE],
  ])('reports a file shorter than its database part as truncated (%s)', async (_what, length) => {
    const size = bytes.length;
    const file = new PageFile(fh, PAGE, size + 2 * BLOCK_SIZE, (size + 2 * BLOCK_SIZE) / PAGE);
    await expect(file.readBytes(size - 10, length)).rejects.toThrow(`truncated: file ends at ${size}`);
  });
});
