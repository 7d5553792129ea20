import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { etcdctlSnapshotStatus, requireBinary, seedKubernetesShapedKeys, startEtcd, type LocalEtcd } from '../helpers/etcd.js';
import { distStale } from './plugin-build.js';

// `kubectl etcd inspect` through real kubectl plugin discovery (bin/ on PATH) and the built dist/.
const repo = resolve(import.meta.dirname, '../..');
const run = promisify(execFile);
let etcd: LocalEtcd;
let dir: string;
let saved: string;
let raw: string;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function kubectlEtcd(args: string[]): Promise<Result> {
  const env = { ...process.env, PATH: `${join(repo, 'bin')}${delimiter}${process.env.PATH}`, KUBECONFIG: join(dir, 'no-kubeconfig') };
  return new Promise((done) => {
    execFile('kubectl', ['etcd', ...args], { env, cwd: dir }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      done({ code, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  await requireBinary('kubectl', 'kubectl');
  if (distStale(repo)) {
    const started = Date.now();
    // tsc emits even when some other file has type errors; what matters here is a fresh dist/.
    await run('npm', ['run', 'build'], { cwd: repo }).catch(() => undefined);
    const built = await stat(join(repo, 'dist/cli/inspect.js')).catch(() => undefined);
    if (!built || built.mtimeMs < started - 1000) throw new Error('npm run build did not produce dist/cli/inspect.js; run it and read its errors');
  }
  dir = await mkdtemp(join(tmpdir(), 'inspect-e2e-'));
  etcd = await startEtcd();
  await seedKubernetesShapedKeys(etcd, 2_000, 100_000);
  saved = join(dir, 'saved.db');
  await etcd.ctl(['snapshot', 'save', saved]);
  await etcd.stop();
  raw = join(dir, 'raw.db');
  await copyFile(join(etcd.dataDir, 'member', 'snap', 'db'), raw);
});

afterAll(async () => {
  await etcd?.destroy();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('kubectl etcd inspect', () => {
  it('prints a table with the numbers etcdctl snapshot status prints, and exits 0', async () => {
    const expected = await etcdctlSnapshotStatus(saved);
    const r = await kubectlEtcd(['inspect', saved]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('INTEGRITY   valid: sha256 trailer matches\n');
    expect(r.stdout).toContain(`HASH        ${expected.hash}\n`);
    expect(r.stdout).toContain(`REVISION    ${expected.revision}\n`);
    expect(r.stdout).toContain(`TOTAL KEYS  ${expected.totalKey}\n`);
    expect(r.stdout).toMatch(new RegExp(`^TOTAL SIZE  ${expected.totalSize} `, 'm'));
    expect(r.stdout).toMatch(/^RESOURCE +OBJECTS$/m);
    expect(r.stdout).toMatch(/^configmaps +1900$/m);
    expect(r.stdout).toMatch(/^secrets +3$/m);
  });

  it('-o json carries etcdctl status field for field, without per-namespace counts unless asked', async () => {
    const r = await kubectlEtcd(['inspect', saved, '-o', 'json']);
    expect(r.code).toBe(0);
    const record = JSON.parse(r.stdout);
    expect(record.status).toEqual(await etcdctlSnapshotStatus(saved));
    expect(record).toMatchObject({ outcome: 'valid', trailer: 'valid', problems: [], notes: [] });
    expect(record.objects.byNamespace).toBeUndefined();
  });

  it('--by-namespace -o yaml adds counts per namespace', async () => {
    const r = await kubectlEtcd(['inspect', saved, '--by-namespace', '-o', 'yaml']);
    expect(r.code).toBe(0);
    const record = parseYaml(r.stdout);
    expect(record.objects.byNamespace['ns-0']).toEqual({ configmaps: 380, secrets: 2 });
    expect(record.objects.byNamespace['']).toEqual({ namespaces: 5, 'apiextensions.k8s.io/customresourcedefinitions': 1 });
  });

  it('--by-namespace prints a namespace table', async () => {
    const r = await kubectlEtcd(['inspect', saved, '--by-namespace']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^NAMESPACE +RESOURCE +OBJECTS$/m);
    expect(r.stdout).toMatch(/^ns-1 +configmaps +380$/m);
    expect(r.stdout).toMatch(/^\(cluster\) +namespaces +5$/m);
  });

  it('accepts a raw member/snap/db and says it has no trailer', async () => {
    const r = await kubectlEtcd(['inspect', raw]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('no sha256 trailer (not produced by snapshot save); restore needs --skip-hash-check');
    expect(r.stdout).toContain(`REVISION    ${(await etcdctlSnapshotStatus(raw)).revision}\n`);
  });

  it('exits 3 with one line when a bit is flipped', async () => {
    const file = join(dir, 'flipped.db');
    const b = await readFile(saved);
    b[Math.floor(b.length / 2)] ^= 0x04;
    await writeFile(file, b);
    const r = await kubectlEtcd(['inspect', file]);
    expect(r.code).toBe(3);
    expect(r.stderr).toBe(`error: snapshot "${file}" does not match its sha256 trailer; re-take the backup; the file is damaged\n`);
  });

  it('exits 3 with one line when the file is truncated', async () => {
    const file = join(dir, 'truncated.db');
    const b = await readFile(saved);
    await writeFile(file, b.subarray(0, b.length - 10_000));
    const r = await kubectlEtcd(['inspect', file, '-o', 'json']);
    expect(r.code).toBe(3);
    expect(JSON.parse(r.stdout).outcome).toBe('corrupt');
    expect(r.stderr).toMatch(new RegExp(`^error: snapshot "${file}" is corrupt: truncated: [^\\n]*; re-take the backup; the file is damaged\\n$`));
  });

  it('exits 1 naming the file when it does not exist', async () => {
    const file = join(dir, 'nope.db');
    const r = await kubectlEtcd(['inspect', file]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`error: snapshot "${file}" not found; check the path\n`);
  });

  it('exits 2 on an unknown output format', async () => {
    const r = await kubectlEtcd(['inspect', saved, '-o', 'xml']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unsupported output format "xml"');
  });
});
