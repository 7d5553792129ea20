// `kubectl etcd member replace` against real etcd in real pods: the anthos layout (a StatefulSet
// of three TLS members whose command line says --initial-cluster-state=new), on etcd 3.4 and 3.5,
// each in a cluster of its own. One member's data is destroyed (and, after, another's db file
// corrupted); the naive way is shown failing first: the member's own pod never comes back by
// itself (etcd refuses an empty data dir with "has already been bootstrapped", and a corrupt db
// does not open). A client inside the cluster writes every 100 ms while the member is replaced.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { beforeAll, describe, expect, it } from 'vitest';
import type { SimCluster } from '../sim/harness.js';
import { ETCD_MINORS, type EtcdMinor } from '../sim/etcd-versions.js';
import { withFixtureOption } from '../sim/fixtures/index.js';
import { TARGETS, distrolessManifest, distrolessSecrets, onEtcd, etcdctlInPod, kubectlEtcd, ok, writeKeys, type EtcdTarget } from './backup-support.js';
import { killContainer } from '../sim/kubelet/fault.js';
import { startKubectlEtcd } from './restore-helpers.js';
import {
  corruptDb, destroyData, etcdPid, expectReplaced, localKeys, members, shIn, replaceCluster, startWriter, status as statusOf, waitFor, type ReplaceTarget,
} from './replace-support.js';

const NS = 'uc1';

/**
 * Per minor: 3.4 with the data volume's root at /var/lib/etcd; 3.5 with a sub-folder of it there
 * (subPathExpr), which an ephemeral container may not mount: the join mounts the whole volume.
 */
const LAYOUTS: Record<EtcdMinor, (t: EtcdTarget) => EtcdTarget> = {
  '3.4': (t) => t,
  '3.5': (t) => ({ ...t, fixture: withFixtureOption(t.fixture, 'subPath', 'etcd-$(POD_NAME)') }),
};

describe.each(ETCD_MINORS.map((m) => [m] as [EtcdMinor]))('member replace on etcd %s (anthos layout, TLS)', (minor) => {
  const t: ReplaceTarget = { ...LAYOUTS[minor](onEtcd(TARGETS.anthos, minor)), pods: ['kube-etcd-0', 'kube-etcd-1', 'kube-etcd-2'], dataDir: '/var/lib/etcd', keptDir: '/var/lib/etcd' };
  const status = (cluster: SimCluster) => statusOf(cluster, t);
  const PODS = t.pods;
  const env = replaceCluster(t);
  let cluster: SimCluster;
  let before: Record<string, string>;
  beforeAll(() => ({ cluster, before } = env));


  // On 3.5 only, beside its distroless run below: no step of a replace depends on the minor (the
  // same member remove, add and start on its own data), and each run is about 20 s.
  if (minor !== '3.4') it('killed (SIGKILL) at each of its steps, running it again finishes the replace', async () => {
    const pod = 'kube-etcd-0';
    const oldId = (await members(cluster, t, 'kube-etcd-1'))[pod]!;
    await destroyData(cluster, t, pod);
    await waitFor(`${pod} to fail`, async () => !(await status(cluster))[pod]!.healthy, 60_000);
    const state = mkdtempSync(join(tmpdir(), 'replace-kill-'));
    try {
      // Each run is killed when it announces the step after the kill point; the next run gets past it.
      for (const point of [/removing member/, /adding member/, /starting ephemeral container/, /waiting until member/, /has caught up; stopping/, /deleting pod/]) {
        const run = startKubectlEtcd(cluster, state, ['member', 'replace', pod, '-n', NS, '--yes']);
        await run.until(point, 300_000);
        run.child.kill('SIGKILL');
        await run.done;
      }
      const last = await kubectlEtcd(cluster, ['member', 'replace', pod, '-n', NS, '--yes', '-o', 'json'], { timeoutMs: 600_000 });
      expect(last.code, last.stderr).toBe(0);
      expect((JSON.parse(last.stdout) as { oldId: string }).oldId).toBe(oldId);
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
    await expectReplaced(cluster, t, pod, oldId, before);
    const journal = await cluster.kubectl(['-n', NS, 'get', 'configmap', `kubectl-etcd-replace-${pod}`]);
    expect(journal.stderr).toMatch(/NotFound|not found/);
  }, 900_000);

  it('refuses before any change: an unknown pod, a healthy member', async () => {
    const ids = await members(cluster, t);
    const unknown = await kubectlEtcd(cluster, ['member', 'replace', 'kube-etcd-7', '-n', NS, '--yes']);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/^error: .*kube-etcd-7.*\n$/);
    const healthy = await kubectlEtcd(cluster, ['member', 'replace', 'kube-etcd-1', '-n', NS, '--yes']);
    expect(healthy.code).toBe(1);
    expect(healthy.stderr).toMatch(/^error: member "kube-etcd-1" is healthy .*nothing to replace; pass --force/);
    expect(await members(cluster, t)).toEqual(ids);
  }, 120_000);

  it('the naive way: a member whose data is gone never comes back in its own pod', async () => {
    await destroyData(cluster, t, 'kube-etcd-1');
    await waitFor('kube-etcd-1 to refuse its empty data dir', async () => {
      const logs = await cluster.kubectl(['-n', NS, 'logs', 'kube-etcd-1', '-c', t.container, '--previous']);
      return /has already been bootstrapped/.test(logs.stdout + logs.stderr);
    });
    const st = await status(cluster);
    expect(st['kube-etcd-1']!.healthy).toBe(false);
  }, 180_000);

  it('refuses while a second member is down (no quorum without the target), changing nothing', async () => {
    const ids = await members(cluster, t);
    const pid = etcdPid(cluster, t, 'kube-etcd-2');
    process.kill(pid, 'SIGSTOP');
    try {
      const r = await kubectlEtcd(cluster, ['member', 'replace', 'kube-etcd-1', '-n', NS, '--yes']);
      expect(r.code).toBe(1);
            // kube-etcd-0 cannot answer a linearizable health check either: 1 of 3 has no quorum.
      expect(r.stderr).toMatch(/^error: only 0 of the other 2 members are healthy: 3 members need 2 for quorum, so "kube-etcd-1" cannot rejoin; .*kubectl etcd restore/);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await waitFor('kube-etcd-2 healthy again', async () => (await status(cluster))['kube-etcd-2']!.healthy);
    expect(await members(cluster, t)).toEqual(ids);
  }, 180_000);

  it('--dry-run prints the plan and changes nothing', async () => {
    const ids = await members(cluster, t);
    const r = await kubectlEtcd(cluster, ['member', 'replace', 'kube-etcd-1', '-n', NS, '--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('dry run: nothing changed\n');
    expect(r.stderr).toMatch(/1\. remove member [0-9a-f]+ \("kube-etcd-1"\)/);
    expect(r.stderr).toMatch(/add member "kube-etcd-1" at https:\/\/kube-etcd-1\.kube-etcd:2380/);
    expect(r.stderr).toMatch(/delete pod "kube-etcd-1"/);
    // Its container crash-loops: a dry run reads the free space only if the container happens to be
    // running at that moment (CI once caught it so); else it says the run reads it. Both lines are
    // pinned in test/unit/replace-space.test.ts.
    expect(r.stderr).toMatch(/free space on the volume of "kube-etcd-1": (not read in a dry run \(the member's container does not answer.*\); the run reads it in an ephemeral container first, and needs|[\d.]+ MiB, the replace needs) [\d.]+ MiB/);
    expect(await members(cluster, t)).toEqual(ids);
    const pod = JSON.parse((await cluster.kubectl(['-n', NS, 'get', 'pod', 'kube-etcd-1', '-o', 'json'])).stdout) as { spec: { ephemeralContainers?: unknown[] } };
    expect(pod.spec.ephemeralContainers ?? []).toEqual([]);
  }, 120_000);

  it('refuses a volume without room for a new copy of the data, read in an ephemeral container (the member crash-loops), changing nothing', async () => {
    const ids = await members(cluster, t);
    const fill = await cluster.sim(['fault', 'fill-volume', `${NS}/kube-etcd-1`, '--leave', String(24 * 1024 * 1024)]);
    expect(fill.code, fill.stderr).toBe(0);
    try {
      const r = await kubectlEtcd(cluster, ['member', 'replace', 'kube-etcd-1', '-n', NS, '--yes']);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/^error: the volume of member "kube-etcd-1" has 2\d\.\d MiB free, and the replace needs [\d.]+ MiB there beside the kept old data .*; nothing was changed; free space on it \(kubectl etcd restore --prune-kept -n uc1 deletes old kept copies\) or grow its PVC/m);
    } finally {
      expect((await cluster.sim(['fault', 'clear'])).code).toBe(0);
    }
    expect(await members(cluster, t)).toEqual(ids);
    const pod = JSON.parse((await cluster.kubectl(['-n', NS, 'get', 'pod', 'kube-etcd-1', '-o', 'json'])).stdout) as { spec: { ephemeralContainers?: Array<{ name: string }> } };
    expect((pod.spec.ephemeralContainers ?? []).map((c) => c.name)).toEqual([expect.stringMatching(/^kubectl-etcd-space-/)]);
  }, 180_000);

  it('replaces the member whose data was destroyed while a client writes every 100 ms', async () => {
    const oldId = (await members(cluster, t))['kube-etcd-1']!;
    const writer = startWriter(cluster, t, 'kube-etcd-0', '/writer1/');
    await new Promise((r) => setTimeout(r, 2000));
    const r = await kubectlEtcd(cluster, ['member', 'replace', 'kube-etcd-1', '-n', NS, '--yes'], { timeoutMs: 600_000 });
    const tally = await writer.stop();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^member "kube-etcd-1" \\(pod "kube-etcd-1"\\) replaced: member ${oldId} → member [0-9a-f]+, in \\d+ s\\nold data kept on its volume: /var/lib/etcd/member\\.pre-replace-\\d{8}T\\d{6}Z\\n$`));
    await expectReplaced(cluster, t, 'kube-etcd-1', oldId, before);
    expect(r.stderr).toMatch(/free space on the volume of "kube-etcd-1": [\d.]+ MiB, the replace needs [\d.]+ MiB/);
    // Failed writes only in a few seconds around the member's restart.
    expect(tally.writes).toBeGreaterThan(50);
    if (tally.failed) expect(Math.max(...tally.failedAt) - Math.min(...tally.failedAt), JSON.stringify(tally)).toBeLessThanOrEqual(5);
    // Every key the writer wrote is on every member (each read from its own store).
    const written = tally.writes - tally.failed;
    for (const p of PODS) await waitFor(`${p} to hold every written key`, async () => (await localKeys(cluster, t, p, '/writer1/')) >= written, 30_000);
  }, 900_000);

  if (minor === '3.5') it('--force replaces a healthy member (it syncs from the others as a new member)', async () => {
    const oldId = (await members(cluster, t))['kube-etcd-0']!;
    // A join for the member's current ID that ended well, as a finished replace can leave in the
    // pod (cut off after its swap, the member came back in the same pod, the next run only cleaned
    // up): once taken for this run's own join, the run "replaced" the member as the same ID.
    const podJson = JSON.parse((await cluster.kubectl(['-n', NS, 'get', 'pod', 'kube-etcd-0', '-o', 'json'])).stdout) as { spec: { ephemeralContainers?: unknown[] } };
    podJson.spec.ephemeralContainers = [...(podJson.spec.ephemeralContainers ?? []), { name: 'kubectl-etcd-join-old', image: 'busybox', command: ['true'], env: [{ name: 'KUBECTL_ETCD_MEMBER_ID', value: oldId }] }];
    ok(await cluster.kubectl(['replace', '--raw', `/api/v1/namespaces/${NS}/pods/kube-etcd-0/ephemeralcontainers`, '-f', '-'], { input: JSON.stringify(podJson) }));
    await waitFor('the old join container to end well', async () => {
      const r = await cluster.kubectl(['-n', NS, 'get', 'pod', 'kube-etcd-0', '-o', 'jsonpath={.status.ephemeralContainerStatuses[?(@.name=="kubectl-etcd-join-old")].state.terminated.exitCode}']);
      return r.stdout === '0';
    }, 60_000);
    // The target leads: a leader that removes itself steps down, and the election after can drop
    // the member add that follows (the full suite once saw "context deadline exceeded" there).
    const leader = Object.entries(await status(cluster)).find(([, m]) => m.isLeader)?.[0];
    if (leader && leader !== 'kube-etcd-0') await etcdctlInPod(cluster, { ...t, pod: leader }, ['move-leader', oldId]);
    await waitFor('kube-etcd-0 to lead', async () => (await status(cluster))['kube-etcd-0']!.isLeader === true, 30_000);
    const r = await kubectlEtcd(cluster, ['member', 'replace', 'kube-etcd-0', '-n', NS, '--yes', '--force'], { timeoutMs: 600_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/moving leadership from "kube-etcd-0" to "kube-etcd-[12]" first\n(?!  leadership did not move)/);
    await expectReplaced(cluster, t, 'kube-etcd-0', oldId, before);
  }, 600_000);

  if (minor === '3.5') it('a journal left by a run cut off after the restart: a later replace of that member, failed again, waits for it and says --force; --force replaces it anew', async () => {
    const pod = 'kube-etcd-1';
    const journalOf = async (): Promise<string | undefined> => {
      const r = await cluster.kubectl(['-n', NS, 'get', 'configmap', `kubectl-etcd-replace-${pod}`, '-o', 'jsonpath={.data.replace\\.json}']);
      return r.code === 0 && r.stdout ? r.stdout : undefined;
    };
    // The journal as the run leaves it once it deleted the pod (what a run killed or timed out in
    // its last wait leaves behind), read while a real replace runs.
    await destroyData(cluster, t, pod);
    await waitFor(`${pod} to fail`, async () => !(await status(cluster))[pod]!.healthy, 60_000);
    const state = mkdtempSync(join(tmpdir(), 'replace-stale-'));
    let left: string | undefined;
    try {
      const run = startKubectlEtcd(cluster, state, ['member', 'replace', pod, '-n', NS, '--yes']);
      let running = true;
      void run.done.then(() => { running = false; });
      while (running) {
        const j = await journalOf();
        if (j?.includes('swappedIn')) left = j;
        await new Promise((r) => setTimeout(r, 200));
      }
      expect((await run.done).code).toBe(0);
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
    expect(left, 'the journal named the pod whose data was swapped').toBeDefined();
    const first = JSON.parse(left!) as { newId: string };
    expect((await members(cluster, t))[pod]).toBe(first.newId);
    const put = await cluster.kubectl(['-n', NS, 'create', 'configmap', `kubectl-etcd-replace-${pod}`, `--from-literal=replace.json=${left!}`]);
    expect(put.code, put.stderr).toBe(0);
    // The member fails again, weeks later.
    await destroyData(cluster, t, pod);
    await waitFor(`${pod} to fail`, async () => !(await status(cluster))[pod]!.healthy, 60_000);
    const waited = await kubectlEtcd(cluster, ['member', 'replace', pod, '-n', NS, '--yes', '--timeout', '5s'], { timeoutMs: 120_000 });
    expect(waited.code, waited.stderr).toBe(1);
    expect(waited.stderr).toMatch(new RegExp(`waiting until member ${first.newId} \\("${pod}"\\) is healthy`));
    expect(waited.stderr).toMatch(/with --force to replace it anew/);
    expect((await members(cluster, t))[pod]).toBe(first.newId);
    const r = await kubectlEtcd(cluster, ['member', 'replace', pod, '-n', NS, '--yes', '--force', '-o', 'json'], { timeoutMs: 600_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/of the replace that brought member [0-9a-f]+ back is done/);
    expect((JSON.parse(r.stdout) as { oldId: string }).oldId).toBe(first.newId);
    await expectReplaced(cluster, t, pod, first.newId, before);
    expect(await journalOf()).toBeUndefined();
  }, 900_000);

  if (minor === '3.5') it('a distroless etcd image (no shell): etcd joins on its own beside busybox containers; killed at each step, running it again finishes', async () => {
    // Three members of the official etcd image (no sh, no mv) beside the anthos members, with their
    // certificates, each TLS file mounted by subPath from Secret keys renamed by items (an ephemeral
    // container may mount no subPath: the join mounts those volumes whole and maps the files).
    const DNS = 'distroless-m';
    const D: ReplaceTarget = {
      fixture: t.fixture, namespace: DNS, pod: 'etcd-0', container: 'etcd', transport: 'stream', pods: ['etcd-0', 'etcd-1', 'etcd-2'],
      conn: ['--endpoints=https://127.0.0.1:2379', '--cacert=/etc/etcd/tls/etcdCA.crt', '--cert=/etc/etcd/tls/etcd.crt', '--key=/etc/etcd/tls/etcd.key'],
      dataDir: '/var/run/etcd/default.etcd', keptDir: '/var/run/etcd',
    };
    const manifest = distrolessManifest({ namespace: DNS, replicas: 3, storage: '512Mi', token: 'distroless-m', createNamespace: true, etcd: '3.5', certMount: 'subPath' });
    const certs = JSON.parse(ok(await cluster.kubectl(['-n', NS, 'get', 'secret', 'kube-etcd-certs', '-o', 'json']))) as { data: Record<string, string> };
    ok(await cluster.kubectl(['apply', '-f', '-'], { input: manifest.split('---')[0] }));
    ok(await cluster.kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: distrolessSecrets({ namespace: DNS, certMount: 'subPath' }, certs.data) }) }));
    ok(await cluster.kubectl(['apply', '-f', '-'], { input: manifest }));
    await waitFor('the distroless members to be Ready', async () => (await cluster.kubectl(['-n', DNS, 'wait', '--for=condition=Ready', 'pod/etcd-0', 'pod/etcd-1', 'pod/etcd-2', '--timeout=5s'])).code === 0, 120_000);
    const keys = await writeKeys(cluster, D, '/distroless/', 3);
    const oldId = (await members(cluster, D))['etcd-1']!;
    // Its data gone, as a lost disk: through the volume's directory on the node (the image has no rm).
    const pv = ok(await cluster.kubectl(['-n', DNS, 'get', 'pvc', 'data-etcd-1', '-o', 'jsonpath={.spec.volumeName}'])).trim();
    const volume = ok(await cluster.kubectl(['get', 'pv', pv, '-o', 'jsonpath={.spec.local.path}'])).trim();
    rmSync(join(volume, 'default.etcd', 'member'), { recursive: true, force: true });
    await killContainer(cluster.dir, { namespace: DNS, pod: 'etcd-1', container: 'etcd' });
    const healthyOf = async () => Object.fromEntries(((JSON.parse((await kubectlEtcd(cluster, ['status', '-n', DNS, '-o', 'json'])).stdout) as { members: Array<{ pod: string; healthy: boolean; memberId?: string }> }).members).map((m) => [m.pod, m]));
    await waitFor('etcd-1 to fail', async () => !(await healthyOf())['etcd-1']!.healthy, 60_000);
    const dry = await kubectlEtcd(cluster, ['member', 'replace', 'etcd-1', '-n', DNS, '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stderr).toMatch(/has no shell\): one of docker\.io\/library\/busybox:1\.36 that moves the old data to \/var\/run\/etcd\/member\.pre-replace-/);
    const state = mkdtempSync(join(tmpdir(), 'replace-distroless-'));
    try {
      for (const point of [/adding member/, /to set the old data aside/, /to join as member/, /waiting until member/, /has caught up; deleting pod/, /to put the joined data in place/, /so that it starts on the joined data/]) {
        const run = startKubectlEtcd(cluster, state, ['member', 'replace', 'etcd-1', '-n', DNS, '--yes']);
        await run.until(point, 300_000);
        run.child.kill('SIGKILL');
        await run.done;
      }
      const last = await kubectlEtcd(cluster, ['member', 'replace', 'etcd-1', '-n', DNS, '--yes', '-o', 'json'], { timeoutMs: 600_000 });
      expect(last.code, last.stderr).toBe(0);
      const result = JSON.parse(last.stdout) as { oldId: string; newId: string; kept: string[] };
      expect(result.oldId).toBe(oldId);
      expect(result.kept).toEqual([expect.stringMatching(/^\/var\/run\/etcd\/member\.pre-replace-\d{8}T\d{6}Z$/)]);
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
    const st = await healthyOf();
    for (const p of D.pods) expect(st[p], p).toMatchObject({ healthy: true });
    const ids = await members(cluster, D);
    expect(ids['etcd-1']).not.toBe(oldId);
    expect(st['etcd-1']!.memberId).toBe(ids['etcd-1']);
    for (const [k, v] of Object.entries(keys)) expect((await etcdctlInPod(cluster, { ...D, pod: 'etcd-1' }, ['get', k, '--print-value-only', '--consistency=s'])).trim()).toBe(v);
    // One kept copy, and no work dir left on the volume.
    expect(readdirSync(volume).filter((n) => n.startsWith('member.pre-replace-') || n === 'kubectl-etcd-replace')).toEqual([expect.stringMatching(/^member\.pre-replace-/)]);
    ok(await cluster.kubectl(['delete', 'namespace', DNS, '--wait=false']));
  }, 900_000);

  it('replaces a member whose db file is corrupt, keeping its data dir aside', async () => {
    const oldId = (await members(cluster, t))['kube-etcd-2']!;
    const sentinel = await corruptDb(cluster, t, 'kube-etcd-2');
    await waitFor('kube-etcd-2 to fail', async () => !(await status(cluster))['kube-etcd-2']!.healthy, 60_000);
    const writer = startWriter(cluster, t, 'kube-etcd-1', '/writer2/');
    const r = await kubectlEtcd(cluster, ['member', 'replace', 'kube-etcd-2', '-n', NS, '--yes', '-o', 'json'], { timeoutMs: 600_000 });
    const tally = await writer.stop();
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as { oldId: string; newId: string; kept: string[] };
    expect(result.oldId).toBe(oldId);
    await expectReplaced(cluster, t, 'kube-etcd-2', oldId, before);
    const kept = result.kept.at(-1)!;
    const keptFiles = await shIn(cluster, t, 'kube-etcd-2', `cat ${kept}/kubectl-etcd-test-sentinel && test -s ${kept}/snap/db && echo db-kept`);
    expect(keptFiles.stdout).toBe(`${sentinel}\ndb-kept\n`);
    if (tally.failed) expect(Math.max(...tally.failedAt) - Math.min(...tally.failedAt), JSON.stringify(tally)).toBeLessThanOrEqual(5);
    const written = tally.writes - tally.failed;
    for (const p of PODS) await waitFor(`${p} to hold every written key`, async () => (await localKeys(cluster, t, p, '/writer2/')) >= written, 30_000);
    // The copies replaces keep are the restore's kept copies too: measured, and pruned on request.
    const plan = await kubectlEtcd(cluster, ['restore', '--prune-kept', '--keep', '0', '-n', NS, '--dry-run', '-o', 'json']);
    expect(plan.code, plan.stderr).toBe(0);
    const planned = (JSON.parse(plan.stdout) as { members: Array<{ name: string; delete: Array<{ name: string; bytes: number }> }> }).members.find((m) => m.name === 'kube-etcd-2')!;
    expect(planned.delete.map((c) => `${t.keptDir}/${c.name}`)).toContain(kept);
    const pruned = await kubectlEtcd(cluster, ['restore', '--prune-kept', '--keep', '0', '-n', NS, '--yes'], { timeoutMs: 300_000 });
    expect(pruned.code, pruned.stderr).toBe(0);
    expect((await shIn(cluster, t, 'kube-etcd-2', `ls -a ${t.keptDir}`)).stdout).not.toMatch(/member\.pre-replace-/);
    expect((await status(cluster))['kube-etcd-2']).toMatchObject({ healthy: true });
  }, 900_000);
});
