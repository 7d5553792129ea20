// Kubernetes Status objects for errors, built the way kube-apiserver words them.
// Differences from a real API server: messages cover only the cases the simulator produces.

/** A failed request, carrying the Status body to send. */
export class ApiError extends Error {
  constructor(readonly code: number, readonly reason: string, message: string, readonly details?: Record<string, unknown>) {
    super(message);
  }

  /** The metav1.Status body for this error. */
  toStatus(): Record<string, unknown> {
    return statusBody(this.code, this.reason, this.message, this.details);
  }
}

/** A metav1.Status object. */
export function statusBody(code: number, reason: string, message: string, details?: Record<string, unknown>): Record<string, unknown> {
  const body: Record<string, unknown> = {
    kind: 'Status', apiVersion: 'v1', metadata: {},
    status: code < 400 ? 'Success' : 'Failure', message, reason, code,
  };
  if (details) body.details = details;
  if (!reason) delete body.reason;
  return body;
}

/** "pods" or "statefulsets.apps": the qualified resource used in messages. */
export function qualified(group: string, resource: string): string {
  return group ? `${resource}.${group}` : resource;
}

/** 404 NotFound for a named object. */
export function notFound(group: string, resource: string, name: string): ApiError {
  return new ApiError(404, 'NotFound', `${qualified(group, resource)} "${name}" not found`, { name, group, kind: resource });
}

/** 409 AlreadyExists. */
export function alreadyExists(group: string, resource: string, name: string): ApiError {
  return new ApiError(409, 'AlreadyExists', `${qualified(group, resource)} "${name}" already exists`, { name, group, kind: resource });
}

/** 409 Conflict on a stale resourceVersion. */
export function conflict(group: string, resource: string, name: string): ApiError {
  return new ApiError(409, 'Conflict',
    `Operation cannot be fulfilled on ${qualified(group, resource)} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    { name, group, kind: resource });
}

/** 422 Invalid with one cause per bad field. */
export function invalid(group: string, kind: string, name: string, causes: { field: string; message: string; reason?: string }[]): ApiError {
  // one error as it is; more as an aggregate, in brackets (apimachinery's NewInvalid)
  const joined = causes.map((c) => `${c.field}: ${c.message}`).join(', ');
  const list = causes.length > 1 ? `[${joined}]` : joined;
  return new ApiError(422, 'Invalid', `${kind}${group ? '.' + group : ''} "${name}" is invalid: ${list}`, {
    name, group, kind,
    causes: causes.map((c) => ({ reason: c.reason ?? 'FieldValueRequired', message: c.message, field: c.field })),
  });
}

/** 400 BadRequest. */
export function badRequest(message: string): ApiError {
  return new ApiError(400, 'BadRequest', message);
}

/** 405 MethodNotAllowed. */
export function methodNotAllowed(message = 'the server does not allow this method on the requested resource'): ApiError {
  return new ApiError(405, 'MethodNotAllowed', message);
}

/** 415 UnsupportedMediaType. */
export function unsupportedMediaType(type: string): ApiError {
  return new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got "${type}")`);
}

/** 410 Gone for a watch or list from a resourceVersion outside the history window. */
export function gone(rv: string): ApiError {
  return new ApiError(410, 'Expired', `too old resource version: ${rv}`);
}
