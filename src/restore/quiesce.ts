/**
 * Which workloads write to this etcd (and so must be scaled to 0 while it is restored), and
 * which PodDisruptionBudgets cover them. Pure: works on listed objects.
 * A workload writes here when a container's `--etcd-servers` names a member: by pod name
 * (`https://kube-etcd-0.kube-etcd:2379`), by the members' service (`https://kube-etcd:2379`) or
 * by a member's peer host.
 */
import type { V1Deployment, V1LabelSelector, V1PodDisruptionBudget, V1PodTemplateSpec, V1StatefulSet } from '@kubernetes/client-node';
import { UsageError } from '../errors.js';
import type { EtcdTopology } from '../etcd/topology.js';
import { portablePdb } from '../kube/pdb.js';
import type { PdbRecord, QuiesceTarget } from './plan.js';

/** A `--quiesce kind/name` flag value. */
export interface QuiesceRef {
  kind: 'StatefulSet' | 'Deployment';
  name: string;
}

/** Parses `deployment/NAME`, `deploy/NAME`, `statefulset/NAME`, `sts/NAME` (kubectl's spellings). */
export function parseQuiesceRef(value: string): QuiesceRef {
  const m = /^([a-z.]+)\/([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/.exec(value.trim().toLowerCase());
  const kinds: Record<string, QuiesceRef['kind']> = {
    deployment: 'Deployment', deployments: 'Deployment', deploy: 'Deployment', 'deployment.apps': 'Deployment',
    statefulset: 'StatefulSet', statefulsets: 'StatefulSet', sts: 'StatefulSet', 'statefulset.apps': 'StatefulSet',
  };
  const kind = m ? kinds[m[1]!] : undefined;
  if (!m || !kind) throw new UsageError(`--quiesce "${value}" is not kind/name`, 'pass e.g. --quiesce deployment/gke-master-etcd-maintenance');
  return { kind, name: m[2]! };
}

/** Host names that address this etcd's members. */
export function etcdHostNames(topology: EtcdTopology): Set<string> {
  const names = new Set<string>();
  for (const m of topology.members) {
    names.add(m.pod);
    try {
      const host = new URL(m.peerUrl).hostname;
      names.add(host);
      const labels = host.split('.');
      if (labels.length > 1 && labels[0] === m.pod) names.add(labels[1]!);
    } catch {
      // not a URL: nothing to add
    }
  }
  return names;
}

/** The `--etcd-servers` URLs of a pod template (command and args, `--etcd-servers=` or `--etcd-servers X`). */
export function etcdServersOf(template: V1PodTemplateSpec | undefined): string[] {
  const urls: string[] = [];
  for (const c of template?.spec?.containers ?? []) {
    const words = [...(c.command ?? []), ...(c.args ?? [])];
    words.forEach((w, i) => {
      if (w.startsWith('--etcd-servers=')) urls.push(...w.slice('--etcd-servers='.length).split(','));
      else if (w === '--etcd-servers' && words[i + 1]) urls.push(...words[i + 1]!.split(','));
    });
  }
  return urls.filter((u) => u.trim() !== '');
}

function pointsHere(template: V1PodTemplateSpec | undefined, hosts: Set<string>, namespace: string): boolean {
  return etcdServersOf(template).some((u) => {
    let host: string;
    try {
      host = new URL(u.trim()).hostname;
    } catch {
      return false;
    }
    if (hosts.has(host)) return true;
    const labels = host.split('.');
    // kube-etcd-0.kube-etcd.NS.svc…: the first label is a member pod, the namespace (when given) is ours.
    return hosts.has(labels[0]!) && (labels.length < 3 || labels[2] === namespace);
  });
}

/** Matches labels against a LabelSelector (matchLabels and matchExpressions). */
export function selectorMatches(selector: V1LabelSelector | undefined, labels: Record<string, string>): boolean {
  if (!selector) return false;
  const ml = selector.matchLabels ?? {};
  const exprs = selector.matchExpressions ?? [];
  if (Object.keys(ml).length === 0 && exprs.length === 0) return true;
  for (const [k, v] of Object.entries(ml)) if (labels[k] !== v) return false;
  for (const e of exprs) {
    const has = e.key in labels;
    const val = labels[e.key];
    switch (e.operator) {
      case 'In': if (!has || !(e.values ?? []).includes(val!)) return false; break;
      case 'NotIn': if (has && (e.values ?? []).includes(val!)) return false; break;
      case 'Exists': if (!has) return false; break;
      case 'DoesNotExist': if (has) return false; break;
      default: return false;
    }
  }
  return true;
}

/** The workloads of the namespace, as listed. */
export interface NamespaceWorkloads {
  statefulSets: V1StatefulSet[];
  deployments: V1Deployment[];
  pdbs: V1PodDisruptionBudget[];
}

/** Detected writers plus the flagged ones (with their current replicas), and the PDBs selecting any of them. */
export function findQuiesceTargets(
  topology: EtcdTopology,
  workloads: NamespaceWorkloads,
  flagged: QuiesceRef[],
): { quiesce: QuiesceTarget[]; pdbs: PdbRecord[]; templates: Array<Record<string, string>> } {
  const hosts = etcdHostNames(topology);
  const quiesce: QuiesceTarget[] = [];
  const labels: Array<Record<string, string>> = [];
  const all = [
    ...workloads.statefulSets.map((w) => ({ kind: 'StatefulSet' as const, w })),
    ...workloads.deployments.map((w) => ({ kind: 'Deployment' as const, w })),
  ];
  for (const { kind, w } of all) {
    const name = w.metadata?.name ?? '';
    if (kind === 'StatefulSet' && topology.workload.kind === 'StatefulSet' && name === topology.workload.name) continue;
    const flag = flagged.some((f) => f.kind === kind && f.name === name);
    const detected = pointsHere(w.spec?.template, hosts, topology.namespace);
    if (!flag && !detected) continue;
    const replicas = w.spec?.replicas ?? 1;
    if (replicas === 0) continue;
    quiesce.push({ kind, name, replicas, reason: detected ? 'detected' : 'flag' });
    labels.push(w.spec?.template?.metadata?.labels ?? {});
  }
  for (const f of flagged) {
    if (!all.some(({ kind, w }) => kind === f.kind && w.metadata?.name === f.name)) {
      throw new UsageError(`--quiesce: ${f.kind.toLowerCase()} "${f.name}" not found in namespace "${topology.namespace}"`, 'check the name with kubectl get');
    }
  }
  const pdbs: PdbRecord[] = workloads.pdbs
    .filter((p) => labels.some((l) => selectorMatches(p.spec?.selector, l)))
    .map((p) => ({ name: p.metadata?.name ?? '', manifest: portablePdb(p) as unknown as Record<string, unknown> }));
  return { quiesce, pdbs, templates: labels };
}
