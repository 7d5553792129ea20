/**
 * Label selectors, node selector terms and tolerations, as the API defines them.
 *
 * Differs from apimachinery: invalid selectors are not rejected, they simply match nothing
 * (Gt/Lt with a non-integer value, unknown operators).
 */
import type { V1LabelSelector, V1Node, V1NodeSelectorTerm, V1Taint, V1Toleration } from '@kubernetes/client-node';

type Labels = Record<string, string> | undefined;

/** Whether `labels` satisfy a metav1.LabelSelector (an empty selector matches everything). */
export function matchesLabelSelector(selector: V1LabelSelector | undefined, labels: Labels): boolean {
  if (!selector) return false;
  const l = labels ?? {};
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (l[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(l, e.key);
    const values = e.values ?? [];
    switch (e.operator) {
      case 'In':
        if (!has || !values.includes(l[e.key])) return false;
        break;
      case 'NotIn':
        if (has && values.includes(l[e.key])) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}

/** Whether `labels` contain every key/value of a plain map selector (nodeSelector). */
export function matchesMap(selector: Record<string, string> | undefined, labels: Labels): boolean {
  const l = labels ?? {};
  return Object.entries(selector ?? {}).every(([k, v]) => l[k] === v);
}

/** Whether a node matches any of the terms (terms are ORed, expressions within a term ANDed). */
export function matchesNodeSelectorTerms(terms: V1NodeSelectorTerm[] | undefined, node: V1Node): boolean {
  if (!terms || terms.length === 0) return false;
  const labels = node.metadata?.labels ?? {};
  const fields: Record<string, string> = { 'metadata.name': node.metadata?.name ?? '' };
  return terms.some((t) => {
    const exprs = t.matchExpressions ?? [];
    const fieldExprs = t.matchFields ?? [];
    if (exprs.length === 0 && fieldExprs.length === 0) return false;
    return exprs.every((e) => requirementHolds(e.operator, labels, e.key, e.values)) &&
      fieldExprs.every((e) => requirementHolds(e.operator, fields, e.key, e.values));
  });
}

function requirementHolds(op: string, labels: Record<string, string>, key: string, values: string[] = []): boolean {
  const has = Object.prototype.hasOwnProperty.call(labels, key);
  const v = labels[key];
  switch (op) {
    case 'In':
      return has && values.includes(v);
    case 'NotIn':
      return !has || !values.includes(v);
    case 'Exists':
      return has;
    case 'DoesNotExist':
      return !has;
    case 'Gt':
    case 'Lt': {
      if (!has || values.length !== 1 || !/^-?\d+$/.test(v) || !/^-?\d+$/.test(values[0])) return false;
      return op === 'Gt' ? Number(v) > Number(values[0]) : Number(v) < Number(values[0]);
    }
    default:
      return false;
  }
}

/** Whether one toleration tolerates one taint (key, operator, value and effect rules). */
export function tolerates(t: V1Toleration, taint: V1Taint): boolean {
  if (t.effect && t.effect !== taint.effect) return false;
  if (!t.key) return t.operator === 'Exists';
  if (t.key !== taint.key) return false;
  if (t.operator === 'Exists') return true;
  return (t.value ?? '') === (taint.value ?? '');
}

/** The first NoSchedule/NoExecute taint that no toleration tolerates, if any. */
export function untoleratedTaint(taints: V1Taint[], tolerations: V1Toleration[] | undefined): V1Taint | undefined {
  return taints
    .filter((t) => t.effect === 'NoSchedule' || t.effect === 'NoExecute')
    .find((taint) => !(tolerations ?? []).some((tol) => tolerates(tol, taint)));
}
