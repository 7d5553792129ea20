import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Crc32c } from '../../src/etcd/snapshot/crc32c.js';

/** The plain bit-at-a-time CRC-32C (reflected, polynomial 0x82f63b78): the definition, unoptimised. */
function reference(buf: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of buf) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? 0x82f63b78 ^ (crc >>> 1) : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function crcOf(...parts: Uint8Array[]): number {
  const c = new Crc32c();
  for (const p of parts) c.update(p);
  return c.digest();
}

describe('Crc32c', () => {
  it.each([
    ['', 0x00000000],
    ['a', 0xc1d04330],
    ['123456789', 0xe3069283],
    ['The quick brown fox jumps over the lazy dog', 0x22620404],
  ])('CRC-32C of %j is %i', (text, expected) => {
    expect(crcOf(Buffer.from(text))).toBe(expected);
  });

  it('32 bytes of zeros and of 0xff give the RFC 3720 check values', () => {
    expect(crcOf(Buffer.alloc(32, 0))).toBe(0x8a9136aa);
    expect(crcOf(Buffer.alloc(32, 0xff))).toBe(0x62a8ab43);
  });

  // Lengths either side of the word path's threshold and of its 16-byte steps; offsets 0–7 so the
  // view starts misaligned; a pool buffer like the page reader's subarrays.
  it.each([1, 7, 8, 9, 63, 64, 65, 71, 72, 79, 80, 81, 95, 96, 97, 4095, 4096, 4097, 65_537, 1_000_003])('matches the definition on %i random bytes at every alignment', (length) => {
    const pool = randomBytes(length + 8);
    for (let offset = 0; offset < 8; offset++) {
      const buf = pool.subarray(offset, offset + length);
      expect(crcOf(buf)).toBe(reference(buf));
    }
  });

  it('is the same however the input is split across updates', () => {
    const buf = randomBytes(10_000);
    const whole = reference(buf);
    for (const cuts of [[1], [63, 64, 65], [3, 700, 701, 9000], [4096, 8192], [9999]]) {
      const parts = [0, ...cuts, buf.length].slice(1).map((end, i, ends) => buf.subarray(i === 0 ? 0 : ends[i - 1], end));
      expect(crcOf(...parts)).toBe(whole);
    }
  });
});
