/**
 * The CronJob controller, after kube-controller-manager's
 * pkg/controller/cronjob/cronjob_controllerv2.go (`sync`, `syncCronJob`, `cleanupFinishedJobs`)
 * and utils.go (`mostRecentScheduleTime`, `getJobName`, `getJobFromTemplate2`):
 * - `status.active` is reconciled with the Jobs the CronJob controls: a finished one leaves it
 *   (`SawCompletedJob`), a vanished one too (`MissingJob`); an unfinished Job it controls but did not
 *   record (`kubectl create job --from=cronjob/…` makes one) is not adopted (Warning `UnexpectedJob`),
 *   so it never blocks the schedule.
 * - Then, unless suspended: the most recent unmet scheduled time since `lastScheduleTime` (else the
 *   creation time), or since now − `startingDeadlineSeconds` when that is later; more than 100 missed
 *   times give Warning `TooManyMissedTimes` and run the latest anyway (times older than the deadline
 *   are skipped silently: upstream's `MissSchedule` cannot fire after that clamp, kubernetes#101148);
 *   `concurrencyPolicy: Forbid` with anything active skips it
 *   (`JobAlreadyActive`); `Replace` deletes the active Jobs first (background propagation,
 *   `SuccessfulDelete`). The Job is named `<cronjob>-<scheduled time in minutes since the epoch>`, with
 *   the template's labels and annotations, `batch.kubernetes.io/cronjob-scheduled-timestamp`, and a
 *   controller reference; it is recorded in `active` and `lastScheduleTime` is the scheduled time.
 * - Finished Jobs it controls beyond `successfulJobsHistoryLimit` / `failedJobsHistoryLimit` are
 *   deleted oldest start first (`SuccessfulDelete`), manual ones included.
 * The schedule is read as robfig/cron's ParseStandard reads it (../cron.ts) in `spec.timeZone`, or
 * in the controller-manager's zone when unset, which is UTC here.
 *
 * Jobs are the CronJob's when their controller reference names it (by name only, as upstream's
 * getJobsToBeReconciled); cleanup runs before the sync, on the same list. Messages are 1.31+'s
 * ("Saw completed job: NAME, condition: Complete"); `lastSuccessfulTime` is the newest completion of
 * any succeeded Job it controls. Source: kubernetes 1.31–1.32 pkg/controller/cronjob (CHANGELOG-1.31, PR #122025).
 *
 * Differs from the real controller: one pass over every CronJob per sync (no work queue); Jobs are
 * read from the informer cache only (the real one re-reads a vanished active Job, and the CronJob
 * before an UnexpectedJob, from the API); events are not aggregated; a schedule whose next time
 * never comes (February 30th) just never runs, without InvalidSchedule.
 */
import type { V1CronJob, V1Job, V1ObjectReference } from '@kubernetes/client-node';
import { errLine, statusCode, type ClusterApi } from './api.js';
import type { Caches } from './caches.js';
import { knownTimeZone, parseStandard } from '../cron.js';
import type { EventRecorder } from './events.js';
import type { LogFn } from './loop.js';
import { clone, controllerOf, controllerRef, finishedCondition, isControlledBy, isTerminating } from './objects.js';

/** Everything the CronJob controller needs; `now` is its clock, `wake(ms)` asks for a sync after ms. */
export interface CronJobDeps {
  api: Pick<ClusterApi, 'create' | 'remove' | 'replaceStatus'>;
  caches: Pick<Caches, 'cronjobs' | 'jobs'>;
  events: Pick<EventRecorder, 'record'>;
  log: LogFn;
  now(): number;
  wake(ms: number): void;
}

/** How long after a scheduled time the controller looks again (nextScheduleDelta). */
const NEXT_SCHEDULE_DELTA_MS = 100;
/** More missed start times than this give TooManyMissedTimes. */
const MANY_MISSED = 100;

type Finished = 'Complete' | 'Failed' | undefined;

const finishedType = (job: V1Job): Finished => finishedCondition(job)?.type as Finished;

/** RFC 3339 without fractions (Go's time.RFC3339 of a UTC time). */
function rfc3339(t: number): string {
  return new Date(t).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The Job name for a scheduled time: `<cronjob>-<minutes since the epoch>` (getJobName). */
export function cronJobName(cronJobName: string, scheduledMs: number): string {
  return `${cronJobName}-${Math.floor(scheduledMs / 60_000)}`;
}

/** Returns the CronJob controller's sync function. */
export function makeCronJobController(deps: CronJobDeps): () => Promise<void> {
  const { api, caches, events, log } = deps;

  /** One CronJob; returns ms until it wants to be looked at again, or undefined. */
  async function syncCronJob(cronJob: V1CronJob): Promise<number | undefined> {
    const cj = clone(cronJob);
    cj.apiVersion ??= 'batch/v1';
    cj.kind ??= 'CronJob';
    const ns = cj.metadata?.namespace ?? 'default';
    const status = cj.status ?? {};
    const before = JSON.stringify(status);
    const active = [...(status.active ?? [])];
    const inActive = (jobUid: string | undefined) => active.some((r) => r.uid === jobUid);
    // getJobsToBeReconciled: a Job whose controller reference names this CronJob (by name only, as upstream).
    const jobs = caches.jobs.list(ns).filter((j) => controllerOf(j)?.name === cj.metadata?.name);

    // cleanupFinishedJobs runs first, on the same list.
    await cleanupFinishedJobs(cj, jobs, active);

    // Reconcile the active list with the Jobs that exist.
    for (const job of jobs) {
      const found = inActive(job.metadata?.uid);
      const finished = finishedType(job);
      if (!found && !finished) {
        events.record(cj, 'Warning', 'UnexpectedJob', `Saw a job that the controller did not create or forgot: ${job.metadata?.name}`);
      } else if (finished) {
        if (found) {
          active.splice(active.findIndex((r) => r.uid === job.metadata?.uid), 1);
          events.record(cj, 'Normal', 'SawCompletedJob', `Saw completed job: ${job.metadata?.name}, condition: ${finished}`);
        }
        // 1.31+: the newest completion of any succeeded Job it controls.
        if (finished === 'Complete' && job.status?.completionTime) {
          const done = Date.parse(String(job.status.completionTime));
          const last = status.lastSuccessfulTime ? Date.parse(String(status.lastSuccessfulTime)) : undefined;
          if (last === undefined || done > last) status.lastSuccessfulTime = rfc3339(done) as unknown as Date;
        }
      }
    }
    const jobUids = new Set(jobs.map((j) => j.metadata?.uid));
    for (const ref of [...active]) {
      if (jobUids.has(ref.uid)) continue;
      events.record(cj, 'Normal', 'MissingJob', `Active job went missing: ${ref.name}`);
      active.splice(active.indexOf(ref), 1);
    }
    status.active = active.length ? active : undefined;

    let requeue: number | undefined;
    if (!isTerminating(cj)) requeue = await maybeStart(cj, status, active);

    if (JSON.stringify(status) !== before) {
      const updated = clone(cronJob);
      updated.status = status;
      await api.replaceStatus(updated);
    }
    return requeue;
  }

  /** The scheduling half of syncCronJob; returns ms until the next scheduled time. */
  async function maybeStart(cj: V1CronJob, status: NonNullable<V1CronJob['status']>, active: V1ObjectReference[]): Promise<number | undefined> {
    const tz = cj.spec?.timeZone;
    if (tz !== undefined && tz !== null && !knownTimeZone(tz)) {
      events.record(cj, 'Warning', 'UnknownTimeZone', `invalid timeZone: ${JSON.stringify(tz)}: unknown time zone ${tz}`);
      return undefined;
    }
    if (cj.spec?.suspend) return undefined;
    let schedule;
    try {
      schedule = parseStandard(cj.spec?.schedule ?? '', tz || 'UTC');
    } catch (err) {
      events.record(cj, 'Warning', 'UnparseableSchedule', `unparseable schedule: ${JSON.stringify(cj.spec?.schedule ?? '')} : ${(err as Error).message}`);
      return undefined;
    }
    const now = deps.now();
    const created = Date.parse(String(cj.metadata?.creationTimestamp ?? new Date(now).toISOString()));
    let earliest = status.lastScheduleTime ? Date.parse(String(status.lastScheduleTime)) : created;
    const deadline = cj.spec?.startingDeadlineSeconds;
    if (deadline !== undefined && deadline !== null) earliest = Math.max(earliest, now - deadline * 1000);
    const untilNext = (): number | undefined => {
      const next = schedule.next(now);
      return next === undefined ? undefined : next - now + NEXT_SCHEDULE_DELTA_MS;
    };

    // mostRecentScheduleTime: walk the times in (earliest, now]; the last one is due.
    let scheduled: number | undefined;
    let missed = 0;
    for (let t = schedule.next(earliest); t !== undefined && t <= now; t = schedule.next(t)) {
      scheduled = t;
      missed++;
    }
    if (scheduled === undefined) return untilNext();
    if (missed > MANY_MISSED) {
      events.record(cj, 'Warning', 'TooManyMissedTimes', 'too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew');
    }
    const name = cronJobName(cj.metadata?.name ?? '', scheduled);
    if (active.some((r) => r.name === name) || (status.lastScheduleTime && Date.parse(String(status.lastScheduleTime)) === scheduled)) return untilNext();
    if (cj.spec?.concurrencyPolicy === 'Forbid' && active.length > 0) {
      events.record(cj, 'Normal', 'JobAlreadyActive', 'Not starting job because prior execution is running and concurrency policy is Forbid');
      return untilNext();
    }
    if (cj.spec?.concurrencyPolicy === 'Replace') {
      for (const ref of [...active]) {
        const job = caches.jobs.get(ref.namespace ?? '', ref.name ?? '');
        if (!job) continue;
        await api.remove(job, { propagationPolicy: 'Background' });
        events.record(cj, 'Normal', 'SuccessfulDelete', `Deleted job ${ref.name}`);
        active.splice(active.indexOf(ref), 1);
      }
      status.active = active.length ? active : undefined;
    }
    const job = jobFromTemplate(cj, scheduled, tz || 'UTC');
    let made: V1Job;
    try {
      made = await api.create(job);
      events.record(cj, 'Normal', 'SuccessfulCreate', `Created job ${name}`);
    } catch (err) {
      if (statusCode(err) === 409) {
        // A Job of that name it controls and has not recorded is taken in; any other stops here.
        const existing = caches.jobs.get(cj.metadata?.namespace ?? '', name);
        if (!existing || !isControlledBy(existing, cj.metadata?.uid) || active.some((r) => r.uid === existing.metadata?.uid)) return undefined;
        made = existing;
      } else {
        events.record(cj, 'Warning', 'FailedCreate', `Error creating job: ${errLine(err)}`);
        throw err;
      }
    }
    active.push({ apiVersion: 'batch/v1', kind: 'Job', name: made.metadata?.name, namespace: made.metadata?.namespace, uid: made.metadata?.uid, resourceVersion: made.metadata?.resourceVersion });
    status.active = active;
    status.lastScheduleTime = rfc3339(scheduled) as unknown as Date;
    return untilNext();
  }

  function jobFromTemplate(cj: V1CronJob, scheduled: number, tz: string): V1Job {
    const t = clone(cj.spec?.jobTemplate ?? {});
    return {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: {
        name: cronJobName(cj.metadata?.name ?? '', scheduled),
        namespace: cj.metadata?.namespace,
        labels: { ...(t.metadata?.labels ?? {}) },
        annotations: { ...(t.metadata?.annotations ?? {}), 'batch.kubernetes.io/cronjob-scheduled-timestamp': scheduledTimestamp(scheduled, tz) },
        ownerReferences: [controllerRef(cj)],
      },
      spec: t.spec ?? { template: { spec: { containers: [] } } },
    };
  }

  /** Deletes finished Jobs beyond the history limits, oldest start first. */
  async function cleanupFinishedJobs(cj: V1CronJob, jobs: V1Job[], active: V1ObjectReference[]): Promise<void> {
    const limits: Array<[Finished, number | undefined]> = [
      ['Complete', cj.spec?.successfulJobsHistoryLimit], ['Failed', cj.spec?.failedJobsHistoryLimit],
    ];
    for (const [type, limit] of limits) {
      if (limit === undefined || limit === null) continue;
      const done = jobs.filter((j) => finishedType(j) === type && !isTerminating(j)).sort(byStartTime);
      for (const job of done.slice(0, Math.max(0, done.length - limit))) {
        try {
          await api.remove(job, { propagationPolicy: 'Background' });
          const i = active.findIndex((r) => r.uid === job.metadata?.uid);
          if (i >= 0) active.splice(i, 1);
          events.record(cj, 'Normal', 'SuccessfulDelete', `Deleted job ${job.metadata?.name}`);
        } catch (err) {
          events.record(cj, 'Warning', 'FailedDelete', `Deleted job: ${errLine(err)}`);
          if (statusCode(err) !== 404) log(`cronjob "${cj.metadata?.namespace}/${cj.metadata?.name}": deleting job "${job.metadata?.name}": ${errLine(err)}`);
        }
      }
    }
  }

  return async function syncCronJobs(): Promise<void> {
    let firstError: unknown;
    let soonest = Infinity;
    for (const cj of caches.cronjobs.list()) {
      try {
        const after = await syncCronJob(cj);
        if (after !== undefined) soonest = Math.min(soonest, after);
      } catch (err) {
        const code = statusCode(err);
        if (code === 409 || code === 404) continue;
        log(`cronjob "${cj.metadata?.namespace}/${cj.metadata?.name}": ${errLine(err)}`);
        firstError ??= err;
      }
    }
    if (soonest !== Infinity) deps.wake(soonest);
    if (firstError) throw firstError;
  };
}

/** byJobStartTime: by status.startTime, a Job without one after those with one, then by name. */
function byStartTime(a: V1Job, b: V1Job): number {
  const sa = a.status?.startTime ? Date.parse(String(a.status.startTime)) : undefined;
  const sb = b.status?.startTime ? Date.parse(String(b.status.startTime)) : undefined;
  if (sa === undefined && sb !== undefined) return 1;
  if (sa !== undefined && sb === undefined) return -1;
  if (sa !== undefined && sb !== undefined && sa !== sb) return sa - sb;
  return (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? '');
}

/** The scheduled time in the CronJob's zone, as Go's RFC 3339 writes it (e.g. 2026-12-06T17:00:00+01:00). */
function scheduledTimestamp(t: number, tz: string): string {
  if (tz === 'UTC' || tz === 'Etc/UTC') return rfc3339(t);
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-US', {
    timeZone: tz, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
  }).formatToParts(t).map((p) => [p.type, p.value]));
  const local = Date.UTC(Number(parts.year), Number(parts.month) - 1, Number(parts.day), Number(parts.hour), Number(parts.minute), Number(parts.second));
  const offset = Math.round((local - t) / 60_000);
  if (offset === 0) return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}:${parts.second}Z`;
  const sign = offset < 0 ? '-' : '+';
  const abs = Math.abs(offset);
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}:${parts.second}${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}
