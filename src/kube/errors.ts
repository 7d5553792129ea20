/** Turns Kubernetes Status objects and API exceptions into the plugin's one-line typed errors. */
import { ForbiddenError, NotFoundError, PluginError } from '../errors.js';

/** The fields of a metav1.Status the plugin reads. */
export interface KubeStatus {
  kind?: string;
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: {
    name?: string;
    group?: string;
    kind?: string;
    causes?: Array<{ reason?: string; message?: string; field?: string }>;
  };
}

/** A request the cluster answered with 409 Conflict or AlreadyExists. */
export class ConflictError extends PluginError {}

/** Parses a Status from a JSON body (string, Buffer or object); undefined when it is not one. */
export function parseStatus(body: unknown): KubeStatus | undefined {
  let value: unknown = body;
  if (Buffer.isBuffer(value)) value = value.toString('utf8');
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      return undefined;
    }
  }
  if (!value || typeof value !== 'object') return undefined;
  const s = value as KubeStatus;
  if (s.kind !== 'Status' && s.status === undefined && s.reason === undefined) return undefined;
  return s;
}

const forbiddenRe = /User "([^"]*)" cannot (\S+) resource "([^"]+)"(?: in API group "([^"]*)")?(?: in the namespace "([^"]*)")?/;

/** Details of a Forbidden message: who, which verb, which resource (with subresource), where. */
export function parseForbidden(message: string): { user: string; verb: string; resource: string; group: string; namespace?: string } | undefined {
  const m = forbiddenRe.exec(message);
  if (!m) return undefined;
  return { user: m[1]!, verb: m[2]!, resource: m[3]!, group: m[4] ?? '', namespace: m[5] };
}

/** Builds the user-facing error for a failed request: 403, 404 and 409 get typed errors with kubectl-like text. */
export function statusError(code: number, status: KubeStatus | undefined, what: string): PluginError {
  const message = firstLine(status?.message ?? '') || `${what}: HTTP ${code}`;
  if (code === 403) {
    const f = parseForbidden(message);
    if (f) {
      const where = f.namespace !== undefined ? ` in namespace "${f.namespace}"` : ' at cluster scope';
      const res = f.group ? `${f.resource}.${f.group}` : f.resource;
      return new ForbiddenError(`user "${f.user}" cannot ${f.verb} "${res}"${where}`, `ask a cluster admin for ${res} permission`);
    }
    return new ForbiddenError(lower(message), 'ask a cluster admin for permission');
  }
  if (code === 401) return new ForbiddenError(`unauthorized: ${lower(message)}`, 'check the credentials in your kubeconfig');
  if (code === 404) return new NotFoundError(lower(message), 'check the name and pass -n for the right namespace');
  if (code === 409) return new ConflictError(lower(message), 'retry, or check what else is changing the object');
  return new PluginError(`${what} failed: ${lower(message)}`);
}

/** Maps an exception thrown by a client-node API call (ApiException, fetch error) to a typed plugin error. */
export function apiError(err: unknown, what: string): Error {
  if (err instanceof PluginError) return err;
  const e = err as { code?: unknown; body?: unknown; message?: string; name?: string };
  if (typeof e?.code === 'number' && e.code >= 400) return statusError(e.code, parseStatus(e.body), what);
  if (e?.name === 'AbortError' || e?.name === 'TimeoutError') {
    return new PluginError(`${what} timed out`, 'raise --request-timeout or check the cluster');
  }
  const msg = firstLine(e?.message ?? String(err));
  return new PluginError(`${what} failed: ${msg}`, 'check that the cluster is reachable (kubectl cluster-info)');
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.trim();
}

function lower(s: string): string {
  const t = s.replace(/\.$/, '');
  return t.charAt(0).toLowerCase() + t.slice(1);
}
