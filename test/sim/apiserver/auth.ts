// Authentication by bearer token from DIR/tokens.csv (kube-apiserver --token-auth-file format,
// re-read whenever its mtime or size changes) and authorization by RBAC objects in the store.
// Differences from a real API server: no client certificates, service account tokens or
// anonymous access; non-resource URLs (discovery, /version, health) are open to every
// authenticated user (as system:discovery grants); "system:masters" bypasses RBAC as in kube;
// aggregated ClusterRoles (aggregationRule) are not expanded.
import { readFileSync, statSync } from 'node:fs';
import type { RbacV1Subject, V1ClusterRole, V1ClusterRoleBinding, V1PolicyRule, V1Role, V1RoleBinding, V1RoleRef } from '@kubernetes/client-node';
import type { ObjectStore, Stored } from './store.js';

/** An authenticated caller. */
export interface UserInfo {
  name: string;
  uid: string;
  groups: string[];
}

/** What a request asks to do, as RBAC sees it. */
export interface Attributes {
  verb: string;
  apiGroup: string;
  resource: string;
  subresource: string;
  namespace: string;
  name: string;
}

function parseCsvLine(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (const ch of line) {
    if (ch === '"') quoted = !quoted;
    else if (ch === ',' && !quoted) { out.push(cur); cur = ''; } else cur += ch;
  }
  out.push(cur);
  return out.map((s) => s.trim());
}

/** Parses token-auth-file text: token,user,uid[,"group1,group2"]. */
export function parseTokens(text: string): Map<string, UserInfo> {
  const users = new Map<string, UserInfo>();
  for (const line of text.split('\n')) {
    if (!line.trim() || line.startsWith('#')) continue;
    const [token, name, uid, groups] = parseCsvLine(line);
    if (!token || !name) continue;
    users.set(token, { name, uid: uid ?? '', groups: groups ? groups.split(',').map((g) => g.trim()).filter(Boolean) : [] });
  }
  return users;
}

/** Token users from a file, reloaded when the file changes. */
export class TokenFile {
  private stamp = '';
  private users = new Map<string, UserInfo>();

  constructor(private readonly file: string) {}

  /** The user of a bearer token, or undefined. */
  authenticate(token: string): UserInfo | undefined {
    try {
      const st = statSync(this.file);
      const stamp = `${st.mtimeMs}:${st.size}:${st.ino}`;
      if (stamp !== this.stamp) {
        this.users = parseTokens(readFileSync(this.file, 'utf8'));
        this.stamp = stamp;
      }
    } catch {
      this.users = new Map();
      this.stamp = '';
    }
    const u = this.users.get(token);
    return u && { ...u, groups: [...u.groups, 'system:authenticated'] };
  }
}

function subjectMatches(subject: RbacV1Subject, user: UserInfo, bindingNs: string): boolean {
  if (subject.kind === 'User') return subject.name === user.name;
  if (subject.kind === 'Group') return user.groups.includes(subject.name);
  if (subject.kind === 'ServiceAccount') return user.name === `system:serviceaccount:${subject.namespace || bindingNs}:${subject.name}`;
  return false;
}

function ruleAllows(rule: V1PolicyRule, a: Attributes): boolean {
  const has = (list: string[] | undefined, v: string) => (list ?? []).includes('*') || (list ?? []).includes(v);
  if (!has(rule.verbs, a.verb)) return false;
  if (!has(rule.apiGroups, a.apiGroup)) return false;
  const res = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  const resources: string[] = rule.resources ?? [];
  const resOk = resources.includes('*') || resources.includes(res) ||
    (a.subresource !== '' && resources.includes(`*/${a.subresource}`));
  if (!resOk) return false;
  if (rule.resourceNames?.length) return a.name !== '' && rule.resourceNames.includes(a.name);
  return true;
}

function rulesOf(store: ObjectStore, roleRef: V1RoleRef | undefined, ns: string): V1PolicyRule[] {
  if (roleRef?.kind === 'ClusterRole') return (store.get('rbac.authorization.k8s.io/clusterroles', undefined, roleRef.name) as Stored<V1ClusterRole> | undefined)?.rules ?? [];
  if (roleRef?.kind === 'Role') return (store.get('rbac.authorization.k8s.io/roles', ns, roleRef.name) as Stored<V1Role> | undefined)?.rules ?? [];
  return [];
}

/** True when RBAC (or membership in system:masters) allows the user to do a. */
export function authorize(store: ObjectStore, user: UserInfo, a: Attributes): boolean {
  if (user.groups.includes('system:masters')) return true;
  if (a.resource === '') return true;
  if (a.apiGroup === 'authorization.k8s.io' && a.resource === 'selfsubjectaccessreviews') return true;
  for (const b of store.list('rbac.authorization.k8s.io/clusterrolebindings') as Stored<V1ClusterRoleBinding>[]) {
    if (!(b.subjects ?? []).some((s) => subjectMatches(s, user, ''))) continue;
    if (rulesOf(store, b.roleRef, '').some((r) => ruleAllows(r, a))) return true;
  }
  if (a.namespace) {
    for (const b of store.list('rbac.authorization.k8s.io/rolebindings', a.namespace) as Stored<V1RoleBinding>[]) {
      if (!(b.subjects ?? []).some((s) => subjectMatches(s, user, a.namespace))) continue;
      if (rulesOf(store, b.roleRef, a.namespace).some((r) => ruleAllows(r, a))) return true;
    }
  }
  return false;
}

/** The Forbidden message kube-apiserver writes for a denied request. */
export function forbiddenMessage(user: UserInfo, a: Attributes): string {
  const qualified = a.apiGroup ? `${a.resource}.${a.apiGroup}` : a.resource;
  const subject = a.name ? `${qualified} "${a.name}"` : qualified;
  const res = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  const scope = a.namespace ? `in the namespace "${a.namespace}"` : 'at the cluster scope';
  return `${subject} is forbidden: User "${user.name}" cannot ${a.verb} resource "${res}" in API group "${a.apiGroup}" ${scope}`;
}
