// The sim's Pod Security Admission (test/sim/apiserver/podsecurity.ts): the levels, the checks and
// the real server's wording (docs: concepts/security/pod-security-admission; messages as
// k8s.io/pod-security-admission prints them, e.g. for a pod that sets nothing:
// violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (...), ...).
import { describe, expect, it } from 'vitest';
import { admitPod, enforcedLevel, podSecurityViolations } from '../sim/apiserver/podsecurity.js';
import { ApiError } from '../sim/apiserver/status.js';

const plain = { containers: [{ name: 'nginx' }] };
const compliant = {
  securityContext: { runAsNonRoot: true, runAsUser: 1001, fsGroup: 1001, seccompProfile: { type: 'RuntimeDefault' } },
  containers: [{ name: 'etcd', securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } } }],
  volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data-etcd-0' } }],
};

describe('sim Pod Security Admission', () => {
  it('reads the enforce label; no label or an unknown value is privileged', () => {
    expect(enforcedLevel(undefined)).toEqual({ level: 'privileged', version: 'latest' });
    expect(enforcedLevel({ 'pod-security.kubernetes.io/enforce': 'restricted', 'pod-security.kubernetes.io/enforce-version': 'v1.31' })).toEqual({ level: 'restricted', version: 'v1.31' });
    expect(enforcedLevel({ 'pod-security.kubernetes.io/warn': 'restricted' }).level).toBe('privileged');
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
