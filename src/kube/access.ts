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

/** One-line error listing every denied permission, or undefined when nothing is denied. */
export function accessError(denied: DeniedAccess[]): ForbiddenError | undefined {
  if (denied.length === 0) return undefined;
  const namespaces = [...new Set(denied.map((d) => d.namespace))];
  const where = namespaces.map((n) => `"${n}"`).join(', ');
  return new ForbiddenError(
    `missing permission in namespace ${where}: ${denied.map(describeAccess).join(', ')}`,
    'ask a cluster admin to grant them, or run `kubectl auth can-i --list` to see yours',
  );
}
