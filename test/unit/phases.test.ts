import { describe, expect, it } from 'vitest';
import { PhaseClock, renderPhases } from '../../src/ui/phases.js';

describe('PhaseClock', () => {
  it('times consecutive phases in order, sums a phase run twice, and counts start-up from process start', () => {
    let t = 250;
    const clock = new PhaseClock(() => t);
    clock.sinceProcessStart('start-up');
    clock.start('save');
    t += 1000;
    clock.start('copy');
    t += 500.4;
    clock.start('save');
    t += 100;
    clock.end();
    clock.end(); // nothing running: no-op
    expect(clock.list()).toEqual([
      { name: 'start-up', seconds: 0.25 },
      { name: 'save', seconds: 1.1 },
      { name: 'copy', seconds: 0.5 },
    ]);
    expect(renderPhases(clock.list())).toBe('start-up 0.25s, save 1.10s, copy 0.50s');
  });
});
