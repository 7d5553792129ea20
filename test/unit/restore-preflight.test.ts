import { describe, expect, it } from 'vitest';
import type { EtcdTopology } from '../../src/etcd/topology.js';
import { preflight, type PreflightDeps } from '../../src/restore/preflight.js';
import { formatTaint, schedulingTaints, untolerated, type Taint } from '../../src/kube/taints.js';
import { restoreMember } from './restore-support.js';

// Refusals that come before the first change, with fakes for what preflight reads.

const deps: PreflightDeps = {
  checkAccess: async () => [],
  readNode: async () => ({ ready: true, taints: [] }),
  dataPinnedToNode: async () => true,
  run: async () => ({ exitCode: 0, stdout: '', stderr: '' }),
  claimCapacity: async () => undefined,
};

function topology(disasterRecovery: false | string): EtcdTopology {
  const members = [0, 1, 2].map((n) => restoreMember(n, { namespace: 'etcd', name: `etcd-${n}`, pod: `etcd-${n}`, startScripts: { kind: 'bitnami', disasterRecovery } }));
  return { namespace: 'etcd', workload: { kind: 'StatefulSet', name: 'etcd', replicas: 3 }, members, image: 'docker.io/bitnami/etcd:3.4.23' };
}

const snapshot = { path: 's.db', size: 1, sha256: 'ab', revision: 2, totalKey: 2, hasTrailer: true, liveKeys: 1 };

describe('preflight with Bitnami\'s start scripts', () => {
  it.each(['yes', 'True', '1'])('refuses ETCD_DISASTER_RECOVERY=%s, even with --force, saying the value the workload sets: the script would restore its own snapshot over the restored data', async (value) => {
    const run = preflight({ topology: topology(value), etcdImage: 'docker.io/bitnami/etcd:3.4.23', snapshot, quiesce: [], pdbs: [], force: true }, deps);
    await expect(run).rejects.toThrow(new RegExp(`^statefulset "etcd" sets ETCD_DISASTER_RECOVERY=${value}: its start script would restore its own newest snapshot from /snapshots over the restored data of "etcd-0", "etcd-1", "etcd-2"$`));
    await expect(run).rejects.toMatchObject({ hint: expect.stringMatching(/disasterRecovery\.enabled=false/) });
  });

  it('goes on without it', async () => {
    await expect(preflight({ topology: topology(false), etcdImage: 'docker.io/bitnami/etcd:3.4.23', snapshot, quiesce: [], pdbs: [], force: false }, deps)).resolves.toBeDefined();
  });

  // The hook writes member_removal.log beside the data dir; the restore keeps it from running by a
  // directory there, which it can make only on the member's volume.
  const withHook = (mountPath: string): EtcdTopology => {
    const t = topology(false);
    const members = t.members.map((m) => ({
      ...m, dataDir: '/bitnami/etcd/data', preStop: ['/opt/bitnami/scripts/etcd/prestop.sh'],
      dataVolume: { kind: 'pvc' as const, volumeName: 'data', claimName: `data-${m.pod}`, mountPath },
    }));
    return { ...t, members };
  };
  it.each([
    ['/bitnami/etcd', 'goes on'],
    ['/bitnami/etcd/data', 'refuses'],
  ])('with the preStop hook and the volume at %s, %s', async (mountPath, outcome) => {
    const run = preflight({ topology: withHook(mountPath), etcdImage: 'docker.io/bitnami/etcd:3.4.23', snapshot, quiesce: [], pdbs: [], force: false }, deps);
    if (outcome === 'goes on') return expect(run).resolves.toBeDefined();
    await expect(run).rejects.toThrow(/^the preStop hook of "etcd-0", "etcd-1", "etcd-2" removes a stopping member from the cluster and writes its log outside the member's volume/);
    await expect(run).rejects.toMatchObject({ hint: expect.stringMatching(/removeMemberOnContainerTermination=false/) });
  });
});

describe('preflight with ReadWriteOncePod member claims', () => {
  const rwop = (hook: boolean): EtcdTopology => {
    const t = topology(false);
    return { ...t, members: t.members.map((m) => ({
      ...m, dataDir: '/bitnami/etcd/data', ...(hook ? { preStop: ['/opt/bitnami/scripts/etcd/prestop.sh'] } : {}),
      dataVolume: { kind: 'pvc' as const, volumeName: 'data', claimName: `data-${m.pod}`, mountPath: '/bitnami/etcd', readWriteOncePod: true },
    })) };
  };
  const base = { etcdImage: 'docker.io/bitnami/etcd:3.4.23', snapshot, quiesce: [], pdbs: [] };

  it('refuses --in-place, even with --force, naming the claims and the way that works', async () => {
    const run = preflight({ ...base, topology: rwop(false), inPlace: true, force: true }, deps);
    await expect(run).rejects.toThrow(/^--in-place runs a utility pod beside each running member on its claim, and "data-etcd-0", "data-etcd-1", "data-etcd-2" are ReadWriteOncePod/);
    await expect(run).rejects.toMatchObject({ hint: expect.stringMatching(/^restore without --in-place/) });
  });

  it('refuses Bitnami\'s preStop hook there (kept from removing the member only by a utility pod before etcd stops); goes on without it', async () => {
    const run = preflight({ ...base, topology: rwop(true), force: false }, deps);
    await expect(run).rejects.toThrow(/^the preStop hook of "etcd-0", "etcd-1", "etcd-2" must be kept from removing the member before etcd stops/);
    await expect(run).rejects.toMatchObject({ hint: expect.stringMatching(/removeMemberOnContainerTermination=false/) });
    await expect(preflight({ ...base, topology: rwop(false), force: false }, deps)).resolves.toBeDefined();
  });
});

describe('preflight with probes held while the members start', () => {
  const hold = { container: 'etcd', reasons: ['its podManagementPolicy is OrderedReady (pod 1 is created only once pod 0 is Ready)'], probes: { readinessProbe: { tcpSocket: { port: 1 } } }, updateStrategy: 'RollingUpdate' as const };
  it('refuses a rolling-update partition above 0, even with --force: the pods below it would start from the old template, probes and all', async () => {
    const run = preflight({ topology: topology(false), etcdImage: 'docker.io/bitnami/etcd:3.4.23', snapshot, quiesce: [], pdbs: [], force: true, coldStart: { ...hold, partition: 2 } }, deps);
    await expect(run).rejects.toThrow(/^statefulset "etcd" cannot start its members from nothing \(its podManagementPolicy is OrderedReady .*\), and its updateStrategy\.rollingUpdate\.partition 2 keeps pods below 2 on the old template/);
    await expect(run).rejects.toMatchObject({ hint: expect.stringMatching(/"partition":0/) });
  });

  it('goes on without a partition', async () => {
    await expect(preflight({ topology: topology(false), etcdImage: 'docker.io/bitnami/etcd:3.4.23', snapshot, quiesce: [], pdbs: [], force: false, coldStart: hold }, deps)).resolves.toBeDefined();
  });
});

describe('taints and tolerations, as the scheduler judges them', () => {
  const maint: Taint = { key: 'maintenance', value: 'disk', effect: 'NoSchedule' };
  it.each([
    ['Equal with the value', [{ key: 'maintenance', operator: 'Equal', value: 'disk', effect: 'NoSchedule' }], undefined],
    ['Equal by default', [{ key: 'maintenance', value: 'disk' }], undefined],
    ['Exists on the key, any effect', [{ key: 'maintenance', operator: 'Exists' }], undefined],
    ['Exists on every key', [{ operator: 'Exists' }], undefined],
    ['another value', [{ key: 'maintenance', value: 'net' }], maint],
    ['another effect', [{ key: 'maintenance', operator: 'Exists', effect: 'NoExecute' }], maint],
    ['no key and Equal', [{ value: 'disk' }], maint],
    ['none', [], maint],
  ])('%s', (_, tolerations, expected) => {
    expect(untolerated([maint], tolerations)).toEqual(expected);
  });

  it('a cordoned node keeps pods off as the unschedulable taint; PreferNoSchedule does not', () => {
    const taints = schedulingTaints({ spec: { unschedulable: true, taints: [{ key: 'soft', effect: 'PreferNoSchedule' }] } });
    expect(taints.map(formatTaint)).toEqual(['node.kubernetes.io/unschedulable:NoSchedule']);
    expect(schedulingTaints({ spec: { unschedulable: true, taints: [{ key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' }] } })).toHaveLength(1);
  });
});

describe('preflight: the pods a restore puts on a member\'s node will be scheduled there', () => {
  const base = { topology: topology(false), etcdImage: 'docker.io/bitnami/etcd:3.4.23', snapshot, quiesce: [], pdbs: [], force: false };
  const onNode = (taints: Taint[], pinned: boolean | undefined): PreflightDeps => ({
    ...deps,
    readNode: async (node) => ({ ready: true, taints: node === 'node-1' ? taints : [] }),
    dataPinnedToNode: async () => pinned,
  });
  const memberPod = (tolerations: unknown[]) => ({ spec: { tolerations } });

  it('refuses, even with --force, a taint that came after the member was scheduled: its utility pod would stay Pending', async () => {
    const run = preflight({ ...base, force: true, memberPod: memberPod([]) }, onNode([{ key: 'maintenance', value: 'disk', effect: 'NoSchedule' }], true));
    await expect(run).rejects.toThrow(/^node "node-1" of member "etcd-1" has taint maintenance=disk:NoSchedule, which the member's pod does not tolerate \(it came after the member was scheduled\): the utility pod, which has the member's tolerations, would never be scheduled there$/);
    await expect(run).rejects.toMatchObject({ hint: expect.stringMatching(/^remove the taint \(kubectl taint node node-1 maintenance=disk:NoSchedule-\) for the restore, or add a toleration for it to statefulset "etcd"'s pod template .*nothing was changed$/) });
  });

  it('goes on when the member tolerates the taint (the utility pod has its tolerations)', async () => {
    const tolerating = topology(false);
    tolerating.members.forEach((m) => { m.podFacts = { tolerations: [{ key: 'maintenance', operator: 'Exists' }] }; });
    const r = await preflight({ ...base, topology: tolerating, memberPod: memberPod([{ key: 'maintenance', operator: 'Exists' }]) }, onNode([{ key: 'maintenance', value: 'disk', effect: 'NoSchedule' }], true));
    expect(r.warnings.join('\n')).not.toMatch(/node-1/);
  });

  it('refuses a cordoned node holding the member\'s data: the utility pod would run, the member would never come back', async () => {
    const run = preflight({ ...base, memberPod: memberPod([]) }, onNode([{ key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' }], true));
    await expect(run).rejects.toThrow(/^statefulset "etcd" could not start member "etcd-1" again after the restore stops it: node "node-1" is cordoned, which its pods do not tolerate, and the member's data is bound to that node$/);
    await expect(run).rejects.toMatchObject({ hint: 'uncordon it (kubectl uncordon node-1) for the restore, then restore again; nothing was changed' });
  });

  it('refuses when it cannot tell whether the data can move; warns when it can', async () => {
    const cordoned: Taint[] = [{ key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' }];
    await expect(preflight({ ...base, memberPod: memberPod([]) }, onNode(cordoned, undefined))).rejects.toThrow(/whether the member's data can move to another node could not be read$/);
    const r = await preflight({ ...base, memberPod: memberPod([]) }, onNode(cordoned, false));
    expect(r.warnings).toContain('node "node-1" of member "etcd-1" is cordoned: the member will start on another node after the restore (its volume can move)');
  });
});

describe('preflight: a member that runs as its image\'s non-root user (runAsNonRoot without runAsUser)', () => {
  const nonRoot = (): EtcdTopology => {
    const t = topology(false);
    t.members.forEach((m) => { m.podFacts = { podSecurityContext: { runAsNonRoot: true } }; });
    return t;
  };
  const base = { etcdImage: 'docker.io/bitnami/etcd:3.4.23', snapshot, quiesce: [], pdbs: [], force: false };
  const answering = (ids: string | undefined): PreflightDeps => ({
    ...deps,
    run: async (_target, argv) => (argv.join(' ').includes('id -u') ? (ids ? { exitCode: 0, stdout: `${ids}\n`, stderr: '' } : { exitCode: 1, stdout: '', stderr: 'unable to upgrade connection' }) : { exitCode: 0, stdout: '', stderr: '' }),
  });

  it('with another utility image: asks the member who it runs as', async () => {
    const r = await preflight({ ...base, topology: nonRoot(), utilityImage: 'busybox:1.36' }, answering('1001:1001'));
    expect(r.memberIds).toEqual({ 'etcd-0': { uid: 1001, gid: 1001 }, 'etcd-1': { uid: 1001, gid: 1001 }, 'etcd-2': { uid: 1001, gid: 1001 } });
  });

  it('refuses when the member cannot be asked', async () => {
    const run = preflight({ ...base, topology: nonRoot(), utilityImage: 'busybox:1.36' }, answering(undefined));
    await expect(run).rejects.toThrow(/^member "etcd-0" runs as the non-root user its image "etcd:3.4" sets \(runAsNonRoot without runAsUser\) and could not be asked which one/);
    await expect(run).rejects.toMatchObject({ hint: expect.stringMatching(/^set runAsUser in statefulset "etcd"'s securityContext, or pass --utility-image etcd:3.4; nothing was changed/) });
  });

  it('with its own image as the utility image: nothing to ask (the pod runs as the image\'s user too)', async () => {
    const t = nonRoot();
    t.members.forEach((m) => { m.image = 'docker.io/bitnami/etcd:3.4.23'; });
    const r = await preflight({ ...base, topology: t }, answering(undefined));
    expect(r.memberIds).toEqual({});
  });
});

describe('preflight: a member whose pod is gone', () => {
  const gone = (): EtcdTopology => {
    const t = topology(false);
    const { node: _, ...rest } = t.members[2]!;
    return { ...t, members: [t.members[0]!, t.members[1]!, { ...rest, pod: undefined as unknown as string }] };
  };
  const base = { etcdImage: 'docker.io/bitnami/etcd:3.4.23', snapshot, quiesce: [], pdbs: [], force: false };
  it('goes on, warning, when its volume can move (a cloud disk: the scheduler places the utility pod by the volume\'s zone)', async () => {
    const r = await preflight({ ...base, topology: gone() }, { ...deps, dataPinnedToNode: async () => false });
    expect(r.warnings).toContain('member "etcd-2" has no pod and its volume is not bound to one node: its utility pod goes where the scheduler can attach the volume');
  });
  it.each([[true], [undefined]])('refuses when the volume is bound to a node it cannot name, or cannot be read (pinned: %s)', async (pinned) => {
    await expect(preflight({ ...base, topology: gone() }, { ...deps, dataPinnedToNode: async () => pinned })).rejects.toThrow(/^member "etcd-2" has no known node$/);
  });
});
