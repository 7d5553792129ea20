// Memory benchmark for the offline snapshot reader (never part of `npm test`):
//   npx tsx bench/inspect-memory.ts [--mib 1024] [--file SNAPSHOT]
// Without --file it starts a real etcd, writes about --mib MiB (1 MiB values plus 100k small
// Kubernetes-shaped keys), takes `etcdctl snapshot save`, then reads the snapshot in a child
// process and prints its peak RSS next to the peak RSS of reading a tiny snapshot.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';
import { startEtcd } from '../test/helpers/etcd.js';

const run = promisify(execFile);

/** Reads one snapshot in a fresh node process and returns its peak RSS (MiB) and the facts' outcome. */
async function measure(file: string): Promise<{ maxRssMiB: number; outcome: string; seconds: number }> {
  const script = `
    const { readSnapshotFacts } = await import(${JSON.stringify(new URL('../src/etcd/snapshot/facts.ts', import.meta.url).href)});
    const t = process.hrtime.bigint();
    const f = await readSnapshotFacts(${JSON.stringify(file)});
    const seconds = Number(process.hrtime.bigint() - t) / 1e9;
    console.log(JSON.stringify({ maxRssMiB: Math.round(process.resourceUsage().maxRSS / 1024), outcome: f.outcome, seconds }));`;
  const { stdout } = await run('node', ['--import', 'tsx', '--input-type=module', '-e', script], { maxBuffer: 1 << 20 });
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

async function makeSnapshot(dir: string, mib: number, name: string): Promise<string> {
  const etcd = await startEtcd({ args: ['--quota-backend-bytes', String(8 * 1024 ** 3)] });
  try {
    const { Etcd3 } = await import('etcd3');
    const client = new Etcd3({ hosts: etcd.endpoint });
    const big = Buffer.alloc(1024 * 1024, 0x61);
    for (let i = 0; i < mib; i += 8) {
      await Promise.all(Array.from({ length: Math.min(8, mib - i) }, (_, j) => client.put(`/registry/secrets/bench/blob-${i + j}`).value(big).exec()));
    }
    const small = mib >= 64 ? 100_000 : 100;
    for (let b = 0; b < small; b += 1000) {
      await Promise.all(
        Array.from({ length: 1000 }, (_, j) => client.put(`/registry/configmaps/ns-${(b + j) % 20}/cm-${b + j}`).value(`{"i":${b + j}}`).exec()),
      );
    }
    client.close();
    const file = join(dir, name);
    await etcd.ctl(['snapshot', 'save', file]);
    return file;
  } finally {
    await etcd.destroy();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { mib: { type: 'string', default: '1024' }, file: { type: 'string' } } });
  const dir = await mkdtemp(join(tmpdir(), 'inspect-bench-'));
  try {
    const tiny = await makeSnapshot(dir, 1, 'tiny.db');
    const large = values.file ?? (await makeSnapshot(dir, Number(values.mib), 'large.db'));
    const [t, l] = [await measure(tiny), await measure(large)];
    const size = (await stat(large)).size;
    console.log(JSON.stringify({ tiny: { bytes: (await stat(tiny)).size, ...t }, large: { bytes: size, ...l } }, null, 2));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
