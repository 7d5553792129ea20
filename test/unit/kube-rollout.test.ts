import type { AppsV1Api, CoreV1Api, V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { setContainerProbes, waitRolledOut } from '../../src/kube/workloads.js';

// A StatefulSet with updateStrategy OnDelete, as its controller keeps it: a deleted pod comes back
// on the update revision a moment later (not Ready at first), status counts the updated pods.
function onDeleteSet(opts: { notReady?: string } = {}) {
  const deleted: string[] = [];
  const pods = new Map<string, { rev: string; ready: boolean }>([0, 1, 2].map((i) => [`kube-etcd-${i}`, { rev: 'old', ready: `kube-etcd-${i}` !== opts.notReady }]));
  let ticks = 0;
  const tick = () => {
    // Each read of the set is a moment later: recreated pods become Ready.
    ticks++;
    for (const p of pods.values()) if (p.rev === 'new') p.ready = true;
  };
  const set = (): V1StatefulSet => ({
    metadata: { name: 'kube-etcd', namespace: 'uc1', generation: 2 },
    spec: { replicas: 3, selector: { matchLabels: { app: 'etcd' } }, updateStrategy: { type: 'OnDelete' }, serviceName: 'kube-etcd', template: {} },
    status: {
      replicas: 3, observedGeneration: 2, currentRevision: 'old', updateRevision: 'new',
      updatedReplicas: [...pods.values()].filter((p) => p.rev === 'new').length,
      readyReplicas: [...pods.values()].filter((p) => p.ready).length,
    },
  });
  const apps = { readNamespacedStatefulSet: async () => { tick(); return set(); } } as unknown as AppsV1Api;
  const core = {
    listNamespacedPod: async () => ({
      items: [...pods.entries()].map(([name, p]): V1Pod => ({
        metadata: { name, labels: { 'controller-revision-hash': p.rev }, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'kube-etcd', uid: 'u' }] },
        status: { conditions: [{ type: 'Ready', status: p.ready ? 'True' : 'False' }] },
      })),
    }),
    deleteNamespacedPod: async ({ name }: { name: string }) => {
      deleted.push(name);
      pods.set(name, { rev: 'new', ready: false });
      return { metadata: { uid: name } };
    },
  } as unknown as CoreV1Api;
  return { kube: { apps, core }, deleted, ticks: () => ticks };
}

describe('waitRolledOut under OnDelete', () => {
  it('replaces the pods itself, highest ordinal first, one at a time, each once every pod is Ready', async () => {
    const s = onDeleteSet();
    await waitRolledOut(s.kube, { name: 'kube-etcd', namespace: 'uc1' }, 30_000);
    expect(s.deleted).toEqual(['kube-etcd-2', 'kube-etcd-1', 'kube-etcd-0']);
  }, 40_000);

  it('deletes nothing while a member is not Ready (that would cost quorum), and times out naming the counts', async () => {
    const s = onDeleteSet({ notReady: 'kube-etcd-0' });
    await expect(waitRolledOut(s.kube, { name: 'kube-etcd', namespace: 'uc1' }, 1200)).rejects.toThrow(/timed out after 1s waiting for statefulset "kube-etcd" in namespace "uc1" to run its pod template on every pod, all Ready \(0 of 3 updated, 2 Ready\)/);
    expect(s.deleted).toEqual([]);
  });
});

describe('setContainerProbes', () => {
  function withTemplate(container: Record<string, unknown>) {
    const patches: unknown[] = [];
    const apps = {
      readNamespacedStatefulSet: async () => ({ spec: { template: { spec: { containers: [{ name: 'sidecar' }, container] } } } }),
      patchNamespacedStatefulSet: async ({ body }: { body: unknown }) => { patches.push(body); return {}; },
    } as unknown as AppsV1Api;
    return { kube: { apps }, patches };
  }
  const probe = { exec: { command: ['etcdctl', 'endpoint', 'health'] } };

  it('removes only the probes named null, testing the container name at its index first', async () => {
    const t = withTemplate({ name: 'etcd', readinessProbe: probe, startupProbe: { tcpSocket: { port: 2379 } } });
    expect(await setContainerProbes(t.kube, { name: 'kube-etcd', namespace: 'uc1' }, 'etcd', { readinessProbe: null })).toBe(true);
    expect(t.patches).toEqual([[
      { op: 'test', path: '/spec/template/spec/containers/1/name', value: 'etcd' },
      { op: 'remove', path: '/spec/template/spec/containers/1/readinessProbe' },
    ]]);
  });

  it('puts a probe back, and changes nothing when the template already has it (idempotent)', async () => {
    const off = withTemplate({ name: 'etcd' });
    await setContainerProbes(off.kube, { name: 'kube-etcd', namespace: 'uc1' }, 'etcd', { readinessProbe: probe });
    expect(off.patches).toEqual([[
      { op: 'test', path: '/spec/template/spec/containers/1/name', value: 'etcd' },
      { op: 'add', path: '/spec/template/spec/containers/1/readinessProbe', value: probe },
    ]]);
    const on = withTemplate({ name: 'etcd', readinessProbe: probe });
    expect(await setContainerProbes(on.kube, { name: 'kube-etcd', namespace: 'uc1' }, 'etcd', { readinessProbe: probe })).toBe(false);
    expect(on.patches).toEqual([]);
  });

  it('a container that is gone is one line with a hint', async () => {
    const t = withTemplate({ name: 'other' });
    await expect(setContainerProbes(t.kube, { name: 'kube-etcd', namespace: 'uc1' }, 'etcd', { readinessProbe: null })).rejects.toThrow('statefulset "kube-etcd" in namespace "uc1" has no container "etcd" any more');
  });
});
