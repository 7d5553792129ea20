import { describe, expect, it } from 'vitest';
import type { EtcdMember } from '../../src/etcd/topology.js';
import { ForbiddenError, NotFoundError, PluginError } from '../../src/errors.js';
import type { KubeContext } from '../../src/kube/client.js';
import { insideContainer, kubeRestoreCluster, nodeOfClaim } from '../../src/restore/cluster.js';
import { etcdRestoreVerifier } from '../../src/restore/verify.js';
import { utilityPodManifest } from '../../src/restore/manifests.js';
import { buildRestorePlan } from '../../src/restore/plan.js';

// The restore's cluster adapters against a small fake of the client's CoreV1Api: what they do with
// a pod they did not create, and with refusals that waiting cannot cure. Real API paths are
// covered by test/e2e/restore*.test.ts.

const member: EtcdMember = {
  pod: 'kube-etcd-0', namespace: 'uc1', container: 'kube-etcd', ordinal: 0, name: 'kube-etcd-0',
  endpoint: 'https://127.0.0.1:2379', clientPort: 2379, peerUrl: 'https://kube-etcd-0.kube-etcd:2380', dataDir: '/var/lib/etcd',
  tls: {}, clientTlsEnabled: true, image: 'etcd:3.4',
  dataVolume: { kind: 'pvc', volumeName: 'data', claimName: 'data-kube-etcd-0', mountPath: '/var/lib/etcd' },
};

/** An error as client-node throws it for an HTTP status. */
function apiException(code: number, message: string): Error {
  return Object.assign(new Error(`HTTP-Code: ${code}`), { code, body: JSON.stringify({ kind: 'Status', status: 'Failure', code, message }) });
}

function fakeKube(core: Record<string, (...args: never[]) => Promise<unknown>>): KubeContext {
  return { core } as unknown as KubeContext;
}

describe('createPodAndWait with a pod of the same name already there (S3)', () => {
  const { manifest } = utilityPodManifest({ member, image: 'etcd:3.4', stamp: '20260101T000000Z' });

  it.each([
    ['no labels at all', {}],
    ['another restore\'s stamp', { 'kubectl-etcd/restore': '20250101T000000Z', 'kubectl-etcd/member': 'kube-etcd-0' }],
    ['another member', { 'kubectl-etcd/restore': '20260101T000000Z', 'kubectl-etcd/member': 'kube-etcd-1' }],
  ])('refuses one with %s and neither deletes nor uses it', async (_what, labels) => {
    const calls: string[] = [];
    const kube = fakeKube({
      createNamespacedPod: async () => { calls.push('create'); throw apiException(409, 'pods "etcd-utility-0" already exists'); },
      readNamespacedPod: async () => { calls.push('read'); return { metadata: { name: 'etcd-utility-0', labels }, status: { phase: 'Failed' } }; },
      deleteNamespacedPod: async () => { calls.push('delete'); return {}; },
    });
    const err = await kubeRestoreCluster(kube, 'uc1').createPodAndWait(manifest).then(() => undefined, (e: unknown) => e as PluginError);
    expect(err).toBeInstanceOf(PluginError);
    expect(`${err!.message}; ${err!.hint}`).toBe(
      'pod "etcd-utility-0" already exists in namespace "uc1" and is not part of this restore; delete it (kubectl delete pod etcd-utility-0 -n uc1) and run `kubectl etcd restore --resume`',
    );
    expect(calls).toEqual(['create', 'read']);
  });
});

describe('admitPod with the name already taken', () => {
  const { manifest } = utilityPodManifest({ member, image: 'etcd:3.4', stamp: '20260101T000000Z' });
  const taken = (labels: Record<string, string>, calls: string[]) => fakeKube({
    createNamespacedPod: async () => { calls.push('create'); throw apiException(409, 'pods "etcd-utility-0" already exists'); },
    readNamespacedPod: async () => { calls.push('read'); return { metadata: { name: 'etcd-utility-0', uid: 'u1', labels }, status: { phase: 'Running' } }; },
    deleteNamespacedPod: async () => { calls.push('delete'); return {}; },
  });

  it('refuses someone else\'s pod before any change, and leaves it alone', async () => {
    const calls: string[] = [];
    const err = await kubeRestoreCluster(taken({ run: 'manual' }, calls), 'uc1').admitPod(manifest).then(() => undefined, (e: unknown) => e as PluginError);
    expect(`${err!.message}; ${err!.hint}`).toBe(
      'pod "etcd-utility-0" already exists in namespace "uc1" and is not part of this restore (the restore needs that name for a utility pod); delete it (kubectl delete pod etcd-utility-0 -n uc1) and restore again; nothing was changed',
    );
    expect(calls).toEqual(['create', 'read']);
  });

  it('admits this restore\'s own pod from an earlier attempt', async () => {
    const calls: string[] = [];
    await expect(kubeRestoreCluster(taken(manifest.metadata.labels as Record<string, string>, calls), 'uc1').admitPod(manifest)).resolves.toBeUndefined();
  });

  it('admits a member pod whose name its running member holds', async () => {
    const calls: string[] = [];
    const memberPod = { metadata: { name: 'kube-etcd-0', namespace: 'uc1', labels: { app: 'etcd' } } };
    await expect(kubeRestoreCluster(taken({ app: 'etcd' }, calls), 'uc1').admitPod(memberPod)).resolves.toBeUndefined();
    expect(calls).toEqual(['create']);
  });
});

describe('createPodAndWait owned by the journal ConfigMap', () => {
  it('creates the utility pod with an ownerReference to the ConfigMap, so deleting the journal collects it', async () => {
    const { manifest } = utilityPodManifest({ member, image: 'etcd:3.4', stamp: '20260101T000000Z' });
    const created: Array<{ metadata?: { ownerReferences?: unknown[] } }> = [];
    const kube = fakeKube({
      readNamespacedConfigMap: async () => ({ metadata: { name: 'kubectl-etcd-restore-journal-kube-etcd', uid: 'cm-uid' } }),
      // Refused after recording the body: what matters here is what was sent.
      createNamespacedPod: async (req: { body: { metadata?: { ownerReferences?: unknown[] } } }) => { created.push(req.body); throw apiException(403, 'pods is forbidden: stop here'); },
    } as never);
    await expect(kubeRestoreCluster(kube, 'uc1').createPodAndWait(manifest, { ownerConfigMap: 'kubectl-etcd-restore-journal-kube-etcd' })).rejects.toThrow();
    expect(created[0]?.metadata?.ownerReferences).toEqual([{ apiVersion: 'v1', kind: 'ConfigMap', name: 'kubectl-etcd-restore-journal-kube-etcd', uid: 'cm-uid' }]);
  });
});

describe('insideContainer (E3)', () => {
  const where = { namespace: 'uc1', pod: 'etcd-utility-0', container: 'etcd-utility' };

  it('throws a refused exec at once, naming the pod and the permission', async () => {
    let calls = 0;
    const exec = async () => { calls++; throw new ForbiddenError('user "u" cannot create "pods/exec" in namespace "uc1"', 'x'); };
    const err = await insideContainer(exec, where, 1500).then(() => undefined, (e: unknown) => e as PluginError);
    expect(err).toBeInstanceOf(ForbiddenError);
    expect(err!.message).toBe('cannot exec into utility pod "etcd-utility-0" in namespace "uc1": user "u" cannot create "pods/exec" in namespace "uc1"');
    expect(err!.hint).toMatch(/pods\/exec permission/);
    expect(calls).toBe(1);
  });

  it('throws at once when the pod is gone', async () => {
    const exec = async () => { throw new NotFoundError('pods "etcd-utility-0" not found', 'x'); };
    await expect(insideContainer(exec, where, 1500)).rejects.toThrow(/^utility pod "etcd-utility-0" in namespace "uc1" went away while starting/);
  });

  it('retries a container still starting, then succeeds', async () => {
    let calls = 0;
    const exec = async () => {
      calls++;
      if (calls === 1) throw new PluginError('exec in pod failed: no such file or directory');
      return calls === 2 ? { exitCode: 0, stdout: 'node-host\n', stderr: '' } : { exitCode: 0, stdout: 'etcd-utility-0\n', stderr: '' };
    };
    await insideContainer(exec, where, 30_000);
    expect(calls).toBe(3);
  });

  it('names the last failure when the container never answers', async () => {
    const exec = async () => ({ exitCode: 1, stdout: '', stderr: 'cat: /etc/hostname: No such file or directory\n' });
    await expect(insideContainer(exec, where, 0)).rejects.toThrow(
      'container "etcd-utility" of utility pod "etcd-utility-0" does not answer from inside the pod (cat /etc/hostname gave exit code 1: cat: /etc/hostname: No such file or directory)',
    );
  });
});

describe('nodeOfClaim (E4)', () => {
  const pv = { spec: { nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['node-1'] }] }] } } } };

  it('finds the node the local volume is pinned to', async () => {
    const kube = fakeKube({
      readNamespacedPersistentVolumeClaim: async () => ({ spec: { volumeName: 'pv-0' } }), readPersistentVolume: async () => pv,
      readNode: async () => ({ metadata: { name: 'node-1', labels: { 'kubernetes.io/hostname': 'node-1' } } }),
    });
    expect(await nodeOfClaim(kube, member)).toBe('node-1');
  });

  it('a hostname label that is not the node name: the node that carries it', async () => {
    const selectors: string[] = [];
    const kube = fakeKube({
      readNamespacedPersistentVolumeClaim: async () => ({ spec: { volumeName: 'pv-0' } }), readPersistentVolume: async () => pv,
      readNode: async () => { throw apiException(404, 'nodes "node-1" not found'); },
      listNode: async (req: { labelSelector: string }) => { selectors.push(req.labelSelector); return { items: [{ metadata: { name: 'gke-pool-1-abcd' } }] }; },
    });
    expect(await nodeOfClaim(kube, member)).toBe('gke-pool-1-abcd');
    expect(selectors).toEqual(['kubernetes.io/hostname=node-1']);
  });

  it('a claim that is gone leaves the node unknown', async () => {
    const kube = fakeKube({ readNamespacedPersistentVolumeClaim: async () => { throw apiException(404, 'persistentvolumeclaims "data-kube-etcd-0" not found'); } });
    expect(await nodeOfClaim(kube, member)).toBeUndefined();
  });

  it('a refusal is an error naming the member and the permission, not an unknown node', async () => {
    const kube = fakeKube({
      readNamespacedPersistentVolumeClaim: async () => ({ spec: { volumeName: 'pv-0' } }),
      readPersistentVolume: async () => { throw apiException(403, 'persistentvolumes "pv-0" is forbidden: User "u" cannot get resource "persistentvolumes" in API group "" at the cluster scope'); },
    });
    const err = await nodeOfClaim(kube, member).then(() => undefined, (e: unknown) => e as PluginError);
    expect(err).toBeInstanceOf(ForbiddenError);
    expect(err!.message).toMatch(/^cannot find the node of member "kube-etcd-0" \(its pod is gone\): user "u" cannot get "persistentvolumes"/);
    expect(err!.hint).toMatch(/persistentvolumes/);
  });
});

describe('etcdRestoreVerifier', () => {
  const plan = buildRestorePlan({
    topology: { namespace: 'uc1', workload: { kind: 'StatefulSet', name: 'kube-etcd', replicas: 1 }, members: [member], image: 'etcd:3.4', initialClusterToken: 't' },
    snapshot: { path: 's.db', size: 3, sha256: 'abc', revision: 5, totalKey: 5, hasTrailer: true },
    quiesce: [], pdbs: [], utilityImage: 'etcd:3.4', tool: { binary: 'etcdctl' }, stamp: 'S', inPlace: false,
  });

  it('retries a failed exec (a member restarting) and reports it as a problem when it never answers', async () => {
    let calls = 0;
    const runner = async () => { calls += 1; throw new Error('container not found ("kube-etcd")'); };
    const report = await etcdRestoreVerifier(runner, {}, 2500).verify(plan, { healthOnly: true });
    expect(report.ok).toBe(false);
    expect(report.problems.join(' ')).toMatch(/container not found/);
    expect(calls).toBeGreaterThan(1);
  });

  it('does not wait out a refusal: a Forbidden exec is thrown at once', async () => {
    let calls = 0;
    const runner = async () => { calls += 1; throw new ForbiddenError('pods "kube-etcd-0" is forbidden: cannot create pods/exec'); };
    await expect(etcdRestoreVerifier(runner, {}, 60_000).verify(plan)).rejects.toThrow(/forbidden/);
    expect(calls).toBe(1);
  });
});
