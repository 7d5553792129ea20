import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeAllV } from '../../src/backup/partial.js';

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
