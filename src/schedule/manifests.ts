/**
 * The objects `kubectl etcd schedule create` makes in the etcd namespace, as plain manifests:
 *  - a ServiceAccount of the schedule's own, with no token mounted and no Role bound: the backup
 *    pod talks only to etcd (with the member's client certificate), never to the Kubernetes API,
 *    so the least privilege is none;
 *  - the backup volume (a PVC), unless the user names one with --to pvc/NAME;
 *  - the CronJob, whose Job runs backupScript (script.ts) once, in the cluster's own etcd image,
 *    with the member's client certificate from its Secret, the backup volume at /backups and an
 *    emptyDir for the verifying restore.
 * A run that fails ends its Job with BackoffLimitExceeded (an Event on the Job) and the reason in
 * the pod's termination message (`kubectl etcd schedule status` shows it).
 */
import { MANAGED_BY, TOOLS_CONTAINER, TOOLS_SCRATCH_DIR, toolsIdleCommand } from '../restore/manifests.js';

/** The label naming the schedule an object belongs to. */
export const SCHEDULE_LABEL = 'kubectl-etcd/schedule';
/** The label of a schedule's reader pods (not SCHEDULE_LABEL: they are no run of the schedule). */
export const READER_LABEL = 'kubectl-etcd/reader';
/** Where the backup pod mounts the backup volume, the scratch space and the client certificate. */
export const BACKUP_DIR = '/backups';
export const WORK_DIR = '/work';
export const TLS_DIR = '/etc/kubectl-etcd/tls';
/** The backup container's name. */
export const BACKUP_CONTAINER = 'backup';
/** What `schedule list|status|delete` read back from the CronJob. */
export const WORKLOAD_ANNOTATION = 'kubectl-etcd/workload';
export const VOLUME_ANNOTATION = 'kubectl-etcd/volume';
export const KEEP_ANNOTATION = 'kubectl-etcd/keep';

/** A Secret key that holds one client TLS file. */
export interface SecretFile {
  secretName: string;
  key: string;
}

/** What the manifests are made from. */
export interface ScheduleSpec {
  name: string;
  namespace: string;
  /** The five-field cron schedule (robfig/cron, as the CronJob controller reads it). */
  every: string;
  timeZone: string;
  /** The image the backup container runs: the members' own, or a shell image beside it (tools). */
  image: string;
  /**
   * An etcd image without a shell (distroless): it runs as a native sidecar (an init container
   * with restartPolicy Always, Kubernetes 1.29+) that keeps a throwaway etcd on the pod's
   * loopback, and the script, in the shell image, runs its etcdctl/etcdutl through the shared
   * process namespace (restore/manifests.ts toolsExec); the sidecar stops when the backup ends.
   */
  tools?: { image: string; securityContext?: Record<string, unknown> };
  /** The script (script.ts) the container runs with `sh -c`. */
  script: string;
  /** The client TLS files from their Secrets: ca.crt, tls.crt, tls.key in TLS_DIR. */
  tls?: { ca?: SecretFile; cert?: SecretFile; key?: SecretFile };
  /** The backup volume: a claim this schedule creates (with its size) or one that exists. */
  volume: { claimName: string; create?: { size: string; storageClassName?: string } };
  /** The pod's and container's security contexts (the members'). */
  podSecurityContext?: Record<string, unknown>;
  securityContext?: Record<string, unknown>;
  imagePullSecrets?: Array<{ name: string }>;
  /** The etcd container's resources (as a restore's utility pods take them): a quota that wants them admits the pod. */
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  /** How long one run may take before its Job is failed (activeDeadlineSeconds). */
  deadlineSeconds: number;
  /** The etcd workload backed up, and how many of its backups the volume keeps (annotations, for `schedule list`). */
  workload: string;
  keep: number;
}

/** The files the pod's certificate volume holds, by role. */
export const TLS_FILES = { ca: 'ca.crt', cert: 'tls.crt', key: 'tls.key' } as const;

function labels(spec: ScheduleSpec): Record<string, string> {
  return { ...MANAGED_BY, [SCHEDULE_LABEL]: spec.name };
}

export function serviceAccountManifest(spec: ScheduleSpec) {
  return {
    apiVersion: 'v1', kind: 'ServiceAccount',
    metadata: { name: serviceAccountName(spec.name), namespace: spec.namespace, labels: labels(spec) },
    automountServiceAccountToken: false,
  };
}

/** The ServiceAccount of a schedule: its own name. */
export function serviceAccountName(schedule: string): string {
  return schedule;
}

export function claimManifest(spec: ScheduleSpec) {
  const create = spec.volume.create!;
  return {
    apiVersion: 'v1', kind: 'PersistentVolumeClaim',
    metadata: { name: spec.volume.claimName, namespace: spec.namespace, labels: labels(spec) },
    spec: {
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: create.size } },
      ...(create.storageClassName ? { storageClassName: create.storageClassName } : {}),
    },
  };
}

export function cronJobManifest(spec: ScheduleSpec) {
  const podLabels = labels(spec);
  const tls = spec.tls ?? {};
  const items = (Object.keys(TLS_FILES) as Array<keyof typeof TLS_FILES>).filter((k) => tls[k]);
  // Secret files are root's: readable by root (0400), or by the pod's user through its fsGroup (0440,
  // create.ts gives a non-root user one); never by everyone.
  const mode = spec.podSecurityContext?.fsGroup !== undefined ? 0o440 : 0o400;
  const volumes: Array<Record<string, unknown>> = [
    { name: 'backups', persistentVolumeClaim: { claimName: spec.volume.claimName } },
    // No sizeLimit: the verifying restore needs the snapshot's size and a WAL, and a db grows.
    { name: 'work', emptyDir: {} },
    ...(items.length ? [{
      name: 'etcd-client-tls',
      projected: {
        defaultMode: mode,
        sources: items.map((k) => ({ secret: { name: tls[k]!.secretName, items: [{ key: tls[k]!.key, path: TLS_FILES[k] }] } })),
      },
    }] : []),
  ];
  const mounts: Array<Record<string, unknown>> = [
    { name: 'backups', mountPath: BACKUP_DIR },
    { name: 'work', mountPath: WORK_DIR },
    ...(items.length ? [{ name: 'etcd-client-tls', mountPath: TLS_DIR, readOnly: true }] : []),
  ];
  const tools = spec.tools ? {
    shareProcessNamespace: true,
    initContainers: [{
      name: TOOLS_CONTAINER,
      image: spec.tools.image,
      restartPolicy: 'Always',
      command: toolsIdleCommand(),
      ...(spec.tools.securityContext ? { securityContext: spec.tools.securityContext } : {}),
      ...(spec.resources ? { resources: spec.resources } : {}),
      volumeMounts: [...mounts, { name: 'etcd-tools-scratch', mountPath: TOOLS_SCRATCH_DIR }],
    }],
  } : {};
  if (spec.tools) volumes.push({ name: 'etcd-tools-scratch', emptyDir: {} });
  return {
    apiVersion: 'batch/v1', kind: 'CronJob',
    metadata: {
      name: spec.name, namespace: spec.namespace, labels: podLabels,
      annotations: { [WORKLOAD_ANNOTATION]: spec.workload, [VOLUME_ANNOTATION]: spec.volume.claimName, [KEEP_ANNOTATION]: String(spec.keep) },
    },
    spec: {
      schedule: spec.every,
      timeZone: spec.timeZone,
      // One run at a time; a run missed by more than five minutes (controller down) is skipped, not run late.
      concurrencyPolicy: 'Forbid',
      startingDeadlineSeconds: 300,
      successfulJobsHistoryLimit: 3,
      failedJobsHistoryLimit: 3,
      jobTemplate: {
        metadata: { labels: podLabels },
        spec: {
          // A failed backup is not retried within the run: the next run is the retry, and the
          // failure stays visible (the Job's BackoffLimitExceeded event, the pod's message).
          backoffLimit: 0,
          activeDeadlineSeconds: spec.deadlineSeconds,
          template: {
            metadata: { labels: podLabels },
            spec: {
              restartPolicy: 'Never',
              serviceAccountName: serviceAccountName(spec.name),
              automountServiceAccountToken: false,
              ...(spec.podSecurityContext ? { securityContext: spec.podSecurityContext } : {}),
              ...(spec.imagePullSecrets?.length ? { imagePullSecrets: spec.imagePullSecrets } : {}),
              ...tools,
              containers: [{
                name: BACKUP_CONTAINER,
                image: spec.image,
                command: ['/bin/sh', '-c', spec.script],
                terminationMessagePolicy: 'FallbackToLogsOnError',
                ...(spec.securityContext ? { securityContext: spec.securityContext } : {}),
                ...(spec.resources ? { resources: spec.resources } : {}),
                volumeMounts: mounts,
              }],
              volumes,
            },
          },
        },
      },
    },
  };
}
