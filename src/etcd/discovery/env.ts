/**
 * A container's environment as the kubelet would build it, resolved from the pod object alone:
 * literal values with `$(VAR)` expansion, and downward-API fields. References to Secrets and
 * ConfigMaps cannot be resolved from the pod and are reported instead.
 */
import type { V1Container, V1Pod } from '@kubernetes/client-node';

/** Resolved variables plus what could not be resolved from the pod spec. */
export interface ContainerEnv {
  vars: Map<string, string>;
  /** Human-readable notes, e.g. `env ETCD_NAME comes from secret "x" key "y" (not resolved)`. */
  unresolved: string[];
}

/** Expands Kubernetes `$(VAR)` references; `$$` escapes; unknown references stay as written. */
export function expandKubeVars(text: string, vars: ReadonlyMap<string, string>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (all, name: string | undefined) => {
    if (all === '$$') return '$';
    return vars.get(name!) ?? all;
  });
}

/** The value of a downward-API field path of the pod, when the pod object has it. */
export function podField(pod: V1Pod, fieldPath: string): string | undefined {
  const label = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(fieldPath);
  if (label) return (label[1] === 'labels' ? pod.metadata?.labels : pod.metadata?.annotations)?.[label[2]!];
  switch (fieldPath) {
    case 'metadata.name': return pod.metadata?.name;
    case 'metadata.namespace': return pod.metadata?.namespace;
    case 'metadata.uid': return pod.metadata?.uid;
    case 'spec.nodeName': return pod.spec?.nodeName;
    case 'spec.serviceAccountName': return pod.spec?.serviceAccountName;
    case 'status.podIP': return pod.status?.podIP;
    case 'status.hostIP': return pod.status?.hostIP;
    default: return undefined;
  }
}

/** Builds the container's env in declaration order, as the kubelet does. */
export function containerEnv(pod: V1Pod, container: V1Container): ContainerEnv {
  const vars = new Map<string, string>();
  const unresolved: string[] = [];
  for (const src of container.envFrom ?? []) {
    const from = src.secretRef ? `secret "${src.secretRef.name}"` : `configmap "${src.configMapRef?.name}"`;
    unresolved.push(`envFrom ${from} (not resolved)`);
  }
  for (const e of container.env ?? []) {
    if (e.value !== undefined) vars.set(e.name, expandKubeVars(e.value, vars));
    else if (e.valueFrom?.fieldRef) {
      const v = podField(pod, e.valueFrom.fieldRef.fieldPath);
      if (v !== undefined) vars.set(e.name, v);
      else unresolved.push(`env ${e.name} is field ${e.valueFrom.fieldRef.fieldPath}, not known yet`);
    } else if (e.valueFrom?.secretKeyRef) {
      unresolved.push(`env ${e.name} comes from secret "${e.valueFrom.secretKeyRef.name}" key "${e.valueFrom.secretKeyRef.key}" (not resolved)`);
    } else if (e.valueFrom?.configMapKeyRef) {
      unresolved.push(`env ${e.name} comes from configmap "${e.valueFrom.configMapKeyRef.name}" key "${e.valueFrom.configMapKeyRef.key}" (not resolved)`);
    } else if (e.valueFrom?.resourceFieldRef) {
      unresolved.push(`env ${e.name} is resource field ${e.valueFrom.resourceFieldRef.resource} (not resolved)`);
    } else vars.set(e.name, '');
  }
  return { vars, unresolved };
}
