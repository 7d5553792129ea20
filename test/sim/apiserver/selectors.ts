// Label and field selectors as list and watch take them in the query string, and LabelSelector
// objects as PodDisruptionBudgets hold them.
// Differences from a real API server: field selectors accept any dotted path on any resource
// (real servers allow only a per-resource list and reject others with 400).
import type { V1LabelSelector } from '@kubernetes/client-node';
import type { Json } from '../json.js';
import { badRequest } from './status.js';

/** What a selector looks at: the labels, or (field selectors) any dotted path of the object. */
export interface Selectable {
  metadata?: { labels?: Record<string, string> };
}

/** A parsed selector: true when an object matches. */
export type Matcher = (obj: Selectable) => boolean;

interface Req { key: string; op: 'in' | 'notin' | 'exists' | '!exists' | '=' | '!='; values: string[] }

function splitTopLevel(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) { out.push(cur); cur = ''; } else cur += ch;
  }
  if (cur.trim()) out.push(cur);
  return out.map((p) => p.trim()).filter(Boolean);
}

function parseLabelRequirement(part: string): Req {
  let m = /^([^\s!=()]+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(part);
  if (m) return { key: m[1], op: m[2] as 'in' | 'notin', values: m[3].split(',').map((v) => v.trim()).filter(Boolean) };
  m = /^([^\s!=]+)\s*(==|!=|=)\s*([^\s]*)$/.exec(part);
  if (m) return { key: m[1], op: m[2] === '!=' ? '!=' : '=', values: [m[3]] };
  m = /^!\s*([^\s!=()]+)$/.exec(part);
  if (m) return { key: m[1], op: '!exists', values: [] };
  m = /^([^\s!=()]+)$/.exec(part);
  if (m) return { key: m[1], op: 'exists', values: [] };
  throw badRequest(`unable to parse requirement: ${JSON.stringify(part)}`);
}

function matches(req: Req, value: string | undefined): boolean {
  switch (req.op) {
    case 'exists': return value !== undefined;
    case '!exists': return value === undefined;
    case '=': return value === req.values[0];
    case '!=': return value !== req.values[0];
    case 'in': return value !== undefined && req.values.includes(value);
    case 'notin': return value === undefined || !req.values.includes(value);
  }
}

/** Parses a labelSelector query value (=, ==, !=, in, notin, exists, !key). */
export function parseLabelSelector(selector: string | null): Matcher {
  if (!selector) return () => true;
  const reqs = splitTopLevel(selector).map(parseLabelRequirement);
  return (obj) => reqs.every((r) => matches(r, obj?.metadata?.labels?.[r.key]));
}

function fieldValue(obj: Selectable, path: string): string | undefined {
  let cur: unknown = obj;
  for (const p of path.split('.')) cur = (cur as Record<string, unknown> | null | undefined)?.[p];
  if (cur === undefined || cur === null) return path === 'spec.nodeName' || path === 'status.phase' ? '' : undefined;
  return String(cur);
}

/** Parses a fieldSelector query value (=, ==, != on dotted paths such as metadata.name, spec.nodeName). */
export function parseFieldSelector(selector: string | null): Matcher {
  if (!selector) return () => true;
  const reqs = splitTopLevel(selector).map((part) => {
    const m = /^([^\s!=]+)\s*(==|!=|=)\s*(.*)$/.exec(part);
    if (!m) throw badRequest(`invalid selector: '${selector}'; can't understand '${part}'`);
    return { path: m[1], neg: m[2] === '!=', value: m[3] };
  });
  return (obj) => reqs.every((r) => (fieldValue(obj, r.path) === r.value) !== r.neg);
}

/** Matches a metav1.LabelSelector object (matchLabels and matchExpressions); an empty selector matches all. */
export function labelSelectorMatcher(sel: Json<V1LabelSelector> | undefined): Matcher {
  if (!sel) return () => false;
  const reqs: Req[] = Object.entries(sel.matchLabels ?? {}).map(([key, v]) => ({ key, op: '=' as const, values: [String(v)] }));
  for (const e of sel.matchExpressions ?? []) {
    const op = ({ In: 'in', NotIn: 'notin', Exists: 'exists', DoesNotExist: '!exists' } as const)[e.operator as 'In'];
    if (op) reqs.push({ key: e.key, op, values: e.values ?? [] });
  }
  return (obj) => reqs.every((r) => matches(r, obj?.metadata?.labels?.[r.key]));
}

/** The query-string form of a LabelSelector object, as Scale status.selector reports it. */
export function labelSelectorString(sel: Json<V1LabelSelector> | undefined): string {
  const parts = Object.entries(sel?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of sel?.matchExpressions ?? []) {
    if (e.operator === 'In') parts.push(`${e.key} in (${(e.values ?? []).join(',')})`);
    if (e.operator === 'NotIn') parts.push(`${e.key} notin (${(e.values ?? []).join(',')})`);
    if (e.operator === 'Exists') parts.push(e.key);
    if (e.operator === 'DoesNotExist') parts.push(`!${e.key}`);
  }
  return parts.join(',');
}
