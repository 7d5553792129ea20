/**
 * Taints and tolerations, as the scheduler judges them (docs: concepts/scheduling-eviction/
 * taint-and-toleration; k8s.io/api/core/v1 Toleration.ToleratesTaint). A pod is kept off a node
 * by a NoSchedule or NoExecute taint it does not tolerate; a cordoned node (spec.unschedulable)
 * keeps off every pod that does not tolerate node.kubernetes.io/unschedulable:NoSchedule (the
 * NodeUnschedulable filter), whether or not the node lifecycle controller has added that taint yet.
 */

export interface Taint { key: string; value?: string; effect: string }
export interface Toleration { key?: string; operator?: string; value?: string; effect?: string }

/** The taint a cordoned node stands for. */
export const UNSCHEDULABLE_TAINT = 'node.kubernetes.io/unschedulable';

/** Whether one toleration tolerates one taint: same effect (or any), then Exists on the key (or every key), or Equal with the value. */
export function tolerates(t: Toleration, taint: Taint): boolean {
  if (t.effect && t.effect !== taint.effect) return false;
  const operator = t.operator ?? 'Equal';
  if (!t.key) return operator === 'Exists';
  if (t.key !== taint.key) return false;
  return operator === 'Exists' || (operator === 'Equal' && (t.value ?? '') === (taint.value ?? ''));
}

/** A node's taints that keep pods off it, with the one its cordon stands for. */
export function schedulingTaints(node: { spec?: { taints?: Taint[]; unschedulable?: boolean } }): Taint[] {
  const taints = (node.spec?.taints ?? []).filter((t) => t.effect === 'NoSchedule' || t.effect === 'NoExecute');
  if (node.spec?.unschedulable && !taints.some((t) => t.key === UNSCHEDULABLE_TAINT)) taints.push({ key: UNSCHEDULABLE_TAINT, effect: 'NoSchedule' });
  return taints;
}

/** The first of `taints` that no toleration tolerates, or undefined. */
export function untolerated(taints: Taint[], tolerations: Toleration[] | undefined): Taint | undefined {
  return taints.find((taint) => !(tolerations ?? []).some((t) => tolerates(t, taint)));
}

/** As kubectl writes a taint: key=value:Effect, or key:Effect. */
export function formatTaint(t: Taint): string {
  return `${t.key}${t.value ? `=${t.value}` : ''}:${t.effect}`;
}
