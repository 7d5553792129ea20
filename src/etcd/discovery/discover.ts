/**
 * From a selected workload to the `EtcdTopology` backup, status and restore consume, with any
 * discovered value replaced by an explicit override.
 */
import type { EtcdMember, EtcdTopology } from '../topology.js';
import { NotFoundError } from '../../errors.js';
import { readMember } from './member.js';
import { selectEtcdWorkload, type EtcdPodLister, type SelectedWorkload, type WorkloadSelection } from './select.js';

/** Member fields a user may override (everything but the pod's identity). */
export type MemberOverride = Partial<Omit<EtcdMember, 'pod' | 'namespace' | 'tls'>> & { tls?: EtcdMember['tls'] };

/** Explicit values that win over discovery (flags such as --cacert, --endpoint, --data-dir). */
export interface DiscoveryOverrides {
  /** Applied to every member. */
  all?: MemberOverride;
  /** Applied to one member, by pod name, after `all`. */
  members?: Record<string, MemberOverride>;
  initialClusterToken?: string;
  image?: string;
}

function applyOverride(member: EtcdMember, o: MemberOverride | undefined): EtcdMember {
  if (!o) return member;
  const next: EtcdMember = { ...member, ...o, tls: { ...member.tls, ...o.tls } };
  if (o.endpoint) {
    const url = new URL(o.endpoint);
    next.clientTlsEnabled = o.clientTlsEnabled ?? url.protocol === 'https:';
    next.clientPort = o.clientPort ?? Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  }
  return next;
}

/** Builds the topology of an already selected workload (pure). */
export function topologyFromWorkload(selected: SelectedWorkload, overrides: DiscoveryOverrides = {}, container?: string): EtcdTopology {
  const stsName = selected.workload.kind === 'StatefulSet' ? selected.workload.name : undefined;
  const claimTemplates = (selected.statefulSet?.spec?.volumeClaimTemplates ?? []).map((t) => t.metadata?.name ?? '');
  const members = selected.pods
    .map((pod) => readMember(pod, { container, statefulSet: stsName, claimTemplates }))
    .filter((m): m is EtcdMember => m !== undefined)
    .map((m) => applyOverride(applyOverride(m, overrides.all), overrides.members?.[m.pod]))
    .sort((a, b) => (a.ordinal ?? 0) - (b.ordinal ?? 0) || a.pod.localeCompare(b.pod, 'en', { numeric: true }));
  if (!members.length) {
    throw new NotFoundError(`no etcd pods found in namespace "${selected.namespace}"`, 'pass -n or --statefulset');
  }
  const token = overrides.initialClusterToken ?? members.find((m) => m.initialClusterToken)?.initialClusterToken;
  if (overrides.initialClusterToken) for (const m of members) m.initialClusterToken = overrides.initialClusterToken;
  return {
    namespace: selected.namespace,
    workload: selected.workload,
    members,
    ...(token ? { initialClusterToken: token } : {}),
    image: overrides.image ?? members[0]!.image,
    ...(selected.focusPod ? { focusPod: selected.focusPod } : {}),
    ...(selected.templateMembers?.length ? { podless: selected.templateMembers } : {}),
  };
}

/** Selects the etcd workload through the lister and reads its topology from the pod specs. */
export async function discoverTopology(lister: EtcdPodLister, sel: WorkloadSelection, overrides: DiscoveryOverrides = {}): Promise<EtcdTopology> {
  return topologyFromWorkload(await selectEtcdWorkload(lister, sel), overrides, sel.container);
}
