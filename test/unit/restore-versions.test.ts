import { describe, expect, it } from 'vitest';
import type { EtcdTopology } from '../../src/etcd/topology.js';
import { preflight, PreflightError, type PreflightDeps } from '../../src/restore/preflight.js';
import { compareVersions, type VersionFacts } from '../../src/restore/versions.js';
import { restoreMember } from './restore-support.js';

// Which etcd version may open which snapshot (versions.ts), and how preflight says it.

const same = (v: string) => ({ 'kube-etcd-0': v, 'kube-etcd-1': v, 'kube-etcd-2': v });

describe('compareVersions', () => {
  it.each<[string, VersionFacts, ReturnType<typeof compareVersions>]>([
    ['same minor, other patch', { snapshot: '3.5.9', cluster: '3.5.16', members: same('3.5.16') }, { outcome: 'same', minor: '3.5' }],
    ['a 3.4 snapshot into 3.5: etcd\'s upgrade path', { snapshot: '3.4', cluster: '3.5.16', members: same('3.5.16') }, { outcome: 'upgrade', from: '3.4', to: '3.5' }],
    ['a 3.5 snapshot into 3.4: a downgrade', { snapshot: '3.5', cluster: '3.4.23', members: same('3.4.23') }, { outcome: 'downgrade', from: '3.5', to: '3.4' }],
    ['a 3.6 snapshot into 3.5', { snapshot: '3.6.0', cluster: '3.5.16', members: same('3.5.16') }, { outcome: 'downgrade', from: '3.6', to: '3.5' }],
    ['a 3.3 snapshot into 3.5: two minors at once', { snapshot: '3.3.15', cluster: '3.5.16', members: same('3.5.16') }, { outcome: 'skips-minor', from: '3.3', to: '3.5' }],
    ['a 3.9 snapshot into 3.10 (numbers, not strings)', { snapshot: '3.9.1', cluster: '3.10.0', members: {} }, { outcome: 'upgrade', from: '3.9', to: '3.10' }],
    ['a 3.10 snapshot into 3.9', { snapshot: '3.10.0', cluster: '3.9.1', members: {} }, { outcome: 'downgrade', from: '3.10', to: '3.9' }],
    ['template 3.5, one member still 3.4 (rollout under way)', { snapshot: '3.5', cluster: '3.5.16', members: { 'kube-etcd-0': '3.4.23', 'kube-etcd-1': '3.5.16', 'kube-etcd-2': '3.5.16' } },
      { outcome: 'mixed', template: '3.5', byMinor: { '3.4': ['kube-etcd-0'] } }],
    ['template 3.4, members on 3.5 (a rollback under way), even with a 3.4 snapshot', { snapshot: '3.4', cluster: '3.4.23', members: { 'kube-etcd-0': '3.5.16', 'kube-etcd-1': '3.5.16', 'kube-etcd-2': '3.4.23' } },
      { outcome: 'mixed', template: '3.4', byMinor: { '3.5': ['kube-etcd-0', 'kube-etcd-1'] } }],
    ['a member image that names no version is not counted', { snapshot: '3.5', cluster: '3.5.16', members: { 'kube-etcd-0': undefined, 'kube-etcd-1': '3.5.16' } }, { outcome: 'same', minor: '3.5' }],
    ['snapshot version unknown', { cluster: '3.5.16', members: same('3.5.16') }, { outcome: 'unknown', what: 'snapshot' }],
    ['cluster version unknown', { snapshot: '3.4', members: {} }, { outcome: 'unknown', what: 'cluster' }],
  ])('%s', (_name, facts, want) => expect(compareVersions(facts)).toEqual(want));
});

describe('preflight applies the version rule before the first change', () => {
  const deps: PreflightDeps = {
    checkAccess: async () => [],
    readNode: async () => ({ ready: true, taints: [] }),
    dataPinnedToNode: async () => true,
    run: async () => ({ exitCode: 0, stdout: '', stderr: '' }),
    claimCapacity: async () => undefined,
  };
  const image = (minor: string) => `gcr.io/gke-on-prem-release/etcd:v${minor === '3.4' ? '3.4.23' : '3.5.16'}-0-gke.1`;
  const topology = (minors: string[]): EtcdTopology => ({
    namespace: 'uc1', workload: { kind: 'StatefulSet', name: 'kube-etcd', replicas: minors.length },
    members: minors.map((m, n) => restoreMember(n, { image: image(m) })), image: image(minors[0]!),
  });
  const input = (template: string, running: string[], snapshotVersion: string, force = false) => ({
    topology: topology(running), etcdImage: image(template), quiesce: [], pdbs: [], force,
    snapshot: { path: 's.db', size: 1, sha256: 'ab', revision: 2, totalKey: 2, hasTrailer: true, liveKeys: 1, etcdVersion: snapshotVersion },
  });

  it('goes on with a 3.4 snapshot into 3.5, saying so', async () => {
    const r = await preflight(input('3.5', ['3.5', '3.5', '3.5'], '3.4'), deps);
    expect(r.warnings).toContain('snapshot "s.db" was written by etcd 3.4; statefulset "kube-etcd" runs etcd 3.5.16 (image "gcr.io/gke-on-prem-release/etcd:v3.5.16-0-gke.1") opens it as etcd\'s own upgrade from 3.4 to 3.5 would');
  });

  it('refuses a 3.5 snapshot into 3.4, naming the version to restore into', async () => {
    const run = preflight(input('3.4', ['3.4', '3.4', '3.4'], '3.5.16'), deps);
    await expect(run).rejects.toBeInstanceOf(PreflightError);
    await expect(run).rejects.toThrow('snapshot "s.db" was written by etcd 3.5.16 but statefulset "kube-etcd" runs etcd 3.4.23 (image "gcr.io/gke-on-prem-release/etcd:v3.4.23-0-gke.1"): etcd does not open data of a newer version');
    await expect(run).rejects.toMatchObject({ hint: 'restore into etcd 3.5 (set that image first), or pass --force if you are sure' });
  });

  it('refuses members of another minor than the template, naming them and the rollout', async () => {
    const run = preflight(input('3.5', ['3.4', '3.5', '3.4'], '3.4'), deps);
    await expect(run).rejects.toThrow('statefulset "kube-etcd" is between etcd versions: its template runs 3.5.16 (image "gcr.io/gke-on-prem-release/etcd:v3.5.16-0-gke.1") but "kube-etcd-0", "kube-etcd-2" run 3.4');
    await expect(run).rejects.toMatchObject({ hint: 'let the rollout finish or undo it (kubectl rollout status statefulset/kube-etcd -n uc1), then restore again, or pass --force if you are sure' });
  });

  it.each([['a downgrade', '3.4', ['3.4'], '3.5'], ['a rollout under way', '3.5', ['3.4'], '3.5']])('goes on past %s with --force, warning', async (_n, template, running, snap) => {
    const r = await preflight(input(template, running, snap, true), deps);
    expect(r.warnings.some((w) => w.endsWith('(going on because of --force)'))).toBe(true);
  });
});
