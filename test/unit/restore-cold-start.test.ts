import type { V1Service, V1StatefulSet } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { EtcdMember, EtcdTopology } from '../../src/etcd/topology.js';
import { coldStartHold, probeMayNeedQuorum } from '../../src/restore/cold-start.js';
import { buildRestorePlan } from '../../src/restore/plan.js';
import { abortSteps } from '../../src/restore/steps.js';

const HEALTH = { exec: { command: ['etcdctl', 'endpoint', 'health'] }, periodSeconds: 2 };

function sts(spec: Partial<NonNullable<V1StatefulSet['spec']>> = {}, probes: Record<string, unknown> = { readinessProbe: HEALTH }): V1StatefulSet {
  return {
    metadata: { name: 'kube-etcd', namespace: 'uc1' },
    spec: {
      replicas: 3, serviceName: 'kube-etcd', selector: { matchLabels: { component: 'kube-etcd' } },
      template: { spec: { containers: [{ name: 'kube-etcd', image: 'etcd', ...probes }] } },
      ...spec,
    },
  } as V1StatefulSet;
}

const service = (publish?: boolean): V1Service => ({ metadata: { name: 'kube-etcd' }, spec: { clusterIP: 'None', ...(publish === undefined ? {} : { publishNotReadyAddresses: publish }) } });

describe('probeMayNeedQuorum', () => {
  it.each([
    ['etcdctl endpoint health', HEALTH, true],
    ['a linearizable /health', { httpGet: { path: '/health', port: 2381 } }, true],
    ['/readyz', { httpGet: { path: '/readyz', port: 2381 } }, true],
    ['a serializable /health', { httpGet: { path: '/health?serializable=true', port: 2381 } }, false],
    ['a TCP check', { tcpSocket: { port: 2379 } }, false],
    ['no probe', undefined, false],
  ])('%s: %s', (_what, probe, needs) => {
    expect(probeMayNeedQuorum(probe as never)).toBe(needs);
  });
});

describe('coldStartHold', () => {
  it('holds the readiness probe of an OrderedReady set (the default), naming why', () => {
    const hold = coldStartHold(sts(), 'kube-etcd', service(true));
    expect(hold).toEqual({
      container: 'kube-etcd', probes: { readinessProbe: HEALTH }, updateStrategy: 'RollingUpdate',
      reasons: ['its podManagementPolicy is OrderedReady (pod 1 is created only once pod 0 is Ready)'],
    });
  });

  it('for a Parallel set whose headless Service lists Ready members only, holds the Service (publishing them), not the probe', () => {
    // With peer TLS, etcd admits a peer only when a DNS name of its certificate resolves to its
    // address: a member out of DNS never (re)joins, so no rolling update could put a probe back.
    expect(coldStartHold(sts({ podManagementPolicy: 'Parallel' }), 'kube-etcd', service())).toEqual({
      container: 'kube-etcd', probes: {}, service: 'kube-etcd', updateStrategy: 'RollingUpdate',
      reasons: ['its Service "kube-etcd" does not set publishNotReadyAddresses (members are in DNS only while Ready)'],
    });
  });

  it('holds both under OrderedReady with such a Service', () => {
    expect(coldStartHold(sts(), 'kube-etcd', service(false))).toMatchObject({ probes: { readinessProbe: HEALTH }, service: 'kube-etcd' });
  });

  it.each([
    ['Parallel and publishing not-ready members', sts({ podManagementPolicy: 'Parallel' }), service(true)],
    ['a probe that needs no quorum', sts({}, { readinessProbe: { tcpSocket: { port: 2379 } } }), service()],
    ['no probe at all', sts({}, {}), service()],
    ['a single member', sts({ replicas: 1 }), service()],
  ])('needs no hold with %s', (_what, set, svc) => {
    expect(coldStartHold(set, 'kube-etcd', svc)).toBeUndefined();
  });

  it('holds a startup probe that needs quorum, and keeps a readiness probe that does not', () => {
    const hold = coldStartHold(sts({}, { readinessProbe: { tcpSocket: { port: 2379 } }, startupProbe: HEALTH }), 'kube-etcd', service(true));
    expect(hold?.probes).toEqual({ startupProbe: HEALTH });
  });

  it('records OnDelete and a rolling-update partition (preflight refuses the partition)', () => {
    expect(coldStartHold(sts({ updateStrategy: { type: 'OnDelete' } }), 'kube-etcd', service(true))?.updateStrategy).toBe('OnDelete');
    expect(coldStartHold(sts({ updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 2 } } }), 'kube-etcd', service(true))?.partition).toBe(2);
  });
});

function member(n: number): EtcdMember {
  return {
    pod: `kube-etcd-${n}`, namespace: 'uc1', container: 'kube-etcd', node: `node-${n + 1}`, ordinal: n,
    name: `kube-etcd-${n}`, endpoint: 'https://127.0.0.1:2379', clientPort: 2379,
    peerUrl: `https://kube-etcd-${n}.kube-etcd:2380`, dataDir: '/var/lib/etcd', clientTlsEnabled: false, initialClusterToken: 't',
    dataVolume: { kind: 'pvc', volumeName: 'data', claimName: `data-kube-etcd-${n}`, mountPath: '/var/lib/etcd' },
    image: 'etcd:3.4.23',
  } as EtcdMember;
}

describe('the steps of a restore with held probes', () => {
  const topology: EtcdTopology = {
    namespace: 'uc1', workload: { kind: 'StatefulSet', name: 'kube-etcd', replicas: 2 }, members: [member(0), member(1)], image: 'etcd:3.4.23',
  };
  const plan = (inPlace: boolean) => buildRestorePlan({
    topology, snapshot: { path: 's.db', size: 100, sha256: 'ab', revision: 42, totalKey: 10, hasTrailer: true },
    quiesce: [], pdbs: [], utilityImage: 'etcd:3.4.23', tool: { binary: 'etcdctl' }, stamp: '20261203T210000Z', inPlace,
    coldStart: coldStartHold(sts({ replicas: 2 }), 'kube-etcd', service(true)),
  });
  const ids = (steps: { id: string }[]) => steps.map((s) => s.id).filter((id) => !/\/kube-etcd-/.test(id));

  it('scaled: held right before etcd starts, back once it is Ready', () => {
    expect(ids(plan(false).steps)).toEqual(['journal', 'etcd-stop', 'start-hold', 'etcd-start', 'wait-ready', 'start-release', 'verify', 'finish']);
  });

  it('in place: held right before the pods are deleted at once', () => {
    expect(ids(plan(true).steps)).toEqual(['journal', 'restored', 'start-hold', 'etcd-recreate', 'wait-ready', 'start-release', 'verify', 'finish']);
  });

  it('a roll-back holds them as the old data start and always puts them back', () => {
    const p = plan(false);
    expect(ids(abortSteps(p, ['utility/kube-etcd-0', 'etcd-stop', 'copy/kube-etcd-0', 'restore/kube-etcd-0'])))
      .toEqual(['etcd-stop', 'start-hold', 'etcd-start', 'wait-ready', 'start-release', 'health']);
    expect(abortSteps(p, []).find((s) => s.kind === 'start-release')).toMatchObject({ rollback: true });
    expect(p.steps.find((s) => s.kind === 'start-release')).toMatchObject({ rollback: false });
  });
});
