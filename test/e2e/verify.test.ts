// `kubectl etcd verify --restore` (the restore drill) through real kubectl plugin discovery and the
// built dist/, on snapshots of real etcd 3.4 and 3.5 members, restored and started by real etcd.
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { PutObjectCommand, S3Client, GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd } from '../helpers/etcd.js';
import { startS3, type TestS3 } from '../helpers/s3-server.js';
import { damageLease, resealTrailer } from '../helpers/snapshot-damage.js';
import { etcdBinaries } from '../sim/etcd-versions.js';
import { distStale } from './plugin-build.js';

const repo = resolve(import.meta.dirname, '../..');
const run = promisify(execFile);
let dir: string;
let state: string;
let snap34: string;
let snap35: string;
let raw34: string;
let leaseId: bigint;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function kubectlEtcd(args: string[], env: Record<string, string> = {}): Promise<Result> {
  const fullEnv = { ...process.env, PATH: `${join(repo, 'bin')}${delimiter}${process.env.PATH}`, KUBECONFIG: join(dir, 'no-kubeconfig'), ...env };
  return new Promise((done) => {
    execFile('kubectl', ['etcd', ...args, ...(args[0] === 'snapshots' ? [] : ['--state-dir', state])], { env: fullEnv, cwd: dir }, (err, stdout, stderr) => {
      done({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

/** A record of ours beside the file (what `backup --dir` writes; only its owner fields matter here). */
async function writeRecord(file: string): Promise<void> {
  await writeFile(`${file}.json`, JSON.stringify({ file, namespace: 'uc1', workload: 'kube-etcd', sourcePod: 'kube-etcd-0' }), { mode: 0o600 });
}

/** Leftovers of drills in the state dir (they hold the cluster's data: none may stay). */
async function drillLeftovers(): Promise<string[]> {
  return (await readdir(join(state, 'tmp')).catch(() => [] as string[])).filter((n) => n.startsWith('drill-') || n.startsWith('plaintext-'));
}

beforeAll(async () => {
  if (distStale(repo)) await run('npm', ['run', 'build'], { cwd: repo });
  dir = await mkdtemp(join(tmpdir(), 'verify-e2e-'));
  state = join(dir, 'state');
  for (const minor of ['3.4', '3.5'] as const) {
    const etcd = await startEtcd({ minor });
    try {
      for (let i = 0; i < 50; i++) await etcd.ctl(['put', `/registry/configmaps/ns-${i % 3}/cm-${i}`, `value ${i}`]);
      const granted = await etcd.ctl(['lease', 'grant', '3600']);
      const lease = BigInt(`0x${/lease ([0-9a-f]+) granted/.exec(granted)![1]}`);
      if (minor === '3.4') leaseId = lease;
      await etcd.ctl(['put', '/registry/masterleases/10.0.0.1', 'x', `--lease=${lease.toString(16)}`]);
      await etcd.ctl(['del', '/registry/configmaps/ns-0/cm-0']);
      await etcd.ctl(['compact', '20']);
      await etcd.ctl(['put', '/registry/configmaps/ns-1/cm-1', 'changed after the compaction']);
      const file = join(dir, `uc1-kube-etcd-${minor === '3.4' ? '20261206T100000Z-rev55' : '20261206T110000Z-rev55'}.db`);
      await etcd.ctl(['snapshot', 'save', file]);
      if (minor === '3.4') {
        snap34 = file;
        await etcd.stop();
        raw34 = join(dir, 'member-db');
        await copyFile(join(etcd.dataDir, 'member', 'snap', 'db'), raw34);
      } else {
        snap35 = file;
      }
    } finally {
      await etcd.destroy();
    }
  }
}, 120_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('kubectl etcd verify --restore', () => {
  it('passes a good 3.4 snapshot: restored and started by local etcd, same revision, keys and KV hash; recorded in its record (0600)', async () => {
    await writeRecord(snap34);
    const r = await kubectlEtcd(['verify', snap34, '--restore']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^DRILL\s+passed: restored with etcdctl 3\.4\.\d+, started etcd 3\.4\.\d+ on a private unix socket; .*serves the same revision, keys, compaction and KV hash/m);
    expect(r.stdout).toMatch(/^REVISION\s+\d+ \(compacted at 20\)$/m);
    expect(r.stdout).toMatch(/^KEYS\s+50$/m);
    const record = JSON.parse(await readFile(`${snap34}.json`, 'utf8')) as { namespace: string; drills: Array<{ outcome: string; where: string; served: { keys: number }; expected: { liveKeys: number; hash: number }; etcdVersion: string }> };
    expect(record.namespace).toBe('uc1');
    expect(record.drills).toHaveLength(1);
    expect(record.drills[0]).toMatchObject({ outcome: 'passed', where: 'local', served: { keys: 50 } });
    expect((await stat(`${snap34}.json`)).mode & 0o777).toBe(0o600);
    expect(await drillLeftovers()).toEqual([]);

    // A second drill is added after the first (-o json prints the same report).
    const again = await kubectlEtcd(['verify', snap34, '--restore', '-o', 'json']);
    expect(again.code, again.stderr).toBe(0);
    const report = JSON.parse(again.stdout) as { drill: { outcome: string; served: { hash: number }; expected: { hash: number } }; recorded: string };
    expect(report.drill.outcome).toBe('passed');
    expect(report.drill.served.hash).toBe(report.drill.expected.hash);
    expect(report.recorded).toBe(`${snap34}.json`);
    expect((JSON.parse(await readFile(`${snap34}.json`, 'utf8')) as { drills: unknown[] }).drills).toHaveLength(2);
  }, 60_000);

  it('passes a 3.5 snapshot with etcd 3.5 (--etcd; restored by its etcdutl)', async () => {
    const bins = etcdBinaries('3.5');
    const r = await kubectlEtcd(['verify', snap35, '--restore', '--etcd', bins.etcd]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^DRILL\s+passed: restored with etcdutl 3\.5\.\d+, started etcd 3\.5\.\d+/m);
    expect(r.stderr).toContain(`has no record beside it (${snap35}.json): the drill is not recorded`);
  }, 60_000);

  it('passes snapshots of a member restored with etcdutl --bump-revision --mark-compacted (what a 3.5 restore leaves), before and after new writes', async () => {
    const bins = etcdBinaries('3.5');
    const data = join(dir, 'bumped');
    const peer = 'http://127.0.0.1:2380';
    await run(bins.etcdutl!, ['snapshot', 'restore', snap35, '--data-dir', data, '--name', 'test', '--initial-cluster', `test=${peer}`, '--initial-advertise-peer-urls', peer, '--bump-revision', '1000', '--mark-compacted']);
    const etcd = await startEtcd({ minor: '3.5', dataDir: data });
    const [fresh, written] = [join(dir, 'bumped-fresh.db'), join(dir, 'bumped-written.db')];
    try {
      await etcd.ctl(['snapshot', 'save', fresh]);
      await etcd.ctl(['put', '/registry/configmaps/ns-0/new-1', 'after the restore']);
      await etcd.ctl(['put', '/registry/configmaps/ns-1/cm-1', 'changed after the restore']);
      await etcd.ctl(['snapshot', 'save', written]);
    } finally {
      await etcd.destroy();
    }
    for (const [file, keys] of [[fresh, 50], [written, 51]] as const) {
      const r = await kubectlEtcd(['verify', file, '--restore', '--etcd', bins.etcd]);
      expect(r.code, `${file}: ${r.stdout}${r.stderr}`).toBe(0);
      expect(r.stdout).toMatch(/^DRILL\s+passed/m);
      expect(r.stdout).toMatch(new RegExp(`^KEYS\\s+${keys}$`, 'm'));
    }
  }, 60_000);

  it('passes a raw member db (no sha256 trailer: restored with --skip-hash-check)', async () => {
    const r = await kubectlEtcd(['verify', raw34, '--restore']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^DRILL\s+passed/m);
  }, 60_000);

  it('fails a snapshot whose lease record is damaged under a valid trailer: inspect passes it, the drill does not (exit 3, etcd\'s reason, recorded)', async () => {
    const bad = join(dir, 'uc1-kube-etcd-20261206T120000Z-rev55.db');
    await copyFile(snap34, bad);
    expect(await damageLease(bad, leaseId), 'the lease record is in the snapshot').toBeGreaterThan(0);
    await writeRecord(bad);

    const inspected = await kubectlEtcd(['inspect', bad]);
    expect(inspected.code, inspected.stderr).toBe(0);

    const r = await kubectlEtcd(['verify', bad, '--restore']);
    expect(r.code, r.stdout + r.stderr).toBe(3);
    // etcd 3.4's own restore already loads the leases and panics; a member would on start.
    expect(r.stdout).toMatch(/^DRILL\s+FAILED: (etcd (exited with code \d+|was killed by \w+) on the restored data|etcd(ctl|utl) snapshot restore refused the snapshot): panic: failed to Unmarshal lease proto item/m);
    expect(r.stderr).toMatch(/^error: the restore drill of snapshot ".*" failed: .*; this backup would not restore/m);
    const record = JSON.parse(await readFile(`${bad}.json`, 'utf8')) as { drills: Array<{ outcome: string; reason: string }> };
    expect(record.drills[0].outcome).toBe('failed');
    expect(await drillLeftovers()).toEqual([]);
  }, 60_000);

  it('fails a snapshot with a damaged bbolt page under a valid trailer before starting anything (exit 3, nothing recorded)', async () => {
    const bad = join(dir, 'uc1-kube-etcd-20261206T130000Z-rev55.db');
    await copyFile(snap34, bad);
    // The leaf page that holds a key's revisions: its header zeroed, it names no page (what bbolt's check and ours refuse).
    const at = (await readFile(bad)).indexOf('/registry/configmaps/ns-2/cm-5');
    expect(at).toBeGreaterThan(0);
    const fh = await open(bad, 'r+');
    await fh.write(Buffer.alloc(16), 0, 16, at - (at % 4096));
    await fh.close();
    await resealTrailer(bad);
    await writeRecord(bad);
    const r = await kubectlEtcd(['verify', bad, '--restore', '-v', '1']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/^error: snapshot ".*" is corrupt: /m);
    expect(r.stderr).not.toContain('starting');
    expect(JSON.parse(await readFile(`${bad}.json`, 'utf8'))).not.toHaveProperty('drills');
  }, 60_000);

  it('drills an age-encrypted snapshot with -i, leaving no plaintext behind', async () => {
    const key = join(dir, 'key.txt');
    if (!existsSync(key)) await run('age-keygen', ['-o', key]);
    const recipient = (await readFile(key, 'utf8')).match(/public key: (age1\w+)/)![1];
    const enc = `${snap34}.age`;
    await run('age', ['-r', recipient, '-o', enc, snap34]);
    const r = await kubectlEtcd(['verify', enc, '--restore', '-i', key]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^DRILL\s+passed/m);
    expect(await drillLeftovers()).toEqual([]);
  }, 60_000);

  it('snapshots list shows each backup\'s last drill', async () => {
    const r = await kubectlEtcd(['snapshots', 'list', dir]);
    expect(r.code, r.stderr).toBe(0);
    const row = (name: string) => r.stdout.split('\n').find((l) => l.startsWith(name)) ?? '';
    expect(r.stdout.split('\n')[0]).toMatch(/\s+LAST DRILL$/);
    expect(row('uc1-kube-etcd-20261206T100000Z-rev55.db ')).toMatch(/\spassed \d{4}-\d\d-\d\dT[\d:.]+Z$/);
    expect(row('uc1-kube-etcd-20261206T120000Z-rev55.db ')).toMatch(/\sFAILED \d{4}-\d\d-\d\dT[\d:.]+Z$/);
    expect(row('uc1-kube-etcd-20261206T130000Z-rev55.db ')).toMatch(/\snone$/);
  });

  it('on SIGINT (exit 130) or SIGHUP mid-drill stops its etcd and removes its directory; after a SIGKILL its etcd dies too and the next run removes the directory', async () => {
    // Processes whose command line names a drill directory of this state dir (read from /proc: no procps needed).
    const drillMembers = async () => {
      const found: string[] = [];
      for (const pid of (await readdir('/proc')).filter((n) => /^\d+$/.test(n))) {
        const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
        if (cmdline.includes(`${state}/tmp/drill-`)) found.push(pid);
      }
      return found.join(' ');
    };
    for (const signal of ['SIGINT', 'SIGHUP', 'SIGKILL'] as const) {
      const child = spawn('kubectl', ['etcd', 'verify', snap34, '--restore', '-v', '1', '--state-dir', state], {
        env: { ...process.env, PATH: `${join(repo, 'bin')}${delimiter}${process.env.PATH}` }, stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      const exited = new Promise<number | null>((done) => child.on('exit', (code, sig) => done(code ?? (sig ? -1 : null))));
      await new Promise<void>((started) => child.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (stderr.includes('starting ')) started();
      }));
      // Once its member runs (the drill has a while to go: etcd takes longer to answer than to appear).
      await expect.poll(drillMembers, { timeout: 10_000, interval: 20 }).not.toBe('');
      child.kill(signal);
      const code = await exited;
      if (signal === 'SIGINT') {
        expect(code, stderr).toBe(130);
        expect(await drillLeftovers()).toEqual([]);
      } else if (signal === 'SIGHUP') {
        // A closed terminal: the directory goes at once, and the process ends by the signal.
        expect(code, stderr).toBe(-1);
        expect(await drillLeftovers()).toEqual([]);
      } else {
        expect(await drillLeftovers()).toHaveLength(1);
      }
      await expect.poll(drillMembers, { timeout: 10_000 }).toBe('');
    }
    const next = await kubectlEtcd(['verify', raw34, '--restore']);
    expect(next.code, next.stderr).toBe(0);
    expect(await drillLeftovers()).toEqual([]);
  }, 60_000);

  it('prints the drill and keeps its exit code when the record cannot be updated (a warning, not an error)', async () => {
    const copy = join(dir, 'uc1-kube-etcd-20261206T140000Z-rev55.db');
    await copyFile(snap34, copy);
    await mkdir(`${copy}.json`); // a record that cannot be read
    const r = await kubectlEtcd(['verify', copy, '--restore']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^DRILL\s+passed/m);
    expect(r.stderr).toMatch(/^warning: the drill is not recorded: cannot read the record ".*\.json": EISDIR$/m);
  }, 60_000);

  it('refuses a snapshot with etcd authentication enabled (exit 1, nothing started)', async () => {
    const etcd = await startEtcd();
    const file = join(dir, 'auth.db');
    try {
      await etcd.ctl(['user', 'add', 'root:secret']);
      await etcd.ctl(['auth', 'enable']);
      await etcd.ctl(['--user', 'root:secret', 'put', '/a', '1']);
      await etcd.ctl(['--user', 'root:secret', 'snapshot', 'save', file]);
    } finally {
      await etcd.destroy();
    }
    const r = await kubectlEtcd(['verify', file, '--restore', '-v', '1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: snapshot ".*auth\.db" has etcd authentication enabled: /m);
    expect(r.stderr).not.toContain('restoring with');
    expect(await drillLeftovers()).toEqual([]);
  }, 60_000);

  it('refuses with one line, before reading anything, when no etcd is on PATH', async () => {
    const r = await new Promise<Result>((done) => {
      execFile(process.execPath, [join(repo, 'bin/kubectl-etcd'), 'verify', join(dir, 'does-not-exist.db'), '--restore', '--state-dir', state], { env: { PATH: '/nonexistent', HOME: dir } }, (err, stdout, stderr) =>
        done({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
    });
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([
      'error: the restore drill needs etcd on this machine and there is none on PATH; install etcd of your cluster\'s release (Debian: etcd-server and etcd-client), pass --etcd PATH, or drill in a throwaway pod of the cluster with --in-cluster -n NAMESPACE',
    ]);
  });
});

describe('kubectl etcd verify without --restore', () => {
  it('checks integrity only: exit 0 on a good snapshot (no drill, nothing recorded), 3 on a damaged one; --etcd alone is a usage error', async () => {
    const good = await kubectlEtcd(['verify', snap35]);
    expect(good.code, good.stderr).toBe(0);
    expect(good.stdout).toMatch(/^INTEGRITY\s+valid: sha256 trailer matches$/m);
    expect(good.stdout).not.toMatch(/^DRILL/m);
    const bad = await kubectlEtcd(['verify', join(dir, 'uc1-kube-etcd-20261206T130000Z-rev55.db')]);
    expect(bad.code).toBe(3);
    expect(bad.stderr).toMatch(/^error: snapshot ".*" is corrupt: /m);
    const usage = await kubectlEtcd(['verify', snap35, '--etcd', '/usr/bin/etcd']);
    expect(usage.code).toBe(2);
    expect(usage.stderr.trim()).toBe('error: --etcd works only with --restore; add --restore to run a restore drill');
  });
});

describe('kubectl etcd verify --restore s3://', () => {
  let s3: TestS3;
  beforeAll(async () => {
    s3 = await startS3(['backups']);
  });
  afterAll(async () => {
    await s3?.stop();
  });

  it('downloads, drills and adds the drill to the record object beside it', async () => {
    const client = new S3Client({ endpoint: s3.endpoint, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: s3.env.AWS_ACCESS_KEY_ID!, secretAccessKey: s3.env.AWS_SECRET_ACCESS_KEY! } });
    const body = await readFile(snap34);
    const key = 'etcd/uc1-kube-etcd-20261206T100000Z.db';
    const sha256 = createHash('sha256').update(body).digest('hex');
    await client.send(new PutObjectCommand({ Bucket: 'backups', Key: key, Body: body }));
    await client.send(new PutObjectCommand({ Bucket: 'backups', Key: `${key}.json`, Body: JSON.stringify({ file: `s3://backups/${key}`, size: body.length, sha256, namespace: 'uc1', workload: 'kube-etcd' }) }));
    const r = await kubectlEtcd(['verify', `s3://backups/${key}`, '--restore', '--s3-endpoint', s3.endpoint], s3.env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^RECORDED\s+s3:\/\/backups\/etcd\/uc1-kube-etcd-20261206T100000Z\.db\.json$/m);
    const stored = JSON.parse(await (await client.send(new GetObjectCommand({ Bucket: 'backups', Key: `${key}.json` }))).Body!.transformToString()) as { drills: Array<{ outcome: string }> };
    expect(stored.drills.map((d) => d.outcome)).toEqual(['passed']);
    client.destroy();
    expect(await drillLeftovers()).toEqual([]);
  }, 60_000);
});
