/**
 * Reading a schedule's backup volume from outside the cluster: a reader pod made like the
 * schedule's own backup pod (same image, user, ServiceAccount without a token, pull secrets), that
 * mounts the claim read-only and does nothing until we exec into it; the scheduler places it on the
 * node the volume is attached to. `snapshots list --schedule` lists the backups through it and
 * `restore --from-schedule` streams one out of it (`cat`, no tar: an etcd image need not have one).
 * The pod is deleted again on every way out.
 */
import { randomBytes } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import type { V1CronJob, V1Pod } from '@kubernetes/client-node';
import { NotFoundError, PluginError } from '../errors.js';
import type { KubeContext } from '../kube/client.js';
import { streamCommandOut } from '../kube/copy.js';
import { apiError } from '../kube/errors.js';
import { execCapture } from '../kube/exec.js';
import { MAX_SIDECAR_BYTES } from '../backup/record.js';
import { IDLE_COMMAND, MANAGED_BY } from '../restore/manifests.js';
import { BACKUP_CONTAINER, BACKUP_DIR, READER_LABEL, SCHEDULE_LABEL, VOLUME_ANNOTATION } from './manifests.js';


/** One file on the volume that may be a backup, with its record's text when it has one. */
export interface VolumeFile {
  name: string;
  size: number;
  record?: string;
}

/** An open reader pod. */
export interface ScheduleVolume {
  schedule: string;
  claim: string;
  pod: string;
  list(): Promise<VolumeFile[]>;
  /** The file's bytes as a stream; it errors when `cat` fails. */
  read(name: string): Readable;
  close(): Promise<void>;
}

// The names of the volume's files, each with its size and its record (at most MAX_SIDECAR_BYTES+1
// bytes of it), NUL-separated: name, size, record ('' for none).
const LIST_SCRIPT = [
  'cd "$1" || exit 1',
  'for f in *; do',
  '  [ -f "$f" ] || continue',
  '  case "$f" in *.json) continue;; esac',
  '  s=$(stat -c %s "$f" 2>/dev/null) || s=$(wc -c < "$f")',
  `  printf '%s\\0%s\\0' "$f" "$s"`,
  `  if [ -f "$f.json" ]; then head -c ${MAX_SIDECAR_BYTES + 1} "$f.json"; fi`,
  `  printf '\\0'`,
  'done',
].join('\n');


/**
 * Opens the reader pod, runs `use` with it and deletes it on every way out: return, error, and
 * SIGINT/SIGTERM (the pod is deleted, then the plugin exits 130/143).
 */
export async function withScheduleVolume<T>(kube: KubeContext, cj: V1CronJob, use: (v: ScheduleVolume) => Promise<T>): Promise<T> {
  let volume: ScheduleVolume | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    void (volume?.close() ?? Promise.resolve()).finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    volume = await openScheduleVolume(kube, cj, 120_000);
    return await use(volume);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await volume?.close();
  }
}

/** The schedules of the namespace (name → CronJob). */
async function schedules(kube: KubeContext, namespace: string): Promise<V1CronJob[]> {
  try {
    return (await kube.batch.listNamespacedCronJob({ namespace, labelSelector: SCHEDULE_LABEL })).items;
  } catch (err) {
    throw apiError(err, `cronjobs in namespace "${namespace}"`);
  }
}

/** The schedule named, or the namespace's only one when name is undefined. */
export async function findSchedule(kube: KubeContext, namespace: string, name: string | undefined): Promise<V1CronJob> {
  const all = await schedules(kube, namespace);
  if (name !== undefined) {
    const cj = all.find((c) => c.metadata?.name === name && c.metadata?.labels?.[SCHEDULE_LABEL] === name);
    if (!cj) throw new NotFoundError(`no schedule "${name}" in namespace "${namespace}"`, 'kubectl etcd schedule list shows the schedules');
    return cj;
  }
  if (all.length === 1) return all[0]!;
  throw new NotFoundError(all.length === 0 ? `no schedule in namespace "${namespace}"` : `namespace "${namespace}" has ${all.length} schedules: ${all.map((c) => c.metadata?.name).join(', ')}`,
    all.length === 0 ? 'kubectl etcd schedule create makes one; -n names the etcd namespace' : 'name one: --from-schedule NAME, or --schedule NAME');
}

/** Starts the reader pod for a schedule's volume and waits until it runs (timeoutMs). */
export async function openScheduleVolume(kube: KubeContext, cj: V1CronJob, timeoutMs: number): Promise<ScheduleVolume> {
  const namespace = cj.metadata!.namespace!;
  const schedule = cj.metadata!.name!;
  const claim = cj.metadata?.annotations?.[VOLUME_ANNOTATION];
  const template = cj.spec?.jobTemplate?.spec?.template?.spec;
  const backup = template?.containers?.find((c) => c.name === BACKUP_CONTAINER);
  if (!claim || !template || !backup?.image) throw new PluginError(`cronjob "${schedule}" is not as kubectl etcd schedule create made it`, 'create the schedule again');
  const pod = `${schedule.slice(0, 40)}-read-${randomBytes(3).toString('hex')}`;
  const manifest: V1Pod = {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name: pod, namespace, labels: { ...MANAGED_BY, [READER_LABEL]: schedule } },
    spec: {
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 2,
      // A reader left behind (the plugin killed) stops by itself: it holds the claim on its node.
      activeDeadlineSeconds: 3600,
      ...(template.serviceAccountName ? { serviceAccountName: template.serviceAccountName } : {}),
      automountServiceAccountToken: false,
      ...(template.securityContext ? { securityContext: template.securityContext } : {}),
      ...(template.imagePullSecrets ? { imagePullSecrets: template.imagePullSecrets } : {}),
      containers: [{
        name: 'reader', image: backup.image, command: IDLE_COMMAND,
        ...(backup.securityContext ? { securityContext: backup.securityContext } : {}),
        volumeMounts: [{ name: 'backups', mountPath: BACKUP_DIR, readOnly: true }],
      }],
      volumes: [{ name: 'backups', persistentVolumeClaim: { claimName: claim, readOnly: true } }],
    },
  };
  try {
    await kube.core.createNamespacedPod({ namespace, body: manifest });
  } catch (err) {
    throw apiError(err, `the reader pod of schedule "${schedule}"`);
  }
  const close = async () => {
    await kube.core.deleteNamespacedPod({ name: pod, namespace, gracePeriodSeconds: 0 }).catch((err: unknown) => {
      if ((err as { code?: number }).code === 404) return;
      process.stderr.write(`warning: could not delete the reader pod "${pod}": ${apiError(err, `pod "${pod}"`).message}; kubectl delete pod ${pod} -n ${namespace} does (it stops by itself within an hour)\n`);
    });
  };
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const p = await kube.core.readNamespacedPod({ name: pod, namespace }).catch((err: unknown) => { throw apiError(err, `the reader pod "${pod}"`); });
      if (p.status?.containerStatuses?.[0]?.state?.running) break;
      if (p.status?.phase === 'Failed' || p.status?.phase === 'Succeeded' || Date.now() > deadline) {
        const why = p.status?.conditions?.find((c) => c.status === 'False' && c.message)?.message ?? p.status?.containerStatuses?.[0]?.state?.waiting?.reason ?? p.status?.phase;
        throw new PluginError(`the reader pod "${pod}" for claim "${claim}" did not start within ${Math.round(timeoutMs / 1000)} s: ${why ?? 'no status'}`,
          `kubectl describe pvc ${claim} -n ${namespace} shows where the volume is; its node must be up`);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  } catch (err) {
    await close();
    throw err;
  }
  return {
    schedule, claim, pod,
    async list() {
      const r = await execCapture(kube, { namespace, pod, command: ['sh', '-c', LIST_SCRIPT, 'sh', BACKUP_DIR] });
      if (r.exitCode !== 0) throw new PluginError(`cannot list claim "${claim}" in pod "${pod}": ${r.stderr.trim().split('\n').at(-1) ?? `exit code ${r.exitCode}`}`, 'check the volume with kubectl describe pvc');
      const parts = r.stdout.split('\0');
      const files: VolumeFile[] = [];
      for (let i = 0; i + 2 < parts.length; i += 3) {
        const size = Number(parts[i + 1]);
        files.push({ name: parts[i]!, size: Number.isFinite(size) ? size : 0, ...(parts[i + 2] ? { record: parts[i + 2]! } : {}) });
      }
      return files;
    },
    read(name: string) {
      if (name.includes('/') || name.startsWith('.')) throw new PluginError(`"${name}" is not a backup on the volume`, 'kubectl etcd snapshots list --schedule shows them');
      const body = new PassThrough({ highWaterMark: 1 << 20 });
      streamCommandOut(kube, { namespace, pod, command: ['cat', `${BACKUP_DIR}/${name}`], destination: body }).then(
        (r) => (r.exitCode === 0 ? body.end() : body.destroy(new PluginError(`cat ${name} in pod "${pod}" failed: ${r.stderr.trim().split('\n').at(-1) ?? `exit code ${r.exitCode}`}`))),
        (err: Error) => body.destroy(err),
      );
      return body;
    },
    close,
  };
}
