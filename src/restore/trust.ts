/**
 * What `--resume` and `--abort` may believe of a restore journal.
 *
 * The journal carries the whole plan (commands, utility pod manifests) because resume and abort
 * must work when etcd's pods are gone and discovery has nothing left to read (commit d2e7152).
 * But its cluster copy is a ConfigMap, and anyone allowed to edit ConfigMaps in the namespace
 * could write commands or pods into it that an admin's `--resume` would then run with the
 * admin's rights. Re-discovering the cluster cannot replace the stored plan (the pods are gone),
 * so the stored plan is checked instead:
 *
 *  1. every copy's plan must be exactly what buildRestorePlan makes from the inputs stored with
 *     it (members, snapshot facts, images, tool, stamp): no hand-written argv, script, step or
 *     pod field gets through;
 *  2. when the local copy exists (under the user's own 0700 state dir), the cluster copy must
 *     hold the same plan and inputs, or nothing runs; the local copy is the one used, progress
 *     included;
 *  3. when only the cluster copy exists (resuming from another machine), its inputs (images,
 *     volumes, nodes) come from the ConfigMap alone: the command prints the plan and asks for
 *     confirmation, as a fresh restore does.
 */
import { PluginError } from '../errors.js';
import type { EtcdTopology } from '../etcd/topology.js';
import { journalConfigMapName, type JournalState, type JournalStore } from './journal.js';
import { TOOLS_CONTAINER } from './manifests.js';
import { buildRestorePlan, type RestorePlan } from './plan.js';

/** JSON with sorted keys, so two equal values compare equal whatever their key order. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)))
      : v,
  );
}

/** The parts of a plan that decide what runs; warnings are text and the snapshot path is local. */
function planIdentity(plan: RestorePlan): unknown {
  return { ...plan, warnings: [], snapshot: { ...plan.snapshot, path: '' } };
}

function tampered(where: string, what: string): PluginError {
  return new PluginError(
    `the restore journal in ${where} ${what}; it was changed outside kubectl-etcd`,
    'nothing was run; compare it with the local journal of the machine that started the restore and run --resume or --abort there, or check the members by hand',
  );
}

/** Throws unless the stored plan is what the planner builds from the inputs stored with it. */
export function checkStoredPlan(state: JournalState, where: string): void {
  const plan = state.plan;
  const containers = plan?.members?.[0]?.utilityPod?.spec?.containers ?? [];
  const utilityImage = containers[0]?.['image'];
  const toolsImage = containers[1]?.['image'];
  if (!plan?.members?.length || typeof utilityImage !== 'string' || (toolsImage !== undefined && typeof toolsImage !== 'string')) {
    throw tampered(where, 'has no complete plan');
  }
  let rebuilt: RestorePlan;
  try {
    rebuilt = buildRestorePlan({
      topology: {
        namespace: plan.namespace,
        workload: plan.workload,
        members: plan.members.map((m) => m.member),
        initialClusterToken: plan.clusterToken,
        image: utilityImage,
      },
      snapshot: plan.snapshot,
      quiesce: plan.quiesce,
      pdbs: plan.pdbs,
      utilityImage,
      etcdToolsImage: toolsImage as string | undefined,
      tool: plan.tool,
      stamp: plan.stamp,
      inPlace: plan.inPlace,
      // The held probes are written back into the pod template: the plan shows them (render.ts),
      // so resuming from the cluster copy alone asks about them with the rest.
      ...(plan.coldStart ? { coldStart: plan.coldStart } : {}),
    });
  } catch {
    throw tampered(where, 'has a plan the planner cannot rebuild');
  }
  if (canonical(planIdentity(rebuilt)) !== canonical(planIdentity(plan))) {
    throw tampered(where, 'holds commands or pod manifests that differ from the plan built from its own inputs');
  }
  const stepIds = new Set(plan.steps.map((s) => s.id));
  if (
    state.namespace !== plan.namespace || state.workload !== plan.workload.name || state.stamp !== plan.stamp ||
    state.etcdReplicas !== plan.replicas || canonical(state.quiesce) !== canonical(plan.quiesce) ||
    canonical(state.pdbs) !== canonical(plan.pdbs) || !state.done.every((id) => stepIds.has(id))
  ) {
    throw tampered(where, 'disagrees with its own plan (workload, stamp, replicas, quiesced workloads, PDBs or steps)');
  }
}

/** The journal state --resume / --abort may act on, and whether it rests on the cluster copy alone. */
export function trustedJournalState(copies: Array<{ store: JournalStore; state?: JournalState }>): { state?: JournalState; clusterOnly: boolean } {
  const found = copies.filter((c): c is { store: JournalStore; state: JournalState } => !!c.state);
  if (!found.length) return { clusterOnly: false };
  for (const c of found) checkStoredPlan(c.state, c.store.describe());
  const local = found.find((c) => c.store.where === 'local');
  if (!local) {
    const newest = [...found].sort((a, b) => b.state.updatedAt.localeCompare(a.state.updatedAt))[0]!;
    return { state: newest.state, clusterOnly: true };
  }
  for (const c of found) {
    if (c === local) continue;
    const same = canonical(planIdentity(c.state.plan)) === canonical(planIdentity(local.state.plan)) &&
      c.state.stamp === local.state.stamp && c.state.etcdReplicas === local.state.etcdReplicas &&
      canonical(c.state.quiesce) === canonical(local.state.quiesce) && canonical(c.state.pdbs) === canonical(local.state.pdbs);
    if (!same) {
      throw new PluginError(
        `the restore journal in ${c.store.describe()} differs from the local journal ${local.store.describe()} (stamp ${c.state.stamp} vs ${local.state.stamp})`,
        'nothing was run; someone changed the cluster copy or another restore was started elsewhere: check both, delete the wrong one, and run again',
      );
    }
  }
  return { state: local.state, clusterOnly: false };
}

/**
 * A journal found only in the cluster may have been written by anyone allowed to edit ConfigMaps:
 * the image it would run as etcd-tools (as root, on the member volumes) must be the etcd image the
 * StatefulSet runs, as a fresh restore would choose it.
 */
export async function checkClusterOnlyToolsImage(plan: RestorePlan, templateImage: (topology: EtcdTopology) => Promise<string>): Promise<void> {
  const tools = [...new Set(plan.members.flatMap((m) => m.utilityPod.spec.containers.filter((c) => c['name'] === TOOLS_CONTAINER).map((c) => String(c['image']))))];
  if (!tools.length) return;
  const topology: EtcdTopology = { namespace: plan.namespace, workload: plan.workload, members: plan.members.map((m) => m.member), image: plan.members[0]?.member.image ?? '' };
  const running = await templateImage(topology).catch(() => undefined);
  const other = tools.find((t) => t !== running);
  if (running === undefined || other !== undefined) {
    throw new PluginError(
      `the restore journal found only in the cluster (configmap "${journalConfigMapName(plan.workload.name)}") would run image "${other ?? tools[0]}" as ${TOOLS_CONTAINER}, but ${running === undefined ? `the image of statefulset "${plan.workload.name}" cannot be read` : `statefulset "${plan.workload.name}" runs "${running}"`}`,
      'nothing was run; resume or roll back from the machine that started the restore (its local journal is trusted), or check the ConfigMap',
    );
  }
}
