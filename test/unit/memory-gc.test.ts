import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { collectYoungWith, movedBytes } from '../../src/memory.js';

const REPO = join(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'memory-gc-'));
afterAll(() => {
  collectYoungWith(undefined);
  rmSync(dir, { recursive: true, force: true });
});

describe('paced minor collections (memory.ts)', () => {
  it('collects once every 4 MiB moved, counting across calls, and does nothing with no collector', () => {
    let runs = 0;
    collectYoungWith(() => runs++);
    for (let i = 0; i < 3; i++) movedBytes(1 << 20);
    expect(runs).toBe(0);
    movedBytes(1 << 20);
    expect(runs).toBe(1);
    for (let i = 0; i < 64; i++) movedBytes(64 << 10); // 4 MiB more in small pieces
    expect(runs).toBe(2);
    collectYoungWith(undefined);
    movedBytes(64 << 20);
    expect(runs).toBe(2);
  });

  it("the CLI's heap set-up registers V8's real minor collection, and gc is exposed to no context afterwards", () => {
    // its own process: V8 flags are the whole process's
    const script = join(dir, 'heap.mts');
    writeFileSync(script, [
      `import { PerformanceObserver, constants } from 'node:perf_hooks';`,
      `import { runInNewContext } from 'node:vm';`,
      `import { keepYoungGenerationSmall } from ${JSON.stringify(join(REPO, 'src/cli/heap.ts'))};`,
      `import { movedBytes } from ${JSON.stringify(join(REPO, 'src/memory.ts'))};`,
      `await keepYoungGenerationSmall();`,
      `const kinds = [];`,
      `const obs = new PerformanceObserver((list) => { for (const e of list.getEntries()) kinds.push(e.detail.kind); });`,
      `obs.observe({ entryTypes: ['gc'] });`,
      `await new Promise((r) => setTimeout(r, 50));`,
      `kinds.length = 0;`,
      `for (let i = 0; i < 5; i++) movedBytes(4 << 20);`,
      `await new Promise((r) => setTimeout(r, 50));`,
      `obs.disconnect();`,
      `console.log(JSON.stringify({ minor: kinds.filter((k) => k === constants.NODE_PERFORMANCE_GC_MINOR).length, newContext: runInNewContext('typeof gc'), global: typeof globalThis.gc }));`,
    ].join('\n'));
    const out = JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', script], { cwd: REPO, encoding: 'utf8' })) as { minor: number; newContext: string; global: string };
    // five collections asked for; V8 may have made one more of its own
    expect(out.minor).toBeGreaterThanOrEqual(5);
    expect(out.minor).toBeLessThanOrEqual(6);
    expect({ newContext: out.newContext, global: out.global }).toEqual({ newContext: 'undefined', global: 'undefined' });
  });
});
