// The pure part of `member replace` (the e2e file member-replace.test.ts runs it against real etcd
// in a real pod): when it refuses, the member's etcd argv turned into the join's, the join script
// run by a real shell on real files, and etcdctl's answers parsed.
import { execFile } from 'node:child_process';
import { mkdtemp, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ASIDE_SCRIPT, JOIN_PREP_SCRIPT, JOIN_SCRIPT, JOIN_SWAP_SCRIPT, READD_MARKER, WAL_SEGMENT_BYTES, caughtUp, escapeKubeVars, freeSpaceArgv, joinArgs, joinInitialCluster, liveEntryOf, parseDfAvailable, parseMemberAdd, quorumOf,
  replaceNeedsBytes, replaceRefusal, type Row,
} from '../../src/etcd/replace-plan.js';
import type { LiveMember } from '../../src/etcd/discovery/index.js';
import type { MemberStatus } from '../../src/etcd/status.js';
import type { EtcdMember } from '../../src/etcd/topology.js';
import { UsageError } from '../../src/errors.js';

const run = promisify(execFile);

function member(i: number): EtcdMember {
  const pod = `kube-etcd-${i}`;
  return { pod, namespace: 'uc1', container: 'kube-etcd', name: pod, endpoint: 'https://127.0.0.1:2379', clientPort: 2379, peerUrl: `https://${pod}.kube-etcd:2380`, dataDir: '/var/lib/etcd', tls: {}, clientTlsEnabled: true, image: 'etcd:3.4' };
}

function rows(healthy: boolean[]): Row[] {
  return healthy.map((h, i) => {
    const m = member(i);
    const status: MemberStatus = { pod: m.pod, name: m.name, endpoint: m.endpoint, quota: { source: 'default', bytes: 1 }, alarms: [], healthy: h, ...(h ? { memberId: `a${i}` } : { error: 'connection refused' }) };
    return { member: m, status };
  });
}

function live(n: number): LiveMember[] {
  return Array.from({ length: n }, (_, i) => ({ id: `a${i}`, name: `kube-etcd-${i}`, peerURLs: [`https://kube-etcd-${i}.kube-etcd:2380`], clientURLs: [] }));
}

describe('replaceRefusal: refused before any change', () => {
  it('lets a failed member of three be replaced while the other two are healthy', () => {
    expect(replaceRefusal({ pod: 'kube-etcd-1', rows: rows([true, false, true]), live: live(3), force: false })).toBeUndefined();
  });

  it('refuses when the others would not have quorum, pointing to restore', () => {
    const err = replaceRefusal({ pod: 'kube-etcd-1', rows: rows([false, false, true]), live: live(3), force: false });
    expect(err?.message).toMatch(/only 1 of the other 2 members is healthy: 3 members need 2 for quorum/);
    expect(err?.hint).toMatch(/kubectl etcd restore/);
  });

  it('refuses while another member is unhealthy even with quorum (five members)', () => {
    const five = rows([true, false, true, false, true]);
    const err = replaceRefusal({ pod: 'kube-etcd-1', rows: five, live: live(5), force: false });
    expect(err?.message).toMatch(/another member is unhealthy: "kube-etcd-3"/);
  });

  it('refuses a healthy target unless --force', () => {
    expect(replaceRefusal({ pod: 'kube-etcd-1', rows: rows([true, true, true]), live: live(3), force: false })?.message).toMatch(/is healthy .*nothing to replace/);
    expect(replaceRefusal({ pod: 'kube-etcd-1', rows: rows([true, true, true]), live: live(3), force: true })).toBeUndefined();
  });

  it('refuses an unknown pod as a usage error naming the members', () => {
    const err = replaceRefusal({ pod: 'nope', rows: rows([true, true, true]), live: live(3), force: false });
    expect(err).toBeInstanceOf(UsageError);
    expect(err?.message).toMatch(/"nope" is not a member .*"kube-etcd-0", "kube-etcd-1", "kube-etcd-2"/);
  });

  it('counts the member back when it was removed already (a run cut off after the removal)', () => {
    const two = live(3).filter((l) => l.id !== 'a1');
    expect(replaceRefusal({ pod: 'kube-etcd-1', rows: rows([true, false, true]), live: two, force: false })).toBeUndefined();
    expect(replaceRefusal({ pod: 'kube-etcd-1', rows: rows([true, false, false]), live: two, force: false })?.message).toMatch(/3 members need 2/);
  });

  it('does not refuse Bitnami members (their chart re-adds them once their data is set aside)', () => {
    const r = rows([true, false, true]);
    r[1]!.member.startScripts = { kind: 'bitnami', disasterRecovery: false };
    expect(replaceRefusal({ pod: 'kube-etcd-1', rows: r, live: live(3), force: false })).toBeUndefined();
  });

  it('quorum is a majority', () => {
    expect([1, 2, 3, 4, 5].map(quorumOf)).toEqual([1, 2, 2, 3, 3]);
  });
});

describe('the room a replace needs on the member volume', () => {
  it('is the largest db, a 64 MB WAL segment and a tenth more', () => {
    expect(replaceNeedsBytes(0)).toBe(Math.ceil(WAL_SEGMENT_BYTES * 1.1));
    expect(replaceNeedsBytes(100 * 1000 * 1000)).toBe(Math.ceil(164 * 1000 * 1000 * 1.1));
  });

  it('is read from a real df -Pk (Available, in KiB)', async () => {
    const argv = freeSpaceArgv(tmpdir());
    const { stdout } = await run(argv[0]!, argv.slice(1));
    const avail = parseDfAvailable(stdout);
    expect(avail).toBeGreaterThan(0);
  });

  it('is not read from output that is not df -P', () => {
    expect(parseDfAvailable('Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/loop3 507904 1024 480000 1% /var/lib/etcd\n')).toBe(480000 * 1024);
    expect(parseDfAvailable('')).toBeUndefined();
    expect(parseDfAvailable('df: /x: No such file or directory')).toBeUndefined();
  });
});

describe('the join argv', () => {
  const args = ['--name=kube-etcd-1', '--data-dir', '/var/lib/etcd', '--initial-cluster=a=x', '--initial-cluster-state=new', '--client-cert-auth', '--snapshot-count=10000'];

  it('keeps the member own flags and sets data dir, initial cluster and state existing', () => {
    expect(joinArgs(args, new Map(), { dataDir: '/v/w/data', initialCluster: 'k0=u0,k1=u1' })).toEqual([
      '--name=kube-etcd-1', '--client-cert-auth', '--snapshot-count=10000', '--data-dir=/v/w/data', '--initial-cluster=k0=u0,k1=u1', '--initial-cluster-state=existing',
    ]);
  });

  it('refuses flags that change where data goes or how the member joins', () => {
    expect(() => joinArgs(['--wal-dir=/wal'], new Map(), { dataDir: 'd', initialCluster: 'c' })).toThrow(/--wal-dir/);
    expect(() => joinArgs(['--force-new-cluster'], new Map(), { dataDir: 'd', initialCluster: 'c' })).toThrow(/--force-new-cluster/);
    expect(joinArgs(['--force-new-cluster=false'], new Map(), { dataDir: 'd', initialCluster: 'c' })).toContain('--force-new-cluster=false');
    expect(() => joinArgs([], new Map([['ETCD_WAL_DIR', '/wal']]), { dataDir: 'd', initialCluster: 'c' })).toThrow(/ETCD_WAL_DIR/);
  });

  it('initial cluster: the started members and the joiner, never the removed or unstarted entries', () => {
    const l = [...live(3).filter((x) => x.id !== 'a1'), { id: 'new', name: '', peerURLs: ['https://kube-etcd-1.kube-etcd:2380'], clientURLs: [] }];
    expect(joinInitialCluster(l, member(1), 'new')).toBe('kube-etcd-0=https://kube-etcd-0.kube-etcd:2380,kube-etcd-2=https://kube-etcd-2.kube-etcd:2380,kube-etcd-1=https://kube-etcd-1.kube-etcd:2380');
  });

  it('initial cluster: a joiner that advertises several peer URLs is named with each', () => {
    const two = { ...member(1), peerUrls: ['https://kube-etcd-1.kube-etcd:2380', 'https://10.0.0.11:2380'] };
    expect(joinInitialCluster(live(3).filter((x) => x.id !== 'a1'), two, 'new')).toBe('kube-etcd-0=https://kube-etcd-0.kube-etcd:2380,kube-etcd-2=https://kube-etcd-2.kube-etcd:2380,kube-etcd-1=https://kube-etcd-1.kube-etcd:2380,kube-etcd-1=https://10.0.0.11:2380');
  });

  it('finds the live entry by peer URL (an unstarted entry has no name), host case and port normalised', () => {
    const l = [{ id: 'x', name: '', peerURLs: ['https://KUBE-ETCD-1.kube-etcd:2380'], clientURLs: [] }];
    expect(liveEntryOf(member(1), l)?.id).toBe('x');
  });

  it('doubles every $ so the kubelet expands nothing', () => {
    expect(escapeKubeVars('a$(B)$$c $1')).toBe('a$$(B)$$$$c $$1');
  });
});

describe('etcdctl answers', () => {
  it('member add -w json: the new ID in hex, exactly (uint64)', () => {
    expect(parseMemberAdd('{"header":{"cluster_id":1},"member":{"ID":17241862361542232082,"peerURLs":["https://x:2380"]},"members":[]}')).toBe("ef4766776de70812");
  });

  it('caught up: healthy and at the leader raft index', () => {
    expect(caughtUp({ healthy: true, raftIndex: 10 }, 10)).toBe(true);
    expect(caughtUp({ healthy: true, raftIndex: 9 }, 10)).toBe(false);
    expect(caughtUp({ healthy: false, raftIndex: 10 }, 10)).toBe(false);
  });
});

describe('the join script, on real files', () => {
  let dir = '';
  afterEach(async () => { if (dir) await rm(dir, { recursive: true, force: true }); });

  /** Runs the script with a fake etcd that makes its data dir and waits; `stop` is made after `stopAfterMs`. */
  async function runJoin(data: string, work: string, aside: string, id: string, fake: string, started = '0'): Promise<{ code: number; out: string }> {
    try {
      const { stdout, stderr } = await run('sh', ['-ec', JOIN_SCRIPT, 'sh', data, work, aside, id, started, 'sh', '-c', fake], { timeout: 20_000 });
      return { code: 0, out: stdout + stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, out: e.stdout + e.stderr };
    }
  }

  /** A data dir holding an old member/ (its db says "old"), with the work dir and kept-copy paths a replace uses. */
  async function volumeWithOldData(): Promise<{ data: string; work: string; aside: string }> {
    dir = await mkdtemp(join(tmpdir(), 'join-'));
    const data = join(dir, 'data');
    await mkdir(join(data, 'member', 'snap'), { recursive: true });
    await writeFile(join(data, 'member', 'snap', 'db'), 'old');
    return { data, work: join(data, 'kubectl-etcd-replace'), aside: join(data, 'member.pre-replace-1') };
  }

  // A stand-in for etcd: makes member/wal in the join dir, then asks to be stopped.
  const FAKE = `mkdir -p "$0/data/member/wal"; echo joined > "$0/data/member/wal/0.wal"; : > "$0/stop"; exec sleep 30`;

  it('sets the old data aside, joins, and puts the joined data in place; a second run does nothing', async () => {
    const { data, work, aside } = await volumeWithOldData();
    const fake = FAKE.replaceAll('$0', work);
    const first = await runJoin(data, work, aside, 'abc', fake);
    expect(first.code, first.out).toBe(0);
    expect(await readFile(join(aside, 'snap', 'db'), 'utf8')).toBe('old');
    expect(await readFile(join(data, 'member', 'wal', '0.wal'), 'utf8')).toBe('joined\n');
    expect(await readFile(join(data, 'member', 'kubectl-etcd-joined'), 'utf8')).toBe('abc\n');
    expect((await readFile(join(work, 'swapped'), 'utf8')).trim()).toBe('abc');
    expect((await stat(work)).mode & 0o777).toBe(0o700);
    const again = await runJoin(data, work, join(data, 'member.pre-replace-2'), 'abc', 'exit 9');
    expect(again.code).toBe(0);
    expect(again.out).toMatch(/in place already/);
    expect((await readdir(data)).sort()).toEqual(['kubectl-etcd-replace', 'member', 'member.pre-replace-1']);
  });

  it('never moves old data over an existing kept copy', async () => {
    dir = await mkdtemp(join(tmpdir(), 'join-'));
    const data = join(dir, 'data');
    await mkdir(join(data, 'member'), { recursive: true });
    await mkdir(join(data, 'member.pre-replace-1'), { recursive: true });
    const r = await runJoin(data, join(data, 'w'), join(data, 'member.pre-replace-1'), 'abc', 'exit 0');
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/exists already/);
    expect((await stat(join(data, 'member'))).isDirectory()).toBe(true);
  });

  it('a run cut off after setting the data aside finds the stand-in file and goes on', async () => {
    dir = await mkdtemp(join(tmpdir(), 'join-'));
    const data = join(dir, 'data');
    await mkdir(data, { recursive: true });
    await writeFile(join(data, 'member'), '');
    const work = join(data, 'w');
    const r = await runJoin(data, work, join(data, 'member.pre-replace-2'), 'abc', FAKE.replaceAll('$0', work));
    expect(r.code, r.out).toBe(0);
    expect((await stat(join(data, 'member'))).isDirectory()).toBe(true);
    expect((await readdir(data)).sort()).toEqual(['member', 'w']);
  });

  it('never starts a member that started before on an empty data dir (it would have lost its log under the same ID)', async () => {
    dir = await mkdtemp(join(tmpdir(), 'join-'));
    const data = join(dir, 'data');
    await mkdir(join(data, 'member', 'snap'), { recursive: true });
    const r = await runJoin(data, join(data, 'w'), join(data, 'member.pre-replace-3'), 'abc', 'touch /should-not-run', '1');
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/not starting it on an empty data dir/);
    expect((await stat(join(data, 'member', 'snap'))).isDirectory()).toBe(true);
  });

  it('a data dir whose member/ carries the joined marker is in place: a run after a cut between move and record does nothing', async () => {
    dir = await mkdtemp(join(tmpdir(), 'join-'));
    const data = join(dir, 'data');
    await mkdir(join(data, 'member', 'wal'), { recursive: true });
    await writeFile(join(data, 'member', 'kubectl-etcd-joined'), 'abc\n');
    const r = await runJoin(data, join(data, 'w'), join(data, 'member.pre-replace-4'), 'abc', 'exit 9', '1');
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/in place already/);
    expect((await readdir(data)).sort()).toEqual(['member', 'w']);
  });

  it('SIGTERM stops etcd and ends the script (no restart, no swap)', async () => {
    dir = await mkdtemp(join(tmpdir(), 'join-'));
    const data = join(dir, 'data');
    await mkdir(data, { recursive: true });
    const work = join(data, 'w');
    const child = (await import('node:child_process')).spawn('sh', ['-ec', JOIN_SCRIPT, 'sh', data, work, join(data, 'a'), 'abc', '0', 'sh', '-c', `mkdir -p "${work}/data/member/wal"; exec sleep 30`]);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise((r) => setTimeout(r, 1500));
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    expect(code).toBe(143);
    expect(out).not.toMatch(/starting it again|in place/);
    expect((await stat(join(data, 'member'))).isFile()).toBe(true);
  });

  it('split in three for an image without a shell: the set-aside, then (etcd ran on its own, and stopped) the swap', async () => {
    const { data, work, aside } = await volumeWithOldData();
    const prep = await run('sh', ['-ec', JOIN_PREP_SCRIPT, 'sh', data, work, aside, 'abc', '0']);
    expect(prep.stdout).toMatch(/the old data is kept in/);
    expect(await readFile(join(aside, 'snap', 'db'), 'utf8')).toBe('old');
    expect((await stat(join(data, 'member'))).isFile()).toBe(true);
    // What etcd left in the join dir.
    await mkdir(join(work, 'data', 'member', 'wal'), { recursive: true });
    await writeFile(join(work, 'data', 'member', 'wal', '0.wal'), 'joined\n');
    // Run again before the swap (a cut): the data aside stays, the stand-in too.
    expect((await run('sh', ['-ec', JOIN_PREP_SCRIPT, 'sh', data, work, aside, 'abc', '1'])).stdout).not.toMatch(/kept in|in place/);
    const swap = await run('sh', ['-ec', JOIN_SWAP_SCRIPT, 'sh', data, work, aside, 'abc']);
    expect(swap.stdout).toMatch(/member abc is in place\n$/);
    expect(await readFile(join(data, 'member', 'wal', '0.wal'), 'utf8')).toBe('joined\n');
    expect(await readFile(join(data, 'member', 'kubectl-etcd-joined'), 'utf8')).toBe('abc\n');
    expect((await readFile(join(work, 'swapped'), 'utf8')).trim()).toBe('abc');
    // Run again after a cut: each part sees the data in place and does nothing.
    expect((await run('sh', ['-ec', JOIN_SWAP_SCRIPT, 'sh', data, work, aside, 'abc'])).stdout).toMatch(/in place already/);
    expect((await run('sh', ['-ec', JOIN_PREP_SCRIPT, 'sh', data, work, aside, 'abc', '1'])).stdout).toMatch(/in place already/);
    expect(await readFile(join(aside, 'snap', 'db'), 'utf8')).toBe('old');
    // The swap refuses a join dir etcd never wrote.
    await rm(join(data, 'member'), { recursive: true });
    await writeFile(join(data, 'member'), '');
    await expect(run('sh', ['-ec', JOIN_SWAP_SCRIPT, 'sh', data, work, aside, 'abd'])).rejects.toThrow(/etcd wrote no/);
  });
});

describe('joinMounts: an ephemeral container may not mount a subPath', () => {
  it('mounts the whole data volume and maps the member paths into it', async () => {
    const { joinMounts, JOIN_VOLUME_ROOT } = await import('../../src/etcd/replace.js');
    const m: EtcdMember = { ...member(1), dataVolume: { volumeName: 'data', mountPath: '/var/lib/etcd', subPath: 'etcd-kube-etcd-1', kind: 'pvc', claimName: 'data-kube-etcd-1' } };
    const view = joinMounts([{ name: 'data', mountPath: '/var/lib/etcd', subPathExpr: 'etcd-$(POD_NAME)' }, { name: 'certs', mountPath: '/certs', readOnly: true }], m);
    expect(view.mounts).toEqual([{ name: 'data', mountPath: JOIN_VOLUME_ROOT }, { name: 'certs', mountPath: '/certs', readOnly: true }]);
    expect(view.path('/var/lib/etcd')).toBe(`${JOIN_VOLUME_ROOT}/etcd-kube-etcd-1`);
    expect(view.path('/var/lib/etcd/kubectl-etcd-replace')).toBe(`${JOIN_VOLUME_ROOT}/etcd-kube-etcd-1/kubectl-etcd-replace`);
    expect(view.path('/var/lib/etcdx')).toBe('/var/lib/etcdx');
    expect(view.path('/certs/ca.crt')).toBe('/certs/ca.crt');
  });

  it('mounts a volume of files mounted by subPath (TLS files from Secret keys) whole, once, and maps each file into it', async () => {
    const { joinMounts, mapArgvPaths, JOIN_MOUNTS_ROOT } = await import('../../src/etcd/replace.js');
    const view = joinMounts([
      { name: 'data', mountPath: '/var/lib/etcd' },
      { name: 'ca', mountPath: '/etc/etcd/tls/etcdCA.crt', subPath: 'ca.crt', readOnly: true },
      { name: 'tls', mountPath: '/etc/etcd/tls/etcd.crt', subPath: 'tls.crt', readOnly: true },
      { name: 'tls', mountPath: '/etc/etcd/tls/etcd.key', subPath: 'tls.key', readOnly: true },
      { name: 'logs', mountPath: '/var/log/etcd', subPath: 'etcd' },
    ], member(1));
    expect(view.mounts).toEqual([
      { name: 'data', mountPath: '/var/lib/etcd' },
      { name: 'ca', mountPath: `${JOIN_MOUNTS_ROOT}/ca`, readOnly: true },
      { name: 'tls', mountPath: `${JOIN_MOUNTS_ROOT}/tls`, readOnly: true },
      { name: 'logs', mountPath: `${JOIN_MOUNTS_ROOT}/logs` },
    ]);
    expect(view.path('/var/log/etcd/etcd.log')).toBe(`${JOIN_MOUNTS_ROOT}/logs/etcd/etcd.log`);
    expect(mapArgvPaths(['/usr/local/bin/etcd', '--cert-file=/etc/etcd/tls/etcd.crt', '--key-file=/etc/etcd/tls/etcd.key', '--trusted-ca-file=/etc/etcd/tls/etcdCA.crt', '--data-dir=/var/lib/etcd/x', '--name=a'], view.path))
      .toEqual(['/usr/local/bin/etcd', `--cert-file=${JOIN_MOUNTS_ROOT}/tls/tls.crt`, `--key-file=${JOIN_MOUNTS_ROOT}/tls/tls.key`, `--trusted-ca-file=${JOIN_MOUNTS_ROOT}/ca/ca.crt`, '--data-dir=/var/lib/etcd/x', '--name=a']);
  });

  it('refuses a subPathExpr other than the data volume\'s (its expansion is the kubelet\'s)', async () => {
    const { joinMounts } = await import('../../src/etcd/replace.js');
    expect(() => joinMounts([{ name: 'certs', mountPath: '/certs', subPathExpr: '$(POD_NAME)' }], member(1))).toThrow(/sub-path of volume "certs" \(subPathExpr/);
  });
});

describe('the set-aside script of a Bitnami member, on real files', () => {
  let dir = '';
  afterEach(async () => { if (dir) await rm(dir, { recursive: true, force: true }); });

  async function runAside(data: string, aside: string, mode = 'aside'): Promise<{ code: number; out: string }> {
    try {
      const { stdout, stderr } = await run('sh', ['-ec', ASIDE_SCRIPT, 'sh', data, aside, mode], { timeout: 20_000 });
      return { code: 0, out: stdout + stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, out: e.stdout + e.stderr };
    }
  }

  it('legacy scripts (member_id): the whole data dir goes aside, a dot-file marker stays, which their wipe (rm -rf data/*) leaves; a second run moves nothing', async () => {
    dir = await mkdtemp(join(tmpdir(), 'aside-'));
    const data = join(dir, 'data');
    await mkdir(join(data, 'member', 'snap'), { recursive: true });
    await writeFile(join(data, 'member', 'snap', 'db'), 'old');
    await writeFile(join(data, 'member_id'), '8d0f8a30d3b67b68\n');
    const aside = join(dir, 'member.pre-replace-1');
    const first = await runAside(data, aside);
    expect(first.code, first.out).toBe(0);
    expect(await readFile(join(aside, 'member', 'snap', 'db'), 'utf8')).toBe('old');
    expect(await readFile(join(aside, 'member_id'), 'utf8')).toBe('8d0f8a30d3b67b68\n');
    expect(await readdir(data)).toEqual([READD_MARKER]);
    expect((await stat(data)).mode & 0o777).toBe(0o700);
    // The legacy script's wipe of a member it takes as removed; then a new member's data arrives.
    await run('bash', ['-c', 'rm -rf "$1"/*', 'bash', data]);
    expect(await readdir(data)).toEqual([READD_MARKER]);
    await mkdir(join(data, 'member'));
    const again = await runAside(data, aside);
    expect(again.code, again.out).toBe(0);
    expect(again.out).toMatch(/set aside already/);
    expect((await readdir(data)).sort()).toEqual([READD_MARKER, 'member']);
    expect((await readdir(aside)).sort()).toEqual(['member', 'member_id']);
  });

  it('current scripts (no member_id): the data dir is left empty', async () => {
    dir = await mkdtemp(join(tmpdir(), 'aside-'));
    const data = join(dir, 'data');
    await mkdir(join(data, 'member', 'wal'), { recursive: true });
    const aside = join(dir, 'member.pre-replace-1');
    const r = await runAside(data, aside);
    expect(r.code, r.out).toBe(0);
    expect(await readdir(data)).toEqual([]);
    expect(await readdir(aside)).toEqual(['member']);
  });

  it('recheck: data a start made meanwhile without the scripts\' re-add (no new_member_envs) goes aside too; the re-add\'s data stays', async () => {
    dir = await mkdtemp(join(tmpdir(), 'aside-'));
    const data = join(dir, 'data');
    await mkdir(join(data, 'member', 'wal'), { recursive: true });
    const first = await runAside(data, join(dir, 'm.started-meanwhile'), 'recheck');
    expect(first.code, first.out).toBe(0);
    expect(first.out).toMatch(/as a cluster of its own, is kept in/);
    expect(await readdir(data)).toEqual([]);
    expect(await readdir(join(dir, 'm.started-meanwhile'))).toEqual(['member']);
    await mkdir(join(data, 'member'));
    await writeFile(join(data, 'new_member_envs'), 'export ETCD_INITIAL_CLUSTER_STATE=existing\n');
    const second = await runAside(data, join(dir, 'm.other'), 'recheck');
    expect(second.code, second.out).toBe(0);
    expect((await readdir(data)).sort()).toEqual(['member', 'new_member_envs']);
    expect((await readdir(dir)).sort()).toEqual(['data', 'm.started-meanwhile']);
  });

  it('a missing data dir: nothing to keep, said so', async () => {
    dir = await mkdtemp(join(tmpdir(), 'aside-'));
    const r = await runAside(join(dir, 'data'), join(dir, 'member.pre-replace-1'));
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/no data dir at .*nothing to keep/);
    expect(await readdir(dir)).toEqual(['data']);
  });
});
