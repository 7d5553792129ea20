import { mkdtemp, open, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { once } from 'node:events';
import { PartialFile, writeAllV } from '../../src/backup/partial.js';

const dirs: string[] = [];
afterAll(async () => { for (const d of dirs) await rm(d, { recursive: true, force: true }); });

describe('writeAllV (the backup file\'s vectored writes)', () => {
  it('writes many chunks to a real file in order, byte for byte', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'writev-'));
    dirs.push(dir);
    const chunks = Array.from({ length: 3000 }, (_, i) => Buffer.alloc(1 + (i % 700), i % 251));
    const fh = await open(join(dir, 'f'), 'w');
    await writeAllV(fh, chunks);
    await fh.close();
    expect((await readFile(join(dir, 'f'))).equals(Buffer.concat(chunks))).toBe(true);
  });

  it('takes a short write up where it stopped, also inside a chunk, and skips empty chunks', async () => {
    const written: Buffer[] = [];
    const shortWriter = {
      async writev(bufs: Buffer[]) {
        const take = Buffer.concat(bufs).subarray(0, 5);
        written.push(Buffer.from(take));
        return { bytesWritten: take.length, buffers: bufs };
      },
    };
    const chunks = [Buffer.from('abc'), Buffer.alloc(0), Buffer.from('defghij'), Buffer.from('k')];
    await writeAllV(shortWriter as never, chunks);
    expect(Buffer.concat(written).toString()).toBe('abcdefghijk');
    expect(written.map(String)).toEqual(['abcde', 'fghij', 'k']);
  });

  it('fails rather than spins when the disk takes no byte', async () => {
    const stuck = { writev: async (bufs: Buffer[]) => ({ bytesWritten: 0, buffers: bufs }) };
    await expect(writeAllV(stuck as never, [Buffer.from('x')])).rejects.toThrow('the disk took no byte of a write');
  });
});

describe('PartialFile.writable (a copy\'s chunks batched into large writes)', () => {
  /** A partial file in a fresh directory, and its writable. */
  const newPartial = async () => {
    const dir = await mkdtemp(join(tmpdir(), 'batch-'));
    dirs.push(dir);
    const p = await PartialFile.create(join(dir, 's.db'));
    return { p, w: p.writable() };
  };
  const write = (w: NodeJS.WritableStream, b: Buffer) => new Promise<void>((resolve, reject) => w.write(b, (err) => (err ? reject(err) : resolve())));

  it('gathers small chunks into writes of exactly a MiB, and writes the rest when the stream ends', async () => {
    const { p, w } = await newPartial();
    const chunks = Array.from({ length: 40 }, (_, i) => Buffer.alloc(32 * 1024 + (i % 3), i));
    const sizes: number[] = [];
    for (const c of chunks) {
      await write(w, c);
      sizes.push((await stat(p.path)).size);
    }
    // 31 chunks of about 32 KiB are under a MiB: nothing on the disk yet; the 32nd fills it
    expect(sizes.slice(0, 31).every((n) => n === 0)).toBe(true);
    expect(sizes[31]).toBe(1 << 20);
    expect(sizes[39]).toBe(1 << 20);
    w.end();
    await once(w, 'finish');
    expect((await readFile(p.path)).equals(Buffer.concat(chunks))).toBe(true);
    await p.discard();
  });

  it('keeps no chunk it was given (a batch is a copy), and writes a large chunk as it is, in order with the small ones', async () => {
    const { p, w } = await newPartial();
    const small = Buffer.alloc(1000, 1);
    const big = Buffer.alloc(3 << 20, 2);
    const tail = Buffer.alloc(5000, 3);
    const expected = Buffer.concat([small, big, tail, big]);
    await write(w, small);
    small.fill(9); // the caller may reuse its buffer once the write is called back
    await write(w, big); // fills the batch behind the small chunk first: 1 MiB, then the rest
    await write(w, tail);
    w.end(big); // the batch holds the tail: copied behind it, not written ahead
    await once(w, 'finish');
    expect((await readFile(p.path)).equals(expected)).toBe(true);
    await p.discard();
  });

  it('reports a failed batch write as a write error of the file, with the hint', async () => {
    const { p, w } = await newPartial();
    await p.discard(); // closes the file: the batch's write fails
    const failed = new Promise<Error>((resolve) => w.on('error', resolve));
    w.write(Buffer.alloc(2 << 20));
    expect((await failed).message).toMatch(/^cannot write ".*s\.db\.partial": /);
  });
});
