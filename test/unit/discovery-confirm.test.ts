import { describe, expect, it } from 'vitest';
import { confirmMembers, discoverTopology, parseMemberList, type LiveMember } from '../../src/etcd/discovery/index.js';
import { ANTHOS_OPTIONS, anthosManifests, placeholderAnthosCerts } from '../sim/fixtures/anthos.js';
import { fixtureLister } from '../sim/fixtures/pods.js';

const topology = await discoverTopology(fixtureLister(anthosManifests(ANTHOS_OPTIONS, placeholderAnthosCerts())), { namespace: 'uc1' });
const live = (i: number, over: Partial<LiveMember> = {}): LiveMember => ({
  id: `${i}a${i}b`, name: `kube-etcd-${i}`, peerURLs: [`https://kube-etcd-${i}.kube-etcd:2380`], clientURLs: [`https://kube-etcd-${i}.kube-etcd:2379`], ...over,
});

describe('confirmMembers', () => {
  it('confirms every member and records its ID', () => {
    const result = confirmMembers(topology, [live(2), live(0), live(1)]);
    expect(result.ok).toBe(true);
    expect(result.outcomes.map((o) => o.kind)).toEqual(['confirmed', 'confirmed', 'confirmed']);
    expect(result.topology.members.map((m) => m.memberId)).toEqual(['0a0b', '1a1b', '2a2b']);
  });

  it.each([
    {
      case: 'a member whose peer URL differs',
      list: [live(0), live(1, { peerURLs: ['https://10.88.0.9:2380'] }), live(2)],
      outcome: { kind: 'peer-url-mismatch', pod: 'kube-etcd-1', name: 'kube-etcd-1', memberId: '1a1b', expected: 'https://kube-etcd-1.kube-etcd:2380', actual: ['https://10.88.0.9:2380'] },
    },
    {
      case: 'a member missing from the live cluster',
      list: [live(0), live(1)],
      outcome: { kind: 'missing-from-cluster', pod: 'kube-etcd-2', name: 'kube-etcd-2' },
    },
    {
      case: 'a live member no pod accounts for',
      list: [live(0), live(1), live(2), live(3)],
      outcome: { kind: 'unknown-member', memberId: '3a3b', name: 'kube-etcd-3', peerURLs: ['https://kube-etcd-3.kube-etcd:2380'] },
    },
    {
      case: 'a member added but never started (empty name), matched by peer URL',
      list: [live(0), live(1), live(2, { name: '' })],
      outcome: { kind: 'unstarted', memberId: '2a2b', peerURLs: ['https://kube-etcd-2.kube-etcd:2380'] },
    },
    {
      case: 'a member running under another name at the same peer URL',
      list: [live(0), live(1), live(2, { name: 'old-2' })],
      outcome: { kind: 'name-mismatch', pod: 'kube-etcd-2', name: 'kube-etcd-2', memberId: '2a2b', liveName: 'old-2' },
    },
  ])('reports $case as a named outcome', ({ list, outcome }) => {
    const result = confirmMembers(topology, list);
    expect(result.ok).toBe(false);
    expect(result.outcomes).toContainEqual(outcome);
    expect(result.outcomes.filter((o) => o.kind !== 'confirmed')).toHaveLength(1);
  });

  it('peer URLs compare without case and default ports mattering', () => {
    const result = confirmMembers(topology, [live(0, { name: '', peerURLs: ['https://KUBE-ETCD-0.kube-etcd:2380/'] }), live(1), live(2)]);
    expect(result.outcomes[0]).toEqual({ kind: 'unstarted', memberId: '0a0b', peerURLs: ['https://KUBE-ETCD-0.kube-etcd:2380/'] });
  });
});

describe('parseMemberList', () => {
  it('keeps 64-bit IDs exact (as hex, like etcdctl tables)', () => {
    // Output of etcdctl 3.4 `member list -w json`: IDs beyond 2^53 as bare numbers.
    const text = '{"header":{"cluster_id":14398420247917935680,"member_id":1654818993570247861,"raft_term":2},"members":[{"ID":1654818993570247861,"name":"a","peerURLs":["https://127.0.0.1:23801"],"clientURLs":["https://127.0.0.1:23791"]},{"ID":17293822569102704640,"peerURLs":["https://127.0.0.1:23802"],"isLearner":true}]}';
    expect(parseMemberList(text)).toEqual([
      { id: '16f7191b6752f4b5', name: 'a', peerURLs: ['https://127.0.0.1:23801'], clientURLs: ['https://127.0.0.1:23791'] },
      { id: 'f000000000000000', name: '', peerURLs: ['https://127.0.0.1:23802'], clientURLs: [], isLearner: true },
    ]);
  });
});
