// Bench-only workloads, created next to the simulator's `anthos` fixture with `kubectl create -f`:
// - `bench`: one Anthos-style kube-etcd member (same pod spec as the fixture) with a PVC large
//   enough for a 2 GiB database plus a snapshot on the same disk, and a raised backend quota
//   (etcd 3.4's default of 2 GiB would stop the 2 GiB size); no API server writing to it.
// - `single`: the `single` fixture's layout (1 member, its kube-apiserver, maintenance
//   deployment) in its own namespace, so both restore targets share one cluster.
// Both run the etcd minor the bench was given: their image tags name it, as the fixture's do.
import { writeFileSync } from 'node:fs';
import type { EtcdMinor } from '../test/sim/etcd-versions.js';
import { anthosCerts, anthosEtcdImage, anthosEtcdUtilImage, anthosManifests, type AnthosOptions } from '../test/sim/fixtures/anthos.js';
import type { KubeObject } from '../test/sim/fixtures/common.js';

/** Namespace of the backup/inspect workload. */
export const BENCH_NS = 'bench';
/** Namespace of the 1-member restore target. */
export const SINGLE_NS = 'single';

const QUOTA_BYTES = 8 * 1024 ** 3;

/** The backup workload: kube-etcd with 1 member, a big PVC and a raised quota. */
export function benchManifests(clusterDir: string, storage: string, etcd: EtcdMinor): KubeObject[] {
  const opts: AnthosOptions = { namespace: BENCH_NS, replicas: 1, storage, etcd };
  const objects = anthosManifests(opts, anthosCerts({ dir: clusterDir }, 'bench', opts));
  const keep = objects.filter((o) => {
    const name = (o.metadata as { name?: string } | undefined)?.name ?? '';
    return !['kube-apiserver', 'gke-master-etcd-maintenance', 'kube-apiserver-certs'].includes(name);
  });
  const sts = keep.find((o) => o.kind === 'StatefulSet') as { spec: { template: { spec: { containers: Array<{ command: string[] }> } } } };
  const container = sts.spec.template.spec.containers[0]!;
  // Raft snapshots every 200 entries let etcd purge the WAL of 1 MB puts, so the disk holds db + snapshot.
  container.command = [...container.command.filter((a) => !a.startsWith('--snapshot-count')), '--snapshot-count=200', `--quota-backend-bytes=${QUOTA_BYTES}`];
  return requireEtcdImages(keep, etcd);
}

/** The 1-member restore target: the `single` fixture's objects in namespace `single`. */
export function singleManifests(clusterDir: string, etcd: EtcdMinor): KubeObject[] {
  const opts: AnthosOptions = { namespace: SINGLE_NS, replicas: 1, storage: '512Mi', etcd };
  return requireEtcdImages(anthosManifests(opts, anthosCerts({ dir: clusterDir }, 'bench-single', opts)), etcd);
}

/** Returns the objects when every etcd and etcd-util container runs `etcd`'s image; throws naming the first that does not. */
function requireEtcdImages(objects: KubeObject[], etcd: EtcdMinor): KubeObject[] {
  const wanted = [anthosEtcdImage(etcd), anthosEtcdUtilImage(etcd)];
  for (const o of objects) {
    const pod = (o as { spec?: { template?: { spec?: { containers?: Array<{ name: string; image: string }> } } } }).spec?.template?.spec;
    for (const c of pod?.containers ?? []) {
      if (/\/etcd(-util)?:/.test(c.image) && !wanted.includes(c.image)) {
        const name = (o.metadata as { name?: string } | undefined)?.name ?? '?';
        throw new Error(`bench workload ${o.kind} "${name}" container "${c.name}" runs "${c.image}", not etcd ${etcd}'s ${wanted.join(' or ')}`);
      }
    }
  }
  return objects;
}

/** Writes objects as one v1 List that `kubectl create -f` accepts. */
export function writeList(file: string, objects: KubeObject[]): void {
  writeFileSync(file, JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }, null, 1));
}
