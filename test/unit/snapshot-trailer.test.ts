import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkTrailer } from '../../src/etcd/snapshot/trailer.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'snapshot-trailer-'));
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Checks a file of `pages` random 512-byte pages plus a trailer (its sha256, or a damaged one). */
async function check(pages: number, damaged: boolean) {
  const body = randomBytes(pages * 512);
  const trailer = createHash('sha256').update(body).digest();
  if (damaged) trailer[0] ^= 1;
  const path = join(dir, `${pages}-${damaged}.db`);
  await writeFile(path, Buffer.concat([body, trailer]));
  const fh = await open(path, 'r');
  try {
    return { check: await checkTrailer(fh, body.length + 32), body };
  } finally {
    await fh.close();
  }
}

// 8 pages are hashed in this thread; 70,000 (34 MiB) on a worker thread.
describe.each([8, 70_000])('checkTrailer on %i pages', (pages) => {
  it('finds a matching trailer valid and reports both hashes', async () => {
    const { check: c, body } = await check(pages, false);
    const sha = createHash('sha256').update(body).digest('hex');
    expect(c).toEqual({ trailer: 'valid', computedSha256: sha, storedSha256: sha });
  });

  it('finds a damaged trailer a mismatch', async () => {
    expect((await check(pages, true)).check.trailer).toBe('mismatch');
  });
});

it('a file without a trailer is absent, not read', async () => {
  const path = join(dir, 'raw.db');
  await writeFile(path, randomBytes(4096));
  const fh = await open(path, 'r');
  try {
    expect(await checkTrailer(fh, 4096)).toEqual({ trailer: 'absent' });
  } finally {
    await fh.close();
  }
});
