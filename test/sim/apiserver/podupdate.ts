// What an update of a pod through the main resource (PUT or PATCH on pods/NAME) may change, as
// kube-apiserver's ValidatePodUpdate (kubernetes/kubernetes pkg/apis/core/validation/validation.go,
// with ValidateContainerUpdates, validateOnlyAddedTolerations and validateOnlyDeletedSchedulingGates)
// decides it, after the incoming pod has been defaulted (pkg/apis/core/v1/defaults.go) and the
// Priority and DefaultTolerationSeconds admission plugins have run (both act on updates too):
// only `spec.containers[*].image`, `spec.initContainers[*].image`, `spec.activeDeadlineSeconds`
// (set, or lowered), `spec.tolerations` (additions, and tolerationSeconds), `spec.schedulingGates`
// (removals) and `spec.terminationGracePeriodSeconds` (to 1 from a negative value) may change;
// everything else in the spec, `spec.ephemeralContainers` included (they come only through the
// pods/ephemeralcontainers subresource: docs, concepts/workloads/pods/ephemeral-containers), is
// refused with 422 `spec: Forbidden: pod updates may not change fields other than ...`.
// Differences from a real API server: the diff after that message is a JSON rendering of the
// changed spec fields, not Go's cmp.Diff of core.PodSpec; gated pods' nodeSelector/affinity
// relaxations are not modelled (no scheduling gates are served anyway); images are not checked
// for leading or trailing whitespace.
import type { V1PodSpec, V1Toleration } from '@kubernetes/client-node';
import { isObject, type PartialJson } from '../json.js';
import type { FieldError } from './ephemeralcontainers.js';

type Spec = PartialJson<V1PodSpec> & Record<string, unknown>;

const UPDATABLE = [
  '`spec.containers[*].image`',
  '`spec.initContainers[*].image`',
  '`spec.activeDeadlineSeconds`',
  '`spec.tolerations` (only additions to existing tolerations)',
  '`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)',
].join(',');

function canon(v: unknown): string {
  const sort = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(sort);
    if (!isObject(x)) return x;
    return Object.fromEntries(Object.keys(x).sort().filter((k) => x[k] !== undefined && x[k] !== null).map((k) => [k, sort(x[k])]));
  };
  return JSON.stringify(sort(v ?? null));
}

/** What the real server keeps from the old pod when an update leaves it out (admission on update). */
export function carryPodUpdateDefaults(old: Spec, next: Spec): void {
  if (next.priority === undefined && old.priority !== undefined) next.priority = old.priority;
  if (!next.serviceAccountName && next.serviceAccount) next.serviceAccountName = next.serviceAccount;
  if (next.serviceAccountName) next.serviceAccount = next.serviceAccountName;
  const tolerations = (next.tolerations ??= []);
  for (const key of ['node.kubernetes.io/not-ready', 'node.kubernetes.io/unreachable']) {
    if (!tolerations.some((t) => t.key === key)) tolerations.push({ key, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 });
  }
}

function tolerationErrors(next: PartialJson<V1Toleration>[] | undefined, old: PartialJson<V1Toleration>[] | undefined): FieldError[] {
  for (const o of old ?? []) {
    const found = (next ?? []).some((n) => canon({ ...o, tolerationSeconds: n.tolerationSeconds }) === canon(n));
    if (!found) return [{ field: 'spec.tolerations', reason: 'FieldValueForbidden', message: 'Forbidden: existing toleration can not be modified except its tolerationSeconds' }];
  }
  return [];
}

function specDiff(old: Spec, munged: Spec): string {
  const lines = ['  core.PodSpec{'];
  let same = 0;
  for (const k of [...new Set([...Object.keys(old), ...Object.keys(munged)])]) {
    const a = old[k] === undefined ? undefined : JSON.stringify(old[k]);
    const b = munged[k] === undefined ? undefined : JSON.stringify(munged[k]);
    if (canon(old[k]) === canon(munged[k])) { same++; continue; }
    lines.push(`- \t${k}: ${a ?? 'nil'},`, `+ \t${k}: ${b ?? 'nil'},`);
  }
  if (same) lines.push(`  \t... // ${same} identical fields`);
  lines.push('  }');
  return lines.join('\n') + '\n';
}

/** The errors ValidatePodUpdate gives for replacing a pod's spec old by next (both defaulted). */
export function podUpdateErrors(oldSpec: Spec | undefined, nextSpec: Spec | undefined): FieldError[] {
  const old = oldSpec ?? {};
  const next = nextSpec ?? {};
  const errs: FieldError[] = [];
  for (const list of ['containers', 'initContainers'] as const) {
    const n = next[list] ?? [];
    const o = old[list] ?? [];
    if (n.length !== o.length) {
      return [...errs, { field: `spec.${list}`, reason: 'FieldValueForbidden', message: 'Forbidden: pod updates may not add or remove containers' }];
    }
    n.forEach((c, i) => { if (!c.image) errs.push({ field: `spec.${list}[${i}].image`, message: 'Required value' }); });
  }
  const ads = next.activeDeadlineSeconds;
  if (ads !== undefined && ads !== null) {
    if (ads < 0 || ads > 2147483647) return [...errs, { field: 'spec.activeDeadlineSeconds', reason: 'FieldValueInvalid', message: `Invalid value: ${ads}: must be between 0 and 2147483647, inclusive` }];
    if (old.activeDeadlineSeconds !== undefined && old.activeDeadlineSeconds !== null && old.activeDeadlineSeconds < ads) {
      return [...errs, { field: 'spec.activeDeadlineSeconds', reason: 'FieldValueInvalid', message: `Invalid value: ${ads}: must be less than or equal to previous value` }];
    }
  } else if (old.activeDeadlineSeconds !== undefined && old.activeDeadlineSeconds !== null) {
    errs.push({ field: 'spec.activeDeadlineSeconds', reason: 'FieldValueInvalid', message: 'Invalid value: "null": must not update from a positive integer to nil value' });
  }
  errs.push(...tolerationErrors(next.tolerations, old.tolerations));
  const oldGates = new Set((old.schedulingGates ?? []).map((g) => g.name));
  for (const g of next.schedulingGates ?? []) {
    if (!oldGates.has(g.name)) errs.push({ field: 'spec.schedulingGates', reason: 'FieldValueForbidden', message: `Forbidden: only deletion is allowed, but found new scheduling gate '${g.name}'` });
  }
  if (canon(old) === canon(next)) return errs;
  const munged: Spec = structuredClone(next);
  munged.containers = (munged.containers ?? []).map((c, i) => ({ ...c, image: old.containers![i].image })); // same length (checked above)
  if (munged.initContainers) munged.initContainers = munged.initContainers.map((c, i) => ({ ...c, image: old.initContainers![i].image }));
  if (old.activeDeadlineSeconds === undefined) delete munged.activeDeadlineSeconds; else munged.activeDeadlineSeconds = old.activeDeadlineSeconds;
  if (old.schedulingGates === undefined) delete munged.schedulingGates; else munged.schedulingGates = old.schedulingGates;
  if (old.tolerations === undefined) delete munged.tolerations; else munged.tolerations = old.tolerations;
  if ((old.terminationGracePeriodSeconds ?? 0) < 0 && munged.terminationGracePeriodSeconds === 1) munged.terminationGracePeriodSeconds = old.terminationGracePeriodSeconds;
  if (canon(munged) !== canon(old)) {
    errs.push({ field: 'spec', reason: 'FieldValueForbidden', message: `Forbidden: pod updates may not change fields other than ${UPDATABLE}\n${specDiff(old, munged)}` });
  }
  return errs;
}

const MIRROR = 'kubernetes.io/config.mirror';

/**
 * ValidatePodSpecificAnnotationUpdates: the mirror pod annotation (a kubelet's static pod) may not
 * be added, removed or changed by an update — else the kubelet would start the pod a second time.
 */
export function mirrorAnnotationErrors(oldAnnotations: Record<string, string> | undefined, nextAnnotations: Record<string, string> | undefined): FieldError[] {
  const errs: FieldError[] = [];
  for (const [k, v] of Object.entries(oldAnnotations ?? {})) {
    if (k.startsWith(MIRROR) && nextAnnotations?.[k] !== v) errs.push({ field: `metadata.annotations[${k}]`, message: 'Forbidden: may not remove or update mirror pod annotation', reason: 'FieldValueForbidden' });
  }
  for (const k of Object.keys(nextAnnotations ?? {})) {
    if (k.startsWith(MIRROR) && !(k in (oldAnnotations ?? {}))) errs.push({ field: `metadata.annotations[${k}]`, message: 'Forbidden: may not add mirror pod annotation', reason: 'FieldValueForbidden' });
  }
  return errs;
}
