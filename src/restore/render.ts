/** How a restore plan and its outcome look to a person (text) and to a machine (-o json|yaml). */
import { formatBytes } from '../ui/bytes.js';
import { holdWhat } from './cold-start.js';
import type { MemberSpace } from './kept.js';
import type { RestorePlan } from './plan.js';
import type { StepTiming } from './runner.js';
import { stepMember } from './steps.js';

/** The plan as readable text: what, where (with the space kept copies take, when measured), and every step in order. */
export function renderPlan(plan: RestorePlan, space?: Record<string, MemberSpace>): string {
  const s = plan.snapshot;
  const lines = [
    `restore plan for ${plan.workload.kind.toLowerCase()} "${plan.workload.name}" in namespace "${plan.namespace}" (stamp ${plan.stamp})`,
    `  snapshot: ${s.path} (${formatBytes(s.size)}, revision ${s.revision}, ${s.liveKeys ?? '?'} keys, sha256 ${s.sha256.slice(0, 16)}…${s.etcdVersion ? `, etcd ${s.etcdVersion}` : ''})`,
    `  restore with: ${plan.tool.binary}${plan.tool.bumpRevision ? ` --bump-revision=${plan.tool.bumpRevision} --mark-compacted` : ''}`,
    `  utility pods: ${describeUtilityImages(utilityImagesOf(plan), plan.tool.binary)}`,
    `  initial cluster: ${plan.initialCluster} (token ${plan.initialClusterToken})`,
    '  members:',
    ...plan.members.map((m) => {
      const vol = m.member.dataVolume;
      const where = vol?.kind === 'pvc' ? `pvc "${vol.claimName}"` : vol?.kind === 'hostPath' ? `hostPath "${vol.hostPath}"` : 'no volume';
      const sub = vol?.subPath ? ` (subPath "${vol.subPath}" at ${vol.mountPath})` : '';
      return [
        `    ${m.member.name}: node "${m.node}", ${where}${sub}, data ${m.member.dataDir}, old data kept in ${m.asideDir}`,
        ...keptLines(space?.[m.member.name]),
      ];
    }).flat(),
    `  quiesce: ${plan.quiesce.length ? plan.quiesce.map((q) => `${q.kind.toLowerCase()}/${q.name} (${q.replicas} → 0, ${q.reason})`).join(', ') : 'nothing'}`,
    `  PodDisruptionBudgets lifted: ${plan.pdbs.length ? plan.pdbs.map((p) => p.name).join(', ') : 'none'}`,
    ...heldLines(plan),
    '  steps:',
    ...plan.steps.map((st, i) => `    ${String(i + 1).padStart(2)}. ${st.title}${stepMember(st) ? ` [${stepMember(st)}]` : ''}`),
  ];
  for (const w of plan.warnings) lines.push(`warning: ${w}`);
  return lines.join('\n') + '\n';
}

/** What the members start without (cold-start.ts), with the probes as they are put back. */
function heldLines(plan: RestorePlan): string[] {
  const hold = plan.coldStart;
  if (!hold) return [];
  return [
    `  held while the members start: ${holdWhat(hold)} (${hold.reasons.join('; ')})`,
    ...Object.entries(hold.probes).map(([k, v]) => `    ${k} put back afterwards: ${JSON.stringify(v)}`),
  ];
}

/** A member's kept copies (name, size), their total and the size of the copy this restore adds. */
function keptLines(space: MemberSpace | undefined): string[] {
  if (!space) return ['      kept copies: not measured'];
  const adds = space.liveBytes !== undefined ? `; this restore keeps ${formatBytes(space.liveBytes)} more` : '';
  if (!space.keptCopies.length) return [`      kept copies: none${adds}`];
  return [
    `      kept copies: ${space.keptCopies.length}, ${formatBytes(space.keptBytes)} in all${adds}`,
    ...space.keptCopies.map((c) => `        ${c.name} ${formatBytes(c.bytes)}`),
  ];
}

/** The kept-copy fields of a member in the plan record. */
function keptRecord(space: MemberSpace | undefined): Record<string, unknown> {
  if (!space) return {};
  return {
    keptCopies: space.keptCopies.map((c) => ({ name: c.name, bytes: c.bytes })),
    keptCopiesBytes: space.keptBytes,
    ...(space.liveBytes !== undefined ? { newKeptCopyBytes: space.liveBytes } : {}),
  };
}

/**
 * The images of the plan's utility pods: the shell image, and when the etcd image has no shell,
 * that image too, in the container that runs the restore tool.
 */
export function utilityImagesOf(plan: RestorePlan): { shellImage?: string; toolsImage?: string; toolContainer?: string } {
  const m = plan.members[0];
  if (!m) return {};
  const image = (name: string) => m.utilityPod.spec.containers.find((c) => c['name'] === name)?.['image'] as string | undefined;
  const shellImage = image(m.shellContainer);
  return m.toolContainer === m.shellContainer ? { shellImage } : { shellImage, toolsImage: image(m.toolContainer), toolContainer: m.toolContainer };
}

function describeUtilityImages(u: ReturnType<typeof utilityImagesOf>, tool: string): string {
  if (!u.toolsImage) return `image "${u.shellImage}" (shell and ${tool})`;
  return `image "${u.shellImage}" (shell: copy, swap), beside the etcd image "${u.toolsImage}" (container ${u.toolContainer}: ${tool}, as the etcd image has no shell)`;
}

/** The plan as data; manifests and argv are included so `-o yaml` shows every pod manifest. */
export function planRecord(plan: RestorePlan, space?: Record<string, MemberSpace>): Record<string, unknown> {
  return {
    kind: 'RestorePlan',
    namespace: plan.namespace,
    workload: plan.workload,
    stamp: plan.stamp,
    snapshot: plan.snapshot,
    tool: plan.tool,
    utilityImages: utilityImagesOf(plan),
    initialCluster: plan.initialCluster,
    initialClusterToken: plan.initialClusterToken,
    quiesce: plan.quiesce,
    pdbs: plan.pdbs,
    ...(plan.coldStart ? { coldStart: plan.coldStart } : {}),
    members: plan.members.map((m) => ({
      name: m.member.name,
      pod: m.member.pod,
      node: m.node,
      dataDir: m.member.dataDir,
      volume: m.member.dataVolume,
      snapshotPath: m.snapshotPath,
      restoreDir: m.restoreDir,
      asideDir: m.asideDir,
      restoreCommand: m.restoreArgv,
      ...keptRecord(space?.[m.member.name]),
      utilityPod: m.utilityPod,
    })),
    steps: plan.steps,
    warnings: plan.warnings,
  };
}

/** Per-step durations, one line each, for stderr. */
export function renderTimings(timings: StepTiming[], wallMs: number): string {
  const rows = timings.map((t) => `  ${t.skipped ? 'skipped' : `${(t.ms / 1000).toFixed(1).padStart(6)}s`}  ${t.title}${t.skipped ? ' (done before)' : ''}`);
  return ['step durations (members in parallel):', ...rows, `  ${(wallMs / 1000).toFixed(1).padStart(6)}s  total`].join('\n') + '\n';
}
