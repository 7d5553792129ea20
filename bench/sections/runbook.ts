// The manual restore runbook for an Anthos-style kube-etcd (RUNBOOKS.md), scripted with real
// kubectl as an operator types it, one member after another: save and delete the PDB, scale the
// API server and the maintenance deployment to 0; per member a utility pod on the member's node
// with its PVC and the cert Secret, `kubectl cp` the snapshot in, `snapshot restore` with the
// member's flags, `rm -r /var/lib/etcd/*`, copy the restored data in, clean up, delete the
// utility pod; then start etcd on the restored data, scale everything back, re-create the PDB.
// The restore tool is the one the running minor's docs name: `etcdctl snapshot restore` on 3.4,
// `etcdutl snapshot restore` on 3.5 (where etcdctl's is deprecated), same flags, no revision bump
// (the docs' runbook has none; the plugin's 3.5 restore adds --bump-revision --mark-compacted).
// One deviation: the runbook assumes the members are down (corrupt volumes) and ends with
// `rollout restart`; with healthy members that restarts one restored member next to two old ones
// and it crash-loops (raft "tocommit out of range"). So the script stops etcd first (scale the
// StatefulSet to 0, noting each member's node) and scales it back to N at the end.
// The utility pods are deleted without waiting for them to go (see manualRestore).
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { EtcdMinor } from '../../test/sim/etcd-versions.js';
import { ANTHOS_CERT_DIR, anthosEtcdUtilImage } from '../../test/sim/fixtures/anthos.js';
import type { BenchCluster } from '../lib/cluster.js';

/** The runbook's restore command for one minor: etcdctl's on 3.4, etcdutl's on 3.5. */
export function snapshotRestoreCommand(etcd: EtcdMinor): string {
  return etcd === '3.4' ? 'ETCDCTL_API=3 etcdctl snapshot restore' : 'etcdutl snapshot restore';
}

/** etcdctl 3.4 restores into `<name>.etcd` by default; etcdutl 3.5 requires --data-dir. */
function dataDirFlag(etcd: EtcdMinor, dir: string): string {
  return etcd === '3.4' ? '' : ` --data-dir=${dir}`;
}

/** Runs the whole runbook on etcd `etcd` against namespace `ns` with `members` kube-etcd members. */
export async function manualRestore(c: BenchCluster, etcd: EtcdMinor, ns: string, members: number, snapshot: string, workDir: string): Promise<void> {
  const k = (args: string[]) => c.kubectlMust(['-n', ns, ...args], { timeoutMs: 300_000 });
  // 1. Save and delete the PDB (HA only), quiesce writers.
  const pdb = await c.kubectl(['-n', ns, 'get', 'pdb', 'kube-apiserver-pdb', '-o', 'json']);
  const pdbFile = join(workDir, `${ns}-pdb.json`);
  if (pdb.code === 0) {
    const obj = JSON.parse(pdb.stdout) as { metadata: Record<string, unknown>; status?: unknown };
    const { name, namespace, labels, annotations } = obj.metadata;
    await writeFile(pdbFile, JSON.stringify({ ...obj, metadata: { name, namespace, labels, annotations }, status: undefined }));
    await k(['delete', 'pdb', 'kube-apiserver-pdb']);
  }
  await k(['scale', 'statefulset', 'kube-apiserver', '--replicas=0']);
  await k(['scale', 'deployment', 'gke-master-etcd-maintenance', '--replicas=0']);
  const nodes: string[] = [];
  for (let i = 0; i < members; i++) nodes.push((await k(['get', 'pod', `kube-etcd-${i}`, '-o', 'jsonpath={.spec.nodeName}'])).stdout.trim());
  await k(['scale', 'statefulset', 'kube-etcd', '--replicas=0']);
  await k(['wait', '--for=delete', ...nodes.map((_, i) => `pod/kube-etcd-${i}`), '--timeout=300s']);
  // 2. One member after another.
  const peer = (i: number) => `https://kube-etcd-${i}.kube-etcd:2380`;
  const cluster = Array.from({ length: members }, (_, i) => `kube-etcd-${i}=${peer(i)}`).join(',');
  for (let i = 0; i < members; i++) {
    const util = `etcd-utility-${i}`;
    const manifest = utilityPod(ns, util, nodes[i]!, `data-kube-etcd-${i}`, anthosEtcdUtilImage(etcd));
    const file = join(workDir, `${ns}-${util}.json`);
    await writeFile(file, JSON.stringify(manifest));
    await k(['create', '-f', file]);
    await k(['wait', '--for=condition=Ready', `pod/${util}`, '--timeout=300s']);
    await k(['cp', snapshot, `${ns}/${util}:/snapshot.db`]);
    const restored = members > 1 ? `/kube-etcd-${i}.etcd` : '/default.etcd';
    const restore = members > 1
      ? `${snapshotRestoreCommand(etcd)} snapshot.db --name=kube-etcd-${i} --initial-cluster=${cluster} --initial-cluster-token=etcd-cluster-1 --initial-advertise-peer-urls=${peer(i)}${dataDirFlag(etcd, restored)}`
      : `${snapshotRestoreCommand(etcd)} snapshot.db${dataDirFlag(etcd, restored)}`;
    await k(['exec', util, '--', 'sh', '-ec', [
      'cd /',
      restore,
      'rm -r /var/lib/etcd/*',
      `cp -r ${restored}/* /var/lib/etcd/`,
      `rm -rf ${restored} /snapshot.db`,
    ].join('\n')]);
    // An operator who moves on: the vendor's pod runs `sh` as PID 1 with no TERM handler, so a
    // waiting delete takes its whole 30 s grace period (benchRestore waits for them, untimed).
    await k(['delete', 'pod', util, '--wait=false']);
  }
  // 3. Start etcd on the restored data, bring the writers back.
  await k(['scale', 'statefulset', 'kube-etcd', `--replicas=${members}`]);
  await c.waitReady(ns, members, 600_000);
  await k(['scale', 'statefulset', 'kube-apiserver', `--replicas=${members}`]);
  await k(['scale', 'deployment', 'gke-master-etcd-maintenance', '--replicas=1']);
  if (pdb.code === 0) await k(['create', '-f', pdbFile]);
}

/** Waits (untimed) until the runbook's utility pods, deleted without waiting, are gone. */
export async function runbookPodsGone(c: BenchCluster, ns: string, members: number): Promise<void> {
  const names = Array.from({ length: members }, (_, i) => `etcd-utility-${i}`);
  for (const deadline = Date.now() + 120_000; ;) {
    const r = await c.kubectlMust(['-n', ns, 'get', 'pod', ...names, '--ignore-not-found', '-o', 'name']);
    if (!r.stdout.trim()) return;
    if (Date.now() > deadline) throw new Error(`the runbook's utility pods in "${ns}" are still there after 2 minutes: ${r.stdout.trim()}`);
    await new Promise((res) => setTimeout(res, 1000));
  }
}

/** The runbook's utility pod: pinned to the member's node, its PVC at /var/lib/etcd, the certs mounted. */
function utilityPod(ns: string, name: string, node: string, pvc: string, image: string): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns },
    spec: {
      containers: [
        {
          name: 'etcd-utility',
          image,
          command: ['/bin/sh', '-ec', "while :; do echo '.'; sleep 5; done"],
          volumeMounts: [
            { name: 'data', mountPath: '/var/lib/etcd' },
            { name: 'kube-etcd-certs', mountPath: ANTHOS_CERT_DIR, readOnly: true },
          ],
        },
      ],
      nodeSelector: { 'kubernetes.io/hostname': node },
      tolerations: [
        { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
        { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
        { key: 'node.kubernetes.io/unschedulable', operator: 'Exists', effect: 'NoSchedule' },
      ],
      volumes: [
        { name: 'data', persistentVolumeClaim: { claimName: pvc } },
        { name: 'kube-etcd-certs', secret: { secretName: 'kube-etcd-certs', defaultMode: 420 } },
      ],
    },
  };
}
