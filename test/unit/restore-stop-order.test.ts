import { describe, expect, it } from 'vitest';
import type { EtcdMember } from '../../src/etcd/topology.js';
import type { ContainerCommand } from '../../src/kube/exec.js';
import { leaderLast } from '../../src/restore/stop-order.js';

// Which member a restore stops last, against a fake of the exec seam answering as etcdctl does
// (uint64 IDs as JSON numbers). The 7 s a leader waits when stopped with its peers is measured on
// real etcd by `npm run bench` (restore breakdown, etcd-stop).

const member = (i: number): EtcdMember => ({
  pod: `kube-etcd-${i}`, namespace: 'uc1', container: 'kube-etcd', ordinal: i, name: `kube-etcd-${i}`,
  endpoint: 'https://127.0.0.1:2379', clientPort: 2379, peerUrl: `https://kube-etcd-${i}.kube-etcd:2380`, dataDir: '/var/lib/etcd',
  tls: {}, clientTlsEnabled: true, image: 'etcd:3.4',
  dataVolume: { kind: 'pvc', volumeName: 'data', claimName: `data-kube-etcd-${i}`, mountPath: '/var/lib/etcd' },
});
const ids = [0x1a, 0x2b, 0x3c];
const members = [member(2), member(0), member(1)];

function fake(leader: number | undefined, opts: { down?: number[]; moveFails?: boolean } = {}) {
  const calls: string[] = [];
  const run: ContainerCommand = async ({ pod }, argv) => {
    const i = Number(pod.slice(-1));
    const verb = argv.find((a) => !a.startsWith('-') && a !== 'etcdctl');
    calls.push(`${pod} ${argv.slice(argv.indexOf(verb!)).join(' ')}`);
    if (opts.down?.includes(i)) return { exitCode: 1, stdout: '', stderr: 'context deadline exceeded' };
    if (verb === 'endpoint') {
      return { exitCode: 0, stdout: `[{"Endpoint":"https://127.0.0.1:2379","Status":{"header":{"cluster_id":99,"member_id":${ids[i]},"revision":5},"leader":${leader === undefined ? 0 : ids[leader]},"raftTerm":2}}]`, stderr: '' };
    }
    return opts.moveFails ? { exitCode: 1, stdout: '', stderr: 'Error: etcdserver: request timed out' } : { exitCode: 0, stdout: 'Leadership transferred', stderr: '' };
  };
  return { run, calls };
}

describe('leaderLast', () => {
  it('moves leadership from another member onto the lowest ordinal, asking the leader', async () => {
    const f = fake(2);
    expect((await leaderLast(members, f.run))?.name).toBe('kube-etcd-0');
    expect(f.calls.filter((c) => c.includes('move-leader'))).toEqual(['kube-etcd-2 move-leader 1a']);
  });

  it('moves nothing when the lowest ordinal leads already', async () => {
    const f = fake(0);
    expect((await leaderLast(members, f.run))?.name).toBe('kube-etcd-0');
    expect(f.calls.filter((c) => c.includes('move-leader'))).toEqual([]);
  });

  it.each([
    ['no leader (quorum lost)', fake(undefined)],
    ['the lowest ordinal not answering', fake(1, { down: [0] })],
    ['the leader not answering', fake(1, { down: [1] })],
    ['a refused move', fake(1, { moveFails: true })],
  ])('gives undefined with %s: the members then stop together', async (_what, f) => {
    expect(await leaderLast(members, f.run)).toBeUndefined();
  });

  it('does nothing for one member', async () => {
    const f = fake(0);
    expect(await leaderLast([member(0)], f.run)).toBeUndefined();
    expect(f.calls).toEqual([]);
  });
});
