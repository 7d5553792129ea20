import { describe, expect, it } from 'vitest';
import { accessError, describeAccess } from '../../src/kube/access.js';
import { restoreAccessChecks, restoreBaseAccessChecks } from '../../src/restore/preflight.js';
import type { EtcdTopology } from '../../src/etcd/topology.js';

describe('accessError', () => {
  it('is undefined when nothing is denied', () => {
    expect(accessError([])).toBeUndefined();
  });

  it('names namespaced and cluster-scoped permissions apart, in one line', () => {
    const err = accessError([
      { verb: 'get', group: '', resource: 'pods', subresource: 'exec', namespace: 'uc1' },
      { verb: 'patch', group: 'apps', resource: 'statefulsets', subresource: 'scale', namespace: 'uc1' },
      { verb: 'get', group: '', resource: 'nodes', namespace: '' },
    ])!;
    expect(err.message).toBe('missing permission in namespace "uc1": get pods/exec, patch statefulsets.apps/scale; at cluster scope: get nodes');
    expect(err.message).not.toContain('\n');
  });

  it('a cluster-scoped permission alone', () => {
    expect(accessError([{ verb: 'get', group: '', resource: 'nodes', namespace: '' }])!.message).toBe('missing permission at cluster scope: get nodes');
  });
});

describe('restore permissions', () => {
  const workload = (whenScaled?: 'Delete' | 'Retain') => ({ workload: { kind: 'StatefulSet', name: 'etcd', ...(whenScaled ? { claimRetention: { whenScaled, whenDeleted: 'Retain' } } : {}) } as EtcdTopology['workload'] });

  it('the base set holds what every restore reads and writes, nodes at cluster scope', () => {
    const base = restoreBaseAccessChecks('etcd');
    const names = base.map(describeAccess);
    for (const want of ['get pods/exec', 'create pods/exec', 'create pods', 'delete pods', 'list configmaps', 'update configmaps', 'list statefulsets.apps', 'patch statefulsets.apps/scale', 'list deployments.apps', 'list poddisruptionbudgets.policy', 'get services', 'get persistentvolumeclaims', 'get nodes']) {
      expect(names).toContain(want);
    }
    expect(base.find((c) => c.resource === 'nodes')!.namespace).toBe('');
    expect(base.filter((c) => c.resource !== 'nodes').every((c) => c.namespace === 'etcd')).toBe(true);
  });

  it('adds patch on the StatefulSet only where the restore patches it', () => {
    const plain = restoreAccessChecks('etcd', workload(), [], []).map(describeAccess);
    expect(plain).toEqual([]);
    expect(restoreAccessChecks('etcd', workload('Delete'), [], []).map(describeAccess)).toEqual(['patch statefulsets.apps']);
    const cold = { container: 'etcd', reasons: [], probes: {}, service: 'etcd-headless', updateStrategy: 'RollingUpdate' as const };
    expect(restoreAccessChecks('etcd', workload(), [], [], cold as never).map(describeAccess)).toEqual(['patch statefulsets.apps', 'patch services']);
  });
});
