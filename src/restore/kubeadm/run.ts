/**
 * Carries out a kubeadm restore plan (plan.ts), journaled so that `--resume` and `--abort` go on
 * from wherever it stopped, the plugin killed at any point included:
 *
 *   install  an installer pod on every node (API up), waited until it runs;
 *   copy     the snapshot into each node's work dir, its sha256 checked there (free space first);
 *   arm      each node's agent static pod file written as a dotfile (the kubelet skips dotfiles);
 *   window   recorded in the journal, then every dotfile renamed in place at once: the kubelets
 *            start the agents, which take the control plane down, restore, and bring it back;
 *   wait     the outcome of every node read through its installer pod, polled while the API is
 *            away (bounded, progress on stderr); an installer the restored API no longer knows is
 *            made again;
 *   verify   every member healthy, one leader, each on this restore's data (member and cluster
 *            IDs), the revision not below the snapshot's;
 *   clean    the agents' files out of the manifest folders, the snapshot copies removed (they hold
 *            every Secret), the installer pods deleted; the old data, the manifests' copies and
 *            each agent's log stay on the node.
 *
 * A node whose agent failed is reported once the API is back; `--resume` runs its agent again
 * (a new run: the file changes, so the kubelet starts it), `--abort` runs every agent in rollback.
 */
import type { Readable } from 'node:stream';
import { PluginError, VerificationError } from '../../errors.js';
import { KubeletUnreachableError } from '../../kube/errors.js';
import type { CommandResult } from '../../kube/exec.js';
import type { Journal, JournalState } from '../journal.js';
import type { RestoreCluster, RestoreLog, RestorePodIO, RestoreVerifier } from '../runner.js';
import { spaceNeeded } from '../preflight.js';
import { agentArgv, parseAgentOutcome, type AgentOutcome } from './agent.js';
import { AGENT_MANIFEST_FILE, type KubeadmNodePlan, type KubeadmRestorePlan } from './plan.js';

/** What the kubeadm runner talks to. */
export interface KubeadmRunDeps {
  cluster: Pick<RestoreCluster, 'createPodAndWait' | 'deletePodAndWait' | 'podStatus'>;
  pods: Pick<RestorePodIO, 'run' | 'runLong' | 'copyIn'>;
  /** The same, each command tried once and nothing logged (the polls of the window, which try again). */
  quietPods: Pick<RestorePodIO, 'run'>;
  verifier: RestoreVerifier;
  journal: Journal<KubeadmRestorePlan>;
  log: RestoreLog;
  openSnapshot: () => Readable;
  now: () => number;
  sleep: (ms: number) => Promise<void>;
  /** How long the agents may take, from their start to every outcome read. */
  windowMs: number;
}

export type KubeadmState = JournalState<KubeadmRestorePlan>;
type Mode = 'restore' | 'rollback';

const STEP = { install: 'install', copy: 'copy', arm: 'arm', window: 'window', wait: 'wait', verify: 'verify' } as const;
/** The annotation that names an agent's run in its static pod (and so in its mirror pod). */
const RUN_ANNOTATION = 'kubectl-etcd/run';

/** The installer container of a node, where every command of the plugin on that node runs. */
function installer(plan: KubeadmRestorePlan, n: KubeadmNodePlan) {
  return { namespace: plan.namespace, pod: n.installerPod.metadata.name, container: n.installerPod.spec.containers[0]!['name'] as string };
}

/** Runs argv in a node's installer; a non-zero exit is an error naming what failed. */
async function mustRun(deps: KubeadmRunDeps, plan: KubeadmRestorePlan, n: KubeadmNodePlan, argv: string[], what: string): Promise<CommandResult> {
  const r = await deps.pods.run(installer(plan, n), argv);
  if (r.exitCode !== 0) {
    const detail = (r.stderr || r.stdout).trim().split('\n').pop() ?? '';
    throw new PluginError(`${what} failed on node "${n.node}" (exit code ${r.exitCode}): ${detail}`, 'fix the cause and run `kubectl etcd restore --resume`, or `--abort` to roll back');
  }
  return r;
}

/** Each node's work at once; every failure reported together. */
async function eachNode(nodes: KubeadmNodePlan[], fn: (n: KubeadmNodePlan) => Promise<unknown>): Promise<void> {
  const results = await Promise.allSettled(nodes.map(fn));
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as Error);
  if (failed.length === 1) throw failed[0];
  if (failed.length) {
    const first = failed[0]!;
    throw new PluginError(`${failed.length} nodes failed: ${[...new Set(failed.map((e) => e.message.split('\n')[0]))].join('; ')}`, first instanceof PluginError ? first.hint : undefined);
  }
}

/**
 * The agent's static pod file for a run (`restore-N`, `rollback-N`): each run's differs, so the
 * kubelet starts it anew. The YAML library is loaded here, on use: a static import put it in every
 * start of the command line (`--help` included).
 */
export async function agentFile(n: KubeadmNodePlan, run: string): Promise<string> {
  const { stringify } = await import('yaml');
  const mode: Mode = run.startsWith('rollback-') ? 'rollback' : 'restore';
  const pod = structuredClone(n.agentPod);
  (pod.metadata as Record<string, unknown>)['annotations'] = { [RUN_ANNOTATION]: run };
  pod.spec.containers[0]!['command'] = agentArgv({ ...n.agent, mode, run });
  return stringify(pod);
}

/** The name of a node's agent mirror pod: the static pod's name and the node's (kubelet config/common.go). */
function mirrorName(n: KubeadmNodePlan): string {
  return `${n.agentPod.metadata.name}-${n.node.toLowerCase()}`;
}

// Writes the agent's file as a dotfile in the manifest folder (the kubelet skips dotfiles), after
// removing an outcome an earlier run left.
const ARM_SCRIPT = [
  'dir="$1" file="$2" work="$3" content="$4"',
  'mkdir -p "$work" && chmod 700 "$work" || exit 1',
  'rm -f "$work/outcome"',
  'printf "%s" "$content" > "$dir/.$file.tmp" && mv -f "$dir/.$file.tmp" "$dir/.$file"',
].join('\n');

// Starts the agent: the dotfile renamed in place (a rename the kubelet's watch sees as a new file).
const START_SCRIPT = [
  'dir="$1" file="$2"',
  'if [ -f "$dir/.$file" ]; then mv -f "$dir/.$file" "$dir/$file"; fi',
  '[ -f "$dir/$file" ]',
].join('\n');

// Removes the agent's file (the kubelet stops its pod) and the snapshot copy; the log, the outcome,
// the old data and the manifests' copies stay.
const CLEAN_SCRIPT = [
  'dir="$1" file="$2" work="$3"',
  'rm -f "$dir/$file" "$dir/.$file" "$dir/.$file.tmp" "$work/snapshot.db" "$work/snapshot.db.tmp"',
  'rm -rf "$work/restored"',
].join('\n');

// What a node says: the outcome (two lines), then whether the agent's file is started, or written and not yet started.
const READ_SCRIPT = 'cat "$1/outcome" 2>/dev/null; echo; if [ -f "$2/$3" ]; then echo started; fi; if [ -f "$2/.$3" ]; then echo pending; fi';

/** Installer pods on every node, running. */
async function install(plan: KubeadmRestorePlan, deps: KubeadmRunDeps): Promise<void> {
  await eachNode(plan.nodes, (n) => deps.cluster.createPodAndWait(n.installerPod));
}

/**
 * The snapshot into each node's work dir (unless an identical copy is there), checked by sha256;
 * first the node's manifests where the agent will look for them, and free space.
 */
async function copy(plan: KubeadmRestorePlan, deps: KubeadmRunDeps): Promise<void> {
  await eachNode(plan.nodes, async (n) => {
    const target = installer(plan, n);
    const files = await deps.pods.run(target, ['sh', '-c', '[ -f "$1/etcd.yaml" ] && [ -f "$1/kube-apiserver.yaml" ]', 'sh', n.manifestDir]);
    if (files.exitCode !== 0) {
      throw new PluginError(
        `node "${n.node}" has no etcd.yaml and kube-apiserver.yaml in ${n.manifestDir}, where the restore would take them out`,
        'the kubelet\'s staticPodPath may differ from kubeadm\'s: run `kubectl etcd restore --abort` (etcd was not touched) and follow the runbook',
      );
    }
    await mustRun(deps, plan, n, ['sh', '-c', 'mkdir -p "$1" && chmod 700 "$1"', 'sh', n.workDir], 'making the work dir');
    const sha = async () => {
      const r = await deps.pods.runLong(target, ['sha256sum', n.snapshotPath], `kubectl-etcd-sha256-${plan.stamp}`);
      return r.exitCode === 0 ? r.stdout.trim().split(/\s+/)[0] : undefined;
    };
    if ((await sha()) === plan.snapshot.sha256) return;
    const df = await mustRun(deps, plan, n, ['df', '-Pk', n.workDir], 'measuring free space');
    const avail = Number(df.stdout.trim().split('\n').pop()?.split(/\s+/)[3]) * 1024;
    const need = spaceNeeded(plan.snapshot.size) + plan.snapshot.size;
    if (Number.isFinite(avail) && avail < need) {
      throw new PluginError(
        `node "${n.node}" has ${(avail / 2 ** 20).toFixed(1)} MiB free in ${n.dataDir}, the restore needs ${(need / 2 ** 20).toFixed(1)} MiB (snapshot, restored data, old data kept)`,
        'free space there and run `kubectl etcd restore --resume`, or `--abort`; etcd was not touched',
      );
    }
    await deps.pods.copyIn(target, n.snapshotPath, deps.openSnapshot, plan.snapshot.size);
    const got = await sha();
    if (got !== plan.snapshot.sha256) {
      throw new VerificationError(`the snapshot copied to node "${n.node}" has sha256 ${got ?? 'unknown'}, expected ${plan.snapshot.sha256}`, 'check the node\'s disk and run `kubectl etcd restore --resume`');
    }
  });
}

/** Writes these nodes' agent files (dotfiles) for a new run, recorded in the journal first. */
async function arm(state: KubeadmState, deps: KubeadmRunDeps, nodes: KubeadmNodePlan[], mode: Mode): Promise<void> {
  state.attempt = (state.attempt ?? 0) + 1;
  const run = `${mode}-${state.attempt}`;
  state.runs = { ...state.runs, ...Object.fromEntries(nodes.map((n) => [n.node, run])) };
  await deps.journal.save(state);
  await eachNode(nodes, async (n) => mustRun(deps, state.plan, n, ['sh', '-c', ARM_SCRIPT, 'sh', n.manifestDir, AGENT_MANIFEST_FILE, n.workDir, await agentFile(n, run)], 'writing the agent\'s static pod file'));
}

/** Starts the armed agents, all at once (one exec each, in parallel): the API goes away after the first. A start that fails is found and redone by the wait. */
async function start(plan: KubeadmRestorePlan, deps: KubeadmRunDeps, nodes: KubeadmNodePlan[]): Promise<void> {
  await Promise.allSettled(nodes.map((n) => deps.pods.run(installer(plan, n), ['sh', '-c', START_SCRIPT, 'sh', n.manifestDir, AGENT_MANIFEST_FILE])));
}

/** What a node says of its agent's current run. */
interface NodeReading {
  /** The current run's outcome (an earlier run's counts as none). */
  outcome: AgentOutcome;
  /** The agent's file is in the manifest folder; `pending`: written as a dotfile, not started. */
  started: boolean;
  pending: boolean;
}

/** Reads a node through its installer; undefined while it cannot be read (the API away, the installer being made again). */
async function readNode(state: KubeadmState, deps: KubeadmRunDeps, n: KubeadmNodePlan, unread?: Record<string, string>): Promise<NodeReading | undefined> {
  try {
    const r = await deps.quietPods.run(installer(state.plan, n), ['sh', '-c', READ_SCRIPT, 'sh', n.workDir, n.manifestDir, AGENT_MANIFEST_FILE]);
    if (unread) delete unread[n.node];
    if (r.exitCode !== 0) return undefined;
    const found = parseAgentOutcome(r.stdout);
    const outcome: AgentOutcome = found.kind !== 'none' && found.run === state.runs?.[n.node] ? found : { kind: 'none' };
    return { outcome, started: /^started$/m.test(r.stdout), pending: /^pending$/m.test(r.stdout) };
  } catch (err) {
    // The API server away is the window itself; a node whose kubelet does not answer is named in
    // the progress line (its agent, if started, works on by itself; if not, it starts once the kubelet is back).
    deps.log.debug?.(`reading node "${n.node}": ${(err as Error).message.split('\n')[0]}`);
    if (unread && err instanceof KubeletUnreachableError) unread[n.node] = 'its kubelet does not answer';
    else if (unread) delete unread[n.node];
    // The restored API does not know an installer made after the snapshot: its kubelet stopped it; make it again.
    if (/not ?found/i.test((err as Error).message)) await deps.cluster.createPodAndWait(n.installerPod).catch(() => undefined);
    return undefined;
  }
}

/** Whether the current run's agent pod ended without an outcome (its init container failed, it was killed): its mirror pod says so once the API serves. */
async function agentEnded(state: KubeadmState, deps: KubeadmRunDeps, n: KubeadmNodePlan): Promise<string | undefined> {
  const st = await deps.cluster.podStatus?.(mirrorName(n));
  if (!st || st.annotations[RUN_ANNOTATION] !== state.runs?.[n.node]) return undefined;
  return st.phase === 'Succeeded' || st.phase === 'Failed' ? st.phase : undefined;
}

/** A node's name, with why it cannot be read when that is known (`node-2 (its kubelet does not answer)`). */
function withWhy(n: KubeadmNodePlan, unread: Record<string, string>): string {
  return unread[n.node] ? `${n.node} (${unread[n.node]})` : n.node;
}

const finalFor = (mode: Mode) => (o: AgentOutcome) => o.kind === 'failed' || o.kind === (mode === 'restore' ? 'restored' : 'rolled-back');

/**
 * Polls the plan's nodes every 2 s until `settle` says each is settled, bounded by the window: past
 * it, throws `late` of the nodes still pending; every 15 s, a progress line from `progress` (the
 * pending nodes named with why they cannot be read, and the settled ones).
 */
async function pollNodes(
  state: KubeadmState,
  deps: KubeadmRunDeps,
  settle: (n: KubeadmNodePlan, unread: Record<string, string>) => Promise<boolean>,
  say: { late: (pending: KubeadmNodePlan[]) => PluginError; progress: (pending: string[], settled: string[]) => string },
): Promise<void> {
  const nodes = state.plan.nodes;
  const settled = new Set<string>();
  const unread: Record<string, string> = {};
  const deadline = deps.now() + deps.windowMs;
  let lastReport = deps.now();
  for (;;) {
    await Promise.all(nodes.filter((n) => !settled.has(n.node)).map(async (n) => {
      if (await settle(n, unread)) settled.add(n.node);
    }));
    const pending = nodes.filter((n) => !settled.has(n.node));
    if (!pending.length) return;
    if (deps.now() > deadline) throw say.late(pending);
    if (deps.now() - lastReport >= 15_000) {
      lastReport = deps.now();
      deps.log.info(say.progress(pending.map((n) => withWhy(n, unread)), nodes.filter((n) => settled.has(n.node)).map((n) => n.node)));
    }
    await deps.sleep(2000);
  }
}

/**
 * Polls every node until its current run's outcome is final (restored or rolled back, or failed),
 * or the window is over; progress on stderr. A written agent file not yet started is started; an
 * agent pod that ended without an outcome counts as failed.
 */
async function waitOutcomes(state: KubeadmState, deps: KubeadmRunDeps, mode: Mode): Promise<Record<string, AgentOutcome>> {
  const plan = state.plan;
  const final = finalFor(mode);
  const outcomes: Record<string, AgentOutcome> = {};
  const failed = (n: KubeadmNodePlan, why: string): true => { outcomes[n.node] = { kind: 'failed', why }; return true; };
  await pollNodes(state, deps, async (n, unread) => {
    const r = await readNode(state, deps, n, unread);
    outcomes[n.node] = r?.outcome ?? { kind: 'none' };
    if (!r) return false;
    if (final(r.outcome)) return true;
    if (r.pending) await start(plan, deps, [n]);
    else if (!r.started) return failed(n, `its agent's file is not in ${n.manifestDir} (removed by hand?)`);
    else {
      const ended = await agentEnded(state, deps, n);
      if (ended) return failed(n, `its agent's pod ended (${ended}) without an outcome; see ${n.workDir}/log and \`kubectl describe pod -n ${plan.namespace} ${mirrorName(n)}\``);
    }
    return false;
  }, {
    late: (pending) => new PluginError(
      `after ${Math.round(deps.windowMs / 60_000)} min the agents on ${pending.map((n) => `"${n.node}"`).join(', ')} have not finished (their outcome cannot be read${pending.length < plan.nodes.length ? '' : ': the API server may still be away'})`,
      `look at the node's agent log (${pending[0]!.workDir}/log) and run \`kubectl etcd restore --resume\` to wait again, or \`--abort\` to roll back`,
    ),
    progress: (pending, done) => `waiting for the agents (the API server is away while they work): ${done.length ? `${done.join(', ')} done, ` : ''}${pending.join(', ')} working`,
  });
  return outcomes;
}

/** Throws when any node failed, naming each with its agent's reason. */
function requireAll(plan: KubeadmRestorePlan, outcomes: Record<string, AgentOutcome>, mode: Mode): void {
  const failed = plan.nodes.flatMap((n) => {
    const o = outcomes[n.node];
    return o?.kind === 'failed' ? [`node "${n.node}": ${o.why}`] : [];
  });
  if (!failed.length) return;
  const ok = plan.nodes.filter((n) => outcomes[n.node]?.kind !== 'failed').map((n) => n.node);
  throw new PluginError(
    `the ${mode === 'restore' ? 'restore' : 'roll-back'} failed on ${failed.length} of ${plan.nodes.length} nodes: ${failed.join('; ')}${ok.length ? ` (${ok.join(', ')}: ${mode === 'restore' ? 'restored' : 'rolled back'})` : ''}`,
    mode === 'restore'
      ? `fix the cause (the agent's log is in ${plan.nodes[0]!.workDir}/log on the node) and run \`kubectl etcd restore --resume\`, or \`--abort\` to put every node back as it was`
      : 'fix the cause and run `kubectl etcd restore --abort` again',
  );
}

/** The agents' files and the snapshot copies off every node, the installers gone. */
async function clean(plan: KubeadmRestorePlan, deps: KubeadmRunDeps): Promise<void> {
  await eachNode(plan.nodes, async (n) => {
    await deps.cluster.createPodAndWait(n.installerPod);
    await mustRun(deps, plan, n, ['sh', '-c', CLEAN_SCRIPT, 'sh', n.manifestDir, AGENT_MANIFEST_FILE, n.workDir], 'removing the agent and the snapshot copy');
    await deps.cluster.deletePodAndWait(n.installerPod.metadata.name);
  });
}

async function step(state: KubeadmState, deps: KubeadmRunDeps, id: string, title: string, fn: () => Promise<void>): Promise<void> {
  if (state.done.includes(id)) return;
  deps.log.step(title);
  await fn();
  await deps.journal.markDone(state, id);
}

/** Runs (or resumes) the restore to its verified end. */
export async function runKubeadmRestore(state: KubeadmState, deps: KubeadmRunDeps): Promise<{ summary: Record<string, unknown> }> {
  const plan = state.plan;
  await step(state, deps, STEP.install, 'installer pods on every control-plane node', () => install(plan, deps));
  await step(state, deps, STEP.copy, 'copying the snapshot to every node (sha256 checked there)', () => copy(plan, deps));
  await step(state, deps, STEP.arm, 'writing the agents\' static pod files', () => arm(state, deps, plan.nodes, 'restore'));
  if (!state.done.includes(STEP.window)) {
    // Recorded first: once one agent runs, a cut plugin must know the window may have begun.
    await deps.journal.markDone(state, STEP.window);
    deps.log.step('starting the agents: the API server goes away until they are done');
    await start(plan, deps, plan.nodes);
  } else if (!state.done.includes(STEP.wait)) {
    await resumeWindow(state, deps, 'restore');
  }
  if (!state.done.includes(STEP.wait)) {
    deps.log.step('waiting for every node\'s agent');
    requireAll(plan, await waitOutcomes(state, deps, 'restore'), 'restore');
    await deps.journal.markDone(state, STEP.wait);
  }
  let summary: Record<string, unknown> = {};
  await step(state, deps, STEP.verify, 'verifying the restored cluster', async () => {
    const report = await deps.verifier.verify({ ...plan, members: plan.nodes }, { writersRun: true });
    if (!report.ok) {
      throw new VerificationError(`the restored cluster does not check out: ${report.problems.join('; ')}`, `check \`kubectl etcd status -n ${plan.namespace}\`; run \`kubectl etcd restore --resume\` to check again, or \`--abort\` to roll back`);
    }
    summary = report.summary;
  });
  state.phase = 'finished';
  await deps.journal.save(state);
  deps.log.step('removing the agents, the snapshot copies and the installer pods');
  await clean(plan, deps);
  return { summary };
}

/** Reads every node, polling until each answers (the API may be away: agents at work), bounded by the window. */
async function readAll(state: KubeadmState, deps: KubeadmRunDeps): Promise<Record<string, NodeReading>> {
  const readings: Record<string, NodeReading> = {};
  await pollNodes(state, deps, async (n, unread) => {
    const r = await readNode(state, deps, n, unread);
    if (r) readings[n.node] = r;
    return r !== undefined;
  }, {
    late: (missing) => new PluginError(`cannot read ${missing.map((n) => `"${n.node}"`).join(', ')} after ${Math.round(deps.windowMs / 60_000)} min (the API server may still be away)`, 'run `kubectl etcd restore --resume` again once `kubectl get nodes` answers'),
    progress: (missing) => `waiting to read ${missing.join(', ')} (the API server is away while the agents work)`,
  });
  return readings;
}

/**
 * Goes on inside the window (a resume, or an abort): a node runs its agent anew when its current
 * run failed, never started, ended without an outcome, or (abort) was a restore; an agent still
 * working on this mode is left to it, and one written but not started is started.
 */
async function resumeWindow(state: KubeadmState, deps: KubeadmRunDeps, mode: Mode): Promise<void> {
  const plan = state.plan;
  const final = finalFor(mode);
  const readings = await readAll(state, deps);
  const again: KubeadmNodePlan[] = [];
  const waiting: KubeadmNodePlan[] = [];
  for (const n of plan.nodes) {
    const r = readings[n.node]!;
    const sameMode = (state.runs?.[n.node] ?? '').startsWith(`${mode}-`);
    if (sameMode && r.outcome.kind !== 'none' && final(r.outcome) && r.outcome.kind !== 'failed') continue;
    if (!sameMode || r.outcome.kind === 'failed' || (!r.started && !r.pending) || (await agentEnded(state, deps, n))) again.push(n);
    else if (r.pending) waiting.push(n);
  }
  if (again.length) await arm(state, deps, again, mode);
  const go = [...again, ...waiting];
  if (!go.length) return;
  deps.log.step(`starting the agent${go.length > 1 ? 's' : ''} on ${go.map((n) => n.node).join(', ')}${mode === 'rollback' ? ' (rollback)' : ''}: the API server may go away until ${go.length > 1 ? 'they are' : 'it is'} done`);
  await start(plan, deps, go);
}

/**
 * Rolls the restore back: before any agent ran, only the installers and copies go; after, every
 * node's agent runs in rollback (the API goes away again) and each node gets its old data back.
 */
export async function abortKubeadmRestore(state: KubeadmState, deps: KubeadmRunDeps): Promise<{ rolledBack: boolean }> {
  const plan = state.plan;
  const touched = state.done.includes(STEP.window);
  state.phase = 'aborting';
  await deps.journal.save(state);
  if (touched) {
    await resumeWindow(state, deps, 'rollback');
    deps.log.step('waiting for every node\'s agent');
    requireAll(plan, await waitOutcomes(state, deps, 'rollback'), 'rollback');
  }
  deps.log.step('removing the agents, the snapshot copies and the installer pods');
  await clean(plan, deps);
  return { rolledBack: touched };
}
