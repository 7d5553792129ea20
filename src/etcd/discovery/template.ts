/**
 * Pods as the StatefulSet controller creates them from a template: name `<sts>-<N>`, the
 * `statefulset.kubernetes.io/pod-name` label, owner reference, hostname and subdomain, and one
 * PVC volume `<template>-<sts>-<N>` per volumeClaimTemplate. Discovery uses it when a
 * StatefulSet has no pods (scaled to 0 during a restore); tests use it to turn fixtures into pods.
 */
import type { V1LabelSelector, V1Pod, V1StatefulSet } from '@kubernetes/client-node';

/** A label selector in the string form `kubectl -l` and the list API accept. */
export function labelSelectorString(sel: V1LabelSelector | undefined): string {
  const parts = Object.entries(sel?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of sel?.matchExpressions ?? []) {
    const values = (e.values ?? []).join(',');
    if (e.operator === 'In') parts.push(`${e.key} in (${values})`);
    else if (e.operator === 'NotIn') parts.push(`${e.key} notin (${values})`);
    else if (e.operator === 'Exists') parts.push(e.key);
    else if (e.operator === 'DoesNotExist') parts.push(`!${e.key}`);
  }
  return parts.join(',');
}

/** The pod a StatefulSet would create for `ordinal` (no status; node unknown). */
export function podFromStatefulSet(sts: V1StatefulSet, ordinal: number): V1Pod {
  const name = sts.metadata?.name ?? '';
  const podName = `${name}-${ordinal}`;
  const template = structuredClone(sts.spec?.template ?? {});
  const claims = (sts.spec?.volumeClaimTemplates ?? []).map((t) => t.metadata?.name ?? '');
  const volumes = (template.spec?.volumes ?? []).filter((v) => !claims.includes(v.name));
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      ...template.metadata,
      name: podName,
      namespace: sts.metadata?.namespace,
      labels: { ...template.metadata?.labels, 'statefulset.kubernetes.io/pod-name': podName, 'apps.kubernetes.io/pod-index': String(ordinal) },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name, uid: sts.metadata?.uid ?? '', controller: true }],
    },
    spec: {
      ...template.spec!,
      containers: template.spec?.containers ?? [],
      hostname: podName,
      subdomain: sts.spec?.serviceName,
      volumes: [...claims.map((c) => ({ name: c, persistentVolumeClaim: { claimName: `${c}-${name}-${ordinal}` } })), ...volumes],
    },
  };
}
