// The kubeadm restore's runner (src/restore/kubeadm/run.ts) against small fakes of the nodes: the
// decisions the e2e tests cannot force on a real cluster at the right moment. An outcome of an
// earlier run is not this run's; an agent file written but not started is started by the wait; an
// agent pod that ended without an outcome is a failure, named; --resume runs only failed, unstarted
// or ended agents again; --abort leaves a rollback still at work to itself.
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { discoverTopology } from '../../src/etcd/discovery/index.js';
import { KubeletUnreachableError } from '../../src/kube/errors.js';
import { parseAgentOutcome } from '../../src/restore/kubeadm/agent.js';
import { buildKubeadmPlan, type KubeadmRestorePlan } from '../../src/restore/kubeadm/plan.js';
import { abortKubeadmRestore, runKubeadmRestore, type KubeadmRunDeps, type KubeadmState } from '../../src/restore/kubeadm/run.js';
import { Journal, type JournalState, type JournalStore } from '../../src/restore/journal.js';
import { KUBEADM_OPTIONS, kubeadmManifests } from '../sim/fixtures/kubeadm.js';
import { fixtureLister } from '../sim/fixtures/pods.js';

/** One node as the installer sees it: its agent's outcome file, its agent file (started) or dotfile (pending). */
interface FakeNode {
  outcome?: string;
  started?: string;
  pending?: string;
  /** What the node's agent does once started: the outcome it writes (after `after` polls), or nothing. */
  agent?: (run: string) => { outcome?: string; after?: number };
  /** The mirror pod's phase for the current file, when the agent pod ended. */
  ended?: string;
  /** Polls left before a started agent writes its outcome. */
  countdown?: number;
  armed: string[];
}

const runOf = (file: string) => /kubectl-etcd\/run: (\S+)/.exec(file)?.[1] ?? '?';

async function setup(done: string[], nodes: Record<string, Partial<FakeNode>>, runs?: Record<string, string>) {
  const topology = await discoverTopology(fixtureLister(kubeadmManifests({ ...KUBEADM_OPTIONS, etcd: '3.5' })), { namespace: 'kube-system' });
  const snapshot = { path: '/tmp/s.db', size: 10, sha256: 'f'.repeat(64), revision: 5, totalKey: 5, hasTrailer: true, liveKeys: 3 };
  const plan = buildKubeadmPlan({ topology, snapshot, tool: { binary: 'etcdutl', bumpRevision: 1 }, shellImage: 'busybox', stamp: '20261207T000000Z', safetyBackup: false });
  const fake: Record<string, FakeNode> = Object.fromEntries(plan.nodes.map((n) => [n.node, { armed: [], ...nodes[n.node] }]));
  const byPod = Object.fromEntries(plan.nodes.map((n) => [n.installerPod.metadata.name, n.node]));
  const log: string[] = [];
  const saved: KubeadmState[] = [];
  const store: JournalStore<KubeadmRestorePlan> = {
    where: 'local', describe: () => 'memory', load: async () => saved.at(-1), save: async (s) => { saved.push(structuredClone(s)); }, remove: async () => undefined,
  };
  let clock = 0;
  const startAgent = (node: FakeNode) => {
    if (!node.started) return;
    const r = node.agent?.(runOf(node.started)) ?? {};
    node.countdown = r.after ?? 1;
    node.agent = () => ({});
    if (r.outcome) node.pendingOutcome = `${r.outcome}\nrun ${runOf(node.started)}\n`;
  };
  const deps: KubeadmRunDeps = {
    cluster: {
      createPodAndWait: async () => undefined,
      deletePodAndWait: async () => undefined,
      podStatus: async (name) => {
        const node = plan.nodes.find((n) => name.endsWith(`-${n.node}`))!;
        const f = fake[node.node]!;
        return f.ended && f.started ? { phase: f.ended, annotations: { 'kubectl-etcd/run': runOf(f.started) } } : undefined;
      },
    },
    pods: {
      run: async (target, argv) => {
        const node = fake[byPod[target.pod]!]!;
        const script = argv[2] ?? '';
        if (script.includes('content="$4"')) { node.outcome = undefined; node.pending = argv[7]; node.armed.push(runOf(argv[7]!)); }
        else if (script.includes('mv -f "$dir/.$file" "$dir/$file"')) {
          if (node.startFails && node.startFails-- > 0) throw new Error('the API server did not answer');
          if (node.pending) { node.started = node.pending; node.pending = undefined; startAgent(node); }
        }
        else if (script.includes('rm -rf "$work/restored"')) { node.started = undefined; node.pending = undefined; }
        return { exitCode: 0, stdout: '', stderr: '' };
      },
      runLong: async () => ({ exitCode: 0, stdout: `${'f'.repeat(64)}  /x`, stderr: '' }),
      copyIn: async () => undefined,
    },
    quietPods: {
      run: async (target) => {
        const node = fake[byPod[target.pod]!]!;
        if (node.unreachable && node.unreachable-- > 0) {
          throw new KubeletUnreachableError(`exec in pod "kube-system/${target.pod}" failed: the kubelet of the pod's node does not answer (error dialing backend: dial tcp 10.88.255.253:10250: connect: connection refused)`);
        }
        if (node.countdown !== undefined && node.countdown-- <= 0 && node.pendingOutcome) { node.outcome = node.pendingOutcome; node.pendingOutcome = undefined; }
        return { exitCode: 0, stdout: `${node.outcome ?? ''}\n${node.started ? 'started\n' : ''}${node.pending ? 'pending\n' : ''}`, stderr: '' };
      },
    },
    verifier: { verify: async () => ({ ok: true, problems: [], summary: {} }) },
    journal: new Journal<KubeadmRestorePlan>([store], () => new Date(clock)),
    log: { step: (m) => log.push(m), info: (m) => log.push(m), warn: (m) => log.push(m) },
    openSnapshot: () => Readable.from([]),
    now: () => clock,
    sleep: async (ms) => { clock += ms; },
    windowMs: 60_000,
  };
  const state: KubeadmState = {
    version: 5, stamp: plan.stamp, namespace: 'kube-system', workload: 'kubeadm-etcd', snapshot: { path: '/tmp/s.db', sha256: 'f'.repeat(64), revision: 5, totalKey: 5 },
    etcdReplicas: 3, quiesce: [], pdbs: [], done, phase: 'running', plan, attempt: runs ? 1 : 0, ...(runs ? { runs } : {}), startedAt: '', updatedAt: '',
  } as JournalState<KubeadmRestorePlan>;
  return { plan, fake, deps, state, log };
}

/** An outcome a started agent writes once its countdown is over; starts that fail (the exec cut as the API goes away). */
interface FakeNode { pendingOutcome?: string; startFails?: number; unreachable?: number }

const restores = () => ({ agent: () => ({ outcome: 'restored' }) });

describe('the kubeadm restore runner', () => {
  it('a fresh run arms every node with restore-1, starts them, waits for their outcomes, verifies and cleans up', async () => {
    const { fake, deps, state, log } = await setup([], { 'node-1': restores(), 'node-2': restores(), 'node-3': restores() });
    await runKubeadmRestore(state, deps);
    expect(Object.values(fake).map((f) => f.armed)).toEqual([['restore-1'], ['restore-1'], ['restore-1']]);
    expect(state.done).toEqual(['install', 'copy', 'arm', 'window', 'wait', 'verify']);
    expect(state.phase).toBe('finished');
    expect(log).toContain('starting the agents: the API server goes away until they are done');
    expect(Object.values(fake).every((f) => !f.started && !f.pending)).toBe(true);
  });

  it('a start cut off (its exec failed as the API went away) leaves the file written: the wait starts it', async () => {
    const { fake, deps, state } = await setup([], { 'node-1': restores(), 'node-2': restores(), 'node-3': { ...restores(), startFails: 1 } });
    await runKubeadmRestore(state, deps);
    expect(fake['node-3']!.armed).toEqual(['restore-1']);
    expect(state.phase).toBe('finished');
  });

  it('a node whose kubelet does not answer (its start failed with it): the wait says so, and starts its agent once the kubelet is back', async () => {
    const { fake, deps, state, log } = await setup([], { 'node-1': restores(), 'node-2': { ...restores(), startFails: 1, unreachable: 10 }, 'node-3': restores() });
    await runKubeadmRestore(state, deps);
    expect(log).toContain('waiting for the agents (the API server is away while they work): node-1, node-3 done, node-2 (its kubelet does not answer) working');
    expect(fake['node-2']!.armed).toEqual(['restore-1']);
    expect(parseAgentOutcome(fake['node-2']!.outcome)).toEqual({ kind: 'restored', run: 'restore-1' });
    expect(state.phase).toBe('finished');
  });

  it('an outcome an earlier run left is not this run\'s: the wait goes on until the current run writes its own', async () => {
    const { deps, state, fake } = await setup(['install', 'copy', 'arm', 'window'], {
      'node-1': { outcome: 'restored\nrun restore-1\n', started: 'kubectl-etcd/run: restore-1' },
      'node-2': { outcome: 'failed: no space\nrun restore-1\n', started: 'kubectl-etcd/run: restore-2', countdown: 2, pendingOutcome: 'restored\nrun restore-2\n' },
      'node-3': { outcome: 'restored\nrun restore-1\n', started: 'kubectl-etcd/run: restore-1' },
    }, { 'node-1': 'restore-1', 'node-2': 'restore-2', 'node-3': 'restore-1' });
    await runKubeadmRestore(state, deps);
    expect(fake['node-2']!.armed).toEqual([]);
    expect(parseAgentOutcome(fake['node-2']!.outcome)).toEqual({ kind: 'restored', run: 'restore-2' });
  });

  it('a resume inside the window: a failed node and a never-started one run again (restore-2), a written one is started, a working one is left', async () => {
    const { deps, state, fake, log } = await setup(['install', 'copy', 'arm', 'window'], {
      'node-1': { outcome: 'failed: etcdutl snapshot restore failed\nrun restore-1\n', started: 'kubectl-etcd/run: restore-1', ...restores() },
      'node-2': { pending: 'kubectl-etcd/run: restore-1', ...restores() },
      'node-3': { started: 'kubectl-etcd/run: restore-1', countdown: 1, pendingOutcome: 'restored\nrun restore-1\n' },
    }, { 'node-1': 'restore-1', 'node-2': 'restore-1', 'node-3': 'restore-1' });
    await runKubeadmRestore(state, deps);
    expect([fake['node-1']!.armed, fake['node-2']!.armed, fake['node-3']!.armed]).toEqual([['restore-2'], [], []]);
    expect(log).toContain('starting the agents on node-1, node-2: the API server may go away until they are done');
    expect(state.phase).toBe('finished');
  });

  it('an agent pod that ended without an outcome fails the wait, named, with where to look; the journal stays before wait', async () => {
    const { deps, state } = await setup(['install', 'copy', 'arm', 'window'], {
      'node-1': { started: 'kubectl-etcd/run: restore-1', countdown: 0, pendingOutcome: 'restored\nrun restore-1\n' },
      'node-2': { started: 'kubectl-etcd/run: restore-1', ended: 'Failed' },
      'node-3': { started: 'kubectl-etcd/run: restore-1', countdown: 0, pendingOutcome: 'restored\nrun restore-1\n' },
    }, { 'node-1': 'restore-1', 'node-2': 'restore-1', 'node-3': 'restore-1' });
    // The resume sees node-2 ended and runs it again; that run ends the same way: a failure, named.
    await expect(runKubeadmRestore(state, deps)).rejects.toThrow(/^the restore failed on 1 of 3 nodes: node "node-2": its agent's pod ended \(Failed\) without an outcome; see \/var\/lib\/etcd\/kubectl-etcd-restore-20261207T000000Z\/log .* \(node-1, node-3: restored\)$/);
    expect(state.done).not.toContain('wait');
  });

  it('--abort runs every node\'s agent in rollback, except one whose rollback is still at work', async () => {
    const rollsBack = { agent: () => ({ outcome: 'rolled-back' }) };
    const { deps, state, fake } = await setup(['install', 'copy', 'arm', 'window'], {
      'node-1': { outcome: 'restored\nrun restore-1\n', started: 'kubectl-etcd/run: restore-1', ...rollsBack },
      'node-2': { started: 'kubectl-etcd/run: rollback-2', countdown: 1, pendingOutcome: 'rolled-back\nrun rollback-2\n' },
      'node-3': { outcome: 'failed: x\nrun restore-1\n', started: 'kubectl-etcd/run: restore-1', ...rollsBack },
    }, { 'node-1': 'restore-1', 'node-2': 'rollback-2', 'node-3': 'restore-1' });
    state.attempt = 2;
    const r = await abortKubeadmRestore(state, deps);
    expect(r.rolledBack).toBe(true);
    expect([fake['node-1']!.armed, fake['node-2']!.armed, fake['node-3']!.armed]).toEqual([['rollback-3'], [], ['rollback-3']]);
  });

  it('--abort before any agent ran only removes what the restore placed', async () => {
    const { deps, state, fake } = await setup(['install', 'copy'], {});
    expect(await abortKubeadmRestore(state, deps)).toEqual({ rolledBack: false });
    expect(Object.values(fake).every((f) => f.armed.length === 0)).toBe(true);
  });
  it('--resume inside the window reads every node first: one whose kubelet does not answer is waited for and named; past the window, a clear refusal', async () => {
    const restored = (unreachable: number) => ({ outcome: 'restored\nrun restore-1\n', started: 'kubectl-etcd/run: restore-1', unreachable });
    const runs = { 'node-1': 'restore-1', 'node-2': 'restore-1', 'node-3': 'restore-1' };
    const back = await setup(['install', 'copy', 'arm', 'window'], { 'node-1': restored(0), 'node-2': restored(10), 'node-3': restored(0) }, runs);
    await runKubeadmRestore(back.state, back.deps);
    expect(back.log).toContain('waiting to read node-2 (its kubelet does not answer) (the API server is away while the agents work)');
    expect(Object.values(back.fake).map((f) => f.armed)).toEqual([[], [], []]);
    expect(back.state.phase).toBe('finished');

    const gone = await setup(['install', 'copy', 'arm', 'window'], { 'node-1': restored(0), 'node-2': restored(1000), 'node-3': restored(0) }, runs);
    await expect(runKubeadmRestore(gone.state, gone.deps)).rejects.toThrow(/^cannot read "node-2" after 1 min \(the API server may still be away\)$/);
    expect(gone.state.done).toEqual(['install', 'copy', 'arm', 'window']);
  });
});
