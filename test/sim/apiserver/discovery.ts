// Discovery documents: /api, /apis, group and group-version resource lists, /version.
// Differences from a real API server: no aggregated discovery (clients that ask for
// apidiscovery.k8s.io/v2 get the legacy documents with Content-Type application/json and fall
// back, as they do against older servers); storageVersionHash is omitted.
import type { V1APIGroup, V1APIGroupList, V1APIResource, V1APIResourceList, V1APIVersions } from '@kubernetes/client-node';
import { apiVersionOf, resourceVerbs, subresourceVerbs, type ResourceDef } from './registry.js';

/** The Kubernetes minor versions the simulator can pretend to be (`sim up --server-version`). */
export const SERVER_MINORS = ['1.32', '1.35'] as const;
export type ServerMinor = (typeof SERVER_MINORS)[number];

/** What /version answers for a minor (1.32 unless the cluster was started as another). */
export function serverVersion(minor: ServerMinor = '1.32'): Record<string, string> {
  const m = minor.split('.')[1]!;
  return { major: '1', minor: m, gitVersion: `v${minor}.0-sim`, gitCommit: 'sim', gitTreeState: 'clean',
    buildDate: '2026-01-01T00:00:00Z', goVersion: m === '32' ? 'go1.23' : 'go1.25', compiler: 'gc', platform: 'linux/amd64' };
}

/** The simulated server version of a cluster started without --server-version. */
export const SERVER_VERSION = serverVersion('1.32');

function groupsOf(defs: ResourceDef[]): Map<string, string> {
  const groups = new Map<string, string>();
  for (const d of defs) if (d.group) groups.set(d.group, d.version);
  return groups;
}

/** GET /api. */
export function apiVersions(serverAddress: string): V1APIVersions {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] };
}

function groupDoc(name: string, version: string): V1APIGroup {
  const gv = { groupVersion: `${name}/${version}`, version };
  return { name, versions: [gv], preferredVersion: gv };
}

/** GET /apis. */
export function apiGroupList(defs: ResourceDef[]): V1APIGroupList {
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: [...groupsOf(defs)].map(([g, v]) => groupDoc(g, v)) };
}

/** GET /apis/GROUP, or undefined for an unknown group. */
export function apiGroup(defs: ResourceDef[], group: string): V1APIGroup | undefined {
  const v = groupsOf(defs).get(group);
  return v ? { kind: 'APIGroup', apiVersion: 'v1', ...groupDoc(group, v) } : undefined;
}

function subresourceKind(d: ResourceDef, sub: string): { kind: string; group?: string; version?: string } {
  switch (sub) {
    case 'scale': return { kind: 'Scale', group: 'autoscaling', version: 'v1' };
    case 'eviction': return { kind: 'Eviction', group: 'policy', version: 'v1' };
    case 'exec': return { kind: 'PodExecOptions' };
    case 'attach': return { kind: 'PodAttachOptions' };
    case 'portforward': return { kind: 'PodPortForwardOptions' };
    case 'binding': return { kind: 'Binding' };
    default: return { kind: d.kind };
  }
}

/** GET /api/v1 or /apis/GROUP/VERSION, or undefined when nothing is served there. */
export function apiResourceList(defs: ResourceDef[], group: string, version: string): V1APIResourceList | undefined {
  const mine = defs.filter((d) => d.group === group && d.version === version);
  if (!mine.length) return undefined;
  const resources: V1APIResource[] = [];
  for (const d of mine) {
    resources.push({
      name: d.resource, singularName: d.singular, namespaced: d.namespaced, kind: d.kind, verbs: resourceVerbs(d),
      ...(d.shortNames ? { shortNames: d.shortNames } : {}), ...(d.categories ? { categories: d.categories } : {}),
    });
    for (const sub of d.subresources) {
      resources.push({ name: `${d.resource}/${sub}`, singularName: '', namespaced: d.namespaced, ...subresourceKind(d, sub), verbs: subresourceVerbs(sub) });
    }
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: apiVersionOf(mine[0]), resources };
}
