import { describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { restoreMember } from './restore-support.js';
import { Journal, type JournalState, type JournalStore } from '../../src/restore/journal.js';
import { buildRestorePlan } from '../../src/restore/plan.js';
import { abortRestore, runRestorePlan, type RestoreCluster, type RunnerDeps } from '../../src/restore/runner.js';

// Pure control-flow tests of the runner with a recording fake cluster: which steps run, in which
// order, and that a resumed run does each remaining step exactly once. The real cluster paths are
// covered by test/e2e/restore*.test.ts.

const member = (n: number) => restoreMember(n);

const plan = buildRestorePlan({
  topology: { namespace: 'uc1', workload: { kind: 'StatefulSet', name: 'kube-etcd', replicas: 2 }, members: [member(0), member(1)], image: 'etcd:3.4', initialClusterToken: 't' },
  snapshot: { path: 's.db', size: 3, sha256: 'abc', revision: 5, totalKey: 5, hasTrailer: true },
  quiesce: [{ kind: 'StatefulSet', name: 'kube-apiserver', replicas: 3, reason: 'detected' }],
  pdbs: [{ name: 'pdb', manifest: { metadata: { name: 'pdb' } } }],
  utilityImage: 'etcd:3.4', tool: { binary: 'etcdctl' }, stamp: 'S', inPlace: false,
});

function memoryStore(): JournalStore & { state?: JournalState } {
  const store: JournalStore & { state?: JournalState } = {
    describe: () => 'memory',
    load: async () => (store.state ? structuredClone(store.state) : undefined),
    save: async (s) => { store.state = structuredClone(s); },
    remove: async () => { store.state = undefined; },
  };
  return store;
}

function harness(failOn?: string, atRisk: string[] = []) {
  const calls: string[] = [];
  let replicas = 2;
  const copied = new Set<string>();
  let failed = false;
  const cluster: RestoreCluster = {
    getReplicas: async () => replicas,
    scale: async (kind, name, n) => { calls.push(`scale ${kind}/${name}=${n}`); if (name === 'kube-etcd') replicas = n; },
    scaleDown: async (name, n) => { calls.push(`scale-down ${name}=${n}`); if (name === 'kube-etcd') replicas = n; },
    createPodAndWait: async (m) => { calls.push(`create ${m.metadata.name}`); },
    admitPod: async () => undefined,
    deletePodAndWait: async (name) => { calls.push(`delete ${name}`); },
    recreatePods: async (names) => { calls.push(`recreate ${names.join(',')}`); },
    waitPodsReady: async (names) => { calls.push(`ready ${names.join(',')}`); },
    deletePdb: async (name) => { calls.push(`delete-pdb ${name}`); },
    createPdb: async () => { calls.push('create-pdb'); },
    setClaimRetention: async (name, policy) => { calls.push(`retention ${name} whenScaled=${policy.whenScaled} whenDeleted=${policy.whenDeleted}`); },
    claimsAtRisk: async () => atRisk,
    setProbes: async (name, container, probes) => { calls.push(`probes ${name}/${container} ${JSON.stringify(probes)}`); },
    waitRolledOut: async (name) => { calls.push(`rolled out ${name}`); },
    setPublishNotReady: async (name, publish) => { calls.push(`publish ${name}=${publish}`); },
  };
  const store = memoryStore();
  const deps: RunnerDeps = {
    cluster,
    pods: {
      run: async ({ pod }, argv) => {
        const key = `${pod} ${argv[0]} ${argv[1] ?? ''}`.trim();
        if (failOn && key.startsWith(failOn) && !failed) { failed = true; throw new Error('killed'); }
        calls.push(`exec ${key}`);
        if (argv[0] === 'sha256sum') return { exitCode: copied.has(pod) ? 0 : 1, stdout: copied.has(pod) ? 'abc  x\n' : '', stderr: '' };
        return { exitCode: 0, stdout: '', stderr: '' };
      },
      // a long command runs as a plain one here; the restore's clearing shell (sh -c 'rm … && exec "$@"' sh DIR ARGV…) is dropped
      runLong: (t, argv) => deps.pods.run(t, argv[0] === 'sh' && argv[2]?.startsWith('rm -rf') ? argv.slice(5) : argv),
      settleLong: async () => undefined,
      copyIn: async ({ pod }) => { calls.push(`copy ${pod}`); copied.add(pod); },
    },
    verifier: { verify: async () => ({ ok: true, problems: [], summary: {} }) },
    journal: new Journal([store], () => new Date()),
    log: { step: () => undefined, info: () => undefined, warn: (m: string) => { calls.push(`warn ${m}`); } },
    openSnapshot: () => Readable.from(['abc']),
    now: () => 0,
  };
  const state: JournalState = {
    version: 4, stamp: 'S', namespace: 'uc1', workload: 'kube-etcd', snapshot: { path: 's.db', sha256: 'abc', revision: 5, totalKey: 5 },
    etcdReplicas: 2, quiesce: plan.quiesce, pdbs: plan.pdbs, done: [], phase: 'running', plan, startedAt: '', updatedAt: '',
  };
  return { calls, deps, state, store, setReplicas: (n: number) => { replicas = n; } };
}

describe('runRestorePlan', () => {
  it('quiesces, stops etcd, restores each member, starts etcd and brings everything back', async () => {
    const h = harness();
    await runRestorePlan(plan, h.state, h.deps);
    const c = h.calls;
    expect(c.indexOf('delete-pdb pdb')).toBeLessThan(c.indexOf('scale StatefulSet/kube-apiserver=0'));
    expect(c.indexOf('create etcd-utility-1')).toBeLessThan(c.indexOf('scale StatefulSet/kube-etcd=0'));
    expect(c.indexOf('scale StatefulSet/kube-etcd=0')).toBeLessThan(c.indexOf('copy etcd-utility-0'));
    expect(c.filter((x) => x.startsWith('copy '))).toHaveLength(2);
    expect(c.filter((x) => x.includes('etcdctl snapshot'))).toHaveLength(2);
    expect(c.indexOf('delete etcd-utility-1')).toBeLessThan(c.indexOf('scale StatefulSet/kube-etcd=2'));
    expect(c.slice(-2)).toEqual(['scale StatefulSet/kube-apiserver=3', 'create-pdb']);
    expect(h.store.state).toBeUndefined(); // the journal is closed at the end
  });

  it('resumes after a crash mid-restore without repeating finished steps', async () => {
    const h = harness('etcd-utility-1 etcdctl snapshot');
    await expect(runRestorePlan(plan, h.state, h.deps)).rejects.toThrow('killed');
    const before = h.calls.length;
    const resumed = (await h.deps.journal.load())!;
    await runRestorePlan(plan, resumed, h.deps);
    const after = h.calls.slice(before);
    expect(after).not.toContain('scale StatefulSet/kube-apiserver=0');
    expect(after).not.toContain('copy etcd-utility-1');
    expect(after).toContain('exec etcd-utility-1 etcdctl snapshot');
    expect(after.filter((x) => x === 'exec etcd-utility-0 etcdctl snapshot')).toHaveLength(0);
  });

  it('a resumed run starts again the utility pods an earlier run started, before it uses them', async () => {
    const h = harness();
    h.setReplicas(0);
    h.state.done.push('journal', 'pdb-delete/pdb', 'quiesce/StatefulSet/kube-apiserver', 'utility/kube-etcd-0', 'utility/kube-etcd-1', 'etcd-stop');
    await runRestorePlan(plan, h.state, h.deps);
    const c = h.calls;
    for (const n of [0, 1]) {
      expect(c.indexOf(`create etcd-utility-${n}`)).toBeGreaterThan(-1);
      expect(c.indexOf(`create etcd-utility-${n}`)).toBeLessThan(c.indexOf(`copy etcd-utility-${n}`));
    }
    expect(c.filter((x) => x === 'create etcd-utility-0')).toHaveLength(1);
  });

  it('stops with a clear error when etcd is scaled back up behind its back', async () => {
    const h = harness();
    const copyIn = h.deps.pods.copyIn;
    h.deps.pods.copyIn = async (...args) => { await copyIn(...args); h.setReplicas(3); };
    await expect(runRestorePlan(plan, h.state, h.deps)).rejects.toThrow(/statefulset "kube-etcd" was scaled back to 3/);
  });
});

describe('abortRestore', () => {
  it('puts the old data back on every member and restores replicas and PDBs', async () => {
    const h = harness('etcd-utility-0 sh -ec');
    await expect(runRestorePlan(plan, h.state, h.deps)).rejects.toThrow();
    const state = (await h.deps.journal.load())!;
    h.calls.length = 0;
    await abortRestore(plan, state, h.deps);
    expect(h.calls).toContain('scale StatefulSet/kube-etcd=2');
    expect(h.calls.filter((c) => /exec etcd-utility-\d sh -ec/.test(c))).toHaveLength(2);
    expect(h.calls).toContain('scale StatefulSet/kube-apiserver=3');
    expect(h.calls).toContain('create-pdb');
    expect(h.store.state).toBeUndefined();
  });
});

describe('failures', () => {
  it('names every member that failed, not only the first (E5)', async () => {
    const h = harness();
    const run = h.deps.pods.run;
    h.deps.pods.run = async (t, argv) =>
      argv[0] === 'etcdctl' ? { exitCode: 2, stdout: '', stderr: `disk of ${t.pod} is full\n` } : run(t, argv);
    const err = await runRestorePlan(plan, h.state, h.deps).then(() => undefined, (e: unknown) => e as Error & { hint?: string });
    expect(err?.message).toBe(
      '2 members failed: etcdctl snapshot restore failed in pod "etcd-utility-0" (exit code 2): disk of etcd-utility-0 is full; ' +
        'etcdctl snapshot restore failed in pod "etcd-utility-1" (exit code 2): disk of etcd-utility-1 is full',
    );
    expect(err?.hint).toMatch(/--resume/);
  });

  it('names every member whose roll-back failed (E5)', async () => {
    const h = harness();
    h.state.done.push('utility/kube-etcd-0', 'utility/kube-etcd-1', 'etcd-stop');
    h.deps.cluster.createPodAndWait = async (m) => { throw new Error(`node of ${m.metadata.name} is gone`); };
    await expect(abortRestore(plan, h.state, h.deps)).rejects.toThrow('2 members failed: node of etcd-utility-0 is gone; node of etcd-utility-1 is gone');
  });

  it('refuses to scale a quiesced workload the journal has no replica count for, instead of guessing 1 (E6)', async () => {
    const h = harness();
    h.state.quiesce = [];
    await expect(runRestorePlan(plan, h.state, h.deps)).rejects.toThrow('the restore journal has no replica count for statefulset "kube-apiserver"');
    expect(h.calls).not.toContain('scale StatefulSet/kube-apiserver=1');
  });
});

describe('a cause shared by every member', () => {
  it('is reported once, as it is, when etcd is scaled back up under all members at once', async () => {
    const h = harness();
    h.deps.cluster.scale = async (kind, name, n) => { h.calls.push(`scale ${kind}/${name}=${n}`); if (name === 'kube-etcd') h.setReplicas(n === 0 ? 3 : n); };
    await expect(runRestorePlan(plan, h.state, h.deps)).rejects.toThrow(/^statefulset "kube-etcd" was scaled back to 3 while the restore ran/);
  });
});

describe('--in-place', () => {
  const inPlace = buildRestorePlan({
    topology: { namespace: 'uc1', workload: { kind: 'StatefulSet', name: 'kube-etcd', replicas: 2 }, members: [member(0), member(1)], image: 'etcd:3.4', initialClusterToken: 't' },
    snapshot: { path: 's.db', size: 3, sha256: 'abc', revision: 5, totalKey: 5, hasTrailer: true },
    quiesce: [{ kind: 'StatefulSet', name: 'kube-apiserver', replicas: 3, reason: 'detected' }],
    pdbs: [],
    utilityImage: 'etcd:3.4', tool: { binary: 'etcdctl' }, stamp: 'S', inPlace: true,
  });

  it('never scales etcd: swaps every member, then deletes the etcd pods at once before anything else', async () => {
    const h = harness();
    h.state.plan = inPlace;
    await runRestorePlan(inPlace, h.state, h.deps);
    const c = h.calls;
    expect(c.filter((x) => x.startsWith('scale StatefulSet/kube-etcd'))).toEqual([]);
    const lastSwap = Math.max(...c.map((x, i) => (/exec etcd-utility-\d sh -ec/.test(x) ? i : -1)));
    const recreate = c.indexOf('recreate kube-etcd-0,kube-etcd-1');
    expect(lastSwap).toBeGreaterThan(0);
    // Right after the last swap's own commands (chown/rm/sync in the same step), nothing else in between.
    expect(c.slice(lastSwap + 1, recreate).every((x) => /exec etcd-utility-\d (rm|sync|chown)/.test(x))).toBe(true);
    expect(c.indexOf('delete etcd-utility-0')).toBeGreaterThan(recreate);
    expect(c.indexOf('ready kube-etcd-0,kube-etcd-1')).toBeGreaterThan(recreate);
  });

  it('is not stopped by something scaling etcd (that is what it is for)', async () => {
    const h = harness();
    h.state.plan = inPlace;
    h.deps.cluster.createPodAndWait = async () => { h.setReplicas(3); };
    await expect(runRestorePlan(inPlace, h.state, h.deps)).resolves.toBeDefined();
  });

  it('rolls back without scaling etcd: old data back, then the etcd pods deleted at once', async () => {
    const h = harness('etcd-utility-1 sh -ec');
    h.state.plan = inPlace;
    await expect(runRestorePlan(inPlace, h.state, h.deps)).rejects.toThrow();
    const state = (await h.deps.journal.load())!;
    h.calls.length = 0;
    await abortRestore(inPlace, state, h.deps);
    expect(h.calls.filter((x) => x.startsWith('scale StatefulSet/kube-etcd'))).toEqual([]);
    expect(h.calls.indexOf('recreate kube-etcd-0,kube-etcd-1')).toBeGreaterThan(Math.max(...h.calls.map((x, i) => (/exec etcd-utility-\d sh -ec/.test(x) ? i : -1))));
    expect(h.calls).toContain('scale StatefulSet/kube-apiserver=3');
  });
});

describe('the end of an --abort', () => {
  it('checks the members\' health only (not the snapshot\'s keys) and reports unhealthy without throwing', async () => {
    const h = harness('etcd-utility-0 sh -ec');
    await expect(runRestorePlan(plan, h.state, h.deps)).rejects.toThrow();
    const state = (await h.deps.journal.load())!;
    const asked: unknown[] = [];
    h.deps.verifier = { verify: async (_p, opts) => { asked.push(opts); return { ok: false, problems: ['member "kube-etcd-1" is unhealthy (x)'], summary: {} }; } };
    const outcome = await abortRestore(plan, state, h.deps);
    expect(asked).toEqual([{ healthOnly: true }]);
    expect(outcome).toEqual({ healthy: false, problems: ['member "kube-etcd-1" is unhealthy (x)'] });
    expect(h.store.state).toBeUndefined();
  });

  it('warns, naming the copy, when the journal cannot be removed at the end of a restore', async () => {
    const h = harness();
    h.deps.journal.remove = async () => ['configmap "j" in namespace "uc1" (forbidden)'];
    await runRestorePlan(plan, h.state, h.deps);
    expect(h.calls.filter((x) => x.startsWith('warn '))).toEqual([
      'warn the work is done but the restore journal could not be removed from configmap "j" in namespace "uc1" (forbidden); run `kubectl etcd restore --resume` to close it, or the next restore refuses to start',
    ]);
  });
});

describe('review-2 fixes', () => {
  it('an --abort gives pods only to members whose utility pod ran, checks health before the API servers come back', async () => {
    const h = harness();
    h.state.done.push('journal', 'pdb-delete/pdb', 'quiesce/StatefulSet/kube-apiserver', 'utility/kube-etcd-0');
    h.deps.verifier = { verify: async () => { h.calls.push('verify'); return { ok: true, problems: [], summary: {} }; } };
    await abortRestore(plan, h.state, h.deps);
    expect(h.calls).toContain('create etcd-utility-0');
    expect(h.calls).not.toContain('create etcd-utility-1');
    // Nothing was restored yet: etcd is not stopped to move data back.
    expect(h.calls).not.toContain('scale StatefulSet/kube-etcd=0');
    expect(h.calls.filter((c) => /exec etcd-utility-0 rm -rf/.test(c))).toHaveLength(1);
    expect(h.calls.indexOf('verify')).toBeLessThan(h.calls.indexOf('scale StatefulSet/kube-apiserver=3'));
  });

  it('records the restore as finished before removing its journal', async () => {
    const h = harness();
    const phases: string[] = [];
    const save = h.deps.journal.save.bind(h.deps.journal);
    h.deps.journal.save = async (st) => { phases.push(st.phase); await save(st); };
    h.deps.journal.remove = async () => ['configmap "j" in namespace "uc1" (forbidden)'];
    await runRestorePlan(plan, h.state, h.deps);
    expect(phases.at(-1)).toBe('finished');
  });
});

describe('a StatefulSet whose claims are deleted when it scales down (whenScaled: Delete)', () => {
  const deleting = buildRestorePlan({
    topology: {
      namespace: 'uc1', members: [member(0), member(1)], image: 'etcd:3.4', initialClusterToken: 't',
      workload: { kind: 'StatefulSet', name: 'kube-etcd', replicas: 2, claimRetention: { whenScaled: 'Delete', whenDeleted: 'Retain' } },
    },
    snapshot: { path: 's.db', size: 3, sha256: 'abc', revision: 5, totalKey: 5, hasTrailer: true },
    quiesce: [], pdbs: [], utilityImage: 'etcd:3.4', tool: { binary: 'etcdctl' }, stamp: 'S', inPlace: false,
  });

  it('sets whenScaled to Retain before scaling etcd to 0, and back to Delete once the members run again', async () => {
    const h = harness();
    h.state.plan = deleting;
    await runRestorePlan(deleting, h.state, h.deps);
    const c = h.calls;
    const hold = c.indexOf('retention kube-etcd whenScaled=Retain whenDeleted=Retain');
    const back = c.indexOf('retention kube-etcd whenScaled=Delete whenDeleted=Retain');
    expect(hold).toBeGreaterThan(-1);
    expect(hold).toBeLessThan(c.indexOf('scale StatefulSet/kube-etcd=0'));
    expect(back).toBeGreaterThan(c.indexOf('ready kube-etcd-0,kube-etcd-1'));
  });

  it('stops before scaling etcd when a member claim is already being deleted', async () => {
    const h = harness(undefined, ['data-kube-etcd-1']);
    h.state.plan = deleting;
    await expect(runRestorePlan(deleting, h.state, h.deps)).rejects.toThrow(/^persistentvolumeclaim "data-kube-etcd-1" of statefulset "kube-etcd" is being deleted or owned by a pod; etcd was not stopped/);
    expect(h.calls).not.toContain('scale StatefulSet/kube-etcd=0');
  });

  it('a roll-back holds the claims before it scales etcd to 0, and puts the policy back', async () => {
    const h = harness();
    h.state.plan = deleting;
    h.state.done.push('utility/kube-etcd-0', 'retention-hold', 'etcd-stop', 'copy/kube-etcd-0', 'restore/kube-etcd-0');
    await abortRestore(deleting, h.state, h.deps);
    const c = h.calls;
    expect(c.indexOf('retention kube-etcd whenScaled=Retain whenDeleted=Retain')).toBeLessThan(c.indexOf('scale StatefulSet/kube-etcd=0'));
    expect(c.lastIndexOf('retention kube-etcd whenScaled=Delete whenDeleted=Retain')).toBeGreaterThan(c.indexOf('scale StatefulSet/kube-etcd=2'));
  });

  it('in place nothing is scaled, so the policy is left alone', () => {
    const p = buildRestorePlan({ ...deletingInput(), inPlace: true });
    expect(p.steps.map((st) => st.kind)).not.toContain('retention-hold');
  });

  function deletingInput() {
    return {
      topology: {
        namespace: 'uc1', members: [member(0)], image: 'etcd:3.4', initialClusterToken: 't',
        workload: { kind: 'StatefulSet' as const, name: 'kube-etcd', replicas: 1, claimRetention: { whenScaled: 'Delete' as const, whenDeleted: 'Retain' as const } },
      },
      snapshot: { path: 's.db', size: 3, sha256: 'abc', revision: 5, totalKey: 5, hasTrailer: true },
      quiesce: [], pdbs: [], utilityImage: 'etcd:3.4', tool: { binary: 'etcdctl' as const }, stamp: 'S', inPlace: false,
    };
  }
});
