// Restore proves its utility pods admitted before the first change (src/restore/admission.ts):
// the first refusal stops it with one line naming pod, member and the cluster's reason, and a way
// out fitted to what refused it.
import { describe, expect, it } from 'vitest';
import type { EtcdMember, EtcdTopology } from '../../src/etcd/topology.js';
import { admissionHint, admitMemberPod, admitUtilityPods } from '../../src/restore/admission.js';
import { buildRestorePlan } from '../../src/restore/plan.js';
import { PreflightError } from '../../src/restore/preflight.js';

function member(n: number): EtcdMember {
  return {
    pod: `etcd-${n}`, namespace: 'etcd', container: 'etcd', node: `node-${n + 1}`, ordinal: n,
    name: `etcd-${n}`, endpoint: 'http://127.0.0.1:2379', clientPort: 2379,
    peerUrl: `http://etcd-${n}.etcd-headless:2380`, dataDir: '/bitnami/etcd/data', clientTlsEnabled: false, initialClusterToken: 't',
    dataVolume: { kind: 'pvc', volumeName: 'data', claimName: `data-etcd-${n}`, mountPath: '/bitnami/etcd' },
    image: 'bitnami/etcd:3.5.16',
  } as EtcdMember;
}

const topology: EtcdTopology = { namespace: 'etcd', workload: { kind: 'StatefulSet', name: 'etcd', replicas: 2 }, members: [member(0), member(1)], image: 'bitnami/etcd:3.5.16' };
const plan = buildRestorePlan({
  topology, snapshot: { path: 's.db', size: 100, sha256: 'ab', revision: 42, totalKey: 10, hasTrailer: true },
  quiesce: [], pdbs: [], utilityImage: 'bitnami/etcd:3.5.16', tool: { binary: 'etcdutl', bumpRevision: 1_000_000_000 }, stamp: '20261204T030000Z', inPlace: false,
});
const PSS = 'pods "etcd-utility-etcd-1" is forbidden: violates PodSecurity "restricted:latest": runAsUser=0 (container "etcd-utility" must not set runAsUser=0)';

describe('admitUtilityPods', () => {
  it('asks for every member\'s pod and passes when all are admitted', async () => {
    const asked: string[] = [];
    await admitUtilityPods(plan, { admitPod: async (m) => { asked.push(m.metadata.name); return undefined; } });
    expect(asked).toEqual(plan.members.map((m) => m.utilityPod.metadata.name));
  });

  it('stops at the first refusal with one line naming the pod, the member and the reason, and the level that admits it', async () => {
    const err = await admitUtilityPods(plan, { admitPod: async (m) => (m.metadata.name.endsWith('1') ? PSS : undefined) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PreflightError);
    expect((err as Error).message).toBe(`the cluster would refuse utility pod "${plan.members[1]!.utilityPod.metadata.name}" for member "etcd-1": ${PSS}`);
    expect((err as PreflightError).hint).toContain('kubectl label namespace etcd pod-security.kubernetes.io/enforce=baseline --overwrite');
  });

  it.each([
    ['violates PodSecurity "baseline:latest": hostPath volumes (volume "data")', 'pod-security.kubernetes.io/enforce=privileged'],
    ['pods "x" is forbidden: exceeded quota: q, requested: pods=1, used: pods=4, limited: pods=4', 'kubectl describe resourcequota -n etcd'],
    ['admission webhook "policy.example.com" denied the request: no root', 'fix what the cluster names'],
  ])('hint for %s', (refusal, hint) => {
    expect(admissionHint(refusal, 'etcd')).toContain(hint);
    expect(admissionHint(refusal, 'etcd')).toMatch(/nothing was changed$/);
  });
});

describe('admitMemberPod', () => {
  const pod = { ...plan.members[0]!.utilityPod, metadata: { name: 'etcd-0', namespace: 'etcd', labels: {} } };

  it('passes when the StatefulSet\'s pod is admitted, and when only the quota\'s usage refuses it (the running member it replaces still counts)', async () => {
    await admitMemberPod(plan, pod, { admitPod: async () => undefined });
    await admitMemberPod(plan, pod, { admitPod: async () => 'pods "etcd-0" is forbidden: exceeded quota: compute, requested: pods=1, used: pods=3, limited: pods=3' });
  });

  it('refuses in one line naming the StatefulSet, its pod and the reason, with the way out', async () => {
    const why = 'pods "etcd-0" is forbidden: violates PodSecurity "baseline:latest": hostPort (container "etcd" uses hostPort 2379)';
    const err = await admitMemberPod(plan, pod, { admitPod: async () => why }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PreflightError);
    expect((err as Error).message).toBe(`statefulset "etcd" could not start its members again after the restore stops them: the cluster would refuse its pod "etcd-0": ${why}`);
    expect((err as PreflightError).hint).toMatch(/^the running members were admitted before that rule; .*kubectl edit statefulset etcd -n etcd.*nothing was changed$/);
  });
});
