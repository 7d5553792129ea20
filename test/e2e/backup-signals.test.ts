// `kubectl etcd backup` when it is stopped or cannot write: Ctrl-C (SIGINT) and SIGTERM in the
// middle of an exec-transport copy, a full local disk, and `-f -` into a world-readable file. The
// built plugin through real kubectl against the local test cluster (`single` fixture, ~8 MB of
// values so the snapshot is well past the stall points), judged by exit codes, stderr, the files
// left behind locally and in the pod.
import { execFileSync, spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { etcdctlSnapshotStatus } from '../helpers/etcd.js';
import { requireCommand, requireRoot, run, startCluster, teardown, type SimCluster } from '../sim/harness.js';
import { REPO, TARGETS, buildPlugin, kubectlEtcd, ok } from './backup-support.js';

const t = TARGETS.single;
let cluster: SimCluster;
let work: string;

beforeAll(async () => {
  requireRoot();
  requireCommand('mount', 'install util-linux (mount)');
  await buildPlugin();
  work = await mkdtemp(join(tmpdir(), 'backup-signals-e2e-'));
  cluster = await startCluster({ fixtures: ['single'] });
  // 8 values of 1 MB (random, read by etcdctl put from stdin) so the copy is long enough to stall in
  const conn = t.conn.join(' ');
  ok(await cluster.kubectl(['-n', t.namespace, 'exec', t.pod, '-c', t.container, '--', 'sh', '-c',
    `export ETCDCTL_API=3; for i in 1 2 3 4 5 6 7 8; do head -c 1000000 /dev/urandom | etcdctl ${conn} put /e2e/big/$i >/dev/null || exit 1; done`,
  ], { timeoutMs: 120_000 }));
}, 600_000);

afterAll(() => teardown(cluster, work, { clearFaults: true }), 180_000);

/** Temporary snapshots the exec transport may have left in the pod (/tmp and the data volume). */
async function tempSnapshotsInPod(): Promise<string[]> {
  const r = await cluster.kubectl(['-n', t.namespace, 'exec', t.pod, '-c', t.container, '--', 'sh', '-c', 'ls -a /tmp /var/lib/etcd']);
  return ok(r).split('\n').filter((l) => l.includes('kubectl-etcd'));
}

function pluginEnv(): NodeJS.ProcessEnv {
  return { ...process.env, PATH: `${join(REPO, 'bin')}${delimiter}${process.env.PATH}`, KUBECONFIG: cluster.kubeconfig };
}

/** Size of a file, or -1 when it does not exist. */
async function sizeOf(path: string): Promise<number> {
  return stat(path).then((s) => s.size, () => -1);
}

/**
 * Starts `kubectl etcd backup -f FILE` with the pod's exec streams stalling after `stallAfter`
 * bytes, waits until the .partial file holds data (the copy is under way: the file takes a copy
 * in writes of 1 MiB or more, so `stallAfter` is past the first), sends `signal` and
 * waits for the exit (kubectl execs the plugin, so the child is the plugin itself).
 */
async function interruptMidCopy(
  signal: NodeJS.Signals,
  stallAfter: number,
  via: 'exec' | 'stream',
  file: string,
  encrypted?: { recipient: string; stateDir: string },
): Promise<{ code: number | null; stderr: string }> {
  const kind = via === 'exec' ? 'exec' : 'portforward';
  ok(await cluster.sim(['fault', 'stream', '--stall', '--after', String(stallAfter), '--pod', `${t.namespace}/${t.pod}`, '--kind', kind]));
  try {
    const args = ['etcd', 'backup', '-n', t.namespace, '--via', via, '-f', file, ...(encrypted ? ['--encrypt-to', encrypted.recipient, '--state-dir', encrypted.stateDir] : [])];
    // Encrypted, the snapshot first lands in the plaintext copy in the state dir.
    const copying = async () => encrypted
      ? (await Promise.all((await readdir(join(encrypted.stateDir, 'tmp')).catch(() => [] as string[])).map((f) => sizeOf(join(encrypted.stateDir, 'tmp', f))))).some((n) => n > 0)
      : (await sizeOf(`${file}.partial`)) > 0;
    const child = spawn('kubectl', args, { env: pluginEnv(), cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.resume();
    const exited = new Promise<number | null>((done) => child.on('close', (code) => done(code)));
    let started = false;
    for (let i = 0; i < 1200 && !started && child.exitCode === null; i++) {
      started = await copying();
      if (!started) await new Promise((r) => setTimeout(r, 100));
    }
    if (!started) {
      child.kill('SIGKILL');
      throw new Error(`the backup never started copying (exit ${child.exitCode}): ${stderr.trim()}`);
    }
    child.kill(signal);
    // generous: the backup must remove the pod's temporary snapshot before it exits
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    const code = await exited;
    clearTimeout(timer);
    return { code, stderr };
  } finally {
    ok(await cluster.sim(['fault', 'clear']));
  }
}

describe('kubectl etcd backup interrupted mid-copy', () => {
  it.each([
    ['SIGINT', 130, 2_000_000, 'exec'],
    ['SIGTERM', 143, 4_000_000, 'exec'],
    ['SIGINT', 130, 2_000_000, 'stream'],
  ] as const)('%s: exits %i, leaves no partial or snapshot file and no temporary snapshot in the pod (stall after %i bytes, --via %s)', async (signal, exitCode, stallAfter, via) => {
    const dir = join(work, `${signal}-${via}`);
    await mkdir(dir);
    const file = join(dir, 'snapshot.db');
    const r = await interruptMidCopy(signal, stallAfter, via, file);
    expect(r.code, r.stderr).toBe(exitCode); // a hang ends in SIGKILL: code null
    expect(r.stderr).toContain(`error: backup interrupted by ${signal}; partial file "${file}.partial" removed; run the backup again\n`);
    expect(await readdir(dir)).toEqual([]);
    expect(await tempSnapshotsInPod()).toEqual([]);
  }, 300_000);

  it('SIGINT during an encrypted backup: exits 130 and leaves neither the .age partial nor the plaintext copy in the state dir', async () => {
    requireCommand('age-keygen', 'install the reference age tool: apt-get install age (scripts/setup.sh does)');
    const dir = join(work, 'SIGINT-encrypted');
    const stateDir = join(work, 'state-encrypted');
    await mkdir(dir);
    const key = join(work, 'age-key.txt');
    execFileSync('age-keygen', ['-o', key], { stdio: 'pipe' });
    const recipient = execFileSync('age-keygen', ['-y', key]).toString().trim();
    const file = join(dir, 'snapshot.db');
    const r = await interruptMidCopy('SIGINT', 2_000_000, 'exec', file, { recipient, stateDir });
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toContain(`error: backup interrupted by SIGINT; partial file "${file}.age.partial" removed; run the backup again\n`);
    expect(await readdir(dir)).toEqual([]);
    expect(await readdir(join(stateDir, 'tmp'))).toEqual([]);
    expect(await tempSnapshotsInPod()).toEqual([]);
  }, 300_000);
});

describe('kubectl etcd backup writing locally', () => {
  it('a full disk is reported as a local write error naming the .partial file, and nothing is left behind', async () => {
    // a 1 MiB tmpfs in a private mount namespace: gone when the command ends, nothing to clean up
    const dir = join(work, 'full');
    await mkdir(dir);
    const script = 'mount -t tmpfs -o size=1m kubectl-etcd-e2e "$1" || exit 99; kubectl etcd backup -n uc1 -f "$1/snapshot.db"; rc=$?; ls -A "$1"; exit $rc';
    const r = await run('unshare', ['--mount', 'sh', '-c', script, 'sh', dir], { env: pluginEnv(), timeoutMs: 180_000 });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toBe(`error: cannot write "${dir}/snapshot.db.partial": ENOSPC; free space or pass another -f/--dir\n`);
    expect(r.stdout).toBe(''); // ls -A of the tmpfs: empty
    expect(await tempSnapshotsInPod()).toEqual([]);
  }, 240_000);

  it('-f - into a regular file others could read makes it 0600 and writes a valid snapshot', async () => {
    const file = join(work, 'stdout.db');
    await writeFile(file, '');
    await chmod(file, 0o644); // what `> snapshot.db` gives under umask 022
    const r = await kubectlEtcd(cluster, ['backup', '-n', 'uc1', '-f', '-'], { stdoutFile: file });
    expect(r.code, r.stderr).toBe(0);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await etcdctlSnapshotStatus(file)).revision).toBeGreaterThan(0);
  }, 180_000);

  it('backup --help shows the umask form of -f -, and inspect --help has examples', async () => {
    const backup = await kubectlEtcd(cluster, ['backup', '--help']);
    expect(backup.code).toBe(0);
    expect(backup.stdout).toContain('\n  (umask 077; kubectl etcd backup -n kube-system -l component=etcd --via stream -f - > snapshot.db)\n');
    const inspect = await kubectlEtcd(cluster, ['inspect', '--help']);
    expect(inspect.code).toBe(0);
    expect(inspect.stdout).toMatch(/\nExamples:\n {2}kubectl etcd inspect snapshot\.db\n/);
  });
});
