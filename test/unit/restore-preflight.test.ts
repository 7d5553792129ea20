import { describe, expect, it } from 'vitest';
import type { EtcdTopology } from '../../src/etcd/topology.js';
import { preflight, type PreflightDeps } from '../../src/restore/preflight.js';
import { restoreMember } from './restore-support.js';

// Refusals that come before the first change, with fakes for what preflight reads.

const deps: PreflightDeps = {
  checkAccess: async () => [],
  nodeReady: async () => ({ ready: true }),
  run: async () => ({ exitCode: 0, stdout: '', stderr: '' }),
  claimCapacity: async () => undefined,
};

function topology(disasterRecovery: boolean): EtcdTopology {
  const members = [0, 1, 2].map((n) => restoreMember(n, { namespace: 'etcd', name: `etcd-${n}`, pod: `etcd-${n}`, startScripts: { kind: 'bitnami', disasterRecovery } }));
  return { namespace: 'etcd', workload: { kind: 'StatefulSet', name: 'etcd', replicas: 3 }, members, image: 'docker.io/bitnami/etcd:3.4.23' };
}

const snapshot = { path: 's.db', size: 1, sha256: 'ab', revision: 2, totalKey: 2, hasTrailer: true, liveKeys: 1 };

describe('preflight with Bitnami\'s start scripts', () => {
  it('refuses ETCD_DISASTER_RECOVERY=yes, even with --force: the script would restore its own snapshot over the restored data', async () => {
    const run = preflight({ topology: topology(true), etcdImage: 'docker.io/bitnami/etcd:3.4.23', snapshot, quiesce: [], pdbs: [], force: true }, deps);
    await expect(run).rejects.toThrow(/^statefulset "etcd" sets ETCD_DISASTER_RECOVERY=yes: its start script would restore its own newest snapshot from \/snapshots over the restored data of "etcd-0", "etcd-1", "etcd-2"$/);
    await expect(run).rejects.toMatchObject({ hint: expect.stringMatching(/disasterRecovery\.enabled=false/) });
  });

  it('goes on without it', async () => {
    await expect(preflight({ topology: topology(false), etcdImage: 'docker.io/bitnami/etcd:3.4.23', snapshot, quiesce: [], pdbs: [], force: false }, deps)).resolves.toBeDefined();
  });
});

describe('preflight with probes held while the members start', () => {
  const hold = { container: 'etcd', reasons: ['its podManagementPolicy is OrderedReady (pod 1 is created only once pod 0 is Ready)'], probes: { readinessProbe: { tcpSocket: { port: 1 } } }, updateStrategy: 'RollingUpdate' as const };
  it('refuses a rolling-update partition above 0, even with --force: the pods below it would start from the old template, probes and all', async () => {
    const run = preflight({ topology: topology(false), etcdImage: 'docker.io/bitnami/etcd:3.4.23', snapshot, quiesce: [], pdbs: [], force: true, coldStart: { ...hold, partition: 2 } }, deps);
    await expect(run).rejects.toThrow(/^statefulset "etcd" cannot start its members from nothing \(its podManagementPolicy is OrderedReady .*\), and its updateStrategy\.rollingUpdate\.partition 2 keeps pods below 2 on the old template/);
    await expect(run).rejects.toMatchObject({ hint: expect.stringMatching(/"partition":0/) });
  });

  it('goes on without a partition', async () => {
    await expect(preflight({ topology: topology(false), etcdImage: 'docker.io/bitnami/etcd:3.4.23', snapshot, quiesce: [], pdbs: [], force: false, coldStart: hold }, deps)).resolves.toBeDefined();
  });
});
