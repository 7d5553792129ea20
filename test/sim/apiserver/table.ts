// Server-side printing: meta.k8s.io/v1 Table responses for `kubectl get` (Accept: ...;as=Table).
// Differences from a real API server: columns for pods, nodes, namespaces, services, ConfigMaps,
// Secrets, PVCs, PVs, StatefulSets, Deployments, PDBs, ResourceQuotas and LimitRanges follow kube's printers in their main columns only; every
// other kind gets NAME and AGE; rows always carry the full object (includeObject=Object).
import type {
  V1Deployment, V1Node, V1Namespace, V1PersistentVolume, V1PersistentVolumeClaim, V1Pod, V1PodDisruptionBudget, V1ResourceQuota, V1Secret, V1Service,
  V1StatefulSet,
} from '@kubernetes/client-node';
import type { ResourceDef } from './registry.js';
import type { Stored, StoredObject } from './store.js';

interface Col<T = StoredObject> { name: string; type?: string; priority?: number; cell: (o: T, now: number) => unknown }

/** The columns of one kind, whose cells read that kind's fields; toTable hands them objects of that kind only. */
function kindColumns<T>(...cols: Col<Stored<T>>[]): Col[] {
  return cols as unknown as Col[];
}

/** Kubernetes' short duration format: 45s, 5m3s, 3h, 2d. */
export function shortAge(created: string | undefined, now: number): string {
  if (!created) return '<unknown>';
  const s = Math.max(0, Math.floor((now - Date.parse(created)) / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return `${m}m${s % 60 ? `${s % 60}s` : ''}`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h`;
  return `${Math.floor(h / 24)}d`;
}

function podStatus(p: Stored<V1Pod>): string {
  if (p.metadata.deletionTimestamp) return 'Terminating';
  for (const cs of p.status?.containerStatuses ?? []) {
    if (cs.state?.waiting?.reason) return cs.state.waiting.reason;
    if (cs.state?.terminated?.reason && p.status?.phase !== 'Running') return cs.state.terminated.reason;
  }
  return p.status?.reason ?? p.status?.phase ?? 'Unknown';
}

const dataCount = (o: StoredObject): number => Object.keys(o.data ?? {}).length + Object.keys(o.binaryData ?? {}).length;
const age: Col = { name: 'Age', cell: (o, now) => shortAge(o.metadata.creationTimestamp, now) };
const name: Col = { name: 'Name', cell: (o) => o.metadata.name };

function columnsFor(def: ResourceDef): Col[] {
  switch (def.kind) {
    case 'Pod': return kindColumns<V1Pod>(name,
      { name: 'Ready', cell: (p) => `${(p.status?.containerStatuses ?? []).filter((c) => c.ready).length}/${(p.spec?.containers ?? []).length}` },
      { name: 'Status', cell: podStatus },
      { name: 'Restarts', type: 'string', cell: (p) => String((p.status?.containerStatuses ?? []).reduce((n: number, c) => n + (c.restartCount ?? 0), 0)) },
      age,
      { name: 'IP', priority: 1, cell: (p) => p.status?.podIP ?? '<none>' },
      { name: 'Node', priority: 1, cell: (p) => p.spec?.nodeName ?? '<none>' });
    case 'Node': return kindColumns<V1Node>(name,
      { name: 'Status', cell: (n) => {
        const ready = (n.status?.conditions ?? []).find((c) => c.type === 'Ready');
        const s = ready?.status === 'True' ? 'Ready' : ready ? 'NotReady' : 'Unknown';
        return n.spec?.unschedulable ? `${s},SchedulingDisabled` : s;
      } },
      { name: 'Roles', cell: (n) => Object.keys(n.metadata.labels ?? {}).filter((k) => k.startsWith('node-role.kubernetes.io/'))
        .map((k) => k.slice('node-role.kubernetes.io/'.length)).sort().join(',') || '<none>' }, age,
      { name: 'Version', cell: (n) => n.status?.nodeInfo?.kubeletVersion ?? '' });
    case 'ConfigMap': return [name, { name: 'Data', type: 'integer', cell: dataCount }, age];
    case 'Secret': return kindColumns<V1Secret>(name, { name: 'Type', cell: (x) => x.type ?? '' }, { name: 'Data', type: 'integer', cell: dataCount }, age);
    case 'Namespace': return kindColumns<V1Namespace>(name, { name: 'Status', cell: (n) => n.status?.phase ?? '' }, age);
    case 'Service': return kindColumns<V1Service>(name, { name: 'Type', cell: (s) => s.spec?.type ?? '' },
      { name: 'Cluster-IP', cell: (s) => s.spec?.clusterIP ?? '' }, { name: 'External-IP', cell: () => '<none>' },
      { name: 'Port(s)', cell: (s) => (s.spec?.ports ?? []).map((p) => `${p.port}/${p.protocol ?? 'TCP'}`).join(',') || '<none>' }, age);
    case 'PersistentVolumeClaim': return kindColumns<V1PersistentVolumeClaim>(name, { name: 'Status', cell: (c) => c.status?.phase ?? '' },
      { name: 'Volume', cell: (c) => c.spec?.volumeName ?? '' },
      { name: 'Capacity', cell: (c) => c.status?.capacity?.storage ?? '' },
      { name: 'Access Modes', cell: (c) => (c.status?.accessModes ?? []).map((m: string) => m === 'ReadWriteOnce' ? 'RWO' : m === 'ReadOnlyMany' ? 'ROX' : m === 'ReadWriteMany' ? 'RWX' : m === 'ReadWriteOncePod' ? 'RWOP' : m).join(',') },
      { name: 'StorageClass', cell: (c) => c.spec?.storageClassName ?? '<unset>' }, age);
    case 'PersistentVolume': return kindColumns<V1PersistentVolume>(name, { name: 'Capacity', cell: (v) => v.spec?.capacity?.storage ?? '' },
      { name: 'Reclaim Policy', cell: (v) => v.spec?.persistentVolumeReclaimPolicy ?? '' },
      { name: 'Status', cell: (v) => v.status?.phase ?? '' },
      { name: 'Claim', cell: (v) => v.spec?.claimRef ? `${v.spec.claimRef.namespace}/${v.spec.claimRef.name}` : '' },
      { name: 'StorageClass', cell: (v) => v.spec?.storageClassName ?? '' }, age);
    case 'StatefulSet': return kindColumns<V1StatefulSet>(name, { name: 'Ready', cell: (s) => `${s.status?.readyReplicas ?? 0}/${s.spec?.replicas ?? 0}` }, age);
    case 'Deployment': return kindColumns<V1Deployment>(name, { name: 'Ready', cell: (d) => `${d.status?.readyReplicas ?? 0}/${d.spec?.replicas ?? 0}` },
      { name: 'Up-to-date', type: 'integer', cell: (d) => d.status?.updatedReplicas ?? 0 },
      { name: 'Available', type: 'integer', cell: (d) => d.status?.availableReplicas ?? 0 }, age);
    case 'PodDisruptionBudget': return kindColumns<V1PodDisruptionBudget>(name, { name: 'Min Available', cell: (p) => p.spec?.minAvailable ?? 'N/A' },
      { name: 'Max Unavailable', cell: (p) => p.spec?.maxUnavailable ?? 'N/A' },
      { name: 'Allowed Disruptions', type: 'integer', cell: (p) => p.status?.disruptionsAllowed ?? 0 }, age);
    case 'ResourceQuota': {
      // "requests.cpu: 0/1, pods: 1/2" and "limits.cpu: 0/2", as printResourceQuota splits them
      const usage = (q: Stored<V1ResourceQuota>, limits: boolean) => Object.keys(q.status?.hard ?? {}).sort()
        .filter((k) => k.startsWith('limits.') === limits)
        .map((k) => `${k}: ${q.status?.used?.[k] ?? '0'}/${q.status?.hard?.[k]}`).join(', ');
      return kindColumns<V1ResourceQuota>(name, age, { name: 'Request', cell: (q) => usage(q, false) }, { name: 'Limit', cell: (q) => usage(q, true) });
    }
    case 'LimitRange': return [name, { name: 'Created At', cell: (o) => o.metadata.creationTimestamp ?? '' }];
    default: return [name, age];
  }
}

/** True when the Accept header asks for a Table. */
export function wantsTable(accept: string | undefined): boolean {
  return /as=Table/.test(accept ?? '') && /g=meta\.k8s\.io/.test(accept ?? '');
}

/** A Table of objs of type def; resourceVersion is the list's. */
export function toTable(def: ResourceDef, objs: StoredObject[], resourceVersion?: string, now = Date.now()) {
  const cols = columnsFor(def);
  return {
    kind: 'Table', apiVersion: 'meta.k8s.io/v1', metadata: resourceVersion ? { resourceVersion } : {},
    columnDefinitions: cols.map((c) => ({ name: c.name, type: c.type ?? 'string', format: c.name === 'Name' ? 'name' : '',
      description: '', priority: c.priority ?? 0 })),
    rows: objs.map((o) => ({ cells: cols.map((c) => c.cell(o, now)), object: o })),
  };
}
