/**
 * `kubectl etcd restore` of kubeadm's stacked etcd (static pods): preflight, the plan and its
 * admission, the typed confirmation, a safety backup, the journal (KUBEADM_JOURNAL), then the run
 * (run.ts); `--resume` and `--abort` go on from the journal (continueKubeadmRestore).
 */
import { UsageError, VerificationError } from '../../errors.js';
import type { EtcdMember, EtcdTopology } from '../../etcd/topology.js';
import { formatBytes } from '../../ui/bytes.js';
import { formatRecord } from '../../ui/format.js';
import { compactUtc } from '../../ui/time.js';
import { admissionHint } from '../admission.js';
import type { RestoreDeps, RestoreOptions } from '../command.js';
import { identitiesFor, requireDecryptable } from '../../crypt/plaintext.js';
import { journalFile, openJournal, refuseIfJournal } from '../journal-find.js';
import { fileJournalStore, KUBEADM_JOURNAL_VERSION, type Journal } from '../journal.js';
import { checkEtcdVersions, DEFAULT_SHELL_IMAGE, execFirst, execInMember, PreflightError, probeRestoreTool, requireAccess, restoreBaseAccessChecks, type MemberExec, type PreflightDeps } from '../preflight.js';
import { confirmWorkload } from '../prompt.js';
import type { RestoreSnapshotFacts } from '../snapshot.js';
import { certificatesOutside, peerUrlOffNode } from '../../etcd/kubeadm-layout.js';
import { AGENT_MANIFEST_FILE, buildKubeadmPlan, hostDataDir, type KubeadmRestorePlan } from './plan.js';
import { closeJournal } from '../runner.js';
import { abortKubeadmRestore, runKubeadmRestore, type KubeadmRunDeps, type KubeadmState } from './run.js';

/** The name a kubeadm restore's journal goes by (a ConfigMap and a state-dir file, as a StatefulSet's does). */
export const KUBEADM_JOURNAL = 'kubeadm-etcd';
/** What the user types to confirm. */
const CONFIRM_NAME = 'kubeadm-etcd';
/** How long the agents may take, from their start until every outcome is read. */
const WINDOW_MS = 20 * 60_000;

/** Plans a kubeadm restore; with --dry-run prints the plan, else confirms and runs it to its verified end. */
export async function startKubeadmRestore(
  opts: RestoreOptions, deps: RestoreDeps, topology: EtcdTopology, snapshot: RestoreSnapshotFacts,
  takeSafetyBackup: (topology: EtcdTopology) => Promise<string | undefined>,
): Promise<void> {
  const journal = openJournal<KubeadmRestorePlan>({ stateDir: opts.stateDir, configMaps: deps.configMaps, now: deps.now }, topology.namespace, KUBEADM_JOURNAL);
  await refuseIfJournal(journal);
  deps.phases?.start('preflight');
  await deps.resolveNodes(topology);
  const { tool, warnings } = await kubeadmPreflight(topology, snapshot, { force: opts.force }, deps.preflight);
  const plan = buildKubeadmPlan({
    topology, snapshot, tool, shellImage: opts.utilityImage ?? DEFAULT_SHELL_IMAGE, stamp: compactUtc(deps.now()), safetyBackup: opts.safetyBackup,
  });
  plan.warnings.unshift(...warnings);
  deps.phases?.start('admission');
  // The installer pods are API pods: the cluster's admission judges them now, while nothing changed.
  // The agents are static pods: no admission sees them (a mirror pod is admitted after it runs).
  const cluster = deps.cluster(topology.namespace);
  for (const n of plan.nodes) {
    const refusal = await cluster.admitPod(n.installerPod);
    if (refusal !== undefined) {
      throw new PreflightError(
        `the cluster would refuse installer pod "${n.installerPod.metadata.name}" for node "${n.node}": ${refusal}`,
        /violates PodSecurity/.test(refusal)
          ? `namespace "${plan.namespace}" must allow privileged pods (hostPath) for the restore: kubectl label namespace ${plan.namespace} pod-security.kubernetes.io/enforce=privileged --overwrite, and set it back afterwards; nothing was changed`
          : admissionHint(refusal, plan.namespace),
      );
    }
  }
  deps.phases?.end();
  if (opts.dryRun) {
    deps.stdout.write(opts.output ? await formatRecord(kubeadmPlanRecord(plan), opts.output) : renderKubeadmPlan(plan));
    deps.log.info('dry run: nothing was changed');
    return;
  }
  deps.stderr.write(renderKubeadmPlan(plan));
  await confirmWorkload(opts, deps.ask, CONFIRM_NAME, `this stops the control plane and replaces the etcd data of every control-plane node (${plan.nodes.map((n) => n.node).join(', ')})`);
  const safety = opts.safetyBackup ? await takeSafetyBackup(topology) : undefined;
  const state: KubeadmState = {
    version: KUBEADM_JOURNAL_VERSION, stamp: plan.stamp, namespace: plan.namespace, workload: KUBEADM_JOURNAL,
    snapshot: { path: snapshot.path, sha256: snapshot.sha256, revision: snapshot.revision, totalKey: snapshot.totalKey },
    etcdReplicas: plan.nodes.length, quiesce: [], pdbs: [], done: [], phase: 'running', plan, attempt: 0,
    startedAt: deps.now().toISOString(), updatedAt: '',
  };
  await journal.save(state);
  deps.log.info(`restore journal: ${journal.describe()}`);
  await finishKubeadm(state, journal, opts, deps, safety);
}

/** The runner's collaborators. */
function runDeps(plan: KubeadmRestorePlan, journal: Journal<KubeadmRestorePlan>, opts: RestoreOptions, deps: RestoreDeps): KubeadmRunDeps {
  return {
    cluster: deps.cluster(plan.namespace),
    pods: deps.pods(plan.namespace),
    quietPods: deps.pods(plan.namespace, { once: true }),
    verifier: deps.verifier(plan),
    journal,
    log: { step: (m) => deps.log.info(`==> ${m}`), info: (m) => deps.log.info(m), warn: (m) => deps.log.warn(m), debug: (m) => deps.log.debug(1, m) },
    openSnapshot: deps.openSnapshot(plan.snapshot.path, opts.identities),
    now: () => deps.now().getTime(),
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    windowMs: WINDOW_MS,
  };
}

/** Runs (or resumes) to the verified end, closes the journal and reports. */
async function finishKubeadm(state: KubeadmState, journal: Journal<KubeadmRestorePlan>, opts: RestoreOptions, deps: RestoreDeps, safety?: string): Promise<void> {
  const plan = state.plan;
  const started = deps.now().getTime();
  let summary: Record<string, unknown>;
  try {
    ({ summary } = await runKubeadmRestore(state, runDeps(plan, journal, opts, deps)));
  } catch (err) {
    deps.log.info(`the restore stopped; its journal is kept in ${journal.describe()}`);
    throw err;
  }
  await closeJournal(journal, (l) => deps.log.warn(l), '--resume');
  const seconds = Math.round((deps.now().getTime() - started) / 100) / 10;
  for (const w of plan.warnings) deps.log.warn(w);
  if (opts.output) {
    deps.stdout.write(await formatRecord({
      kind: 'RestoreResult', layout: 'kubeadm', namespace: plan.namespace, snapshot: plan.snapshot.path, revision: plan.snapshot.revision,
      nodes: plan.nodes.map((n) => ({ node: n.node, name: n.member.name, oldDataKeptIn: n.asideDir, manifestsKeptIn: n.keepDir, agentLog: `${n.workDir}/log` })),
      safetyBackup: safety, seconds, verified: summary, warnings: plan.warnings,
    }, opts.output));
  } else {
    deps.stdout.write(`restored kubeadm etcd in ${plan.namespace} from "${plan.snapshot.path}" (revision ${plan.snapshot.revision}) on ${plan.nodes.length} control-plane node(s) in ${seconds}s; verified\n`);
  }
}

/**
 * `--resume` / `--abort` of a kubeadm restore. Only the local journal is run: the cluster's copy
 * may be gone (the restored API store does not know a ConfigMap made after the snapshot) or stale,
 * and a plan read from the cluster would run privileged pods on every control-plane node.
 */
export async function continueKubeadmRestore(opts: RestoreOptions, deps: RestoreDeps): Promise<void> {
  const journal = openJournal<KubeadmRestorePlan>({ stateDir: opts.stateDir, configMaps: deps.configMaps, now: deps.now }, opts.namespace, KUBEADM_JOURNAL);
  // The local file only, read without the API (it may be away: agents at work).
  const local = await fileJournalStore<KubeadmRestorePlan>(journalFile(opts.stateDir, opts.namespace, KUBEADM_JOURNAL)).load();
  if (!local || local.plan.kind !== 'kubeadm') {
    throw new UsageError(
      `no local journal of a kubeadm restore in namespace "${opts.namespace}" (${journalFile(opts.stateDir, opts.namespace, KUBEADM_JOURNAL)})`,
      `resume or abort on the machine that started the restore, or pass --state-dir; a journal found only in the cluster is never run: it would run privileged pods on every control-plane node`,
    );
  }
  const plan = local.plan;
  // Asked of the API only outside the window (inside it the API may be away by design).
  const inWindow = local.done.includes('window') && !local.done.includes('wait');
  if (!inWindow && !(opts.abort && local.phase === 'aborting')) await requireAccess(deps.preflight, restoreBaseAccessChecks(opts.namespace));
  if (opts.snapshot) plan.snapshot.path = opts.snapshot;
  // An age-encrypted snapshot still to be copied is decrypted again: the identity is asked for now, before any change.
  if (!opts.abort && !local.done.includes('copy')) {
    const identities = await identitiesFor(plan.snapshot.path, { identityFiles: opts.identityFiles ?? [], stateDir: opts.stateDir, warn: (l) => deps.log.warn(l) });
    if (identities) {
      await requireDecryptable(plan.snapshot.path, identities);
      opts = { ...opts, identities };
    }
  }
  if (opts.abort) {
    if (local.phase === 'finished') {
      throw new UsageError(`the restore of kubeadm etcd in ${plan.namespace} (stamp ${local.stamp}) finished and was verified; there is nothing to roll back`,
        `run \`kubectl etcd restore --resume\` to close its journal; the old data is kept on every node in ${plan.nodes[0]?.asideDir ?? 'member.pre-restore-*'}`);
    }
    deps.log.info(`rolling back the restore of kubeadm etcd in ${plan.namespace} (stamp ${local.stamp})`);
    const { rolledBack } = await abortKubeadmRestore(local, runDeps(plan, journal, opts, deps));
    const report = rolledBack ? await deps.verifier(plan).verify({ ...plan, members: plan.nodes }, { healthOnly: true }) : undefined;
    await closeJournal(journal, (l) => deps.log.warn(l), '--abort');
    deps.stdout.write(rolledBack
      ? `rolled back kubeadm etcd in ${plan.namespace}: the pre-restore data is in place on ${plan.nodes.length} control-plane node(s)${report?.ok ? '; healthy, one leader' : ''}\n`
      : `rolled back kubeadm etcd in ${plan.namespace}: no agent had run, etcd was not touched; the installer pods and snapshot copies are gone\n`);
    if (report && !report.ok) {
      throw new VerificationError(`the roll-back of kubeadm etcd in ${plan.namespace} is done, but the members are not healthy: ${report.problems.join('; ')}`,
        `the old data may be why the restore began: check with \`kubectl etcd status -n ${plan.namespace}\``);
    }
    return;
  }
  if (local.phase === 'aborting') throw new UsageError(`the roll-back of the restore of kubeadm etcd in ${plan.namespace} (stamp ${local.stamp}) was interrupted`, 'run `kubectl etcd restore --abort` again to finish it');
  deps.log.info(`resuming the restore of kubeadm etcd in ${plan.namespace} (stamp ${local.stamp})`);
  await finishKubeadm(local, journal, opts, deps);
}

/**
 * What must hold before a kubeadm restore touches anything: the versions (as for every restore),
 * every member on a known, Ready node with its data in a hostPath and its certificates where the
 * agent sees them, and the etcd image able to hand its tools to the agent (sh and cp; kubeadm's
 * registry.k8s.io/etcd has both).
 */
export async function kubeadmPreflight(
  topology: EtcdTopology, snapshot: RestoreSnapshotFacts, opts: { force: boolean }, deps: Pick<PreflightDeps, 'readNode' | 'run'>,
): Promise<{ tool: KubeadmRestorePlan['tool']; warnings: string[] }> {
  const warnings: string[] = [];
  const refuse = (message: string, hint: string) => {
    if (opts.force) warnings.push(`${message} (going on because of --force)`);
    else throw new PreflightError(message, `${hint}, or pass --force if you are sure`);
  };
  const exec: MemberExec = (m, argv) => execInMember(deps, m, argv);
  const running = [...topology.members].sort((a, b) => Number(b.ready !== false) - Number(a.ready !== false));
  const etcdImage = topology.members[0]?.image ?? topology.image;
  await checkEtcdVersions({ topology, snapshot, etcdImage }, (argv) => execFirst(running, exec, argv), refuse, warnings);

  for (const m of topology.members) {
    if (!m.node) throw new PreflightError(`static etcd pod "${m.pod}" names no node`, 'check the pod (kubectl get pod -o wide); nothing was changed');
    const st = await deps.readNode(m.node);
    if (st === undefined) warnings.push(`cannot read node "${m.node}"; its readiness is not checked`);
    else if (!st.ready) {
      // Its agent would start only once its kubelet is back, and a restore with a member left behind loses quorum.
      throw new PreflightError(`node "${m.node}" of member "${m.name}" is not Ready${st.reason ? ` (${st.reason})` : ''}: its agent could not run there`, 'bring the node back first; nothing was changed');
    }
    // A peer URL on another host is not this node's member, and the restored cluster would look for it there.
    const off = peerUrlOffNode(m, st?.addresses);
    if (off) refuse(off.message, off.hint);
    if (!hostDataDir(m)) {
      throw new PreflightError(`member "${m.name}" keeps its data in ${m.dataDir}, which is not a hostPath volume of its static pod`, 'restore it as the kubeadm runbook says; nothing was changed');
    }
    const certs = certificatesOutside(m);
    if (certs) throw new PreflightError(`${certs.message}: the agent on its node would not find them`, `move them under /etc/kubernetes/pki/etcd, as kubeadm keeps them; nothing was changed`);
  }
  const names = new Set(topology.members.map((m) => m.name));
  if (names.size !== topology.members.length) throw new PreflightError('two static etcd pods name the same member', 'check --name in each node\'s etcd.yaml; nothing was changed');

  // The agent runs the etcd image's own tools, copied out by an init container with sh and cp.
  const member = running[0]!;
  const tool = await probeRestoreTool(member, exec);
  const copy = await exec(member, ['sh', '-c', 'command -v cp']);
  if (!tool || !copy || copy.exitCode !== 0) {
    const what = !tool ? 'neither etcdutl nor etcdctl' : 'no sh and cp to hand its tools to the restore agent';
    refuse(`image "${etcdImage}" of member "${member.name}" has ${what}`, 'run kubeadm\'s registry.k8s.io/etcd image, which has them');
  }
  return { tool: tool ?? { binary: 'etcdctl' }, warnings };
}

/** The plan as text: what, where, and every step in order. */
export function renderKubeadmPlan(plan: KubeadmRestorePlan): string {
  const s = plan.snapshot;
  const lines = [
    `restore plan for kubeadm's static etcd pods (${plan.workload.name}) in namespace "${plan.namespace}" (stamp ${plan.stamp})`,
    `  snapshot: ${s.path} (${formatBytes(s.size)}, revision ${s.revision}, ${s.liveKeys ?? '?'} keys, sha256 ${s.sha256.slice(0, 16)}…${s.etcdVersion ? `, etcd ${s.etcdVersion}` : ''})`,
    `  restore with: ${plan.tool.binary}${plan.tool.bumpRevision ? ` --bump-revision=${plan.tool.bumpRevision} --mark-compacted` : ''} (of the etcd image "${plan.etcdImage}")`,
    `  agent pods: image "${plan.shellImage}" (shell), the etcd image's tools copied beside it`,
    `  initial cluster: ${plan.initialCluster} (token ${plan.initialClusterToken})`,
    '  control-plane nodes:',
    ...plan.nodes.map((n) => [
      `    ${n.node}: member "${n.member.name}", peer URL ${n.member.peerUrl}, data ${n.dataDir}`,
      `      old data kept in ${n.asideDir}; etcd.yaml and kube-apiserver.yaml kept in ${n.keepDir} while out`,
      `      snapshot copied to ${n.snapshotPath}; agent ${n.manifestDir}/${AGENT_MANIFEST_FILE}, its log and outcome in ${n.workDir}`,
    ]).flat(),
    '  steps:',
    ...plan.steps.map((st, i) => `    ${String(i + 1).padStart(2)}. ${st}`),
  ];
  for (const w of plan.warnings) lines.push(`warning: ${w}`);
  return lines.join('\n') + '\n';
}

/** The plan as data; every pod manifest and the agent's argv are in it. */
export function kubeadmPlanRecord(plan: KubeadmRestorePlan): Record<string, unknown> {
  return {
    kind: 'RestorePlan',
    layout: 'kubeadm',
    namespace: plan.namespace,
    workload: plan.workload,
    stamp: plan.stamp,
    snapshot: plan.snapshot,
    tool: plan.tool,
    initialCluster: plan.initialCluster,
    initialClusterToken: plan.initialClusterToken,
    nodes: plan.nodes.map((n) => ({
      node: n.node,
      name: n.member.name,
      pod: n.member.pod,
      peerUrl: n.member.peerUrl,
      dataDir: n.dataDir,
      manifestDir: n.manifestDir,
      workDir: n.workDir,
      snapshotPath: n.snapshotPath,
      asideDir: n.asideDir,
      keepDir: n.keepDir,
      restoreCommand: n.agent.restoreArgv,
      installerPod: n.installerPod,
      agentPod: n.agentPod,
    })),
    steps: plan.steps,
    warnings: plan.warnings,
  };
}
