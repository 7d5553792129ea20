import type { V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { discoverTopology, selectEtcdWorkload } from '../../src/etcd/discovery/index.js';
import { NotFoundError, UsageError, formatError } from '../../src/errors.js';
import { ANTHOS_OPTIONS, anthosManifests, placeholderAnthosCerts } from '../sim/fixtures/anthos.js';
import { BITNAMI_OPTIONS, bitnamiManifests, placeholderBitnamiCa } from '../sim/fixtures/bitnami.js';
import { KUBEADM_OPTIONS, kubeadmManifests } from '../sim/fixtures/kubeadm.js';
import { fixtureLister, listerOf, podsOf } from '../sim/fixtures/pods.js';

const anthos = anthosManifests(ANTHOS_OPTIONS, placeholderAnthosCerts());
const kubeadm = kubeadmManifests(KUBEADM_OPTIONS);
/** The bitnami release installed a second time into uc1, beside kube-etcd. */
const bitnamiInUc1 = bitnamiManifests({ ...BITNAMI_OPTIONS, namespace: 'uc1' }, placeholderBitnamiCa());
const statefulSets = (objs: object[]) => (objs as Array<{ kind: string }>).filter((o) => o.kind === 'StatefulSet') as V1StatefulSet[];

describe('selectEtcdWorkload', () => {
  it.each([
    { case: '--statefulset', sel: { namespace: 'uc1', statefulSet: 'kube-etcd' }, workload: 'kube-etcd', pods: 3 },
    { case: '-l selector', sel: { namespace: 'uc1', selector: 'component=kube-etcd' }, workload: 'kube-etcd', pods: 3 },
    { case: 'nothing but -n', sel: { namespace: 'uc1' }, workload: 'kube-etcd', pods: 3 },
    { case: '--pod (whole StatefulSet, pod in focus)', sel: { namespace: 'uc1', pod: 'kube-etcd-2' }, workload: 'kube-etcd', pods: 3, focusPod: 'kube-etcd-2' },
  ])('anthos by $case', async ({ sel, workload, pods, focusPod }) => {
    const chosen = await selectEtcdWorkload(fixtureLister(anthos), sel);
    expect(chosen.workload.name).toBe(workload);
    expect(chosen.pods.map((p) => p.metadata?.name)).toHaveLength(pods);
    expect(chosen.focusPod).toBe(focusPod);
  });

  it('static pods of kubeadm are one workload selected by component=etcd', async () => {
    const chosen = await selectEtcdWorkload(fixtureLister(kubeadm), { namespace: 'kube-system' });
    expect(chosen.workload).toEqual({ kind: 'Pods', name: 'component=etcd', selector: 'component=etcd', replicas: 3, staticPods: true, kubeadm: true });
    expect(chosen.pods.map((p) => p.metadata?.name)).toEqual(['etcd-node-1', 'etcd-node-2', 'etcd-node-3']);
  });

  it('static pods without kubeadm\'s annotation (another distribution\'s) are static but not kubeadm\'s: the backup does not judge them by its layout', async () => {
    const pods = podsOf(kubeadm).filter((p) => p.metadata?.labels?.['component'] === 'etcd').map((p) => {
      const q = structuredClone(p);
      delete q.metadata!.annotations!['kubeadm.kubernetes.io/etcd.advertise-client-urls'];
      return q;
    });
    const chosen = await selectEtcdWorkload(listerOf(pods, []), { namespace: 'kube-system' });
    expect(chosen.workload.staticPods).toBe(true);
    expect(chosen.workload.kubeadm).toBeUndefined();
  });

  it('pods are static (restore takes the kubeadm way) only when every one is a mirror pod: a bare pod with the same labels is not', async () => {
    const pods = podsOf(kubeadm).filter((p) => p.metadata?.labels?.['component'] === 'etcd');
    const bare = structuredClone(pods[1]!);
    delete bare.metadata!.annotations!['kubernetes.io/config.mirror'];
    bare.metadata!.ownerReferences = [];
    const chosen = await selectEtcdWorkload(listerOf([pods[0]!, bare, pods[2]!], []), { namespace: 'kube-system' });
    expect(chosen.workload.kind).toBe('Pods');
    expect(chosen.workload.staticPods).toBeUndefined();
  });

  it('a StatefulSet scaled to zero is read from its template, with PVC names per ordinal', async () => {
    const topology = await discoverTopology(listerOf([], statefulSets(anthos)), { namespace: 'uc1' });
    expect(topology.members.map((m) => [m.name, m.dataVolume?.kind === 'pvc' ? m.dataVolume.claimName : '', m.node])).toEqual([
      ['kube-etcd-0', 'data-kube-etcd-0', undefined],
      ['kube-etcd-1', 'data-kube-etcd-1', undefined],
      ['kube-etcd-2', 'data-kube-etcd-2', undefined],
    ]);
  });

  it('for restore, a member whose pod is gone (deleted, not re-created yet) is read from the template; without allOrdinals it is left out', async () => {
    const pods = podsOf(anthos).filter((p) => p.metadata?.name !== 'kube-etcd-1');
    const lister = listerOf(pods, statefulSets(anthos));
    expect((await discoverTopology(lister, { namespace: 'uc1' })).members.map((m) => m.name)).toEqual(['kube-etcd-0', 'kube-etcd-2']);
    const topology = await discoverTopology(lister, { namespace: 'uc1', allOrdinals: true });
    expect(topology.members.map((m) => [m.name, m.dataVolume?.kind === 'pvc' ? m.dataVolume.claimName : '', Boolean(m.node)])).toEqual([
      ['kube-etcd-0', 'data-kube-etcd-0', true],
      ['kube-etcd-1', 'data-kube-etcd-1', false],
      ['kube-etcd-2', 'data-kube-etcd-2', true],
    ]);
    expect(topology.podless).toEqual(['kube-etcd-1']);
    const named = await discoverTopology(lister, { namespace: 'uc1', statefulSet: 'kube-etcd', allOrdinals: true });
    expect(named.members.map((m) => m.name)).toEqual(['kube-etcd-0', 'kube-etcd-1', 'kube-etcd-2']);
  });

  it.each([
    {
      case: 'several etcd workloads in the namespace',
      lister: () => fixtureLister([...anthos, ...bitnamiInUc1]),
      sel: { namespace: 'uc1' },
      type: UsageError,
      message: 'error: found 2 etcd workloads in namespace "uc1": statefulset/kube-etcd, statefulset/etcd; pass --statefulset, --pod or -l to choose one',
    },
    {
      case: 'no etcd pods at all',
      lister: () => fixtureLister(anthos),
      sel: { namespace: 'default' },
      type: NotFoundError,
      message: 'error: no etcd pods found in namespace "default"; pass -n or --statefulset',
    },
    {
      case: 'an unknown StatefulSet',
      lister: () => fixtureLister(anthos),
      sel: { namespace: 'uc1', statefulSet: 'etcd-main' },
      type: NotFoundError,
      message: 'error: statefulset "etcd-main" not found in namespace "uc1"; pass -n or --statefulset',
    },
    {
      case: 'a StatefulSet that does not run etcd',
      lister: () => fixtureLister(anthos),
      sel: { namespace: 'uc1', statefulSet: 'kube-apiserver' },
      type: NotFoundError,
      message: 'error: statefulset "kube-apiserver" in namespace "uc1" does not run etcd; pass --statefulset with the etcd workload or --container',
    },
    {
      case: 'an unknown pod',
      lister: () => fixtureLister(anthos),
      sel: { namespace: 'uc1', pod: 'kube-etcd-7' },
      type: NotFoundError,
      message: 'error: pod "kube-etcd-7" not found in namespace "uc1"; pass -n or --pod',
    },
    {
      case: 'a selector matching nothing',
      lister: () => fixtureLister(anthos),
      sel: { namespace: 'uc1', selector: 'app=none' },
      type: NotFoundError,
      message: 'error: no etcd pods found in namespace "uc1" matching "app=none"; pass -n or --statefulset',
    },
    {
      case: 'two ways of choosing at once',
      lister: () => fixtureLister(anthos),
      sel: { namespace: 'uc1', pod: 'kube-etcd-0', statefulSet: 'kube-etcd' },
      type: UsageError,
      message: 'error: --statefulset, --pod and -l are mutually exclusive; pass only one of them',
    },
  ])('refuses $case with one line naming the next step', async ({ lister, sel, type, message }) => {
    const err = await selectEtcdWorkload(lister(), sel).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(type);
    expect(formatError(err)).toBe(message);
  });

  it('only pods owned by the StatefulSet are its members (a stray pod with the same labels is not)', async () => {
    const pods: V1Pod[] = podsOf(anthos);
    const stray = structuredClone(pods.find((p) => p.metadata?.name === 'kube-etcd-0')!);
    stray.metadata = { ...stray.metadata, name: 'kube-etcd-debug', ownerReferences: [] };
    const chosen = await selectEtcdWorkload(listerOf([...pods, stray], statefulSets(anthos)), { namespace: 'uc1', statefulSet: 'kube-etcd' });
    expect(chosen.pods.map((p) => p.metadata?.name)).toEqual(['kube-etcd-0', 'kube-etcd-1', 'kube-etcd-2']);
  });
});

describe('discoverTopology overrides', () => {
  it('explicit values replace discovered ones, for all members and per member', async () => {
    const topology = await discoverTopology(fixtureLister(anthos), { namespace: 'uc1' }, {
      all: { endpoint: 'http://127.0.0.1:32379', tls: { caFile: '/local/ca.crt' } },
      members: { 'kube-etcd-1': { dataDir: '/var/lib/etcd/alt', node: 'node-9' } },
      initialClusterToken: 'my-token',
      image: 'gcr.io/gke-on-prem-release/etcd-util:v3.4.23-0-gke.1',
    });
    expect(topology.members[0]).toMatchObject({
      endpoint: 'http://127.0.0.1:32379', clientPort: 32379, clientTlsEnabled: false,
      tls: { caFile: '/local/ca.crt', certFile: '/etcd.local.config/certificates/etcd.crt' },
      initialClusterToken: 'my-token', dataDir: '/var/lib/etcd',
    });
    expect(topology.members[1]).toMatchObject({ dataDir: '/var/lib/etcd/alt', node: 'node-9' });
    expect(topology.initialClusterToken).toBe('my-token');
    expect(topology.image).toBe('gcr.io/gke-on-prem-release/etcd-util:v3.4.23-0-gke.1');
  });
});
