// The etcd client's HTTP/2 flow-control window, from the round trip to the API server (pure).
import { describe, expect, it } from 'vitest';
import { flowControlWindow } from '../../src/etcd/client.js';

const MiB = 1 << 20;

describe('flowControlWindow', () => {
  it.each([
    [undefined, 8 * MiB], // unknown: the window that suits a far cluster
    [Number.NaN, 8 * MiB],
    [0.2, 4 * MiB], // the local test cluster
    [8, 4 * MiB],
    [12, 6 * MiB],
    [16, 8 * MiB],
    [120, 8 * MiB], // never more than before
  ])('a round trip of %s ms gets %i bytes', (rtt, window) => {
    expect(flowControlWindow(rtt)).toBe(window);
  });
});
