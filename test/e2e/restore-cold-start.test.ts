// Members that must all start again from nothing, as after every restore, with a readiness probe
// that needs quorum (`etcdctl endpoint health`) and one of two ordinary settings:
// - podManagementPolicy OrderedReady (the default; docs: concepts/workloads/controllers/statefulset
//   "OrderedReady Pod Management"): pod 1 is created only once pod 0 is Ready, which it never is
//   alone (`anthos:podManagementPolicy=OrderedReady`);
// - a headless Service without publishNotReadyAddresses (Service v1 reference): a member is in DNS
//   only while Ready, so members that are not Ready cannot reach each other
//   (`anthos:publishNotReadyAddresses=false`).
// First the naive runbook (scale to 0, scale back) is shown never bringing etcd back on each; then
// `kubectl etcd restore`, plain, killed and resumed, and killed and rolled back, starts the members
// held (the probe off the template under OrderedReady; the Service publishing not-ready members,
// since with peer TLS etcd admits a peer only when its certificate's DNS name resolves to its
// address), releases them once etcd is healthy, and leaves the same claims, the same settings and
// exactly the expected keys.
//
// Both settings share one cluster, and the Service one is shown on both etcd minors: etcd only
// moves forward (3.5 data is not opened by 3.4), and podManagementPolicy cannot be changed, so the
// StatefulSet is created again (its claims and data stay) between the parts:
// 1. OrderedReady on etcd 3.4 (the fixture): the naive runbook, then the product plain, --in-place,
//    killed + --resume and killed + --abort (etcdctl);
// 2. Parallel with the Service hiding not-ready members, still on 3.4: the naive runbook, then a
//    plain restore;
// 3. the same upgraded to 3.5 by a rolling update: the product plain, --in-place, killed + --resume
//    and killed + --abort (etcdutl).
// OrderedReady on 3.5 is not run again: how the members are held (part 1) and which tool restores
// (part 3) do not touch each other, and each is shown whole on its own part.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anthosEtcdImage } from '../sim/fixtures/anthos.js';
import { teardown, type SimCluster } from '../sim/harness.js';
import {
  A_KEYS, anthosAccess, backupThenDiverge, etcdctl, keysOn, kubectlEtcd, startKubectlEtcd, startRestoreCluster, waitClusterHealthy,
} from './restore-helpers.js';

const S = anthosAccess(3);
const NS = S.namespace;
const PROBE = 'jsonpath={.spec.template.spec.containers[0].readinessProbe.exec.command[-2:]}';

let cluster: SimCluster;
let work: string;
let state: string;

async function kubectl(args: string[]): Promise<string> {
  const r = await cluster.kubectl(['-n', NS, ...args]);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout.trim();
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 180_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** The etcd pods now: name and Ready, by name. */
async function etcdPods(): Promise<string[]> {
  const out = await kubectl(['get', 'pods', '-l', 'component=kube-etcd', '-o', 'jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{" "}{end}']);
  return out.split(' ').filter(Boolean).sort();
}

/** True once the set runs its template on every pod, all Ready. */
async function rolledOut(): Promise<boolean> {
  const sts = JSON.parse(await kubectl(['get', 'sts', 'kube-etcd', '-o', 'json'])) as { metadata: { generation?: number }; status?: Record<string, unknown> };
  const st = sts.status ?? {};
  // A status the controller wrote before the last change to the spec still says "rolled out" (CI saw
  // it: the probe put back, the old status read as done, and pod 0 deleted under the next exec).
  const observed = ((st['observedGeneration'] as number | undefined) ?? 0) >= (sts.metadata.generation ?? 1);
  return observed && st['updateRevision'] === st['currentRevision'] && st['updatedReplicas'] === 3 && st['readyReplicas'] === 3;
}

/** The runbook's way: scale etcd to 0, wait until its pods are gone, scale back to 3 and give it waitMs. */
async function naiveRestart(waitMs: number): Promise<void> {
  expect(await kubectl(['scale', 'statefulset', 'kube-etcd', '--replicas=0'])).toMatch(/scaled/);
  await waitFor('the etcd pods to be gone', async () => (await etcdPods()).length === 0);
  await kubectl(['scale', 'statefulset', 'kube-etcd', '--replicas=3']);
  await new Promise((r) => setTimeout(r, waitMs));
}

const claimUids = async () => kubectl(['get', 'pvc', '-l', 'component=kube-etcd', '-o', 'jsonpath={.items[*].metadata.uid}']);
const utilityPods = async () => kubectl(['get', 'pods', '-l', 'app.kubernetes.io/managed-by=kubectl-etcd', '-o', 'name']);


/** What a user checks after a restore or a roll-back: keys on every member, probes, settings, claims, pods. */
async function expectWhole(keys: string[], uids: string, settings: string): Promise<void> {
  await waitClusterHealthy(cluster, S);
  for (const pod of S.pods) expect(await keysOn(cluster, S, pod, '/test/'), pod).toEqual(keys);
  expect(await kubectl(['get', 'sts', 'kube-etcd', '-o', PROBE])).toBe('endpoint health');
  // Status settles a moment after the members do (a readiness probe may fail once under load).
  await waitFor('every pod to run the template, all Ready', rolledOut, 120_000);
  expect(await currentSettings()).toBe(settings);
  expect(await claimUids()).toBe(uids);
  expect(await utilityPods()).toBe('');
  expect(await etcdPods()).toEqual(S.pods.map((p) => `${p}=True`));
}

async function currentSettings(): Promise<string> {
  const policy = await kubectl(['get', 'sts', 'kube-etcd', '-o', 'jsonpath={.spec.podManagementPolicy}']);
  const publish = await kubectl(['get', 'svc', 'kube-etcd', '-o', 'jsonpath={.spec.publishNotReadyAddresses}']);
  return `${policy} publishNotReadyAddresses=${publish || 'false'}`;
}

/** The product's restore on the cluster: plain, then killed after the members started held, and resumed or rolled back. */
function productTests(settings: string, held: { tool: 'etcdctl' | 'etcdutl'; title: RegExp; release: RegExp; whileHeld: () => Promise<void>; prepare?: () => Promise<void>; plainOnly?: boolean }): void {
  it('restores exactly the backed-up keys on every member, held while they start and released once etcd is healthy', async () => {
    await held.prepare?.();
    const { snapshot } = await backupThenDiverge(cluster, S, { work, state }, 1);
    const uids = await claimUids();
    const r = await kubectlEtcd(cluster, state, ['restore', snapshot, '-n', NS, '--yes', '--no-safety-backup']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(held.title);
    expect(r.stderr).toMatch(held.release);
    expect(r.stderr).toMatch(new RegExp(`==> ${held.tool} snapshot restore into `));
    await expectWhole(A_KEYS, uids, settings);
  }, 420_000);
  if (held.plainOnly) return;

  it('--in-place (etcd never scaled; held right before its pods are deleted at once) restores exactly the backed-up keys and releases them', async () => {
    await held.prepare?.();
    const { snapshot } = await backupThenDiverge(cluster, S, { work, state }, 4);
    const uids = await claimUids();
    const r = await kubectlEtcd(cluster, state, ['restore', snapshot, '-n', NS, '--in-place', '--yes', '--no-safety-backup']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`${held.title.source}==> delete the pods of statefulset "kube-etcd" at once so they start on the restored data\\n`));
    await expectWhole(A_KEYS, uids, settings);
  }, 420_000);

  it.each([
    ['--resume', 'the backed-up keys'],
    ['--abort', 'the pre-restore keys'],
  ])('killed while the members start held, %s brings back %s and releases them', async (flag) => {
    await held.prepare?.();
    const { snapshot, before } = await backupThenDiverge(cluster, S, { work, state }, flag === '--resume' ? 2 : 3);
    const uids = await claimUids();
    const started = startKubectlEtcd(cluster, state, ['restore', snapshot, '-n', NS, '--yes', '--no-safety-backup']);
    await started.until(/==> scale statefulset "kube-etcd" back to 3/);
    started.child.kill('SIGKILL');
    expect((await started.done).code).toBe(137);
    // Held while the plugin is gone; the journal puts it back.
    await held.whileHeld();
    const r = await kubectlEtcd(cluster, state, ['restore', '-n', NS, flag, '--yes']);
    expect(r.code, r.stderr).toBe(0);
    await expectWhole(flag === '--resume' ? A_KEYS : before, uids, settings);
  }, 600_000);
}

/** The Service as `anthos:publishNotReadyAddresses=VALUE` leaves it. */
const publishNotReady = (value: boolean) => kubectl(['patch', 'svc', 'kube-etcd', '-p', JSON.stringify({ spec: { publishNotReadyAddresses: value } })]);

/** Every member's etcd minor, as `endpoint status --cluster` reports it. */
async function memberMinors(): Promise<string[]> {
  const status = JSON.parse(await etcdctl(cluster, S, 'kube-etcd-0', ['endpoint', 'status', '--cluster', '-w', 'json'])) as Array<{ Status: { version: string } }>;
  return status.map((m) => m.Status.version.replace(/\.\d+$/, ''));
}

/**
 * The StatefulSet created again as Parallel with the etcd image of `minor` (the same claims: the
 * members keep their data), its members Ready and rolled out, then the Service as the part needs it.
 */
async function recreateParallel(minor: '3.4' | '3.5', publish: boolean): Promise<void> {
  const sts = JSON.parse(await kubectl(['get', 'sts', 'kube-etcd', '-o', 'json'])) as { metadata: Record<string, unknown>; spec: Record<string, unknown>; status?: unknown };
  const { name, namespace, labels, annotations } = sts.metadata;
  const spec = structuredClone(sts.spec) as { template: { spec: { containers: Array<{ name: string; image: string }> } } };
  spec.template.spec.containers.find((c) => c.name === 'kube-etcd')!.image = anthosEtcdImage(minor);
  const manifest = { apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name, namespace, labels, annotations }, spec: { ...spec, podManagementPolicy: 'Parallel' } };
  await kubectl(['scale', 'statefulset', 'kube-etcd', '--replicas=0']);
  await waitFor('the etcd pods to be gone', async () => (await etcdPods()).length === 0);
  await kubectl(['delete', 'sts', 'kube-etcd', '--wait=true']);
  await publishNotReady(true);
  const created = await cluster.kubectl(['create', '-f', '-'], { input: JSON.stringify(manifest) });
  if (created.code !== 0) throw new Error(`re-creating statefulset "kube-etcd" failed: ${created.stderr}`);
  await waitClusterHealthy(cluster, S, 180_000);
  await waitFor('every pod to run the template, all Ready', rolledOut);
  await publishNotReady(publish);
  expect(await currentSettings()).toBe(`Parallel publishNotReadyAddresses=${publish}`);
  expect(await memberMinors()).toEqual([minor, minor, minor]);
}

/** The etcd 3.5 image rolled out over the members (RollingUpdate, one at a time), the Service then as the part needs it. */
async function upgradeTo35(publish: boolean): Promise<void> {
  await publishNotReady(true);
  await kubectl(['patch', 'sts', 'kube-etcd', '--type=strategic', '-p', JSON.stringify({ spec: { template: { spec: { containers: [{ name: 'kube-etcd', image: anthosEtcdImage('3.5') }] } } } })]);
  await waitFor('the rolling update to etcd 3.5', async () => (await rolledOut()) && (await etcdPods()).every((p) => p.endsWith('=True')), 240_000);
  await waitClusterHealthy(cluster, S, 180_000);
  await waitFor('every member to report etcd 3.5', async () => (await memberMinors().catch(() => [])).join(' ') === '3.5 3.5 3.5', 60_000);
  await publishNotReady(publish);
}

/** What the product says and holds under OrderedReady: the probe off while the members start. */
const ORDERED_HELD = {
  title: /==> while the members of statefulset "kube-etcd" start, have the readiness probe of container "kube-etcd" off, because its podManagementPolicy is OrderedReady \(pod 1 is created only once pod 0 is Ready\)\n/,
  release: /==> once etcd is healthy, put the readiness probe of statefulset "kube-etcd" back and wait until every member runs with it, Ready \(a rolling update, one member at a time\)\n/,
  whileHeld: async () => expect(await kubectl(['get', 'sts', 'kube-etcd', '-o', PROBE])).toBe(''),
};

/** What it says and holds under a Service hiding not-ready members; each round starts from the user's Service (not publishing), and the restore leaves it publishing. */
const SERVICE_HELD = {
  prepare: async () => { await publishNotReady(false); },
  title: /==> while the members of statefulset "kube-etcd" start, have Service "kube-etcd" publishing not-ready members, because its Service "kube-etcd" does not set publishNotReadyAddresses \(members are in DNS only while Ready\)\n/,
  release: /==> once etcd is healthy, leave Service "kube-etcd" publishing not-ready members \(set back to false, a member that restarts could never rejoin\)\n/,
  whileHeld: async () => expect(await kubectl(['get', 'svc', 'kube-etcd', '-o', 'jsonpath={.spec.publishNotReadyAddresses}'])).toBe('true'),
};

beforeAll(async () => {
  ({ cluster, work, state } = await startRestoreCluster(['anthos:podManagementPolicy=OrderedReady'], 'restore-cold-start'));
}, 600_000);
afterAll(() => teardown(cluster, work));

describe('podManagementPolicy OrderedReady with a readiness probe that needs quorum (etcd 3.4)', () => {
  it('the naive runbook (scale etcd to 0, then back up) starts pod 0 alone, never Ready, and podManagementPolicy cannot be changed', async () => {
    await naiveRestart(15_000);
    expect(await etcdPods()).toEqual(['kube-etcd-0=False']);
    const patch = await cluster.kubectl(['-n', NS, 'patch', 'sts', 'kube-etcd', '-p', '{"spec":{"podManagementPolicy":"Parallel"}}']);
    expect(patch.code).not.toBe(0);
    expect(patch.stderr).toMatch(/spec: Forbidden: updates to statefulset spec for fields other than 'replicas'/);
    // The manual way out: take the probe off, delete the stuck pod (the controller never replaces a
    // pod that is not Ready under OrderedReady), wait, put the probe back and wait for the rollout.
    const probe = await kubectl(['get', 'sts', 'kube-etcd', '-o', 'jsonpath={.spec.template.spec.containers[0].readinessProbe}']);
    await kubectl(['patch', 'sts', 'kube-etcd', '--type=json', '-p', '[{"op":"remove","path":"/spec/template/spec/containers/0/readinessProbe"}]']);
    await kubectl(['delete', 'pod', 'kube-etcd-0']);
    await waitClusterHealthy(cluster, S, 180_000);
    await kubectl(['patch', 'sts', 'kube-etcd', '--type=json', '-p', JSON.stringify([{ op: 'add', path: '/spec/template/spec/containers/0/readinessProbe', value: JSON.parse(probe) }])]);
    await waitFor('the rolling update that puts the probe back', rolledOut);
  }, 420_000);

  productTests('OrderedReady publishNotReadyAddresses=true', { tool: 'etcdctl', ...ORDERED_HELD });
});

describe('a headless Service without publishNotReadyAddresses and a readiness probe that needs quorum (etcd 3.4)', () => {
  beforeAll(() => recreateParallel('3.4', false), 420_000);

  it('the naive runbook (scale etcd to 0, then back up) starts every member, none of which ever finds the others', async () => {
    await naiveRestart(20_000);
    expect(await etcdPods()).toEqual(S.pods.map((p) => `${p}=False`));
    const hosts = await kubectl(['exec', 'kube-etcd-0', '-c', 'kube-etcd', '--', 'cat', '/etc/hosts']);
    expect(hosts).not.toMatch(/kube-etcd-1\.kube-etcd/);
    // The manual way out: publish not-ready members until etcd is healthy, then set it back.
    await publishNotReady(true);
    await waitClusterHealthy(cluster, S, 180_000);
    await waitFor('every member to be Ready', async () => (await etcdPods()).every((p) => p.endsWith('=True')));
    await publishNotReady(false);
  }, 420_000);

  productTests('Parallel publishNotReadyAddresses=true', { tool: 'etcdctl', ...SERVICE_HELD, plainOnly: true });
});

describe('a headless Service without publishNotReadyAddresses and a readiness probe that needs quorum (etcd 3.5)', () => {
  beforeAll(() => upgradeTo35(false), 420_000);

  productTests('Parallel publishNotReadyAddresses=true', { tool: 'etcdutl', ...SERVICE_HELD });
});
