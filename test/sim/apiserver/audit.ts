// The audit log: one JSON line per request in DIR/audit.log.
// Differences from a real API server: not the audit.k8s.io Event format but the flat
// {ts,user,verb,apiGroup,resource,subresource,namespace,name,code} line the tests read; pod
// streams (exec, port-forward) and writes add requestURI, which a real Event carries for every
// request (an exec's command is in its query; a dry-run write has dryRun=All there). Reads leave
// it out, to keep the log small. A request that admission annotated (Pod Security Admission:
// `pod-security.kubernetes.io/enforce-policy`, `pod-security.kubernetes.io/audit-violations`)
// has them in `annotations`, an object of strings, as a real Event's `annotations`; others have
// no such field. `ts` is when the line was written (the request's end); a pod stream, which may
// last minutes, also has `received`, when it arrived (a real Event's requestReceivedTimestamp).
import { appendFileSync } from 'node:fs';
import type { RequestInfo } from './requestinfo.js';

/** One audit record. */
export interface AuditRecord {
  ts: string;
  user: string;
  verb: string;
  apiGroup: string;
  resource: string;
  subresource: string;
  namespace: string;
  name: string;
  code: number;
  path?: string;
  requestURI?: string;
  annotations?: Record<string, string>;
  received?: string;
}

/** Appends one record for a finished request to the audit file. */
export function writeAudit(file: string, user: string, info: RequestInfo, code: number, requestURI?: string,
  annotations: Record<string, string> = {}, received?: Date): void {
  const rec: AuditRecord = {
    ts: new Date().toISOString(), user, verb: info.verb, apiGroup: info.apiGroup, resource: info.resource,
    subresource: info.subresource, namespace: info.namespace, name: info.name, code,
  };
  if (!info.isResource) rec.path = info.path;
  if (requestURI !== undefined) rec.requestURI = requestURI;
  if (Object.keys(annotations).length) rec.annotations = annotations;
  if (received) rec.received = received.toISOString();
  try { appendFileSync(file, JSON.stringify(rec) + '\n'); } catch { /* the cluster dir is being removed */ }
}
