// relay (src/kube/copy.ts) is the step between the pod's tar entry and the local snapshot stream.
// When the local side goes away (a signal handler destroys it, the disk fills), relay must stop
// and say so; before, it waited for a 'drain' that never came and the backup hung.
import { PassThrough, Readable, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { relay } from '../../src/kube/copy.js';

/** A source that keeps producing 64 KiB chunks until destroyed (like a big tar entry). */
function endlessSource(): Readable & { produced: () => number } {
  let produced = 0;
  const src = new Readable({
    highWaterMark: 64 << 10,
    read() {
      produced++;
      this.push(Buffer.alloc(64 << 10, 1));
    },
  });
  return Object.assign(src, { produced: () => produced });
}

/** A slow destination (small buffer, never drains by itself) that the test destroys. */
function stuckDestination(): Writable {
  return new Writable({ highWaterMark: 16 << 10, write() { /* never calls back: like a full pipe */ } });
}

describe('relay', () => {
  it.each([
    ['destroyed with an error (signal handler)', (to: Writable) => to.destroy(new Error('interrupted by SIGINT')), 'interrupted by SIGINT'],
    ['destroyed without an error', (to: Writable) => to.destroy(), 'the destination closed before the copy finished'],
  ])('rejects and destroys the source when the destination is %s while it waits for drain', async (_what, kill, message) => {
    const from = endlessSource();
    const to = stuckDestination();
    to.on('error', () => {});
    const done = relay(from, to, true, () => {});
    await new Promise((r) => setTimeout(r, 20)); // relay is now paused, waiting for 'drain'
    kill(to);
    await expect(done).rejects.toThrow(message);
    expect(from.destroyed).toBe(true);
  });

  it('holds at most about 1 MiB for a destination that does not take it, then waits (backpressure, not memory)', async () => {
    const from = endlessSource();
    const to = stuckDestination();
    to.on('error', () => {});
    const done = relay(from, to, true, () => {});
    await new Promise((r) => setTimeout(r, 50));
    // written ahead of a 16 KiB destination: up to 1 MiB and one chunk, never the whole source
    expect(to.writableLength).toBeGreaterThanOrEqual(1 << 20);
    expect(to.writableLength).toBeLessThanOrEqual((1 << 20) + (64 << 10));
    const produced = from.produced();
    await new Promise((r) => setTimeout(r, 50));
    expect(from.produced()).toBeLessThanOrEqual(produced + 2);
    to.destroy();
    await expect(done).rejects.toThrow();
  });

  it('rejects at once when the destination is already destroyed', async () => {
    const from = endlessSource();
    const to = new PassThrough();
    to.destroy();
    await expect(relay(from, to, true, () => {})).rejects.toThrow('the destination closed before the copy finished');
    expect(from.destroyed).toBe(true);
  });

  it('rejects when the source fails', async () => {
    const from = new Readable({ read() { this.destroy(new Error('tar stream broke')); } });
    const to = new PassThrough();
    to.resume();
    await expect(relay(from, to, true, () => {})).rejects.toThrow('tar stream broke');
  });

  it('copies everything with backpressure and ends the destination', async () => {
    const chunks = Array.from({ length: 50 }, (_, i) => Buffer.alloc(10_000, i));
    const from = Readable.from(chunks);
    let got = 0;
    const to = new Writable({
      highWaterMark: 1024,
      write(chunk: Buffer, _e, cb) {
        got += chunk.length;
        setImmediate(cb);
      },
    });
    let seen = 0;
    await relay(from, to, true, (c) => (seen += c.length));
    expect(got).toBe(500_000);
    expect(seen).toBe(500_000);
    expect(to.writableFinished).toBe(true);
  });
});
