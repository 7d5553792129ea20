// NOSPACE end to end: `status` (quota, `--check`), `alarm list|disarm`, `compact`, `defrag` and
// `recover-space` against real etcd that
// runs out of its backend quota. One cluster, two fixtures of three members with a quota of 16 MiB:
// `anthos` (etcd 3.4, TLS, the quota as a flag) and `bitnami` (etcd 3.5, plain HTTP, the quota as
// ETCD_QUOTA_BACKEND_BYTES). The database is filled from inside a member with real
// `etcdctl put` until etcd itself refuses the write with "mvcc: database space exceeded" and raises
// NOSPACE (etcd server/etcdserver/quota.go; op-guide/maintenance.md "Space quota"). Disarming before
// space is freed is shown failing first, the naive way, with etcdctl.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot, startCluster, type SimCluster } from '../sim/harness.js';
import { withFixtureOption } from '../sim/fixtures/index.js';
import { TARGETS, buildPlugin, onEtcd, etcdctlInPod, kubectlEtcd, writeKeys, type EtcdTarget } from './backup-support.js';

const QUOTA = 16 * 1024 * 1024;
/** The quota anthos is rolled to once its data fills the first one. */
const LOWERED = 12 * 1024 * 1024;
const withQuota = (t: EtcdTarget): EtcdTarget => ({ ...t, fixture: withFixtureOption(t.fixture, 'quotaBackendBytes', String(QUOTA)) });
const ANTHOS = withQuota(TARGETS.anthos);
const BITNAMI = withQuota(onEtcd(TARGETS.bitnami, '3.5'));
const PODS: Record<string, string[]> = { uc1: ['kube-etcd-0', 'kube-etcd-1', 'kube-etcd-2'], etcd: ['etcd-0', 'etcd-1', 'etcd-2'] };

let cluster: SimCluster;
let work: string;

beforeAll(async () => {
  requireRoot();
  await buildPlugin();
  work = await mkdtemp(join(tmpdir(), 'space-e2e-'));
  cluster = await startCluster({ fixtures: [ANTHOS.fixture, BITNAMI.fixture] });
}, 600_000);

afterAll(async () => {
  await cluster?.down();
  if (work) await rm(work, { recursive: true, force: true });
}, 180_000);

/** Runs a shell script in a member's etcd container; resolves with its exit code and output. */
async function shInPod(t: EtcdTarget, pod: string, script: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await cluster.kubectl(['-n', t.namespace, 'exec', pod, '-c', t.container, '--', 'sh', '-c', script], { timeoutMs: 300_000 });
  return { code: r.code ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Polls until check() holds (at most 60 s). */
async function waitFor(check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** etcdctl in a given member's pod, against that member. */
async function etcdctlOn(t: EtcdTarget, pod: string, args: string[]): Promise<string> {
  return etcdctlInPod(cluster, { ...t, pod }, args);
}

/** The `status -o json` members, by pod. */
async function statusJson(t: EtcdTarget): Promise<Record<string, { dbSize: number; alarms: string[]; healthy: boolean; quota: { bytes?: number; source: string } }>> {
  const r = await kubectlEtcd(cluster, ['status', '-n', t.namespace, '-o', 'json']);
  const record = JSON.parse(r.stdout) as { members: Array<{ pod: string; dbSize: number; alarms: string[]; healthy: boolean; quota: { bytes?: number; source: string } }> };
  return Object.fromEntries(record.members.map((m) => [m.pod, m]));
}

describe.each([
  ['anthos (etcd 3.4, TLS, --quota-backend-bytes), freed by compact, defrag and alarm disarm', ANTHOS, 'commands'],
  ['bitnami (etcd 3.5, ETCD_QUOTA_BACKEND_BYTES, 3 members), freed by recover-space', BITNAMI, 'recover-space'],
] as const)('NOSPACE on %s', (_name, t, way) => {
  const pods = PODS[t.namespace]!;
  let before: Record<string, string>;

  it('before: status shows the quota the pod spec sets, --check passes, no alarms', async () => {
    const json = await statusJson(t);
    for (const pod of pods) expect(json[pod]).toMatchObject({ healthy: true, alarms: [], quota: { bytes: QUOTA, source: 'set' } });
    const table = await kubectlEtcd(cluster, ['status', '-n', t.namespace]);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/ QUOTA /);
    expect(table.stdout).toMatch(/16\.0 MiB \(\d+%\)/);
    const check = await kubectlEtcd(cluster, ['status', '-n', t.namespace, '--check']);
    expect(check.code, check.stderr).toBe(0);
    const list = await kubectlEtcd(cluster, ['alarm', 'list', '-n', t.namespace]);
    expect([list.code, list.stdout, list.stderr]).toEqual([0, 'no alarms\n', '']);
    const disarm = await kubectlEtcd(cluster, ['alarm', 'disarm', '-n', t.namespace]);
    expect([disarm.code, disarm.stdout]).toEqual([0, 'no alarms: nothing to disarm\n']);
    before = await writeKeys(cluster, t, '/before/', 3);
  }, 120_000);

  it('filled until etcd refuses a write: NOSPACE is raised, status --check exits 3, alarm list names the member', async () => {
    const conn = t.conn.join(' ');
    const fill = await shInPod(t, t.pod, `head -c 262144 /dev/urandom >/tmp/v; i=0; while [ $i -lt 400 ]; do etcdctl ${conn} put /fill/$i </tmp/v >/dev/null 2>/tmp/err || { cat /tmp/err; rm -f /tmp/v; exit 7; }; i=$((i+1)); done; rm -f /tmp/v`);
    expect(fill.code, fill.stdout + fill.stderr).toBe(7);
    expect(fill.stdout).toMatch(/database space exceeded/);

    const json = await statusJson(t);
    expect(Object.values(json).some((m) => m.alarms.includes('NOSPACE'))).toBe(true);

    const check = await kubectlEtcd(cluster, ['status', '-n', t.namespace, '--check']);
    expect(check.code).toBe(3);
    expect(check.stderr).toMatch(/^error: check failed: "[^"]+" alarm NOSPACE(, "[^"]+" alarm NOSPACE)*; free space with kubectl etcd compact [^\n]*alarm disarm\n$/);

    const list = await kubectlEtcd(cluster, ['alarm', 'list', '-n', t.namespace]);
    expect(list.code, list.stderr).toBe(0);
    const [header, ...rows] = list.stdout.trimEnd().split('\n');
    expect(header).toMatch(/^MEMBER ID +POD +ALARM$/);
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) {
      const [id, pod, alarm] = row.split(/ +/);
      expect(id).toMatch(/^[0-9a-f]+$/);
      expect(pods).toContain(pod);
      expect(alarm).toBe('NOSPACE');
    }
    const asJson = JSON.parse((await kubectlEtcd(cluster, ['alarm', 'list', '-n', t.namespace, '-o', 'json'])).stdout) as { alarms: Array<{ pod: string; alarm: string }> };
    expect(asJson.alarms.map((a) => a.alarm)).toEqual(rows.map(() => 'NOSPACE'));
  }, 300_000);

  it('the naive way: etcdctl alarm disarm without freeing space, and the next write raises NOSPACE again', async () => {
    // (No check that the list is empty right after: a NOSPACE proposal still in flight from the fill may land after the disarm.)
    await etcdctlOn(t, t.pod, ['alarm', 'disarm']);
    // A member whose db has a little room left takes a write or two before it refuses again.
    const put = await shInPod(t, t.pod, `head -c 262144 /dev/urandom >/tmp/v; i=0; while [ $i -lt 8 ]; do etcdctl ${t.conn.join(' ')} put /fill/again$i </tmp/v 2>&1 || break; i=$((i+1)); done; rm -f /tmp/v; echo puts=$i`);
    expect(put.stdout).toMatch(/database space exceeded/);
    expect(Number(/puts=(\d+)/.exec(put.stdout)?.[1])).toBeLessThan(8);
    expect(await etcdctlOn(t, t.pod, ['alarm', 'list'])).toMatch(/alarm:NOSPACE/);
  }, 120_000);

  it('alarm disarm refuses while a database is still that full, and changes nothing; --dry-run says so too', async () => {
    for (const args of [[], ['--dry-run']]) {
      const r = await kubectlEtcd(cluster, ['alarm', 'disarm', '-n', t.namespace, ...args]);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^error: refusing to disarm NOSPACE: the db of "[^"]+" \([\d.]+ MiB\) is \d+% of its quota \(16\.0 MiB\)(, the db of "[^"]+" \([\d.]+ MiB\) is \d+% of its quota \(16\.0 MiB\))*, so the next writes would raise it again; free space first: [^\n]+\n$/);
    }
    expect(await etcdctlOn(t, t.pod, ['alarm', 'list'])).toMatch(/alarm:NOSPACE/);
  }, 120_000);

  // The data itself past the quota: the quota lowered below it (12 MiB, a rolling update of the
  // StatefulSet's flag, the last --quota-backend-bytes winning as Go's flag package reads it).
  // On anthos only: bitnami's rolling restart removes and re-adds every member.
  if (way === 'commands') it('recover-space when the data itself is past a lowered quota: compacts and defragments, then refuses to disarm, with the hint to raise the quota', async () => {
    const patched = await cluster.kubectl(['-n', t.namespace, 'patch', 'statefulset', 'kube-etcd', '--type=json', '-p',
      JSON.stringify([{ op: 'add', path: '/spec/template/spec/containers/0/command/-', value: `--quota-backend-bytes=${LOWERED}` }])]);
    expect(patched.code, patched.stderr).toBe(0);
    const rolled = await cluster.kubectl(['-n', t.namespace, 'rollout', 'status', 'statefulset/kube-etcd', '--timeout=180s'], { timeoutMs: 200_000 });
    expect(rolled.code, rolled.stderr).toBe(0);
    await waitFor(async () => Object.values(await statusJson(t)).filter((m) => m.alarms.includes('NOSPACE')).length === pods.length);
    for (const m of Object.values(await statusJson(t))) expect(m.quota).toEqual({ bytes: LOWERED, source: 'set' });

    const r = await kubectlEtcd(cluster, ['recover-space', '-n', t.namespace]);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^compacting to revision \d+\ndefragmenting "kube-etcd-\d" \(follower, [\d.]+ MiB\)\n/);
    expect(r.stderr).toMatch(/\nerror: compacted and defragmented \(("kube-etcd-\d" [\d.]+ MiB → [\d.]+ MiB(, )?){3}\), but the data itself still fills the quota: the db of "kube-etcd-\d" \([\d.]+ MiB\) is \d+% of its quota \(12\.0 MiB\)[^\n]*; NOSPACE stays raised; raise the quota [^\n]+\n$/);
    expect(await etcdctlOn(t, t.pod, ['alarm', 'list'])).toMatch(/alarm:NOSPACE/);
  }, 300_000);

  if (way === 'commands') it('after deleting what fills it: compact, defrag, then alarm disarm (--dry-run first); writes work, the keys written before are intact', async () => {
    await etcdctlOn(t, t.pod, ['del', '/fill/', '--prefix']);
    const dryCompact = await kubectlEtcd(cluster, ['compact', '-n', t.namespace, '--dry-run']);
    expect(dryCompact.stdout).toMatch(/^would compact to revision (\d+) \(head \1, keeping 0\) \(dry run: nothing changed\)\n$/);
    const c = await kubectlEtcd(cluster, ['compact', '-n', t.namespace, '--physical']);
    expect(c.code, c.stderr).toBe(0);
    const rev = Number(/^compacted to revision (\d+) \(head \1, kept 0\)\n$/.exec(c.stdout)?.[1]);
    expect(rev).toBeGreaterThan(0);
    const old = await shInPod(t, t.pod, `etcdctl ${t.conn.join(' ')} get /before/k0 --rev=${rev - 1} 2>&1`);
    expect(old.stdout).toMatch(/required revision has been compacted/);
    const bad = await kubectlEtcd(cluster, ['compact', '-n', t.namespace, '--keep-revisions', 'lots']);
    expect([bad.code, bad.stdout]).toEqual([2, '']);
    expect(bad.stderr).toBe('error: --keep-revisions must be a whole number of 0 or more, got "lots"; e.g. --keep-revisions 1000\n');

    const d = await kubectlEtcd(cluster, ['defrag', '-n', t.namespace]);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toMatch(/^POD +ROLE +BEFORE +AFTER +SECONDS\n/);
    const json = await statusJson(t);
    for (const pod of pods) expect(json[pod]!.dbSize).toBeLessThan(QUOTA / 2);

    const dry = await kubectlEtcd(cluster, ['alarm', 'disarm', '-n', t.namespace, '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/^would disarm: NOSPACE on member [0-9a-f]+ \("[^"]+"\)(, NOSPACE on member [0-9a-f]+ \("[^"]+"\))* \(dry run: nothing changed\)\n$/);
    expect(await etcdctlOn(t, t.pod, ['alarm', 'list'])).toMatch(/alarm:NOSPACE/);
    const disarm = await kubectlEtcd(cluster, ['alarm', 'disarm', '-n', t.namespace]);
    expect(disarm.code, disarm.stderr).toBe(0);
    expect(disarm.stdout).toMatch(/^disarmed: NOSPACE on member [0-9a-f]+ \("[^"]+"\)/);
    expect(await etcdctlOn(t, t.pod, ['alarm', 'list'])).toBe('');
    await etcdctlOn(t, t.pod, ['put', '/after', 'ok']);
    for (const [k, v] of Object.entries(before)) expect((await etcdctlOn(t, t.pod, ['get', k, '--print-value-only'])).trim()).toBe(v);
    const check = await kubectlEtcd(cluster, ['status', '-n', t.namespace, '--check']);
    expect(check.code, check.stderr).toBe(0);
  }, 300_000);

  if (way === 'recover-space') it('after deleting what fills it: recover-space --dry-run changes nothing; recover-space compacts, defragments the leader last and disarms; writes work, the keys written before are intact', async () => {
    // Deletes are allowed under NOSPACE: the user's own way to make room.
    await etcdctlOn(t, t.pod, ['del', '/fill/', '--prefix']);
    const dry = await kubectlEtcd(cluster, ['recover-space', '-n', t.namespace, '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/^would compact to revision \d+, defragment "[^"]+"(, "[^"]+")* in that order, then disarm NOSPACE on member [0-9a-f]+ \("[^"]+"\)[^\n]* \(dry run: nothing changed\)\n$/);
    expect(await etcdctlOn(t, t.pod, ['alarm', 'list'])).toMatch(/alarm:NOSPACE/);
    const leader = Object.entries(await statusJson(t)).find(([, m]) => (m as { isLeader?: boolean }).isLeader)![0];

    const r = await kubectlEtcd(cluster, ['recover-space', '-n', t.namespace]);
    expect(r.code, r.stderr).toBe(0);
    const order = [...r.stderr.matchAll(/^defragmenting "([^"]+)" \((leader|follower)/gm)].map((m) => m[1]);
    expect([...order].sort()).toEqual(pods);
    expect(order.at(-1)).toBe(leader);
    expect(r.stdout).toMatch(/^POD +ROLE +BEFORE +AFTER +SECONDS\n/);
    expect(r.stdout).toMatch(/\ncompacted to revision \d+; disarmed NOSPACE on member [0-9a-f]+ \("[^"]+"\)/);
    const json = await statusJson(t);
    for (const pod of pods) expect(json[pod]!.dbSize).toBeLessThan(QUOTA / 2);
    expect(await etcdctlOn(t, t.pod, ['alarm', 'list'])).toBe('');
    await etcdctlOn(t, t.pod, ['put', '/after', 'ok']);
    for (const [k, v] of Object.entries(before)) expect((await etcdctlOn(t, t.pod, ['get', k, '--print-value-only'])).trim()).toBe(v);
    const check = await kubectlEtcd(cluster, ['status', '-n', t.namespace, '--check']);
    expect(check.code, check.stderr).toBe(0);
    const again = await kubectlEtcd(cluster, ['recover-space', '-n', t.namespace]);
    expect([again.code, again.stdout]).toEqual([0, 'no NOSPACE alarm: nothing to recover (kubectl etcd compact and defrag free space without one)\n']);
  }, 300_000);
});

describe.each([
  ['anthos (etcd 3.4, TLS)', ANTHOS],
  ['bitnami (etcd 3.5)', BITNAMI],
] as const)('defrag on %s with a writer on the leader', (_name, t) => {
  it('shrinks every member after most keys are deleted, the leader last, and the writer never fails', async () => {
    const conn = t.conn.join(' ');
    const st = await statusJson(t);
    const leader = Object.entries(st).find(([, m]) => (m as { isLeader?: boolean }).isLeader)![0];
    const fill = await shInPod(t, leader, `head -c 65536 /dev/urandom >/tmp/v; i=0; while [ $i -lt 50 ]; do etcdctl ${conn} put /bulk/$i </tmp/v >/dev/null || exit 1; i=$((i+1)); done; rm -f /tmp/v; etcdctl ${conn} del /bulk/ --prefix >/dev/null`);
    expect(fill.code, fill.stderr).toBe(0);
    const compacted = await kubectlEtcd(cluster, ['compact', '-n', t.namespace, '--physical']);
    expect(compacted.code, compacted.stderr).toBe(0);
    const before = await statusJson(t);
    // A write every 100 ms on the leader (defragmented last) from before the defrag starts until
    // after it ends (the seconds of its first and last write say so); prints the failures.
    await shInPod(t, leader, 'rm -f /tmp/stop /tmp/started');
    const writer = shInPod(t, leader, `i=0; f=0; first=$(date +%s); touch /tmp/started; while [ ! -e /tmp/stop ] && [ $i -lt 900 ]; do etcdctl ${conn} put /writer/$i $i >/dev/null 2>&1 || f=$((f+1)); i=$((i+1)); sleep 0.1; done; echo writes=$i failed=$f first=$first last=$(date +%s)`);
    await waitFor(async () => (await shInPod(t, leader, 'test -e /tmp/started')).code === 0);
    const t0 = Date.now();
    const d = await kubectlEtcd(cluster, ['defrag', '-n', t.namespace]);
    const t1 = Date.now();
    await new Promise((r) => setTimeout(r, 1000));
    await shInPod(t, leader, 'touch /tmp/stop');
    const w = await writer;
    const [first, last] = [/first=(\d+)/, /last=(\d+)/].map((re) => Number(re.exec(w.stdout)?.[1]));
    expect(first, w.stdout).toBeLessThanOrEqual(Math.floor(t0 / 1000));
    expect(last, w.stdout).toBeGreaterThanOrEqual(Math.floor(t1 / 1000));
    expect(d.code, d.stderr).toBe(0);
    const order = [...d.stderr.matchAll(/^defragmenting "([^"]+)" \((leader|follower)/gm)].map((m) => [m[1], m[2]]);
    expect(order.map((o) => o[0]).sort()).toEqual(PODS[t.namespace]);
    expect(order.at(-1)).toEqual([leader, 'leader']);
    const after = await statusJson(t);
    for (const pod of PODS[t.namespace]!) expect(after[pod]!.dbSize, pod).toBeLessThan(before[pod]!.dbSize);
    expect(w.stdout).toMatch(/writes=\d+ failed=0 /);
    const check = await kubectlEtcd(cluster, ['status', '-n', t.namespace, '--check']);
    expect(check.code, check.stderr).toBe(0);
  }, 300_000);
});

describe('defrag on bitnami (etcd 3.5) with a member stopped', () => {
  it('refuses before any change when a member does not answer (its etcd stopped with SIGSTOP)', async () => {
    const info = JSON.parse(await readFile(join(cluster.dir, 'runtime', 'pods', 'etcd', 'etcd-2', 'etcd.json'), 'utf8')) as { pid: number | null };
    process.kill(info.pid!, 'SIGSTOP');
    try {
      const r = await kubectlEtcd(cluster, ['defrag', '-n', 'etcd']);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).not.toMatch(/defragmenting/);
      expect(r.stderr).toMatch(/^error: refusing to defragment: "etcd-2" \([^\n]+\) does not answer, and a member stops serving while it defragments; bring that member back first[^\n]*\n$/);
      // No alarm is raised: recover-space has nothing to do, whatever the members' state.
      const rs = await kubectlEtcd(cluster, ['recover-space', '-n', 'etcd']);
      expect([rs.code, rs.stdout]).toEqual([0, 'no NOSPACE alarm: nothing to recover (kubectl etcd compact and defrag free space without one)\n']);
    } finally {
      process.kill(info.pid!, 'SIGCONT');
    }
  }, 120_000);
});
