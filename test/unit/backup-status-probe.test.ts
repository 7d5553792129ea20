import { describe, expect, it } from 'vitest';
import { ForbiddenError } from '../../src/errors.js';
import { collectStatus, execStatusProbe } from '../../src/etcd/status.js';
import type { ContainerCommand } from '../../src/kube/exec.js';
import type { EtcdMember } from '../../src/etcd/topology.js';

const member = (pod: string): EtcdMember => ({
  pod, namespace: 'uc1', container: 'kube-etcd', name: pod, endpoint: 'https://127.0.0.1:2379', clientPort: 2379,
  peerUrl: `https://${pod}.kube-etcd:2380`, dataDir: '/var/lib/etcd', tls: {}, clientTlsEnabled: true, image: 'etcd',
});

/** A runner that fails every exec the way the kube seam does. */
const failing = (err: Error): ContainerCommand => async () => { throw err; };

describe('execStatusProbe', () => {
  it('a missing exec permission rejects the whole status (it says nothing about the members)', async () => {
    const denied = new ForbiddenError('user "viewer" cannot create "pods/exec" in namespace "uc1"', 'ask a cluster admin for pods/exec permission');
    await expect(collectStatus([member('kube-etcd-0'), member('kube-etcd-1')], execStatusProbe(failing(denied)))).rejects.toBe(denied);
  });

  it('any other exec failure is an unhealthy row carrying the reason', async () => {
    const rows = await collectStatus([member('kube-etcd-0')], execStatusProbe(failing(new Error('exec in pod "uc1/kube-etcd-0" failed\ncontainer not running'))));
    expect(rows).toEqual([expect.objectContaining({ pod: 'kube-etcd-0', healthy: false, error: 'container not running' })]);
  });
});
