/** Turns Kubernetes Status objects and API exceptions into the plugin's one-line typed errors. */
import { ForbiddenError, NotFoundError, PluginError, TransientError } from '../errors.js';

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

/**
 * A pod stream (exec, port-forward, logs) the API server could not take to the pod's node: its
 * kubelet does not answer (stopped, restarting, the node down). The API server itself serves, and
 * the kubelet may come back, so it is retried like any transient failure.
 */
export class KubeletUnreachableError extends TransientError {}

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
  const unreachable = kubeletUnreachable(code, message, what);
  if (unreachable) return unreachable;
  if (TRANSIENT_HTTP.has(code)) return new TransientError(`${what} failed: ${lower(message)}`, 'retry; check the cluster with kubectl cluster-info');
  return new PluginError(`${what} failed: ${lower(message)}`);
}

/**
 * The API server's dial to the pod's node's kubelet (port 10250) failed: before an upgrade "error
 * dialing backend: dial tcp IP:10250: …" (for logs, the failed GET of https://IP:10250/containerLogs/…);
 * after a v5 exec upgrade, on its status channel, "Internal error occurred: error sending request:
 * Post "https://IP:10250/exec/…": dial tcp …" (the stream translator, Kubernetes 1.30+).
 */
export function kubeletUnreachable(code: number | undefined, message: string, what: string): KubeletUnreachableError | undefined {
  if (code !== 500 || !/error dialing backend|https:\/\/[^/\s"]+:10250\/|dial tcp [^\s]+:10250:/.test(message)) return undefined;
  const dial = /dial tcp [^\s]+:10250: [^"]*$/.exec(firstLine(message))?.[0] ?? lower(firstLine(message));
  return new KubeletUnreachableError(`${what} failed: the kubelet of the pod's node does not answer (${dial})`, 'check the node (`kubectl get node`) and its kubelet (`systemctl status kubelet` on it)');
}

/** Maps an exception thrown by a client-node API call (ApiException, fetch error) to a typed plugin error. */
export function apiError(err: unknown, what: string): Error {
  if (err instanceof PluginError) return err;
  const e = err as { code?: unknown; body?: unknown; message?: string; name?: string };
  if (typeof e?.code === 'number' && e.code >= 400) return statusError(e.code, parseStatus(e.body), what);
  if (e?.name === 'AbortError' || e?.name === 'TimeoutError') {
    return new TransientError(`${what} timed out`, 'raise --request-timeout or check the cluster');
  }
  const msg = firstLine(e?.message ?? String(err));
  const Failure = isNetworkFailure(err) ? TransientError : PluginError;
  return new Failure(`${what} failed: ${msg}`, 'check that the cluster is reachable (kubectl cluster-info)');
}

/** HTTP statuses of an API server that is restarting or overloaded, not of a wrong request. */
const TRANSIENT_HTTP = new Set([500, 502, 503, 504]);

/** Socket error codes of a connection that was refused, reset or timed out. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED', 'EAI_AGAIN', 'UND_ERR_SOCKET']);

/**
 * True when a raw error (not yet a plugin error) says the connection failed, judged by its type:
 * node-fetch's FetchError of type system or timeout (client-node), or a socket error code on the
 * error or its cause.
 */
export function isNetworkFailure(err: unknown): boolean {
  const e = err as { name?: unknown; type?: unknown; code?: unknown; cause?: unknown } | undefined;
  if (!e || typeof e !== 'object') return false;
  if (e.name === 'FetchError' && (e.type === 'system' || e.type === 'request-timeout' || e.type === 'body-timeout')) return true;
  if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return true;
  return e.cause !== undefined && e.cause !== err && isNetworkFailure(e.cause);
}

/** True for failures a retry may cure: a TransientError, or a raw network failure. */
export function isTransient(err: unknown): boolean {
  if (err instanceof PluginError) return err instanceof TransientError;
  return isNetworkFailure(err);
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.trim();
}

function lower(s: string): string {
  const t = s.replace(/\.$/, '');
  return t.charAt(0).toLowerCase() + t.slice(1);
}

/** Runs one read of an object; a 404 gives undefined, anything else is thrown as apiError maps it. */
export async function readOrUndefined<T>(read: () => Promise<T>, what: string): Promise<T | undefined> {
  try {
    return await read();
  } catch (err) {
    const e = apiError(err, what);
    if (e instanceof NotFoundError) return undefined;
    throw e;
  }
}
