// What the member-replace e2e files share: shell and etcdctl in a member, status, a writer that
// puts a key every 100 ms, the failures a member is made to have (data destroyed, db corrupt), and
// the check of a replaced member. A ReplaceTarget says where a fixture's members keep their data.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import { requireRoot, startCluster, waitFor as harnessWaitFor, type SimCluster } from '../sim/harness.js';
import { killContainer } from '../sim/kubelet/fault.js';
import { buildPlugin, etcdctlInPod, kubectlEtcd, writeKeys, type EtcdTarget } from './backup-support.js';

/** A fixture's members, as the replace tests reach them. */
export interface ReplaceTarget extends EtcdTarget {
  pods: string[];
  /** The members' data dir (it holds member/). */
  dataDir: string;
  /** Where member replace keeps the old data (keptCopiesDirOf). */
  keptDir: string;
}

/** Runs a shell script in a member's etcd container. */
export async function shIn(cluster: SimCluster, t: ReplaceTarget, pod: string, script: string, timeoutMs = 120_000): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await cluster.kubectl(['-n', t.namespace, 'exec', pod, '-c', t.container, '--', 'sh', '-c', script], { timeoutMs });
  return { code: r.code ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Polls every second until check() holds (the harness's waitFor, for a yes/no check). */
export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 90_000): Promise<void> {
  await harnessWaitFor(what, async () => ((await check()) ? true : undefined), timeoutMs, 1000);
}

/** The member list as {name → hex ID}, asked through a healthy member. */
export async function members(cluster: SimCluster, t: ReplaceTarget, via = t.pods[0]!): Promise<Record<string, string>> {
  const out = await etcdctlInPod(cluster, { ...t, pod: via }, ['member', 'list', '-w', 'json']);
  const doc = JSON.parse(out.replace(/([:[,]\s*)(\d{16,})(?=\s*[,}\]])/g, '$1"$2"')) as { members: Array<{ ID: string; name?: string }> };
  return Object.fromEntries(doc.members.map((m) => [m.name ?? '', BigInt(m.ID).toString(16)]));
}

/** `status -o json` by pod. */
export async function status(cluster: SimCluster, t: ReplaceTarget): Promise<Record<string, { healthy: boolean; isLeader?: boolean; memberId?: string; error?: string }>> {
  const r = await kubectlEtcd(cluster, ['status', '-n', t.namespace, '-o', 'json']);
  const doc = JSON.parse(r.stdout) as { members: Array<{ pod: string; healthy: boolean; isLeader?: boolean; memberId?: string; error?: string }> };
  return Object.fromEntries(doc.members.map((m) => [m.pod, m]));
}

/** The etcd process of a pod's container, on this host (the runtime file names the container's process). */
export function etcdPid(cluster: SimCluster, t: ReplaceTarget, pod: string): number {
  const info = JSON.parse(readFileSync(join(cluster.dir, 'runtime', 'pods', t.namespace, pod, `${t.container}.json`), 'utf8')) as { pid: number };
  const queue = [info.pid];
  while (queue.length) {
    const pid = queue.shift()!;
    if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'etcd') return pid;
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      queue.push(...readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').split(' ').filter(Boolean).map(Number));
    }
  }
  throw new Error(`no etcd process in pod ${pod}`);
}

/** Keys under a prefix on one member, read from its own store (serializable). */
export async function localKeys(cluster: SimCluster, t: ReplaceTarget, pod: string, prefix: string): Promise<number> {
  const out = await etcdctlInPod(cluster, { ...t, pod }, ['get', prefix, '--prefix', '--keys-only', '--consistency=s', '-w', 'json']);
  return (JSON.parse(out) as { count?: number }).count ?? 0;
}

/** Makes a member fail as a lost disk does: its data goes, its container restarts. */
export async function destroyData(cluster: SimCluster, t: ReplaceTarget, pod: string): Promise<void> {
  const r = await shIn(cluster, t, pod, `rm -rf ${t.dataDir}/member`);
  expect(r.code, r.stderr).toBe(0);
  await killContainer(cluster.dir, { namespace: t.namespace, pod, container: t.container });
}

/**
 * Makes a member fail as a corrupt disk does: garbage over the start of its db file (bbolt's meta
 * pages). etcd may die of it at once (3.5 does), and with it the exec that wrote it; a 3.4 member
 * may still commit (rewriting a meta page) before it is killed. A sentinel file in member/ shows
 * afterwards that the very directory was kept.
 */
export async function corruptDb(cluster: SimCluster, t: ReplaceTarget, pod: string): Promise<string> {
  const sentinel = `sentinel-${Date.now()}`;
  const junk = await shIn(cluster, t, pod, `head -c 16384 /dev/urandom > /tmp/junk && echo ${sentinel} > ${t.dataDir}/member/kubectl-etcd-test-sentinel`);
  expect(junk.code, junk.stderr).toBe(0);
  const r = await shIn(cluster, t, pod, `dd if=/tmp/junk of=${t.dataDir}/member/snap/db bs=16384 count=1 conv=notrunc 2>/dev/null`);
  expect([0, 137], r.stderr).toContain(r.code);
  await killContainer(cluster.dir, { namespace: t.namespace, pod, container: t.container }).catch(() => undefined);
  return sentinel;
}

/** Starts a writer in a member's container: a put every 100 ms until /tmp/stop-writer; resolves with its tally. */
export function startWriter(cluster: SimCluster, t: ReplaceTarget, pod: string, prefix: string): { stop(): Promise<{ writes: number; failed: number; failedAt: number[] }> } {
  const conn = t.conn.join(' ');
  const script = `rm -f /tmp/stop-writer; i=0; f=0; at=""; while [ ! -e /tmp/stop-writer ] && [ $i -lt 6000 ]; do if etcdctl ${conn} --command-timeout=2s put ${prefix}$i $i >/dev/null 2>&1; then :; else f=$((f+1)); at="$at $(date +%s)"; fi; i=$((i+1)); sleep 0.1; done; echo "writes=$i failed=$f at=$at"`;
  const done = shIn(cluster, t, pod, script, 900_000);
  return {
    async stop() {
      await shIn(cluster, t, pod, 'touch /tmp/stop-writer');
      const r = await done;
      const m = /writes=(\d+) failed=(\d+) at=(.*)/.exec(r.stdout);
      if (!m) throw new Error(`writer printed no tally: ${r.stdout} ${r.stderr}`);
      return { writes: Number(m[1]), failed: Number(m[2]), failedAt: m[3]!.trim().split(' ').filter(Boolean).map(Number) };
    },
  };
}

/** Checks a replaced member: everyone healthy, a new ID, keys everywhere, the old data kept. */
export async function expectReplaced(cluster: SimCluster, t: ReplaceTarget, pod: string, oldId: string, before: Record<string, string>): Promise<void> {
  const st = await status(cluster, t);
  for (const p of t.pods) expect(st[p], p).toMatchObject({ healthy: true });
  const ids = await members(cluster, t);
  expect(Object.keys(ids).sort()).toEqual(t.pods);
  expect(ids[pod]).not.toBe(oldId);
  expect(st[pod]!.memberId).toBe(ids[pod]);
  for (const [k, v] of Object.entries(before)) {
    expect((await etcdctlInPod(cluster, { ...t, pod }, ['get', k, '--print-value-only', '--consistency=s'])).trim()).toBe(v);
  }
  // An exec can fail while the just-restarted container settles (the full suite once read '' here): retried until it answers.
  let ls = await shIn(cluster, t, pod, `ls -a ${t.keptDir}`);
  for (let i = 0; ls.code !== 0 && i < 15; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    ls = await shIn(cluster, t, pod, `ls -a ${t.keptDir}`);
  }
  expect(ls.code, ls.stderr).toBe(0);
  expect(ls.stdout).toMatch(/member\.pre-replace-\d{8}T\d{6}Z/);
  expect(ls.stdout).not.toMatch(/kubectl-etcd-replace/);
}


/** A cluster of the target's fixture for the describe block it is called in, with five keys written before. */
export function replaceCluster(t: ReplaceTarget): { cluster: SimCluster; before: Record<string, string> } {
  const state = {} as { cluster: SimCluster; before: Record<string, string> };
  beforeAll(async () => {
    requireRoot();
    await buildPlugin();
    state.cluster = await startCluster({ fixtures: [t.fixture] });
    state.before = await writeKeys(state.cluster, t, '/before/', 5);
  }, 600_000);
  afterAll(async () => {
    await state.cluster?.down();
  }, 180_000);
  return state;
}
