/**
 * Admission of the utility pods, proven before the first change: each one is sent to the API
 * server as a dry-run create (dryRun=All: every admission plugin and webhook runs, nothing is
 * stored), so a Pod Security level, a quota or a webhook that would refuse it stops the restore
 * while the cluster is untouched, instead of after etcd was stopped.
 */
import { PreflightError } from './preflight.js';
import type { RestorePlan } from './plan.js';
import type { RestoreCluster } from './runner.js';

/** Throws a PreflightError naming the member, the cluster's reason and a way out for the first utility pod the cluster would refuse. */
export async function admitUtilityPods(plan: RestorePlan, cluster: Pick<RestoreCluster, 'admitPod'>): Promise<void> {
  for (const m of plan.members) {
    const refusal = await cluster.admitPod(m.utilityPod);
    if (refusal === undefined) continue;
    throw new PreflightError(
      `the cluster would refuse utility pod "${m.utilityPod.metadata.name}" for member "${m.member.name}": ${refusal}`,
      admissionHint(refusal, plan.namespace),
    );
  }
}

/**
 * Refuses when the cluster would not let the StatefulSet create its members again: a restore stops
 * and starts every member (so does --in-place, deleting them all), and the members now running may
 * have been admitted before a Pod Security level or a quota's demands came. "exceeded quota" is
 * not a refusal here: the running member a new one replaces still counts in the dry run.
 */
export async function admitMemberPod(plan: Pick<RestorePlan, 'namespace' | 'workload'>, pod: RestorePlan['members'][number]['utilityPod'], cluster: Pick<RestoreCluster, 'admitPod'>): Promise<void> {
  const refusal = await cluster.admitPod(pod);
  if (refusal === undefined || /exceeded quota/.test(refusal)) return;
  throw new PreflightError(
    `statefulset "${plan.workload.name}" could not start its members again after the restore stops them: the cluster would refuse its pod "${pod.metadata.name}": ${refusal}`,
    `the running members were admitted before that rule; make the StatefulSet's pod template comply (kubectl edit statefulset ${plan.workload.name} -n ${plan.namespace}) or relax the rule for the restore, then restore again; nothing was changed`,
  );
}

/** A way out for a refusal, by what refused it; nothing has been changed yet. */
export function admissionHint(refusal: string, namespace: string): string {
  const pss = /violates PodSecurity "(baseline|restricted):/.exec(refusal);
  if (pss) {
    // A utility pod runs as its member runs; it runs as root (allowed by baseline) only for a root
    // member or a distroless image; only a hostPath data volume needs privileged.
    const allow = pss[1] === 'restricted' ? 'baseline' : 'privileged';
    return `namespace "${namespace}" enforces Pod Security level "${pss[1]}" and the utility pods run as their members run (root for a member that runs as root or a distroless etcd image) to write the member's data;`
      + ` allow them for the restore (kubectl label namespace ${namespace} pod-security.kubernetes.io/enforce=${allow} --overwrite) and set the label back afterwards; nothing was changed`;
  }
  if (/exceeded quota|must specify (limits|requests)/.test(refusal)) {
    return `make room in the ResourceQuota of namespace "${namespace}" (kubectl describe resourcequota -n ${namespace}) and restore again; nothing was changed`;
  }
  return 'fix what the cluster names and restore again; nothing was changed';
}
