// The sim's Pod Security Admission (test/sim/apiserver/podsecurity.ts): the levels, the checks and
// the real server's wording (docs: concepts/security/pod-security-admission; messages as
// k8s.io/pod-security-admission prints them, e.g. for a pod that sets nothing:
// violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (...), ...), its three
// modes (admission.go's EvaluatePod), and the Warning header the sim sends (notes.ts).
import { describe, expect, it } from 'vitest';
import { admitPod, admitWorkload, evaluatePodSecurity, namespacePolicy, podSecurityViolations, workloadPodSpec } from '../sim/apiserver/podsecurity.js';
import { warningHeader } from '../sim/apiserver/notes.js';
import { ApiError } from '../sim/apiserver/status.js';

const plain = { containers: [{ name: 'nginx' }] };
const compliant = {
  securityContext: { runAsNonRoot: true, runAsUser: 1001, fsGroup: 1001, seccompProfile: { type: 'RuntimeDefault' } },
  containers: [{ name: 'etcd', securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } } }],
  volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data-etcd-0' } }],
};

describe('sim Pod Security Admission', () => {
  it('reads each mode from its own labels; no label or an unknown value is privileged', () => {
    const privileged = { level: 'privileged', version: 'latest' };
    expect(namespacePolicy(undefined)).toEqual({ enforce: privileged, audit: privileged, warn: privileged });
    expect(namespacePolicy({
      'pod-security.kubernetes.io/enforce': 'baseline', 'pod-security.kubernetes.io/enforce-version': 'v1.31',
      'pod-security.kubernetes.io/warn': 'restricted', 'pod-security.kubernetes.io/audit': 'strict',
    })).toEqual({ enforce: { level: 'baseline', version: 'v1.31' }, audit: privileged, warn: { level: 'restricted', version: 'latest' } });
  });

  it('a pod that sets nothing breaks restricted with the four reasons of the real server, and passes baseline', () => {
    expect(podSecurityViolations('restricted', plain)).toEqual([
      'allowPrivilegeEscalation != false (container "nginx" must set securityContext.allowPrivilegeEscalation=false)',
      'unrestricted capabilities (container "nginx" must set securityContext.capabilities.drop=["ALL"])',
      'runAsNonRoot != true (pod or container "nginx" must set securityContext.runAsNonRoot=true)',
      'seccompProfile (pod or container "nginx" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")',
    ]);
    expect(podSecurityViolations('baseline', plain)).toEqual([]);
    expect(podSecurityViolations('privileged', { ...plain, hostNetwork: true })).toEqual([]);
  });

  it('names several containers in one detail, as "containers "a", "b""', () => {
    const v = podSecurityViolations('restricted', { containers: [{ name: 'web' }, { name: 'log' }] });
    expect(v[0]).toBe('allowPrivilegeEscalation != false (containers "web", "log" must set securityContext.allowPrivilegeEscalation=false)');
  });

  it('a non-root member with fsGroup, no privilege escalation, all capabilities dropped and RuntimeDefault seccomp passes restricted', () => {
    expect(podSecurityViolations('restricted', compliant)).toEqual([]);
  });

  it('root, hostPath, host namespaces, privileged and added capabilities are each named', () => {
    const spec = {
      hostPID: true,
      securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [{ name: 'u', securityContext: { runAsUser: 0, privileged: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'], add: ['SYS_ADMIN'] } } }],
      volumes: [{ name: 'data', hostPath: { path: '/var/lib/etcd' } }],
    };
    expect(podSecurityViolations('baseline', spec)).toEqual([
      'non-default capabilities (container "u" must not include "SYS_ADMIN" in securityContext.capabilities.add)',
      'host namespaces (hostPID=true)',
      'hostPath volumes (volume "data")',
      'privileged (container "u" must not set securityContext.privileged=true)',
    ]);
    expect(podSecurityViolations('restricted', spec)).toEqual([
      'unrestricted capabilities (container "u" must not include "SYS_ADMIN" in securityContext.capabilities.add)',
      'host namespaces (hostPID=true)',
      'privileged (container "u" must not set securityContext.privileged=true)',
      'restricted volume types (volume "data" uses restricted volume type "hostPath")',
      'runAsUser=0 (container "u" must not set runAsUser=0)',
    ]);
  });

  it('refuses with 403 Forbidden and the real message', () => {
    let err: unknown;
    try { admitPod({ 'pod-security.kubernetes.io/enforce': 'restricted' }, 'p', plain); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe(403);
    expect((err as ApiError).message).toMatch(/^pods "p" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false \(container "nginx" must set/);
    expect(() => admitPod({ 'pod-security.kubernetes.io/enforce': 'restricted' }, 'p', compliant)).not.toThrow();
  });
});

const RESTRICTED_PLAIN = 'allowPrivilegeEscalation != false (container "nginx" must set securityContext.allowPrivilegeEscalation=false), '
  + 'unrestricted capabilities (container "nginx" must set securityContext.capabilities.drop=["ALL"]), '
  + 'runAsNonRoot != true (pod or container "nginx" must set securityContext.runAsNonRoot=true), '
  + 'seccompProfile (pod or container "nginx" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")';
const hostPid = { ...plain, hostPID: true };

describe('sim Pod Security Admission: enforce, audit and warn', () => {
  const policy = (labels: Record<string, string>) => namespacePolicy(Object.fromEntries(Object.entries(labels).map(([k, v]) => [`pod-security.kubernetes.io/${k}`, v])));

  it.each([
    ['warn only: admitted with the warning, annotated with the (privileged) enforce policy', { warn: 'restricted' }, plain, {
      warnings: [`would violate PodSecurity "restricted:latest": ${RESTRICTED_PLAIN}`],
      auditAnnotations: { 'pod-security.kubernetes.io/enforce-policy': 'privileged:latest' },
    }],
    ['audit only: the audit-violations annotation, no warning', { audit: 'restricted', 'audit-version': 'v1.30' }, plain, {
      warnings: [],
      auditAnnotations: {
        'pod-security.kubernetes.io/enforce-policy': 'privileged:latest',
        'pod-security.kubernetes.io/audit-violations': `would violate PodSecurity "restricted:v1.30": ${RESTRICTED_PLAIN}`,
      },
    }],
    ['each mode at its own level: baseline enforce admits, restricted warns, baseline audit is clean', { enforce: 'baseline', warn: 'restricted', audit: 'baseline' }, plain, {
      warnings: [`would violate PodSecurity "restricted:latest": ${RESTRICTED_PLAIN}`],
      auditAnnotations: { 'pod-security.kubernetes.io/enforce-policy': 'baseline:latest' },
    }],
    ['enforce refuses: no warning, the audit annotations all the same', { enforce: 'baseline', warn: 'baseline', audit: 'baseline' }, hostPid, {
      refusal: 'violates PodSecurity "baseline:latest": host namespaces (hostPID=true)',
      warnings: [],
      auditAnnotations: {
        'pod-security.kubernetes.io/enforce-policy': 'baseline:latest',
        'pod-security.kubernetes.io/audit-violations': 'would violate PodSecurity "baseline:latest": host namespaces (hostPID=true)',
      },
    }],
    ['every mode privileged: nothing at all', {}, hostPid, { warnings: [], auditAnnotations: {} }],
  ])('a pod, %s', (_, labels, spec, verdict) => {
    expect(evaluatePodSecurity(policy(labels), spec, 'pod')).toEqual(verdict);
  });

  it('a pod template is never refused and gets no enforce-policy: enforce alone does nothing to it', () => {
    expect(evaluatePodSecurity(policy({ enforce: 'restricted' }), plain, 'template')).toEqual({ warnings: [], auditAnnotations: {} });
    expect(evaluatePodSecurity(policy({ enforce: 'restricted', warn: 'baseline', audit: 'restricted' }), hostPid, 'template')).toEqual({
      warnings: ['would violate PodSecurity "baseline:latest": host namespaces (hostPID=true)'],
      auditAnnotations: { 'pod-security.kubernetes.io/audit-violations': expect.stringMatching(/^would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false /) },
    });
  });

  it.each([
    ['apps', 'deployments', { spec: { template: { spec: plain } } }, plain],
    ['apps', 'statefulsets', { spec: { template: { spec: plain } } }, plain],
    ['batch', 'jobs', { spec: { template: { spec: plain } } }, plain],
    ['batch', 'cronjobs', { spec: { jobTemplate: { spec: { template: { spec: plain } } } } }, plain],
    ['batch', 'cronjobs', { spec: { template: { spec: plain } } }, undefined],
    ['', 'services', { spec: { template: { spec: plain } } }, undefined],
  ])('finds the pod spec of %s/%s where PodSpecExtractor does', (group, resource, obj, spec) => {
    expect(workloadPodSpec(group, resource, obj)).toEqual(spec);
  });

  it('records warnings and annotations in the request notes; admitPod still refuses', () => {
    const notes = { warnings: [] as string[], annotations: {} as Record<string, string>,
      warn(t: string) { this.warnings.push(t); }, annotate(k: string, v: string) { this.annotations[k] = v; } };
    admitWorkload({ 'pod-security.kubernetes.io/warn': 'baseline' }, 'apps', 'deployments', { spec: { template: { spec: hostPid } } }, notes);
    expect(notes.warnings).toEqual(['would violate PodSecurity "baseline:latest": host namespaces (hostPID=true)']);
    expect(() => admitPod({ 'pod-security.kubernetes.io/enforce': 'baseline', 'pod-security.kubernetes.io/audit': 'baseline' }, 'p', hostPid, notes))
      .toThrow('pods "p" is forbidden: violates PodSecurity "baseline:latest": host namespaces (hostPID=true)');
    expect(notes.annotations['pod-security.kubernetes.io/audit-violations']).toBe('would violate PodSecurity "baseline:latest": host namespaces (hostPID=true)');
  });

  it('writes the Warning header as kube-apiserver does: code 299, agent "-", quoted text with " and \\ escaped', () => {
    expect(warningHeader('would violate PodSecurity "restricted:latest": x')).toBe('299 - "would violate PodSecurity \\"restricted:latest\\": x"');
    expect(warningHeader('a\\b')).toBe('299 - "a\\\\b"');
  });
});
