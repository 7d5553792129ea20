// Member claims with access mode ReadWriteOncePod (the `single` fixture with
// claimAccessMode=ReadWriteOncePod): one pod at a time may use such a claim
// (https://kubernetes.io/docs/concepts/storage/persistent-volumes/#access-modes), so a utility pod
// beside the running member stays Pending — shown first, as the naive restore (utility pods
// started while etcd runs) would meet it. The restore starts its utility pods once etcd is
// stopped; --in-place, which needs them beside the running members, is refused in preflight
// before any change.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { teardown, type SimCluster } from '../sim/harness.js';
import {
  A_KEYS, anthosAccess, backupThenDiverge, keysOn, kubectlEtcd, refusedBeforeChange, startRestoreCluster, waitClusterHealthy,
} from './restore-helpers.js';

const S = anthosAccess(1);
let cluster: SimCluster;
let work: string;
let state: string;

beforeAll(async () => {
  ({ cluster, work, state } = await startRestoreCluster(['single:claimAccessMode=ReadWriteOncePod'], 'restore-rwop'));
}, 600_000);

afterAll(() => teardown(cluster, work));

describe('member claims that are ReadWriteOncePod', () => {
  it('the naive way: a utility pod on the claim beside the running member stays Pending, with the scheduler\'s reason', async () => {
    const { snapshot } = await backupThenDiverge(cluster, S, { work, state }, 1);
    const plan = await kubectlEtcd(cluster, state, ['restore', snapshot, '-n', 'uc1', '--dry-run', '-o', 'json']);
    expect(plan.code, plan.stderr).toBe(0);
    const pod = (JSON.parse(plan.stdout) as { members: Array<{ utilityPod: { metadata: Record<string, unknown> } }> }).members[0]!.utilityPod;
    pod.metadata = { name: 'naive-utility', namespace: 'uc1' };
    expect((await cluster.kubectl(['create', '-f', '-'], { input: JSON.stringify(pod) })).code).toBe(0);
    try {
      await expect.poll(async () => (await cluster.kubectl(['-n', 'uc1', 'get', 'pod', 'naive-utility', '-o', 'jsonpath={.status.conditions[?(@.type=="PodScheduled")].message}'])).stdout, { timeout: 30_000, interval: 500 })
        .toMatch(/node has pod using PersistentVolumeClaim with the same name and ReadWriteOncePod access mode/);
    } finally {
      await cluster.kubectl(['-n', 'uc1', 'delete', 'pod', 'naive-utility', '--grace-period=0', '--force', '--wait=true']);
    }
  });

  it('--in-place is refused in preflight, before any change, in one line with the way that works', async () => {
    const { snapshot } = await backupThenDiverge(cluster, S, { work, state }, 2);
    const line = await refusedBeforeChange(cluster, state, ['restore', snapshot, '-n', 'uc1', '--in-place', '--yes', '--no-safety-backup']);
    expect(line).toBe('error: --in-place runs a utility pod beside each running member on its claim, and "data-kube-etcd-0" is ReadWriteOncePod (one pod at a time: the utility pod would stay Pending); restore without --in-place: etcd is scaled to 0 first, then the utility pods mount the claims; nothing was changed');
  });

  it('restore starts the utility pods once etcd is stopped, and brings back exactly the backed-up keys', async () => {
    const { snapshot } = await backupThenDiverge(cluster, S, { work, state }, 3);
    const r = await kubectlEtcd(cluster, state, ['restore', snapshot, '-n', 'uc1', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    const stop = r.stderr.indexOf('==> scale statefulset "kube-etcd" to 0');
    const utility = r.stderr.indexOf('==> start utility pod "etcd-utility-0"');
    expect(stop, r.stderr).toBeGreaterThan(-1);
    expect(utility).toBeGreaterThan(stop);
    await waitClusterHealthy(cluster, S);
    expect(await keysOn(cluster, S, 'kube-etcd-0', '/test/')).toEqual(A_KEYS);
  }, 300_000);
});
