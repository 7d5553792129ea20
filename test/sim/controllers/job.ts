/**
 * A minimal Job controller: runs up to `parallelism` pods until `completions` succeed, then marks
 * the Job Complete; after more than `backoffLimit` failed pods marks it Failed (Jobs of CronJobs
 * come from ./cronjob.ts).
 *
 * Differs from the real controller: no backoff delay between retries, no activeDeadlineSeconds,
 * ttlSecondsAfterFinished, suspend, indexed completions, pod failure or success policies, and no
 * tracking finalizers.
 */
import type { V1Job, V1JobStatus, V1Pod } from '@kubernetes/client-node';
import { errLine, statusCode, statusMessage, type ClusterApi } from './api.js';
import type { Caches } from './caches.js';
import type { EventRecorder } from './events.js';
import type { LogFn } from './loop.js';
import { clone, controllerRef, finishedCondition, hasFields, isActive, isControlledBy, isPodReady, isTerminating } from './objects.js';

/** Everything the Job controller needs. */
export interface JobDeps {
  api: ClusterApi;
  caches: Caches;
  events: EventRecorder;
  log: LogFn;
}

/** Returns the Job controller's sync function. */
export function makeJobController({ api, caches, events, log }: JobDeps): () => Promise<void> {
  const created = new Map<string, Map<string, number>>();

  async function syncJob(job: V1Job): Promise<void> {
    if (isTerminating(job) || finishedCondition(job)) return;
    const uid = job.metadata?.uid ?? '';
    const ns = job.metadata?.namespace ?? 'default';
    const now = Date.now();
    const pods = caches.pods.list(ns).filter((p) => isControlledBy(p, uid));
    const pending = created.get(uid) ?? new Map<string, number>();
    for (const p of pods) pending.delete(p.metadata?.name ?? '');
    for (const [name, at] of pending) if (now - at > 30_000) pending.delete(name);
    created.set(uid, pending);

    const succeeded = pods.filter((p) => p.status?.phase === 'Succeeded').length;
    const failed = pods.filter((p) => p.status?.phase === 'Failed').length;
    const active = pods.filter(isActive);
    const completions = job.spec?.completions ?? 1;
    const parallelism = job.spec?.parallelism ?? 1;
    const backoffLimit = job.spec?.backoffLimit ?? 6;
    const nowIso = new Date().toISOString() as unknown as Date;
    const status: V1JobStatus = {
      active: active.length,
      ready: active.filter(isPodReady).length,
      succeeded,
      failed,
      startTime: job.status?.startTime ?? nowIso,
    };
    if (succeeded >= completions) {
      status.completionTime = nowIso;
      status.conditions = [
        ...(job.status?.conditions ?? []),
        { type: 'SuccessCriteriaMet', status: 'True', reason: 'CompletionsReached', message: 'Reached expected number of succeeded pods', lastProbeTime: nowIso, lastTransitionTime: nowIso },
        { type: 'Complete', status: 'True', reason: 'CompletionsReached', message: 'Reached expected number of succeeded pods', lastProbeTime: nowIso, lastTransitionTime: nowIso },
      ];
      events.record(job, 'Normal', 'Completed', 'Job completed');
    } else if (failed > backoffLimit) {
      for (const p of active) await api.remove(p, { uid: p.metadata?.uid });
      status.conditions = [
        ...(job.status?.conditions ?? []),
        { type: 'FailureTarget', status: 'True', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit', lastProbeTime: nowIso, lastTransitionTime: nowIso },
        { type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit', lastProbeTime: nowIso, lastTransitionTime: nowIso },
      ];
      events.record(job, 'Warning', 'BackoffLimitExceeded', 'Job has reached the specified backoff limit');
    } else if (pending.size === 0) {
      const want = Math.min(parallelism, completions - succeeded) - active.length;
      for (let i = 0; i < want; i++) {
        let made: V1Pod;
        try {
          made = await api.create(jobPod(job));
        } catch (err) {
          // As the pod control does for every controller: the refusal becomes the Job's event.
          events.record(job, 'Warning', 'FailedCreate', `Error creating: ${statusMessage(err)}`);
          throw err;
        }
        pending.set(made.metadata?.name ?? '', now);
        events.record(job, 'Normal', 'SuccessfulCreate', `Created pod: ${made.metadata?.name}`);
      }
    }
    if (hasFields(job.status, status)) return;
    const updated = clone(job);
    updated.status = { ...job.status, ...status };
    await api.replaceStatus(updated);
  }

  function jobPod(job: V1Job): V1Pod {
    const t = clone(job.spec?.template ?? {});
    const jobName = job.metadata?.name ?? '';
    const uid = job.metadata?.uid ?? '';
    return {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        generateName: `${jobName}-`,
        namespace: job.metadata?.namespace,
        labels: {
          ...t.metadata?.labels,
          'batch.kubernetes.io/controller-uid': uid,
          'batch.kubernetes.io/job-name': jobName,
          'controller-uid': uid,
          'job-name': jobName,
        },
        ...(t.metadata?.annotations ? { annotations: t.metadata.annotations } : {}),
        ownerReferences: [controllerRef(job)],
      },
      spec: { ...t.spec, containers: t.spec?.containers ?? [], restartPolicy: t.spec?.restartPolicy ?? 'Never' },
    };
  }

  return async function syncJobs(): Promise<void> {
    const live = new Set(caches.jobs.list().map((j) => j.metadata?.uid));
    for (const uid of created.keys()) if (!live.has(uid)) created.delete(uid);
    let firstError: unknown;
    for (const job of caches.jobs.list()) {
      try {
        await syncJob(job);
      } catch (err) {
        const code = statusCode(err);
        if (code === 409 || code === 404) continue;
        log(`job "${job.metadata?.namespace}/${job.metadata?.name}": ${errLine(err)}`);
        firstError ??= err;
      }
    }
    if (firstError) throw firstError;
  };
}
