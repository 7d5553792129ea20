import { describe, expect, it } from 'vitest';
import { discoverTopology } from '../../src/etcd/discovery/index.js';
import { ANTHOS_OPTIONS, SINGLE_OPTIONS, anthosManifests, placeholderAnthosCerts } from '../sim/fixtures/anthos.js';
import { BITNAMI_OPTIONS, bitnamiManifests, placeholderBitnamiCa } from '../sim/fixtures/bitnami.js';
import { KUBEADM_OPTIONS, kubeadmManifests } from '../sim/fixtures/kubeadm.js';
import { fixtureLister } from '../sim/fixtures/pods.js';

const anthosCluster = 'kube-etcd-0=https://kube-etcd-0.kube-etcd:2380,kube-etcd-1=https://kube-etcd-1.kube-etcd:2380,kube-etcd-2=https://kube-etcd-2.kube-etcd:2380';
const bitnamiHost = (i: number) => `etcd-${i}.etcd-headless.etcd.svc.cluster.local`;
// kubeadm's static pods name the node's IP (node-1 the top of the default pod CIDR, then down: test/sim/nodeaddr.ts).
const kubeadmHost = (n: number) => `10.88.255.${255 - n}`;
const certs = '/etcd.local.config/certificates';

// Pods are generated from the fixtures' own manifests, so fixture and discovery cannot drift apart.
const cases = [
  {
    fixture: 'anthos',
    objects: anthosManifests(ANTHOS_OPTIONS, placeholderAnthosCerts()),
    namespace: 'uc1',
    workload: { kind: 'StatefulSet', name: 'kube-etcd', selector: 'component=kube-etcd', replicas: 3 },
    token: 'etcd-cluster-1',
    image: 'gcr.io/gke-on-prem-release/etcd:v3.4.23-0-gke.1',
    member: {
      pod: 'kube-etcd-1', container: 'kube-etcd', ordinal: 1, name: 'kube-etcd-1',
      endpoint: 'https://127.0.0.1:2379', clientPort: 2379, clientTlsEnabled: true,
      peerUrl: 'https://kube-etcd-1.kube-etcd:2380', dataDir: '/var/lib/etcd',
      tls: { caFile: `${certs}/etcdCA.crt`, certFile: `${certs}/etcd.crt`, keyFile: `${certs}/etcd.key` },
      initialCluster: anthosCluster, initialClusterToken: 'etcd-cluster-1',
      dataVolume: { kind: 'pvc', volumeName: 'data', claimName: 'data-kube-etcd-1', mountPath: '/var/lib/etcd' },
      // the Secret volume holds every key under its own name
      secretFiles: Object.fromEntries(['etcdCA.crt', 'etcd.crt', 'etcd.key'].map((k) => [`${certs}/${k}`, [{ secretName: 'kube-etcd-certs', key: k }]])),
    },
  },
  {
    fixture: 'single',
    objects: anthosManifests(SINGLE_OPTIONS, placeholderAnthosCerts()),
    namespace: 'uc1',
    workload: { kind: 'StatefulSet', name: 'kube-etcd', selector: 'component=kube-etcd', replicas: 1 },
    token: 'etcd-cluster-1',
    image: 'gcr.io/gke-on-prem-release/etcd:v3.4.23-0-gke.1',
    member: {
      pod: 'kube-etcd-0', ordinal: 0, name: 'kube-etcd-0', endpoint: 'https://127.0.0.1:2379',
      peerUrl: 'https://kube-etcd-0.kube-etcd:2380', initialCluster: 'kube-etcd-0=https://kube-etcd-0.kube-etcd:2380',
      dataVolume: { kind: 'pvc', volumeName: 'data', claimName: 'data-kube-etcd-0', mountPath: '/var/lib/etcd' },
    },
  },
  {
    fixture: 'bitnami',
    objects: bitnamiManifests(BITNAMI_OPTIONS, placeholderBitnamiCa()),
    namespace: 'etcd',
    workload: { kind: 'StatefulSet', name: 'etcd', replicas: 3 },
    token: 'etcd-cluster-k8s',
    image: 'docker.io/bitnami/etcd:3.4.23-debian-11-r0',
    member: {
      pod: 'etcd-2', container: 'etcd', ordinal: 2, name: 'etcd-2',
      endpoint: 'http://127.0.0.1:2379', clientPort: 2379, clientTlsEnabled: false, tls: {},
      peerUrl: `http://${bitnamiHost(2)}:2380`, dataDir: '/bitnami/etcd/data',
      initialCluster: [0, 1, 2].map((i) => `etcd-${i}=http://${bitnamiHost(i)}:2380`).join(','),
      dataVolume: { kind: 'pvc', volumeName: 'data', claimName: 'data-etcd-2', mountPath: '/bitnami/etcd' },
      runAsUser: 1001, fsGroup: 1001,
      // The chart's preStop hook and the image's start scripts, which act on the data dir.
      preStop: ['/opt/bitnami/scripts/etcd/prestop.sh'], startScripts: { kind: 'bitnami', disasterRecovery: false },
    },
  },
  {
    fixture: 'kubeadm',
    objects: kubeadmManifests(KUBEADM_OPTIONS),
    namespace: 'kube-system',
    workload: { kind: 'Pods', name: 'component=etcd', selector: 'component=etcd', replicas: 3 },
    token: 'etcd-cluster',
    image: 'registry.k8s.io/etcd:3.4.23-0',
    member: {
      pod: 'etcd-node-2', container: 'etcd', node: 'node-2', name: 'node-2',
      endpoint: 'https://127.0.0.1:2379', clientTlsEnabled: true,
      peerUrl: `https://${kubeadmHost(2)}:2380`, dataDir: '/var/lib/etcd',
      tls: { caFile: '/etc/kubernetes/pki/etcd/ca.crt', certFile: '/etc/kubernetes/pki/etcd/server.crt', keyFile: '/etc/kubernetes/pki/etcd/server.key' },
      initialCluster: [1, 2, 3].map((n) => `node-${n}=https://${kubeadmHost(n)}:2380`).join(','),
      initialClusterToken: 'etcd-cluster',
      dataVolume: { kind: 'hostPath', volumeName: 'etcd-data', hostPath: '/var/lib/etcd', mountPath: '/var/lib/etcd' },
    },
  },
];

describe('discovery on the fixtures, with only a namespace', () => {
  it.each(cases)('$fixture: finds the workload, token and image', async (c) => {
    const topology = await discoverTopology(fixtureLister(c.objects), { namespace: c.namespace });
    expect(topology.workload).toMatchObject(c.workload);
    expect(topology.initialClusterToken).toBe(c.token);
    expect(topology.image).toBe(c.image);
    expect(topology.members).toHaveLength(c.workload.replicas);
  });

  it.each(cases)('$fixture: reads member $member.pod from its pod spec', async (c) => {
    const topology = await discoverTopology(fixtureLister(c.objects), { namespace: c.namespace });
    const member = topology.members.find((m) => m.pod === c.member.pod);
    expect(member).toMatchObject({ namespace: c.namespace, ...c.member });
    expect(member?.notes).toBeUndefined();
  });

  it.each(cases)('$fixture: members come in order with distinct names and one shared initial cluster', async (c) => {
    const topology = await discoverTopology(fixtureLister(c.objects), { namespace: c.namespace });
    const names = topology.members.map((m) => m.name);
    expect(new Set(names).size).toBe(names.length);
    expect(new Set(topology.members.map((m) => m.initialCluster)).size).toBe(1);
    const expected = topology.members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
    expect(topology.members[0]!.initialCluster).toBe(expected);
  });
});

describe('discovery ignores the non-etcd workloads of a fixture', () => {
  it('anthos: kube-apiserver (which has --etcd-* flags) and the maintenance deployment are not members', async () => {
    const topology = await discoverTopology(fixtureLister(anthosManifests(ANTHOS_OPTIONS, placeholderAnthosCerts())), { namespace: 'uc1' });
    expect(topology.members.map((m) => m.pod)).toEqual(['kube-etcd-0', 'kube-etcd-1', 'kube-etcd-2']);
  });
});
