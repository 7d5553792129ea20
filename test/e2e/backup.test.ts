// `kubectl etcd backup` and `inspect` end to end: the built plugin through real kubectl plugin
// discovery, against the local test cluster running the anthos, bitnami and kubeadm fixtures
// side by side plus an etcd StatefulSet on the distroless upstream image. Judged by files, exit
// codes, output lines, real `etcdctl snapshot status`, and keys in a real etcd restored from the
// snapshot. (The `single` fixture shares uc1 with anthos; it is covered in status.test.ts.)
// Both etcd minors and both transports: anthos (exec) and the distroless set (stream) run 3.4,
// bitnami (exec) and kubeadm (stream) run 3.5; each snapshot is judged by its own minor's tools
// (3.4 etcdctl, 3.5 etcdutl and etcd).
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { etcdctlSnapshotStatus } from '../helpers/etcd.js';
import { auditMark, auditSince } from './restore-helpers.js';
import type { EtcdMinor } from '../sim/etcd-versions.js';
import { requireCommand, requireRoot, startCluster, teardown, type SimCluster } from '../sim/harness.js';
import {
  TARGETS, buildPlugin, onEtcd, expectInspectAgreesWithEtcdctl, expectSnapshotOfLiveCluster, kubectlEtcd, liveCounts, ok, sha256File,
  startDistroless, writeKeys, type EtcdTarget,
} from './backup-support.js';

let cluster: SimCluster;
let work: string;
/** Snapshot files taken by the per-fixture test, for the inspect tests. */
const taken: Record<string, { file: string; etcd: EtcdMinor }> = {};
/** The bitnami and kubeadm fixtures on etcd 3.5. */
const BITNAMI = onEtcd(TARGETS.bitnami, '3.5');
const KUBEADM = onEtcd(TARGETS.kubeadm, '3.5');

beforeAll(async () => {
  requireRoot();
  await buildPlugin();
  work = await mkdtemp(join(tmpdir(), 'backup-e2e-'));
  cluster = await startCluster({ fixtures: ['anthos', BITNAMI.fixture, KUBEADM.fixture] });
  await startDistroless(cluster);
}, 600_000);

afterAll(() => teardown(cluster, work, { clearFaults: true }), 180_000);

/** Files in a directory, sorted. */
async function list(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}

/** Names of temporary snapshots the exec transport may have left in a pod (in /tmp or on the data volume). */
async function tempSnapshotsInPod(t: EtcdTarget, dataMount: string): Promise<string> {
  const r = await cluster.kubectl(['-n', t.namespace, 'exec', t.pod, '-c', t.container, '--', 'sh', '-c', `ls -a /tmp ${dataMount}`]);
  return ok(r).split('\n').filter((l) => l.includes('kubectl-etcd')).join('\n');
}

describe('kubectl etcd backup with no flags beyond -n', () => {
  it.each<EtcdTarget>([TARGETS.anthos, BITNAMI, KUBEADM, TARGETS.distroless])(
    '$fixture: a snapshot its etcd accepts, of the live cluster at that moment, with the keys written before',
    async (t) => {
      const written = await writeKeys(cluster, t, `/e2e/${t.namespace}/`, 3);
      const before = (await liveCounts(cluster, t)).revision;
      const file = join(work, `${t.namespace}.db`);
      const r = await kubectlEtcd(cluster, ['backup', '-n', t.namespace, '-f', file]);
      const after = (await liveCounts(cluster, t)).revision;
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^backed up ${t.namespace}/\\S+ from pod "[^"]+" via ${t.transport} to ${file} \\(.*revision \\d+, \\d+ keys\\)\\n$`));
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      expect(await list(work)).not.toContain(`${t.namespace}.db.partial`);
      await expectSnapshotOfLiveCluster(cluster, t, file, work, { before, after }, written);
      taken[t.namespace] = { file, etcd: t.etcd ?? '3.4' };
    },
    240_000,
  );
});

describe('kubectl etcd inspect on snapshots from every fixture', () => {
  it('agrees with etcdctl (3.4) / etcdutl (3.5) snapshot status -w json on hash, revision, keys and size', async () => {
    expect(Object.keys(taken).sort()).toEqual(['distroless', 'etcd', 'kube-system', 'uc1']);
    for (const { file, etcd } of Object.values(taken)) await expectInspectAgreesWithEtcdctl(cluster, file, etcd);
  }, 120_000);

  it.each(['truncated', 'bit-flipped'])('a %s snapshot is reported as damaged with exit 3', async (damage) => {
    const file = join(work, `${damage}.db`);
    await writeFile(file, await readFile(taken.uc1!.file));
    if (damage === 'truncated') {
      await truncate(file, (await stat(file)).size - 4096);
    } else {
      const b = await readFile(file);
      b[Math.floor(b.length / 3)] ^= 0x10;
      await writeFile(file, b);
    }
    const r = await kubectlEtcd(cluster, ['inspect', file]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(new RegExp(`^error: snapshot "${file}" (is corrupt|does not match its sha256 trailer)[^\\n]*; re-take the backup; the file is damaged\\n$`));
  });
});

describe('backup destinations and output', () => {
  it('--dir creates the directory (0700) and names the file by namespace, workload, UTC time and revision, with a JSON sidecar; -o json prints the record', async () => {
    const dir = join(work, 'not', 'yet', 'there');
    const t0 = Date.now();
    const r = await kubectlEtcd(cluster, ['backup', '-n', 'uc1', '--dir', dir, '-o', 'json']);
    const wall = (Date.now() - t0) / 1000;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    const record = JSON.parse(r.stdout);
    const files = await list(dir);
    expect(files).toHaveLength(2);
    const [snapshot, sidecar] = files;
    const m = /^uc1-kube-etcd-(\d{8}T\d{6}Z)-rev(\d+)\.db$/.exec(snapshot!);
    expect(m, snapshot).not.toBeNull();
    expect(sidecar).toBe(`${snapshot}.json`);
    const path = join(dir, snapshot!);
    const status = await etcdctlSnapshotStatus(path);
    expect(Number(m![2])).toBe(status.revision);
    const started = new Date(record.startedAt);
    expect(m![1]).toBe(started.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z'));
    for (const f of files) expect((await stat(join(dir, f))).mode & 0o777).toBe(0o600);
    const fromSidecar = JSON.parse(await readFile(join(dir, sidecar!), 'utf8'));
    // The printed record also says where the time went (the sidecar describes the file, not the run).
    const { phases, ...described } = record as { phases: Array<{ name: string; seconds: number }> };
    expect(fromSidecar).toEqual(described);
    expect(phases.map((p) => p.name)).toEqual(['start-up', 'load', 'discover', 'probe', 'save+copy', 'cleanup', 'verify', 'commit']);
    for (const p of phases) expect(p.seconds).toBeGreaterThanOrEqual(0);
    expect(phases.reduce((a, p) => a + p.seconds, 0)).toBeLessThanOrEqual(wall);
    expect(record).toMatchObject({
      file: path,
      size: (await stat(path)).size,
      sha256: await sha256File(path),
      revision: status.revision,
      totalKeys: status.totalKey,
      hash: status.hash,
      etcdVersion: '3.4.23',
      namespace: 'uc1',
      workload: 'kube-etcd',
      transport: 'exec',
      pluginVersion: expect.stringMatching(/^\d+\.\d+\.\d+/),
      verified: { size: true, sha256Trailer: true, bbolt: true },
    });
    expect(record.clusterId).toMatch(/^[0-9a-f]+$/);
    expect(record.memberId).toMatch(/^[0-9a-f]+$/);
    expect(record.sourcePod).toMatch(/^kube-etcd-\d$/);
    expect(Number.isNaN(Date.parse(record.time))).toBe(false);
  }, 120_000);

  it('--keep N prunes older backups of the same workload and their sidecars, and nothing else', async () => {
    const dir = join(work, 'keep');
    await mkdir(dir);
    const old = ['uc1-kube-etcd-20200101T000000Z-rev5.db', 'uc1-kube-etcd-20210101T000000Z-rev9.db'];
    // same name stem, but the sidecar says namespace "uc1-kube", StatefulSet "etcd"; and one without a sidecar
    const foreign = 'uc1-kube-etcd-20190101T000000Z-rev1.db';
    const unowned = 'uc1-kube-etcd-20180101T000000Z-rev1.db';
    const others = ['etcd-etcd-20200101T000000Z-rev3.db', 'uc1-kube-etcd-notes.txt', foreign, `${foreign}.json`, unowned];
    for (const f of [...old, ...others]) await writeFile(join(dir, f), 'x', { mode: 0o600 });
    for (const f of old) await writeFile(join(dir, `${f}.json`), JSON.stringify({ namespace: 'uc1', workload: 'kube-etcd' }), { mode: 0o600 });
    await writeFile(join(dir, `${foreign}.json`), JSON.stringify({ namespace: 'uc1-kube', workload: 'etcd' }), { mode: 0o600 });
    ok(await kubectlEtcd(cluster, ['backup', '-n', 'uc1', '--dir', dir, '--keep', '2']));
    const first = (await list(dir)).filter((f) => /^uc1-kube-etcd-2\d{3}[0-9T]+Z-rev\d+\.db$/.test(f) && !old.includes(f) && !others.includes(f));
    expect(first).toHaveLength(1);
    // keep 2: the new backup and the newest old one remain
    expect(await list(dir)).toEqual([...others, first[0]!, `${first[0]}.json`, old[1]!, `${old[1]}.json`].sort());
    await new Promise((done) => setTimeout(done, 1100)); // file names carry the second
    ok(await kubectlEtcd(cluster, ['backup', '-n', 'uc1', '--dir', dir, '--keep', '2']));
    const now = await list(dir);
    expect(now.filter((f) => f.startsWith('uc1-kube-etcd-2') && f.endsWith('.db') && !others.includes(f))).toHaveLength(2);
    expect(now).not.toContain(old[1]);
    expect(now).not.toContain(`${old[1]}.json`);
    expect(now).toEqual(expect.arrayContaining([...others, first[0]!, `${first[0]}.json`]));
    expect(now.filter((f) => f.endsWith('.partial'))).toEqual([]);
  }, 120_000);

  it('-f - writes the snapshot to stdout and the summary to stderr', async () => {
    await writeKeys(cluster, BITNAMI, '/e2e/stdout/', 1);
    const file = join(work, 'stdout.db');
    const r = await kubectlEtcd(cluster, ['backup', '-n', 'etcd', '-f', '-'], { stdoutFile: file });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^backed up etcd\/etcd from pod "etcd-\d" via exec to stdout \(/m);
    const status = await etcdctlSnapshotStatus(file, '3.5');
    expect(status.revision).toBeGreaterThan(0);
    await expectInspectAgreesWithEtcdctl(cluster, file, '3.5');
  }, 120_000);

  it('-f - into a reader that is gone is a failed backup: one line, status 1, no summary (unlike `--help | head`, which ends quietly)', async () => {
    const r = await kubectlEtcd(cluster, ['backup', '-n', 'etcd', '-f', '-'], { closedStdout: true });
    expect(r.stderr).toMatch(/^error: cannot write the snapshot to stdout: EPIPE; check where stdout goes/m);
    expect(r.stderr).not.toMatch(/backed up/);
    expect(r.code).toBe(1);
  }, 120_000);
});

describe('encrypted backups (age)', () => {
  /** Two recipients' keys and one that is not a recipient, made by the reference age-keygen. */
  let ageKeys: Record<'alice' | 'bob' | 'mallory', { file: string; recipient: string }>;
  const stateDir = () => join(work, 'age-state');
  /** Files in the state dir's plaintext area: must be empty after every run, whatever happened. */
  const plaintextLeft = async () => (await readdir(join(stateDir(), 'tmp')).catch(() => [] as string[])).sort();

  beforeAll(async () => {
    requireCommand('age', 'install the reference age tool: apt-get install age (scripts/setup.sh does)');
    const keyDir = join(work, 'age-keys');
    await mkdir(keyDir, { mode: 0o700 });
    const make = (name: string) => {
      const file = join(keyDir, `${name}.txt`);
      execFileSync('age-keygen', ['-o', file], { stdio: 'pipe' });
      return { file, recipient: execFileSync('age-keygen', ['-y', file]).toString().trim() };
    };
    ageKeys = { alice: make('alice'), bob: make('bob'), mallory: make('mallory') };
  });

  it('--dir --encrypt-to twice: a .db.age file either identity opens with `age -d` into a snapshot etcdctl accepts; the record says so; no plaintext left', async () => {
    const dir = join(work, 'encrypted');
    const r = await kubectlEtcd(cluster, ['backup', '-n', 'uc1', '--dir', dir, '--encrypt-to', ageKeys.alice.recipient, '--encrypt-to', ageKeys.bob.recipient, '--state-dir', stateDir(), '-o', 'json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const files = await list(dir);
    expect(files).toHaveLength(2);
    const [file, sidecar] = files;
    expect(file).toMatch(/^uc1-kube-etcd-\d{8}T\d{6}Z-rev\d+\.db\.age$/);
    expect(sidecar).toBe(`${file}.json`);
    const path = join(dir, file!);
    for (const f of files) expect((await stat(join(dir, f))).mode & 0o777).toBe(0o600);
    expect((await readFile(path)).subarray(0, 22).toString()).toBe('age-encryption.org/v1\n');
    const record = JSON.parse(r.stdout);
    expect(record).toMatchObject({
      file: path,
      encryption: { format: 'age', recipients: [ageKeys.alice.recipient, ageKeys.bob.recipient] },
      stored: { size: (await stat(path)).size, sha256: await sha256File(path) },
      verified: { size: true, sha256Trailer: true, bbolt: true, decrypts: true },
    });
    expect(record.phases.map((p: { name: string }) => p.name)).toContain('encrypt');
    for (const who of ['alice', 'bob'] as const) {
      const plain = join(work, `decrypted-${who}.db`);
      execFileSync('age', ['-d', '-i', ageKeys[who].file, '-o', plain, path]);
      // the record's size and sha256 are the plaintext snapshot's
      expect(await sha256File(plain), who).toBe(record.sha256);
      expect((await stat(plain)).size).toBe(record.size);
      const status = await etcdctlSnapshotStatus(plain);
      expect(status.revision, who).toBe(record.revision);
      expect(status.hash).toBe(record.hash);
    }
    expect(await plaintextLeft()).toEqual([]);
    expect(await list(dir)).toEqual(files);
    taken.encrypted = { file: path, etcd: '3.4' };
  }, 120_000);

  it('inspect --identity reads it like the plaintext; without one, or with a key that is not a recipient, one line and nothing decrypted', async () => {
    const { file } = taken.encrypted!;
    const r = await kubectlEtcd(cluster, ['inspect', file, '--identity', ageKeys.bob.file, '--state-dir', stateDir(), '-o', 'json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const facts = JSON.parse(r.stdout);
    const sidecar = JSON.parse(await readFile(`${file}.json`, 'utf8'));
    expect(facts).toMatchObject({ path: file, outcome: 'valid', trailer: 'valid', fileSize: sidecar.size, status: { revision: sidecar.revision, hash: sidecar.hash } });
    const none = await kubectlEtcd(cluster, ['inspect', file, '--state-dir', stateDir()]);
    expect(none.code).toBe(2);
    expect(none.stderr).toBe(`error: snapshot "${file}" is age-encrypted; pass --identity FILE: the age-keygen file of one of its recipients\n`);
    const wrong = await kubectlEtcd(cluster, ['inspect', file, '-i', ageKeys.mallory.file, '--state-dir', stateDir()]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr.split('\n')).toEqual([expect.stringMatching(/^error: none of the given identities can decrypt snapshot ".*"; pass the --identity file whose public key the backup was encrypted to/), '']);
    expect(wrong.stderr).toContain(`snapshot "${file}"`);
    expect(wrong.stderr).not.toContain('AGE-SECRET-KEY');
    expect(await plaintextLeft()).toEqual([]);
  }, 120_000);

  it('-f - --encrypt-to streams age to stdout; a bad recipient is one line before anything is taken', async () => {
    const file = join(work, 'stdout.db.age');
    const r = await kubectlEtcd(cluster, ['backup', '-n', 'etcd', '-f', '-', '--encrypt-to', ageKeys.alice.recipient], { stdoutFile: file });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^backed up etcd\/etcd from pod "etcd-\d" via exec to stdout \(age-encrypted to 1 recipient\)/m);
    const plain = join(work, 'stdout-decrypted.db');
    execFileSync('age', ['-d', '-i', ageKeys.alice.file, '-o', plain, file]);
    expect((await etcdctlSnapshotStatus(plain, '3.5')).revision).toBeGreaterThan(0);

    const bad = await kubectlEtcd(cluster, ['backup', '-n', 'uc1', '-f', join(work, 'never.db'), '--encrypt-to', 'age1notakey']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe('error: "age1notakey" is not an age X25519 recipient; pass the public key age-keygen prints ("Public key: age1…")\n');
    // right form, one character off: the checksum says so, before the member is asked for anything
    const r0 = ageKeys.bob.recipient;
    const typo = r0.slice(0, 20) + (r0[20] === 'q' ? 'p' : 'q') + r0.slice(21);
    const mark = auditMark(cluster);
    const typoed = await kubectlEtcd(cluster, ['backup', '-n', 'uc1', '-f', join(work, 'never.db'), '--encrypt-to', ageKeys.alice.recipient, '--encrypt-to', typo]);
    expect(typoed.code).toBe(2);
    expect(typoed.stderr).toBe(`error: "${typo}" is not a valid age recipient (its checksum is wrong: a typo?); copy the public key again from age-keygen -y KEYFILE\n`);
    expect(auditSince(cluster, mark).filter((e) => e.user === 'admin')).toEqual([]); // not one request: nothing was taken
    expect((await list(work)).filter((f) => f.startsWith('never.db'))).toEqual([]);

    // a reader that goes away mid-stream: one line, exit 1, as unencrypted (and the pod cleaned up)
    const gone = await kubectlEtcd(cluster, ['backup', '-n', 'etcd', '-f', '-', '--encrypt-to', ageKeys.alice.recipient], { closedStdout: true });
    expect(gone.stderr).toMatch(/^error: cannot write the snapshot to stdout: EPIPE; check where stdout goes/m);
    expect(gone.stderr).not.toMatch(/backed up/);
    expect(gone.code).toBe(1);
  }, 180_000);
});

describe('transports', () => {
  it('refuses --via exec on a distroless image with one clear line, and --via stream works', async () => {
    const file = join(work, 'distroless-exec.db');
    const refused = await kubectlEtcd(cluster, ['backup', '-n', 'distroless', '--via', 'exec', '-f', file]);
    expect(refused.code).toBe(2);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toBe(
      'error: image "gcr.io/etcd-development/etcd:v3.4.23" of pod "etcd-0" has no shell or tar, so --via exec cannot work; use --via stream\n',
    );
    expect(await list(work)).not.toContain('distroless-exec.db');
    expect(await list(work)).not.toContain('distroless-exec.db.partial');
    const streamed = await kubectlEtcd(cluster, ['backup', '-n', 'distroless', '--via', 'stream', '-f', file]);
    expect(streamed.stderr).toBe('');
    expect(streamed.code).toBe(0);
    expect(streamed.stdout).toContain(' via stream ');
    await etcdctlSnapshotStatus(file);
  }, 120_000);

  it.each([
    ['distroless', 'a TLS member: the handshake that reads its names'],
    ['etcd', 'a plain member (bitnami, etcd 3.5): one GET /version'],
  ])('--via stream in %s sizes the HTTP/2 window from the round trip to the API server, measured on %s', async (namespace) => {
    const file = join(work, `window-${namespace}.db`);
    const r = await kubectlEtcd(cluster, ['backup', '-n', namespace, '--via', 'stream', '-f', file, '-v', '1']);
    expect(r.code, r.stderr).toBe(0);
    const line = /over a port-forward to port 2379 \(round trip (\d+\.\d) ms: HTTP\/2 window (\d+) MiB\)/.exec(r.stderr);
    expect(line, r.stderr).not.toBeNull();
    // The API server answered the tunnel's ping (an unknown round trip would print so, with 8 MiB):
    // 4 MiB up to 8 ms, then proportional up to 8 MiB at 16 ms.
    const [rtt, window] = [Number(line![1]), Number(line![2])];
    expect(window).toBeGreaterThanOrEqual(4);
    expect(window).toBeLessThanOrEqual(8);
    if (rtt < 7.95) expect(window).toBe(4);
    if (rtt > 16.05) expect(window).toBe(8);
    await etcdctlSnapshotStatus(file, namespace === 'etcd' ? '3.5' : '3.4');
  }, 120_000);

  it('--via exec: streams cut every 100 kB are taken up where they stopped: the snapshot is whole and verified, nothing is left in the pod', async () => {
    const dir = join(work, 'cut-exec');
    await mkdir(dir);
    const file = join(dir, 'snapshot.db');
    ok(await cluster.sim(['fault', 'stream', '--cut-after', '100000', '--pod', 'uc1/kube-etcd-0', '--kind', 'exec']));
    let r;
    try {
      r = await kubectlEtcd(cluster, ['backup', '-n', 'uc1', '--member', 'kube-etcd-0', '--via', 'exec', '-f', file, '-v', '1']);
    } finally {
      ok(await cluster.sim(['fault', 'clear']));
    }
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/streaming the snapshot out of pod "kube-etcd-0" stopped at [1-9]\d* bytes, taking it up again/);
    expect(r.stdout).toContain(' via exec ');
    await etcdctlSnapshotStatus(file);
    expect(await list(dir)).toEqual(['snapshot.db']);
    expect(await tempSnapshotsInPod(TARGETS.anthos, '/var/lib/etcd')).toBe('');
  }, 120_000);

  it.each([
    ['stream', 'the snapshot stream from pod "kube-etcd-0" broke'],
  ])('--via %s: a stream cut mid-copy fails clearly, leaves no partial file and no temporary snapshot in the pod', async (via, message) => {
    const dir = join(work, `cut-${via}`);
    await mkdir(dir);
    const file = join(dir, 'snapshot.db');
    ok(await cluster.sim(['fault', 'stream', '--cut-after', '100000', '--pod', 'uc1/kube-etcd-0', '--kind', via === 'exec' ? 'exec' : 'portforward']));
    let r;
    try {
      r = await kubectlEtcd(cluster, ['backup', '-n', 'uc1', '--member', 'kube-etcd-0', '--via', via, '-f', file]);
    } finally {
      ok(await cluster.sim(['fault', 'clear']));
    }
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.split('\n')).toHaveLength(2); // one line and its newline
    expect(r.stderr).toContain(message);
    expect(await list(dir)).toEqual([]);
    expect(await tempSnapshotsInPod(TARGETS.anthos, '/var/lib/etcd')).toBe('');
  }, 120_000);
});

describe('permissions', () => {
  it('a user without pods/exec gets one line naming the missing permission', async () => {
    const kubeconfig = ok(await cluster.sim(['user', 'viewer'])).trim().split('\n').pop()!;
    ok(await cluster.kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: [
          {
            apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'etcd-viewer', namespace: 'uc1' },
            rules: [
              { apiGroups: [''], resources: ['pods', 'secrets'], verbs: ['get', 'list', 'watch'] },
              { apiGroups: ['apps'], resources: ['statefulsets'], verbs: ['get', 'list'] },
            ],
          },
          {
            apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'etcd-viewer', namespace: 'uc1' },
            roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'etcd-viewer' },
            subjects: [{ kind: 'User', name: 'viewer', apiGroup: 'rbac.authorization.k8s.io' }],
          },
        ],
      }),
    }));
    const dir = join(work, 'forbidden');
    await mkdir(dir);
    const expected = 'error: user "viewer" cannot get "pods/exec" in namespace "uc1"; ask a cluster admin for pods/exec permission\n';
    const backup = await kubectlEtcd(cluster, ['backup', '-n', 'uc1', '-f', join(dir, 'snapshot.db')], { kubeconfig });
    expect(backup.code).toBe(1);
    expect(backup.stderr).toBe(expected);
    expect(await list(dir)).toEqual([]);
    const status = await kubectlEtcd(cluster, ['status', '-n', 'uc1'], { kubeconfig });
    expect(status.code).toBe(1);
    expect(status.stdout).toBe('');
    expect(status.stderr).toBe(expected);
  }, 120_000);
});
