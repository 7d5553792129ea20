/**
 * `kubectl etcd restore` of kubeadm's stacked etcd (static pods): preflight, the plan and its
 * admission. `--dry-run` prints the plan; the run itself (installer pods, the API-less window the
 * node agents carry, the wait, the outcomes, verification) is not built yet, so without --dry-run
 * the command refuses before any change, saying so.
 */
import { UsageError } from '../../errors.js';
import type { EtcdMember, EtcdTopology } from '../../etcd/topology.js';
import { formatBytes } from '../../ui/bytes.js';
import { formatRecord } from '../../ui/format.js';
import { compactUtc } from '../../ui/time.js';
import { admissionHint } from '../admission.js';
import type { RestoreDeps, RestoreOptions } from '../command.js';
import type { RestoreSnapshotFacts } from '../snapshot.js';
import { checkEtcdVersions, DEFAULT_SHELL_IMAGE, execFirst, execInMember, PreflightError, probeRestoreTool, type MemberExec } from '../preflight.js';
import { AGENT_MANIFEST_FILE, buildKubeadmPlan, hostDataDir, KUBEADM_CONFIG_DIR, type KubeadmRestorePlan } from './plan.js';

/** Plans a kubeadm restore; with --dry-run prints the plan, without it refuses (not built yet). */
export async function startKubeadmRestore(opts: RestoreOptions, deps: RestoreDeps, topology: EtcdTopology, snapshot: RestoreSnapshotFacts): Promise<void> {
  if (!opts.dryRun) {
    throw new UsageError(
      `etcd in namespace "${topology.namespace}" runs as kubeadm's static pods (${topology.workload.name}): kubectl etcd plans their restore (--dry-run) but does not run it yet; nothing was changed`,
      `see the plan with --dry-run, and follow the kubeadm runbook (kubernetes.io: Operating etcd clusters for Kubernetes, "Restoring an etcd cluster") to carry it out`,
    );
  }
  deps.phases?.start('preflight');
  await deps.resolveNodes(topology);
  const { tool, warnings } = await kubeadmPreflight(topology, snapshot, opts, deps);
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
  deps.stdout.write(opts.output ? await formatRecord(kubeadmPlanRecord(plan), opts.output) : renderKubeadmPlan(plan));
  deps.log.info('dry run: nothing was changed');
}

/**
 * What must hold before a kubeadm restore touches anything: the versions (as for every restore),
 * every member on a known, Ready node with its data in a hostPath and its certificates where the
 * agent sees them, and the etcd image able to hand its tools to the agent (sh and cp; kubeadm's
 * registry.k8s.io/etcd has both).
 */
async function kubeadmPreflight(topology: EtcdTopology, snapshot: RestoreSnapshotFacts, opts: RestoreOptions, deps: RestoreDeps): Promise<{ tool: KubeadmRestorePlan['tool']; warnings: string[] }> {
  const warnings: string[] = [];
  const refuse = (message: string, hint: string) => {
    if (opts.force) warnings.push(`${message} (going on because of --force)`);
    else throw new PreflightError(message, `${hint}, or pass --force if you are sure`);
  };
  const exec: MemberExec = (m, argv) => execInMember(deps.preflight, m, argv);
  const running = [...topology.members].sort((a, b) => Number(b.ready !== false) - Number(a.ready !== false));
  const etcdImage = topology.members[0]?.image ?? topology.image;
  await checkEtcdVersions({ topology, snapshot, etcdImage }, (argv) => execFirst(running, exec, argv), refuse, warnings);

  for (const m of topology.members) {
    if (!m.node) throw new PreflightError(`static etcd pod "${m.pod}" names no node`, 'check the pod (kubectl get pod -o wide); nothing was changed');
    const st = await deps.preflight.readNode(m.node);
    if (st === undefined) warnings.push(`cannot read node "${m.node}"; its readiness is not checked`);
    else if (!st.ready) {
      // Its agent would start only once its kubelet is back, and a restore with a member left behind loses quorum.
      throw new PreflightError(`node "${m.node}" of member "${m.name}" is not Ready${st.reason ? ` (${st.reason})` : ''}: its agent could not run there`, 'bring the node back first; nothing was changed');
    }
    if (!hostDataDir(m)) {
      throw new PreflightError(`member "${m.name}" keeps its data in ${m.dataDir}, which is not a hostPath volume of its static pod`, 'restore it as the kubeadm runbook says; nothing was changed');
    }
    const outside = tlsOutside(m);
    if (outside.length) {
      throw new PreflightError(
        `member "${m.name}" names certificate files outside ${KUBEADM_CONFIG_DIR} and its data dir (${outside.join(', ')}): the agent on its node would not find them`,
        'move them under /etc/kubernetes/pki/etcd, as kubeadm keeps them; nothing was changed',
      );
    }
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
  warnings.push(`free space on each node's data dir is not measured (the etcd image has no df): the restore needs about ${formatBytes(snapshot.size * 3)} there`);
  return { tool: tool ?? { binary: 'etcdctl' }, warnings };
}

/** TLS files of a member that lie neither under /etc/kubernetes nor in its data volume. */
function tlsOutside(m: EtcdMember): string[] {
  const under = (p: string, dir: string) => p === dir || p.startsWith(`${dir.replace(/\/+$/, '')}/`);
  const mount = m.dataVolume?.mountPath ?? m.dataDir;
  return [m.tls.caFile, m.tls.certFile, m.tls.keyFile].filter((f): f is string => !!f && !under(f, KUBEADM_CONFIG_DIR) && !under(f, mount));
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
