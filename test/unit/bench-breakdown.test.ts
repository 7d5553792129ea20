import { describe, expect, it } from 'vitest';
import { medianPhases } from '../../bench/sections/backup.js';
import { restorePhases, slowestParts } from '../../bench/sections/restore.js';
import { cpuLine, verdicts } from '../../bench/lib/report.js';
import type { BackupRow } from '../../bench/sections/backup.js';
import { machineBusySeconds } from '../../bench/lib/stats.js';

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

  it('breaks "before the steps" down by what the plugin timed of it, when its record says, and names the rest', () => {
    const record = { seconds: 10, steps: [{ id: 'quiesce', seconds: 1 }], before: [{ name: 'discover', seconds: 0.2 }, { name: 'safety backup', seconds: 3.1 }] };
    expect(restorePhases(record, 14, 14)).toEqual({
      'before the steps': 4, 'before: discover': 0.2, 'before: safety backup': 3.1, 'before: untimed (process start and exit)': expect.closeTo(0.7, 6),
      quiesce: 1, 'pods Ready after exit': 0,
    });
  });

  it('names a round\'s three slowest parts, the named parts of "before the steps" rather than their sum', () => {
    expect(slowestParts({ 'before the steps': 26, 'before: safety backup': 24.1, 'before: load': 0.1, 'wait-ready': 1.9, unquiesce: 2.8 }))
      .toBe('before: safety backup 24.1 s, unquiesce 2.8 s, wait-ready 1.9 s');
  });

  it('says how busy the machine was per variant, and the least time an overlap of save and copy could take on its cores', () => {
    const fig = (cpuSeconds?: number, cpuPhases?: Array<[string, number]>) => ({ seconds: 1, mbPerSecond: 1, samples: [], cpuSeconds, cpuPhases });
    const row = {
      targetMiB: 64, snapshotBytes: 1,
      figures: {
        floor: fig(0.9), 'plugin --via exec': fig(2.8), 'plugin --via stream': fig(3.1),
        'manual kubectl': fig(1.6, [['kubectl exec … snapshot save', 1.0], ['kubectl cp', 0.6]]),
      },
    };
    expect(cpuLine(row, 2)).toBe('CPU (machine busy core-s, median): floor 0.90, plugin --via exec 2.80, plugin --via stream 3.10, manual kubectl 1.60; ' +
      'manual save 1.00 + cp 0.60 core-s, so on 2 cores no overlap of the two takes less than 0.80 s');
    expect(cpuLine({ ...row, figures: { floor: fig(), 'plugin --via exec': fig(), 'plugin --via stream': fig(), 'manual kubectl': fig() } }, 2)).toBeUndefined();
  });

  it('reads the machine\'s busy CPU seconds from /proc/stat, and they grow while this process spins', async () => {
    const before = await machineBusySeconds();
    const until = Date.now() + 300;
    while (Date.now() < until) { /* spin */ }
    const after = await machineBusySeconds();
    expect(after - before).toBeGreaterThanOrEqual(0.2);
    expect(after - before).toBeLessThan(0.3 * 64);
  });

  it('judges peak memory by every plugin variant it ran, the encrypted backup too', () => {
    const fig = (seconds: number, peakRssMiB?: number) => ({ seconds, mbPerSecond: 1, ...(peakRssMiB ? { peakRssMiB } : {}) });
    const row = (targetMiB: number, encrypted: number): BackupRow => ({
      targetMiB, snapshotBytes: targetMiB << 20,
      figures: { floor: fig(1), 'manual kubectl': fig(1), 'plugin --via exec': fig(1, 124), 'plugin --via stream': fig(1, 131), 'plugin --via exec --encrypt-to': fig(1, encrypted) },
    } as BackupRow);
    const rss = (encrypted: number) =>
      verdicts({ etcd: { minor: '3.4', release: '3.4.23' }, backup: [row(64, 133), row(2048, encrypted)] }).filter((v) => v.target.includes('RSS'));
    expect(rss(151)).toEqual([
      { target: 'plugin peak RSS ≤ 150 MiB at 2 GiB', measured: '151 MiB', result: 'missed' },
      { target: 'plugin peak RSS flat in snapshot size (growth ≤ 10%)', measured: '133 → 151 MiB (64 → 2048 MiB)', result: 'missed' },
    ]);
    expect(rss(120).map((v) => v.result)).toEqual(['met', 'met']); // 133 → 131 MiB
  });

  it('asks each transport to be faster than manual at every size the run took (the issue names 64 MiB and 512 MiB)', () => {
    const fig = (seconds: number) => ({ seconds, mbPerSecond: 1 });
    const row = (targetMiB: number, exec: number, stream: number): BackupRow => ({
      targetMiB, snapshotBytes: targetMiB << 20,
      figures: { floor: fig(1), 'manual kubectl': fig(2), 'plugin --via exec': fig(exec), 'plugin --via stream': fig(stream) },
    } as BackupRow);
    const rows = verdicts({ etcd: { minor: '3.4', release: '3.4.23' }, backup: [row(64, 2.5, 1.9), row(512, 1.8, 2.2)] }).filter((v) => v.target.includes('manual ('));
    expect(rows).toEqual([
      { target: 'backup plugin --via exec faster than manual (64 MiB)', measured: '1.25× manual', result: 'missed' },
      { target: 'backup plugin --via exec faster than manual (512 MiB)', measured: '0.90× manual', result: 'met' },
      { target: 'backup plugin --via stream faster than manual (64 MiB)', measured: '0.95× manual', result: 'met' },
      { target: 'backup plugin --via stream faster than manual (512 MiB)', measured: '1.10× manual', result: 'missed' },
    ]);
  });
});
