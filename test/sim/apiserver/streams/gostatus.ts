// metav1.Status bodies for the exec status channel, serialized byte-for-byte as Go's
// encoding/json writes them (field order of the Go struct, empty fields omitted, `<`, `>`, `&`,
// U+2028 and U+2029 escaped).
// Differences from a real API server: none known for the statuses built here.

/** One metav1.StatusCause; `reason` is the Go field Type. */
export interface StatusCause { reason?: string; message?: string; field?: string }

/** The subset of metav1.Status the stream protocols carry. */
export interface StreamStatus {
  status: 'Success' | 'Failure';
  message?: string;
  reason?: string;
  causes?: StatusCause[];
  code?: number;
}

/** Encodes a status exactly like `json.Marshal(metav1.Status{...})` in Go. */
export function marshalStatus(s: StreamStatus): string {
  const body: Record<string, unknown> = { metadata: {}, status: s.status };
  if (s.message) body.message = s.message;
  if (s.reason) body.reason = s.reason;
  if (s.causes?.length) {
    body.details = {
      causes: s.causes.map((c) => {
        const out: Record<string, string> = {};
        if (c.reason) out.reason = c.reason;
        if (c.message) out.message = c.message;
        if (c.field) out.field = c.field;
        return out;
      }),
    };
  }
  if (s.code) body.code = s.code;
  return goEscape(JSON.stringify(body));
}

/** Applies the extra escaping Go's encoding/json performs on top of JSON.stringify. */
export function goEscape(json: string): string {
  return json.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The status a successful command ends with. */
export function successStatus(): StreamStatus {
  return { status: 'Success' };
}

/** A non-zero exit, worded as the stream translator (v5) or the runtime's server (v4) word it. */
export function nonZeroExitStatus(code: number, argv: string[], via: 'translator' | 'runtime'): StreamStatus {
  const inner = via === 'translator'
    ? `command terminated with exit code ${code}`
    : `error executing command [${argv.join(' ')}], exit code ${code}`;
  return {
    status: 'Failure',
    message: `command terminated with non-zero exit code: ${inner}`,
    reason: 'NonZeroExitCode',
    causes: [{ reason: 'ExitCode', message: String(code) }],
  };
}

/** apierrors.NewInternalError(err) as a status. */
export function internalErrorStatus(err: string): StreamStatus {
  return {
    status: 'Failure',
    message: `Internal error occurred: ${err}`,
    reason: 'InternalError',
    causes: [{ message: err }],
    code: 500,
  };
}

/** The text the pre-v4 protocols put on the error channel (nothing for success). */
export function legacyStatusText(s: StreamStatus): string {
  return s.status === 'Success' ? '' : (s.message ?? '');
}
