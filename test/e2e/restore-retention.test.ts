// A StatefulSet whose PVC retention policy says whenScaled: Delete (Kubernetes 1.27+ honours it by
// default; docs: concepts/workloads/controllers/statefulset "PersistentVolumeClaim retention"):
// scaling it to 0 makes each pod the owner of its claims, the garbage collector deletes them once
// the pods are gone, and the default StorageClass's reclaim policy Delete destroys the volumes with
// their data. The `single:whenScaled=Delete` fixture has exactly that. First the naive runbook
// (scale to 0, scale up) is shown losing every key on it; then `kubectl etcd restore`, plain,
// killed and resumed, and killed and rolled back, keeps the very same claims (same UIDs), brings
// back exactly the backed-up keys (or the pre-restore ones for --abort) and puts the policy back.
// On both etcd minors (a cluster each).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ETCD_MINORS } from '../sim/etcd-versions.js';
import { withFixtureOption } from '../sim/fixtures/index.js';
import { teardown, type SimCluster } from '../sim/harness.js';
import {
  A_KEYS, anthosAccess, backupThenDiverge, etcdctl, keysOn, kubectlEtcd, lsInPod, startKubectlEtcd, startRestoreCluster, waitClusterHealthy,
} from './restore-helpers.js';

const S = anthosAccess(1);
const NS = S.namespace;
const POD = S.pods[0]!;
const CLAIM = 'data-kube-etcd-0';

let cluster: SimCluster;
let work: string;
let state: string;

async function get(args: string[]): Promise<string> {
  const r = await cluster.kubectl(['-n', NS, 'get', ...args]);
  if (r.code !== 0) throw new Error(`kubectl get ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout.trim();
}

const claimUid = () => get(['pvc', CLAIM, '-o', 'jsonpath={.metadata.uid}']);
const whenScaled = () => get(['statefulset', 'kube-etcd', '-o', 'jsonpath={.spec.persistentVolumeClaimRetentionPolicy.whenScaled}']);

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}


describe.each(ETCD_MINORS)('etcd %s', (minor) => {
  beforeAll(async () => {
    ({ cluster, work, state } = await startRestoreCluster([withFixtureOption('single:whenScaled=Delete', 'etcd', minor)], `restore-retention-${minor}`));
  }, 600_000);

  afterAll(() => teardown(cluster, work));

  describe('the fixture is hostile', () => {
    it('the naive runbook (scale etcd to 0, then back up) deletes the claim, destroys its volume and loses every key', async () => {
      for (const k of A_KEYS) await etcdctl(cluster, S, POD, ['put', k, k]);
      const uid = await claimUid();
      const pv = await get(['pvc', CLAIM, '-o', 'jsonpath={.spec.volumeName}']);
      expect(await whenScaled()).toBe('Delete');
      expect((await cluster.kubectl(['-n', NS, 'scale', 'statefulset', 'kube-etcd', '--replicas=0'])).code).toBe(0);
      // The claim goes once its pod is gone (garbage collector, pvc-protection), then its volume (reclaim Delete).
      await waitFor(`claim ${CLAIM} (uid ${uid}) to be deleted`, async () => (await cluster.kubectl(['-n', NS, 'get', 'pvc', CLAIM, '-o', 'jsonpath={.metadata.uid}'])).stdout.trim() !== uid);
      await waitFor(`volume ${pv} to be deleted`, async () => (await cluster.kubectl(['get', 'pv', pv, '--ignore-not-found', '-o', 'name'])).stdout.trim() === '');
      expect((await cluster.kubectl(['-n', NS, 'scale', 'statefulset', 'kube-etcd', '--replicas=1'])).code).toBe(0);
      await waitClusterHealthy(cluster, S, 180_000);
      expect(await claimUid()).not.toBe(uid);
      expect(await keysOn(cluster, S, POD, '/test/')).toEqual([]);
    }, 300_000);
  });

  describe('kubectl etcd restore keeps the claims', () => {
    it('restores exactly the backed-up keys on the same claim, keeps the old data beside it and puts whenScaled: Delete back', async () => {
      const { snapshot } = await backupThenDiverge(cluster, S, { work, state }, 1);
      const uid = await claimUid();
      const r = await kubectlEtcd(cluster, state, ['restore', snapshot, '-n', NS, '--yes']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/==> set persistentVolumeClaimRetentionPolicy\.whenScaled of statefulset "kube-etcd" to Retain, so that scaling it to 0 keeps the member volumes\n/);
      expect(await claimUid()).toBe(uid);
      expect(await keysOn(cluster, S, POD, '/test/')).toEqual(A_KEYS);
      expect(await whenScaled()).toBe('Delete');
      expect((await lsInPod(cluster, S, POD, S.dataDir)).filter((f) => f.startsWith('member.pre-restore-'))).toHaveLength(1);
    }, 300_000);

    it.each([
      ['--resume', 'the backed-up keys'],
      ['--abort', 'the pre-restore keys'],
    ])('killed right after etcd was scaled to 0, %s keeps the same claim and brings back %s', async (flag, _what) => {
      const { snapshot, before } = await backupThenDiverge(cluster, S, { work, state }, flag === '--resume' ? 2 : 3);
      const uid = await claimUid();
      const started = startKubectlEtcd(cluster, state, ['restore', snapshot, '-n', NS, '--yes', '--no-safety-backup']);
      await started.until(/==> copy the snapshot to /);
      started.child.kill('SIGKILL');
      expect((await started.done).code).toBe(137);
      // etcd is down and the policy set aside: nothing deletes the claim while the plugin is gone.
      expect(await whenScaled()).toBe('Retain');
      await new Promise((res) => setTimeout(res, 3000));
      expect(await claimUid()).toBe(uid);
      const r = await kubectlEtcd(cluster, state, ['restore', '-n', NS, flag, '--yes']);
      expect(r.code, r.stderr).toBe(0);
      await waitClusterHealthy(cluster, S);
      expect(await keysOn(cluster, S, POD, '/test/')).toEqual(flag === '--resume' ? A_KEYS : before);
      expect(await claimUid()).toBe(uid);
      expect(await whenScaled()).toBe('Delete');
      expect((await cluster.kubectl(['-n', NS, 'get', 'pods', '-l', 'app.kubernetes.io/managed-by=kubectl-etcd', '-o', 'name'])).stdout.trim()).toBe('');
    }, 300_000);
  });
});
