// The simulator's CronJob controller and cron parser (test/sim/cron.ts, test/sim/controllers/cronjob.ts),
// driven with a fake clock as upstream's cronjob_controllerv2_test.go drives syncCronJob: the
// schedule, concurrencyPolicy, history limits, starting deadlines, and Jobs made by hand.
import { describe, expect, it } from 'vitest';
import type { KubernetesObject, V1CronJob, V1Job } from '@kubernetes/client-node';
import { parseStandard } from '../sim/cron.js';
import { cronJobName, makeCronJobController } from '../sim/controllers/cronjob.js';

const T = (iso: string): number => Date.parse(iso);
const iso = (t: number | undefined): string | undefined => (t === undefined ? undefined : new Date(t).toISOString());

describe('parseStandard (robfig/cron v3)', () => {
  const next = (spec: string, after: string, tz?: string) => iso(parseStandard(spec, tz).next(T(after)));

  it('finds the next minute of plain, stepped, listed and named fields', () => {
    expect(next('*/15 * * * *', '2026-12-06T17:07:30Z')).toBe('2026-12-06T17:15:00.000Z');
    expect(next('0 3 * * *', '2026-12-06T03:00:00Z')).toBe('2026-12-07T03:00:00.000Z');
    expect(next('30 2 1 JAN,jul *', '2026-12-06T00:00:00Z')).toBe('2027-01-01T02:30:00.000Z');
    expect(next('5/20 * * * *', '2026-12-06T17:26:00Z')).toBe('2026-12-06T17:45:00.000Z');
    expect(next('0 0 * * MON-FRI', '2026-12-05T12:00:00Z')).toBe('2026-12-07T00:00:00.000Z'); // Saturday → Monday
    expect(next('@hourly', '2026-12-06T17:00:00Z')).toBe('2026-12-06T18:00:00.000Z');
    expect(next('@every 90s', '2026-12-06T17:00:00.500Z')).toBe('2026-12-06T17:01:30.000Z');
  });

  it('matches either day field when both are restricted, both when one is a star', () => {
    // The 13th, or any Friday: 2026-12-11 is a Friday before the 13th.
    expect(next('0 0 13 * 5', '2026-12-06T00:00:00Z')).toBe('2026-12-11T00:00:00.000Z');
    // Only the 13th when day-of-week is "*" (and "?" is the same).
    expect(next('0 0 13 * *', '2026-12-06T00:00:00Z')).toBe('2026-12-13T00:00:00.000Z');
    expect(next('0 0 13 * ?', '2026-12-06T00:00:00Z')).toBe('2026-12-13T00:00:00.000Z');
    // "*/1" keeps the star, "*/2" does not: then either field may match.
    expect(next('0 0 13 * */2', '2026-12-06T00:00:00Z')).toBe('2026-12-08T00:00:00.000Z'); // Sun, Tue, Thu, Sat
  });

  it('reads the time in the schedule\'s zone', () => {
    // 03:00 in Berlin (UTC+1 in December) is 02:00 UTC.
    expect(next('0 3 * * *', '2026-12-06T00:00:00Z', 'Europe/Berlin')).toBe('2026-12-06T02:00:00.000Z');
    // India is UTC+5:30: its wall-clock hours start at :30 UTC.
    expect(next('0 * * * *', '2026-12-06T00:10:00Z', 'Asia/Kolkata')).toBe('2026-12-06T00:30:00.000Z');
  });

  it('refuses what robfig refuses, with its messages', () => {
    const err = (spec: string) => { try { parseStandard(spec); return ''; } catch (e) { return (e as Error).message; } };
    expect(err('* * * *')).toBe('expected exactly 5 fields, found 4: [* * * *]');
    expect(err('60 * * * *')).toBe('end of range (60) above maximum (59): 60');
    expect(err('* * 0 * *')).toBe('beginning of range (0) below minimum (1): 0');
    expect(err('* * * * 7')).toBe('end of range (7) above maximum (6): 7');
    expect(err('5-1 * * * *')).toBe('beginning of range (5) beyond end of range (1): 5-1');
    expect(err('*/0 * * * *')).toBe('step of range should be a positive number: */0');
    expect(err('@fortnightly')).toBe('unrecognized descriptor: @fortnightly');
    expect(err('x * * * *')).toMatch(/^failed to parse int from x/);
    expect(err('')).toBe('empty spec string');
  });

  it('gives up after five years of no match (February 30th)', () => {
    expect(next('0 0 30 2 *', '2026-12-06T00:00:00Z')).toBeUndefined();
  });
});

/** A fake cluster: CronJobs and Jobs in memory, events and API calls recorded. */
function fakeCluster(cronJob: V1CronJob) {
  let clock = T('2026-12-06T17:00:30Z');
  const jobs = new Map<string, V1Job>();
  const events: string[] = [];
  const calls: string[] = [];
  let cj = cronJob;
  let seq = 0;
  const ctl = makeCronJobController({
    now: () => clock,
    wake: () => undefined,
    log: (l) => calls.push(`log ${l}`),
    events: { record: (_o: KubernetesObject, type: string, reason: string, message: string) => { events.push(`${type} ${reason} ${message}`); } },
    caches: {
      cronjobs: { list: () => [cj] } as never,
      jobs: {
        list: (ns?: string) => [...jobs.values()].filter((j) => !ns || j.metadata?.namespace === ns),
        get: (_ns: string, name: string) => jobs.get(name),
      } as never,
    },
    api: {
      create: async <T extends KubernetesObject>(obj: T): Promise<T> => {
        const job = obj as unknown as V1Job;
        const name = job.metadata!.name!;
        if (jobs.has(name)) throw Object.assign(new Error('AlreadyExists'), { code: 409 });
        const made: V1Job = { ...job, metadata: { ...job.metadata, uid: `job-uid-${++seq}`, creationTimestamp: new Date(clock) }, status: {} };
        jobs.set(name, made);
        calls.push(`create ${name}`);
        return made as unknown as T;
      },
      remove: async (obj: KubernetesObject, opts?: { propagationPolicy?: string }) => {
        jobs.delete(obj.metadata!.name!);
        calls.push(`delete ${obj.metadata!.name} ${opts?.propagationPolicy}`);
      },
      replaceStatus: async <T extends KubernetesObject>(obj: T): Promise<T> => {
        cj = obj as unknown as V1CronJob;
        return obj;
      },
    },
  });
  return {
    jobs, events, calls,
    get cronJob() { return cj; },
    at(when: string) { clock = T(when); },
    sync: ctl,
    finish(name: string, type: 'Complete' | 'Failed', startIso: string) {
      const j = jobs.get(name)!;
      j.status = { startTime: new Date(startIso), ...(type === 'Complete' ? { completionTime: new Date(clock) } : {}), conditions: [{ type, status: 'True' }] };
    },
    /** A Job made as `kubectl create job --from=cronjob/…` makes one: controlled by the CronJob, not in its active list. */
    manual(name: string) {
      jobs.set(name, { apiVersion: 'batch/v1', kind: 'Job', metadata: { name, namespace: 'etcd', uid: `manual-${name}`, annotations: { 'cronjob.kubernetes.io/instantiate': 'manual' }, ownerReferences: [{ apiVersion: 'batch/v1', kind: 'CronJob', name: cj.metadata!.name!, uid: cj.metadata!.uid!, controller: true }] }, status: {} });
    },
  };
}

function cronJob(spec: Partial<NonNullable<V1CronJob['spec']>>): V1CronJob {
  return {
    apiVersion: 'batch/v1', kind: 'CronJob',
    metadata: { name: 'backup', namespace: 'etcd', uid: 'cj-uid', creationTimestamp: new Date('2026-12-06T16:00:10Z') },
    spec: {
      schedule: '*/5 * * * *', concurrencyPolicy: 'Allow', suspend: false, successfulJobsHistoryLimit: 3, failedJobsHistoryLimit: 1,
      jobTemplate: { metadata: { labels: { app: 'b' }, annotations: { note: 'n' } }, spec: { template: { spec: { containers: [{ name: 'c', image: 'i' }], restartPolicy: 'Never' } } } },
      ...spec,
    },
    status: { lastScheduleTime: new Date('2026-12-06T17:00:00Z') },
  };
}

describe('the CronJob controller', () => {
  it('starts a Job at each scheduled time, named by its minute, with the template and a controller reference', async () => {
    const c = fakeCluster(cronJob({}));
    await c.sync();
    expect(c.calls).toEqual([]); // 17:00 already ran; 17:05 is not due yet
    c.at('2026-12-06T17:05:00.2Z');
    await c.sync();
    const name = cronJobName('backup', T('2026-12-06T17:05:00Z'));
    expect(name).toBe('backup-29942945');
    expect(c.calls).toEqual([`create ${name}`]);
    const job = c.jobs.get(name)!;
    expect(job.metadata?.labels).toEqual({ app: 'b' });
    expect(job.metadata?.annotations).toEqual({ note: 'n', 'batch.kubernetes.io/cronjob-scheduled-timestamp': '2026-12-06T17:05:00Z' });
    expect(job.metadata?.ownerReferences).toEqual([{ apiVersion: 'batch/v1', kind: 'CronJob', name: 'backup', uid: 'cj-uid', controller: true, blockOwnerDeletion: true }]);
    expect(c.cronJob.status?.active?.map((r) => r.name)).toEqual([name]);
    expect(String(c.cronJob.status?.lastScheduleTime)).toBe('2026-12-06T17:05:00Z');
    expect(c.events).toEqual([`Normal SuccessfulCreate Created job ${name}`]);
    // The same time is not run twice.
    await c.sync();
    expect(c.calls).toHaveLength(1);
  });

  it('Forbid skips a time while a Job it started is active; a manual Job never blocks it', async () => {
    const c = fakeCluster(cronJob({ concurrencyPolicy: 'Forbid' }));
    c.manual('backup-manual-1');
    c.at('2026-12-06T17:05:01Z');
    await c.sync();
    expect(c.events).toContain('Warning UnexpectedJob Saw a job that the controller did not create or forgot: backup-manual-1');
    expect(c.calls).toEqual(['create backup-29942945']);
    c.at('2026-12-06T17:10:01Z');
    await c.sync();
    expect(c.events).toContain('Normal JobAlreadyActive Not starting job because prior execution is running and concurrency policy is Forbid');
    expect(c.calls).toHaveLength(1);
    c.finish('backup-29942945', 'Complete', '2026-12-06T17:05:02Z');
    await c.sync();
    expect(c.events).toContain('Normal SawCompletedJob Saw completed job: backup-29942945, condition: Complete');
    expect(c.calls).toEqual(['create backup-29942945', 'create backup-29942950']);
    expect(String(c.cronJob.status?.lastSuccessfulTime)).toBe('2026-12-06T17:10:01Z');
  });

  it('Replace deletes the active Job before starting the next', async () => {
    const c = fakeCluster(cronJob({ concurrencyPolicy: 'Replace' }));
    c.at('2026-12-06T17:05:01Z');
    await c.sync();
    c.at('2026-12-06T17:10:01Z');
    await c.sync();
    expect(c.calls).toEqual(['create backup-29942945', 'delete backup-29942945 Background', 'create backup-29942950']);
    expect(c.cronJob.status?.active?.map((r) => r.name)).toEqual(['backup-29942950']);
  });

  it('keeps the history limits over every finished Job it controls, manual ones included, oldest start first', async () => {
    const c = fakeCluster(cronJob({ successfulJobsHistoryLimit: 2, failedJobsHistoryLimit: 1, schedule: '0 0 1 1 *' }));
    for (const [i, name] of ['m1', 'm2', 'm3', 'm4'].entries()) {
      c.manual(name);
      c.finish(name, 'Complete', `2026-12-06T16:0${5 - i}:00Z`); // m4 started first
    }
    c.manual('f1'); c.finish('f1', 'Failed', '2026-12-06T15:00:00Z');
    c.manual('f2'); c.finish('f2', 'Failed', '2026-12-06T15:30:00Z');
    await c.sync();
    expect(c.calls.sort()).toEqual(['delete f1 Background', 'delete m3 Background', 'delete m4 Background']);
    expect([...c.jobs.keys()].sort()).toEqual(['f2', 'm1', 'm2']);
  });

  it('skips a time older than startingDeadlineSeconds, and a suspended CronJob starts nothing', async () => {
    const c = fakeCluster(cronJob({ startingDeadlineSeconds: 30 }));
    c.at('2026-12-06T17:05:45Z');
    await c.sync();
    expect(c.calls).toEqual([]);
    const s = fakeCluster(cronJob({ suspend: true }));
    s.at('2026-12-06T17:05:01Z');
    await s.sync();
    expect(s.calls).toEqual([]);
  });

  it('runs only the latest of many missed times, and says so past 100', async () => {
    const c = fakeCluster(cronJob({ schedule: '* * * * *' }));
    c.at('2026-12-06T20:00:30Z'); // 180 minutes missed
    await c.sync();
    expect(c.calls).toEqual([`create ${cronJobName('backup', T('2026-12-06T20:00:00Z'))}`]);
    expect(c.events[0]).toBe('Warning TooManyMissedTimes too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew');
  });
});
