// Fixtures shared by the restore unit tests.
import type { EtcdMember } from '../../src/etcd/topology.js';

/** Member n of a plain anthos-like StatefulSet kube-etcd in namespace uc1 (extra fields override). */
export function restoreMember(n: number, extra: Partial<EtcdMember> = {}): EtcdMember {
  return {
    pod: `kube-etcd-${n}`, namespace: 'uc1', container: 'kube-etcd', node: `node-${n}`, ordinal: n, name: `kube-etcd-${n}`,
    endpoint: 'https://127.0.0.1:2379', clientPort: 2379, peerUrl: `https://kube-etcd-${n}.kube-etcd:2380`, dataDir: '/var/lib/etcd',
    tls: {}, clientTlsEnabled: true, image: 'etcd:3.4',
    dataVolume: { kind: 'pvc', volumeName: 'data', claimName: `data-kube-etcd-${n}`, mountPath: '/var/lib/etcd' },
    ...extra,
  };
}
