import { describe, expect, it } from 'vitest';
import { medianPhases } from '../../bench/sections/backup.js';
import { restorePhases, slowestParts } from '../../bench/sections/restore.js';

describe('bench breakdown', () => {
  it('takes the median of each phase in the order the phases first ran; a phase a run lacks counts 0 s there', () => {
    expect(medianPhases([{ phases: { save: 1, copy: 3 } }, { phases: { save: 2, copy: 1, cleanup: 0.3 } }, { phases: { save: 5, copy: 2 } }])).toEqual([
      ['save', 2], ['copy', 2], ['cleanup', 0],
    ]);
    expect(medianPhases([{}, {}])).toBeUndefined();
  });

  it('splits a restore: before the steps, each kind of step (its slowest member), and the wait for Ready after exit', () => {
    const record = {
      seconds: 10,
      steps: [
        { id: 'quiesce', seconds: 1 },
        { id: 'copy/kube-etcd-0', seconds: 2 }, { id: 'copy/kube-etcd-1', seconds: 3 },
        { id: 'restore/kube-etcd-0', seconds: 1 }, { id: 'restore/kube-etcd-1', seconds: 0.5 },
        { id: 'wait-ready', seconds: 2.5 },
      ],
    };
    expect(restorePhases(record, 14, 15.5)).toEqual({
      'before the steps': 4, quiesce: 1, copy: 3, restore: 1, 'wait-ready': 2.5, 'pods Ready after exit': 1.5,
    });
  });

  it('breaks "before the steps" down by what the plugin timed of it, when its record says', () => {
    const record = { seconds: 10, steps: [{ id: 'quiesce', seconds: 1 }], before: [{ name: 'discover', seconds: 0.2 }, { name: 'safety backup', seconds: 3.1 }] };
    expect(restorePhases(record, 14, 14)).toEqual({
      'before the steps': 4, 'before: discover': 0.2, 'before: safety backup': 3.1, quiesce: 1, 'pods Ready after exit': 0,
    });
  });

  it('names a round\'s three slowest parts, the named parts of "before the steps" rather than their sum', () => {
    expect(slowestParts({ 'before the steps': 26, 'before: safety backup': 24.1, 'before: load': 0.1, 'wait-ready': 1.9, unquiesce: 2.8 }))
      .toBe('before: safety backup 24.1 s, unquiesce 2.8 s, wait-ready 1.9 s');
  });
});
