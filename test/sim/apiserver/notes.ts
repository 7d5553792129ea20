// What a request carries besides its answer, as kube-apiserver's request context does: who made it
// and the annotations admission adds, for its audit line (audit.ts), and the warnings admission
// adds, sent to the client as HTTP `Warning` headers the moment they are recorded (as the warning
// recorder of k8s.io/apiserver/pkg/endpoints/filters/warning.go does), so they go out with any
// answer, a refusal by a later plugin included. A header is written as
// k8s.io/apimachinery/pkg/util/net's NewWarningHeader writes it: `299 - "TEXT"`, with `"` and `\`
// escaped; kubectl prints each as `Warning: TEXT` on stderr. The same text twice is sent once.
// Differences from a real API server: no limit on the number or length of warnings (a real server
// truncates past its limits).
import type { ServerResponse } from 'node:http';
import type { AdmissionNotes } from './podsecurity.js';

/** The Warning header value for a warning's text. */
export function warningHeader(text: string): string {
  return `299 - "${text.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/** One request's audit subject and admission notes; warnings go straight into res's headers. */
export class RequestNotes implements AdmissionNotes {
  /** The user the audit line names: anonymous until the request is authenticated. */
  user = 'system:anonymous';
  /** The audit annotations admission added. */
  readonly annotations: Record<string, string> = {};
  private readonly warned = new Set<string>();

  constructor(private readonly res: ServerResponse) {}

  warn(text: string): void {
    if (this.warned.has(text) || this.res.headersSent) return;
    this.warned.add(text);
    // UTF-8 bytes as a latin1 string: Node writes header values byte by byte
    this.res.appendHeader('Warning', Buffer.from(warningHeader(text), 'utf8').toString('latin1'));
  }

  annotate(key: string, value: string): void {
    this.annotations[key] = value;
  }
}
