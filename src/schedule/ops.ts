/**
 * `kubectl etcd schedule list|status|delete`: what the schedules are, when each last produced a
 * good backup and why its last run failed (the backup pod's termination message, which the
 * script writes: script.ts), and removing one with everything it created.
 */
import type { V1CronJob, V1Job, V1Pod } from '@kubernetes/client-node';
import { CheckFailedError, NotFoundError, PluginError, UsageError } from '../errors.js';
import type { KubeContext } from '../kube/client.js';
import { apiError } from '../kube/errors.js';
import { MANAGED_BY } from '../restore/manifests.js';
import { formatDuration } from '../ui/bytes.js';
import { BACKUP_CONTAINER, KEEP_ANNOTATION, READER_LABEL, SCHEDULE_LABEL, VOLUME_ANNOTATION, WORKLOAD_ANNOTATION, serviceAccountName } from './manifests.js';

/** One schedule as `list` and `status` show it. */
export interface ScheduleState {
  name: string;
  namespace: string;
  schedule: string;
  timeZone?: string;
  suspended: boolean;
  workload?: string;
  keep?: number;
  volume?: string;
  /** When the newest run that ended well finished (a verified backup on the volume). */
  lastSuccess?: string;
  /** When the controller last started a run. */
  lastRun?: string;
  /** A run going on now. */
  active: number;
  /** The newest run that failed, when it is newer than the last success. */
  lastFailure?: { job: string; at?: string; reason: string };
}

const MANAGED = `${Object.keys(MANAGED_BY)[0]}=${Object.values(MANAGED_BY)[0]}`;

function iso(t: Date | string | undefined): string | undefined {
  if (t === undefined) return undefined;
  const d = t instanceof Date ? t : new Date(t);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function condition(job: V1Job, type: string) {
  return job.status?.conditions?.find((c) => c.type === type && c.status === 'True');
}

/** Why a failed run failed: its pod's termination message (last line), else the Job's condition. */
function failureReason(job: V1Job, pods: V1Pod[]): string {
  const own = pods.filter((p) => p.metadata?.ownerReferences?.some((o) => o.uid === job.metadata?.uid));
  for (const p of own.sort((a, b) => String(b.metadata?.creationTimestamp ?? '').localeCompare(String(a.metadata?.creationTimestamp ?? '')))) {
    const term = p.status?.containerStatuses?.find((c) => c.name === BACKUP_CONTAINER)?.state?.terminated;
    if (term && term.exitCode !== 0) {
      const line = (term.message ?? '').trim().split('\n').filter(Boolean).at(-1);
      return `${line ?? term.reason ?? 'failed'} (exit code ${term.exitCode})`;
    }
  }
  const failed = condition(job, 'Failed');
  return failed ? `${failed.reason ?? 'Failed'}: ${failed.message ?? ''}`.replace(/: $/, '') : 'failed';
}

async function readCronJob(kube: KubeContext, namespace: string, name: string): Promise<V1CronJob> {
  let cj: V1CronJob;
  try {
    cj = await kube.batch.readNamespacedCronJob({ name, namespace });
  } catch (err) {
    if ((err as { code?: number }).code === 404) throw new NotFoundError(`no schedule "${name}" in namespace "${namespace}"`, 'kubectl etcd schedule list shows the schedules');
    throw apiError(err, `cronjob "${name}" in namespace "${namespace}"`);
  }
  if (cj.metadata?.labels?.[SCHEDULE_LABEL] !== name) {
    throw new PluginError(`cronjob "${name}" in namespace "${namespace}" is not a kubectl-etcd schedule`, 'kubectl etcd schedule list shows the schedules; kubectl manages other CronJobs');
  }
  return cj;
}

/** The state of one schedule from its CronJob, its Jobs and their pods. */
export async function scheduleState(kube: KubeContext, cj: V1CronJob): Promise<ScheduleState> {
  const namespace = cj.metadata!.namespace!;
  const name = cj.metadata!.name!;
  const selector = `${SCHEDULE_LABEL}=${name}`;
  const [jobs, pods] = await Promise.all([
    kube.batch.listNamespacedJob({ namespace, labelSelector: selector }).then((l) => l.items),
    kube.core.listNamespacedPod({ namespace, labelSelector: selector }).then((l) => l.items),
  ]).catch((err: unknown) => { throw apiError(err, `the jobs of schedule "${name}"`); });
  const ours = jobs.filter((j) => j.metadata?.ownerReferences?.some((o) => o.uid === cj.metadata?.uid) || j.metadata?.labels?.[SCHEDULE_LABEL] === name);
  const done = (j: V1Job) => iso(j.status?.completionTime ?? condition(j, 'Complete')?.lastTransitionTime);
  const failedAt = (j: V1Job) => iso(condition(j, 'Failed')?.lastTransitionTime ?? j.metadata?.creationTimestamp);
  let lastSuccess = iso(cj.status?.lastSuccessfulTime);
  for (const j of ours) {
    const t = condition(j, 'Complete') ? done(j) : undefined;
    if (t && (!lastSuccess || t > lastSuccess)) lastSuccess = t;
  }
  const failed = ours.filter((j) => condition(j, 'Failed')).sort((a, b) => (failedAt(b) ?? '').localeCompare(failedAt(a) ?? ''))[0];
  const failedTime = failed ? failedAt(failed) : undefined;
  // The controller's last scheduled time, or a run started by hand (kubectl create job --from) since.
  const lastRun = [iso(cj.status?.lastScheduleTime), ...ours.map((j) => iso(j.status?.startTime ?? j.metadata?.creationTimestamp))]
    .filter((t): t is string => t !== undefined).sort().at(-1);
  const annotations = cj.metadata?.annotations ?? {};
  const keep = Number(annotations[KEEP_ANNOTATION]);
  return {
    name, namespace,
    schedule: cj.spec?.schedule ?? '',
    ...(cj.spec?.timeZone ? { timeZone: cj.spec.timeZone } : {}),
    suspended: cj.spec?.suspend === true,
    ...(annotations[WORKLOAD_ANNOTATION] ? { workload: annotations[WORKLOAD_ANNOTATION] } : {}),
    ...(Number.isSafeInteger(keep) ? { keep } : {}),
    ...(annotations[VOLUME_ANNOTATION] ? { volume: annotations[VOLUME_ANNOTATION] } : {}),
    ...(lastSuccess ? { lastSuccess } : {}),
    ...(lastRun ? { lastRun } : {}),
    active: ours.filter((j) => !condition(j, 'Complete') && !condition(j, 'Failed')).length,
    ...(failed && (!lastSuccess || (failedTime ?? '') > lastSuccess)
      ? { lastFailure: { job: failed.metadata!.name!, ...(failedTime ? { at: failedTime } : {}), reason: failureReason(failed, pods) } }
      : {}),
  };
}

/** Every schedule of the namespace (CronJobs this plugin made). */
export async function listSchedules(kube: KubeContext, namespace: string): Promise<ScheduleState[]> {
  let items: V1CronJob[];
  try {
    items = (await kube.batch.listNamespacedCronJob({ namespace, labelSelector: `${MANAGED},${SCHEDULE_LABEL}` })).items;
  } catch (err) {
    throw apiError(err, `cronjobs in namespace "${namespace}"`);
  }
  const states = await Promise.all(items.map((cj) => scheduleState(kube, cj)));
  return states.sort((a, b) => a.name.localeCompare(b.name));
}

/** One schedule's state. */
export async function getSchedule(kube: KubeContext, namespace: string, name: string): Promise<ScheduleState> {
  return scheduleState(kube, await readCronJob(kube, namespace, name));
}

/**
 * For a delete run again after the CronJob went (a run cut off): what the schedule left (its
 * ServiceAccount, reader pods, a claim it made), as a CronJob-shaped stand-in so that the delete
 * finishes; nothing left is the NotFoundError `err`.
 */
async function leftoversOf(kube: KubeContext, namespace: string, name: string, deleteBackups: boolean, err: unknown): Promise<V1CronJob> {
  if (!(err instanceof NotFoundError)) throw err;
  const [sa, claims, readers] = await Promise.all([
    // Without the right to read ServiceAccounts (a Role from before), as before: no such schedule.
    kube.core.readNamespacedServiceAccount({ name: serviceAccountName(name), namespace }).then((a) => a.metadata?.labels?.[SCHEDULE_LABEL] === name, (e: { code?: number }) => (e.code === 404 || e.code === 403 ? false : Promise.reject(e))),
    // The claim a schedule makes is `<name>s` (create.ts); one given with --to is never deleted.
    kube.core.readNamespacedPersistentVolumeClaim({ name: `${name}s`.slice(0, 63), namespace }).then((c) => (c.metadata?.labels?.[SCHEDULE_LABEL] === name ? [c.metadata.name!] : []), (e: { code?: number }) => (e.code === 404 ? [] : Promise.reject(e))),
    kube.core.listNamespacedPod({ namespace, labelSelector: `${READER_LABEL}=${name}` }).then((l) => l.items.length),
  ]).catch((e: unknown) => { throw apiError(e, `what schedule "${name}" left`); });
  // The claim a finished delete keeps on purpose is no leftover, unless its backups are to go too.
  if (!sa && readers === 0 && (claims.length === 0 || !deleteBackups)) throw err;
  return { metadata: { name, namespace, labels: { [SCHEDULE_LABEL]: name }, ...(claims.length === 1 ? { annotations: { [VOLUME_ANNOTATION]: claims[0]! } } : {}) } };
}

/** `--max-age`: a Go duration (30m, 25h) or whole days (2d). */
export function parseMaxAge(value: string): number {
  const days = /^(\d+)d$/.exec(value);
  if (days) return Number(days[1]) * 86_400_000;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(value); m; m = re.exec(value)) {
    total += Number(m[1]) * unit[m[2]!]!;
    consumed = re.lastIndex;
  }
  if (consumed !== value.length || consumed === 0 || total <= 0) throw new UsageError(`invalid --max-age "${value}"`, 'use a duration such as 90m, 25h or 2d');
  return total;
}

/** exit 3 (CheckFailedError) when the newest good backup is older than maxAgeMs, or there is none. */
export function checkAge(s: ScheduleState, maxAgeMs: number, now = Date.now()): void {
  const failure = s.lastFailure ? `; last failure (${s.lastFailure.at ?? s.lastFailure.job}): ${s.lastFailure.reason}` : '';
  if (!s.lastSuccess) {
    throw new CheckFailedError(`schedule "${s.name}" has no good backup yet${failure}`, `kubectl describe cronjob ${s.name} -n ${s.namespace} and its jobs' pods show more`);
  }
  const age = now - Date.parse(s.lastSuccess);
  if (age > maxAgeMs) {
    throw new CheckFailedError(`the newest good backup of schedule "${s.name}" is from ${s.lastSuccess}, ${formatDuration(age / 1000)} ago (more than ${formatDuration(maxAgeMs / 1000)})${failure}`,
      `kubectl describe cronjob ${s.name} -n ${s.namespace} and its jobs' pods show more`);
  }
}

/**
 * Deletes the CronJob (its Jobs and pods with it: the garbage collector, waited for), then the
 * ServiceAccount; the volume only with deleteBackups, and only one the schedule created.
 * Refuses before any change when deleteBackups names a volume the schedule did not create.
 */
export async function deleteSchedule(kube: KubeContext, namespace: string, name: string, opts: { deleteBackups: boolean; timeoutMs: number }, say: (line: string) => void): Promise<{ kept?: string }> {
  const cj = await readCronJob(kube, namespace, name).catch((err: unknown) => leftoversOf(kube, namespace, name, opts.deleteBackups, err));
  const volume = cj.metadata?.annotations?.[VOLUME_ANNOTATION];
  let ownVolume = false;
  let claimExists = false;
  if (volume) {
    try {
      const pvc = await kube.core.readNamespacedPersistentVolumeClaim({ name: volume, namespace });
      ownVolume = pvc.metadata?.labels?.[SCHEDULE_LABEL] === name;
      claimExists = true;
    } catch (err) {
      if ((err as { code?: number }).code !== 404) throw apiError(err, `persistentvolumeclaim "${volume}"`);
    }
    if (opts.deleteBackups && !ownVolume && claimExists) {
      throw new PluginError(`persistentvolumeclaim "${volume}" was not created by schedule "${name}": --delete-backups deletes only a volume the schedule made`,
        `leave out --delete-backups, and delete the claim with kubectl delete pvc ${volume} -n ${namespace} if you mean to`);
    }
  }
  const selector = `${SCHEDULE_LABEL}=${name}`;
  try {
    await kube.batch.deleteNamespacedCronJob({ name, namespace, propagationPolicy: 'Foreground' });
  } catch (err) {
    if ((err as { code?: number }).code !== 404) throw apiError(err, `cronjob "${name}"`);
  }
  say(cj.spec ? `deleted cronjob "${name}"; waiting for its jobs and pods to go` : `cronjob "${name}" is gone already (a delete cut off?): deleting what the schedule left`);
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    const [c, jobs, pods] = await Promise.all([
      kube.batch.readNamespacedCronJob({ name, namespace }).then(() => 1, (err: { code?: number }) => (err.code === 404 ? 0 : Promise.reject(err))),
      kube.batch.listNamespacedJob({ namespace, labelSelector: selector }).then((l) => l.items.length),
      kube.core.listNamespacedPod({ namespace, labelSelector: selector }).then((l) => l.items.length),
    ]).catch((err: unknown) => { throw apiError(err, `the jobs of schedule "${name}"`); });
    if (c + jobs + pods === 0) break;
    if (Date.now() > deadline) {
      throw new PluginError(`schedule "${name}": ${c ? 'the cronjob, ' : ''}${jobs} job(s) and ${pods} pod(s) still there after ${Math.round(opts.timeoutMs / 1000)} s`,
        `run the command again to finish; kubectl get jobs,pods -l ${selector} -n ${namespace} shows them`);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  // Reader pods a killed snapshots list or restore left behind (they hold the claim on their node).
  try {
    const readers = await kube.core.listNamespacedPod({ namespace, labelSelector: `${READER_LABEL}=${name}` });
    for (const p of readers.items) {
      await kube.core.deleteNamespacedPod({ name: p.metadata!.name!, namespace, gracePeriodSeconds: 0 }).catch((err: { code?: number }) => (err.code === 404 ? undefined : Promise.reject(err)));
    }
  } catch (err) {
    throw apiError(err, `the reader pods of schedule "${name}"`);
  }
  try {
    await kube.core.deleteNamespacedServiceAccount({ name: serviceAccountName(name), namespace });
  } catch (err) {
    if ((err as { code?: number }).code !== 404) throw apiError(err, `serviceaccount "${serviceAccountName(name)}"`);
  }
  if (volume && opts.deleteBackups && ownVolume && claimExists) {
    try {
      await kube.core.deleteNamespacedPersistentVolumeClaim({ name: volume, namespace });
    } catch (err) {
      if ((err as { code?: number }).code !== 404) throw apiError(err, `persistentvolumeclaim "${volume}"`);
    }
    say(`deleted persistentvolumeclaim "${volume}" and the backups on it`);
    return {};
  }
  return volume ? { kept: volume } : {};
}
