import { describe, expect, it } from 'vitest';
import { restoredIds } from '../../src/etcd/ids.js';
import type { ContainerCommand } from '../../src/kube/exec.js';
import { buildRestorePlan } from '../../src/restore/plan.js';
import { etcdRestoreVerifier } from '../../src/restore/verify.js';
import { restoreMember } from './restore-support.js';

// A restore that did not take effect must fail verification. Keys, revision, health and the member
// list cannot tell: a swap that missed the data dir (a subPath mount, say) leaves etcd on old data
// that may hold as many keys at a higher revision. Each restore has its own cluster token, so the
// restored members have IDs no earlier data has; the verifier asks each member for its own.

describe('restoredIds: the IDs etcd gives a restored cluster', () => {
  it('match what etcd 3.4 `snapshot restore` logged for the same flags', () => {
    // etcdctl snapshot restore s.db --name a --initial-cluster a=https://a.x:2380,b=https://b.x:2380
    //   --initial-cluster-token tok-1 --initial-advertise-peer-urls https://a.x:2380 (etcd 3.4.23):
    //   "added member" cluster-id 8e8b70bf1b11c9ff, added-peer-id a6abb02f5abb3871 and 3af6567183079c24
    expect(restoredIds('a=https://a.x:2380,b=https://b.x:2380', 'tok-1')).toEqual({
      members: { a: 'a6abb02f5abb3871', b: '3af6567183079c24' }, clusterId: '8e8b70bf1b11c9ff',
    });
  });

  it('read a URL as etcd holds it (Go lowercases the scheme; etcd 3.4 logged the same IDs for HTTPS://a.x:2380)', () => {
    expect(restoredIds('a=HTTPS://a.x:2380,b=https://b.x:2380', 'tok-1')).toEqual(restoredIds('a=https://a.x:2380,b=https://b.x:2380', 'tok-1'));
  });

  it('change with the token, so a restore with its own token gives every member a new ID', () => {
    const ic = 'a=https://a.x:2380,b=https://b.x:2380';
    const old = restoredIds(ic, 'tok-1');
    const fresh = restoredIds(ic, 'tok-1-restore-20261203T205000Z');
    expect(fresh.clusterId).not.toBe(old.clusterId);
    expect(fresh.members['a']).not.toBe(old.members['a']);
    expect(fresh.members['b']).not.toBe(old.members['b']);
  });
});

describe('etcdRestoreVerifier: every member on this restore\'s data', () => {
  const members = [restoreMember(0), restoreMember(1)];
  const plan = buildRestorePlan({
    topology: { namespace: 'uc1', workload: { kind: 'StatefulSet', name: 'kube-etcd', replicas: 2 }, members, image: 'etcd:3.4', initialClusterToken: 'etcd-cluster-1' },
    snapshot: { path: 's.db', size: 3, sha256: 'abc', revision: 5, totalKey: 5, hasTrailer: true, liveKeys: 4 },
    quiesce: [], pdbs: [], utilityImage: 'etcd:3.4', tool: { binary: 'etcdctl' }, stamp: '20261203T205000Z', inPlace: false,
  });
  const restored = restoredIds(plan.initialCluster, plan.initialClusterToken);
  // The IDs the members had before: the same peer URLs, bootstrapped with the StatefulSet's token.
  const before = restoredIds(plan.initialCluster, 'etcd-cluster-1');

  /** etcdctl in each member pod answering as a healthy cluster on the data with these IDs, 4 keys at revision 5. */
  function cluster(ids: Record<string, typeof restored>): ContainerCommand {
    const dec = (hex: string) => BigInt(`0x${hex}`).toString(10);
    return async (target, argv) => {
      const mine = ids[target.pod]!;
      const name = target.pod;
      const leader = mine.members['kube-etcd-0']!;
      const ok = (stdout: string) => ({ exitCode: 0, stdout, stderr: '' });
      const cmd = argv.slice(argv.indexOf('etcdctl') + 1).filter((a) => !a.startsWith('--')).join(' ');
      if (cmd.startsWith('endpoint status')) {
        return ok(`[{"Endpoint":"x","Status":{"header":{"cluster_id":${dec(mine.clusterId)},"member_id":${dec(mine.members[name]!)},"revision":5},"leader":${dec(leader)},"version":"3.4.23"}}]`);
      }
      if (cmd.startsWith('endpoint health')) return ok('[{"endpoint":"x","health":true}]');
      if (cmd.startsWith('alarm list')) return ok('');
      if (cmd.startsWith('member list')) {
        return ok(JSON.stringify({ members: members.map((m) => ({ ID: 1, name: m.name, peerURLs: [m.peerUrl] })) }));
      }
      if (cmd.startsWith('get')) return ok('{"count":4}');
      throw new Error(`unexpected command ${argv.join(' ')}`);
    };
  }

  it('passes when every member runs the restored data', async () => {
    const report = await etcdRestoreVerifier(cluster({ 'kube-etcd-0': restored, 'kube-etcd-1': restored }), { liveKeys: 4 }, 0).verify(plan);
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
  });

  it.each([
    ['no member was swapped (the swap missed every data dir): keys, revision and health are all as expected', ['kube-etcd-0', 'kube-etcd-1']],
    ['one member still runs its old data', ['kube-etcd-1']],
  ])('fails when %s', async (_case, stale) => {
    const ids = Object.fromEntries(members.map((m) => [m.pod, stale.includes(m.pod) ? before : restored]));
    let statusCalls = 0;
    const run = cluster(ids);
    const counting: ContainerCommand = async (target, argv) => {
      if (argv.includes('status')) statusCalls += 1;
      return run(target, argv);
    };
    // Other IDs are final: the verifier does not wait out its minute for the cluster to settle.
    const report = await etcdRestoreVerifier(counting, { liveKeys: 4 }, 60_000).verify(plan);
    expect(statusCalls).toBe(members.length);
    expect(report.ok).toBe(false);
    const notRestored = report.problems.filter((p) => /runs data this restore did not write/.test(p));
    expect(notRestored).toHaveLength(stale.length);
    // With every member on the old data, nothing else is wrong: a check of keys and health passes it.
    if (stale.length === members.length) expect(report.problems).toEqual(notRestored);
    for (const pod of stale) {
      expect(notRestored.join('\n')).toContain(`member "${pod}" runs data this restore did not write (member ID ${before.members[pod]}, cluster ID ${before.clusterId}; the restored data has ${restored.members[pod]}, cluster ${restored.clusterId})`);
    }
  });

  it('a health-only check (after --abort: the old data is back on purpose) does not ask for the restored IDs', async () => {
    const report = await etcdRestoreVerifier(cluster({ 'kube-etcd-0': before, 'kube-etcd-1': before }), {}, 0).verify(plan, { healthOnly: true });
    expect(report.problems).toEqual([]);
  });
});
