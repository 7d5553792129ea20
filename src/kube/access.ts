/** Preflight permission checks with SelfSubjectAccessReview, so a command fails before it changes anything. */
import type { AuthorizationV1Api } from '@kubernetes/client-node';
import { ForbiddenError } from '../errors.js';
import { apiError } from './errors.js';

/** One permission a command needs. */
export interface AccessCheck {
  verb: string;
  /** API group: "" for core, "apps", "policy", ... */
  group: string;
  resource: string;
  subresource?: string;
  namespace: string;
  name?: string;
}

/** A permission the cluster said no to, with its reason when the authorizer gave one. */
export interface DeniedAccess extends AccessCheck {
  reason?: string;
}

/** Asks the API server about every check (in parallel); returns the ones that are denied. */
export async function checkAccess(kube: { authz: AuthorizationV1Api }, checks: AccessCheck[]): Promise<DeniedAccess[]> {
  const answers = await Promise.all(
    checks.map(async (c): Promise<DeniedAccess | undefined> => {
      try {
        const review = await kube.authz.createSelfSubjectAccessReview({
          body: {
            apiVersion: 'authorization.k8s.io/v1',
            kind: 'SelfSubjectAccessReview',
            spec: { resourceAttributes: { verb: c.verb, group: c.group, resource: c.resource, subresource: c.subresource, namespace: c.namespace, name: c.name } },
          },
        });
        return review.status?.allowed ? undefined : { ...c, reason: review.status?.reason || undefined };
      } catch (err) {
        throw apiError(err, 'checking permissions (selfsubjectaccessreviews)');
      }
    }),
  );
  return answers.filter((a): a is DeniedAccess => a !== undefined);
}

/** kubectl's spelling of a check: "create pods/exec", "patch statefulsets.apps/scale". */
export function describeAccess(c: AccessCheck): string {
  const resource = c.group ? `${c.resource}.${c.group}` : c.resource;
  return `${c.verb} ${resource}${c.subresource ? `/${c.subresource}` : ''}`;
}

/**
 * One-line error listing every denied permission, or undefined when nothing is denied. A check
 * with no namespace is a cluster-scoped one (nodes), named apart: a Role cannot grant it.
 */
export function accessError(denied: DeniedAccess[]): ForbiddenError | undefined {
  if (denied.length === 0) return undefined;
  const parts: string[] = [];
  const namespaced = denied.filter((d) => d.namespace);
  const namespaces = [...new Set(namespaced.map((d) => d.namespace))];
  if (namespaced.length) parts.push(`in namespace ${namespaces.map((n) => `"${n}"`).join(', ')}: ${namespaced.map(describeAccess).join(', ')}`);
  const clusterWide = denied.filter((d) => !d.namespace);
  if (clusterWide.length) parts.push(`at cluster scope: ${clusterWide.map(describeAccess).join(', ')}`);
  return new ForbiddenError(
    `missing permission ${parts.join('; ')}`,
    'ask a cluster admin to grant them (the README\'s "Permissions" lists a Role and ClusterRole that do), or run `kubectl auth can-i --list` to see yours',
  );
}
