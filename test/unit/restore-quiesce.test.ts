import { describe, expect, it } from 'vitest';
import type { V1Deployment, V1PodDisruptionBudget, V1StatefulSet } from '@kubernetes/client-node';
import { discoverTopology } from '../../src/etcd/discovery/index.js';
import { etcdServersOf, findQuiesceTargets, parseQuiesceRef, selectorMatches } from '../../src/restore/quiesce.js';
import { imageTagVersion, minorOf } from '../../src/restore/snapshot.js';
import { quantityBytes, restoreAccessChecks, restoreBaseAccessChecks, spaceNeeded } from '../../src/restore/preflight.js';
import { ANTHOS_OPTIONS, anthosManifests, placeholderAnthosCerts } from '../sim/fixtures/anthos.js';
import { fixtureLister } from '../sim/fixtures/pods.js';

// Quiesce detection on the anthos fixture's own manifests: kube-apiserver is found through its
// --etcd-servers, the maintenance Deployment only when asked for, and the PDB by its selector.
const objects = anthosManifests(ANTHOS_OPTIONS, placeholderAnthosCerts());
const of = <T>(kind: string) => objects.filter((o) => o.kind === kind) as unknown as T[];

describe('findQuiesceTargets (anthos fixture)', async () => {
  const topology = await discoverTopology(fixtureLister(objects), { namespace: 'uc1' });
  const workloads = { statefulSets: of<V1StatefulSet>('StatefulSet'), deployments: of<V1Deployment>('Deployment'), pdbs: of<V1PodDisruptionBudget>('PodDisruptionBudget') };

  it('detects kube-apiserver by --etcd-servers and lifts the PDB that selects it', () => {
    const r = findQuiesceTargets(topology, workloads, []);
    expect(r.quiesce).toEqual([{ kind: 'StatefulSet', name: 'kube-apiserver', replicas: 3, reason: 'detected' }]);
    expect(r.pdbs.map((p) => p.name)).toEqual(['kube-apiserver-pdb']);
    expect(r.pdbs[0]!.manifest).toMatchObject({ kind: 'PodDisruptionBudget', spec: { minAvailable: 2 } });
  });

  it('adds a --quiesce workload and refuses an unknown one', () => {
    const r = findQuiesceTargets(topology, workloads, [parseQuiesceRef('deployment/gke-master-etcd-maintenance')]);
    expect(r.quiesce.map((q) => `${q.kind}/${q.name}/${q.reason}`)).toEqual(['StatefulSet/kube-apiserver/detected', 'Deployment/gke-master-etcd-maintenance/flag']);
    expect(() => findQuiesceTargets(topology, workloads, [parseQuiesceRef('sts/nope')])).toThrow(/statefulset "nope" not found/);
  });

  it('ignores writers of another etcd', () => {
    const other = structuredClone(workloads);
    const c = other.statefulSets.find((s) => s.metadata?.name === 'kube-apiserver')!.spec!.template.spec!.containers[0]!;
    c.args = ['--etcd-servers=https://other-etcd-0.other-etcd:2379'];
    expect(findQuiesceTargets(topology, other, []).quiesce).toEqual([]);
  });
});

describe('small parsers', () => {
  it.each([
    ['deployment/x', { kind: 'Deployment', name: 'x' }],
    ['deploy/x', { kind: 'Deployment', name: 'x' }],
    ['sts/kube-apiserver', { kind: 'StatefulSet', name: 'kube-apiserver' }],
  ])('parseQuiesceRef(%s)', (v, want) => expect(parseQuiesceRef(v)).toEqual(want));
  it('parseQuiesceRef refuses a bare name', () => expect(() => parseQuiesceRef('x')).toThrow(/not kind\/name/));

  it('reads --etcd-servers in both spellings', () => {
    expect(etcdServersOf({ spec: { containers: [{ name: 'a', command: ['kube-apiserver', '--etcd-servers', 'https://a:2379,https://b:2379'] }] } })).toEqual(['https://a:2379', 'https://b:2379']);
  });

  it.each([
    [{ matchLabels: { a: '1' } }, { a: '1', b: '2' }, true],
    [{ matchLabels: { a: '1' } }, { a: '2' }, false],
    [{ matchExpressions: [{ key: 'a', operator: 'In', values: ['1', '2'] }] }, { a: '2' }, true],
    [{ matchExpressions: [{ key: 'a', operator: 'DoesNotExist' }] }, { a: '2' }, false],
  ])('selectorMatches(%j, %j) = %s', (sel, labels, want) => expect(selectorMatches(sel, labels)).toBe(want));

  it.each([
    ['gcr.io/gke-on-prem-release/etcd:v3.4.23-0-gke.1', '3.4.23'],
    ['docker.io/bitnami/etcd:3.5.9-debian-11-r0', '3.5.9'],
    ['registry.k8s.io/etcd:3.5.12-0', '3.5.12'],
    ['localhost:5000/etcd', undefined],
    ['etcd:latest', undefined],
  ])('imageTagVersion(%s)', (image, want) => expect(imageTagVersion(image)).toBe(want));

  it('minorOf', () => {
    expect(minorOf('3.4.23')).toBe('3.4');
    expect(minorOf('3.5')).toBe('3.5');
    expect(minorOf(undefined)).toBeUndefined();
  });

  it('quantities and the space a restore needs', () => {
    expect(quantityBytes('512Mi')).toBe(512 * 2 ** 20);
    expect(quantityBytes('1G')).toBe(1e9);
    expect(quantityBytes('lots')).toBeUndefined();
    expect(spaceNeeded(10 * 2 ** 20)).toBeGreaterThan(20 * 2 ** 20 + 64 * 2 ** 20);
  });

  it('asks for the PDB permissions only when there are PDBs to lift', async () => {
    const topology = await discoverTopology(fixtureLister(objects), { namespace: 'uc1' });
    const without = restoreAccessChecks('uc1', topology, [], []).map((c) => `${c.verb} ${c.resource}`);
    const withPdb = restoreAccessChecks('uc1', topology, [], [{ name: 'p', manifest: {} }]).map((c) => `${c.verb} ${c.resource}`);
    expect(without).not.toContain('delete poddisruptionbudgets');
    expect(withPdb).toContain('delete poddisruptionbudgets');
    expect(restoreBaseAccessChecks('uc1').map((c) => `${c.verb} ${c.resource}`)).toContain('create pods');
  });
});
