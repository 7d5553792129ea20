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
import { withThrowawayPod } from '../kube/throwaway.js';
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
 * the usual signals (kube/throwaway.ts).
 */
export async function withScheduleVolume<T>(kube: KubeContext, cj: V1CronJob, use: (v: ScheduleVolume) => Promise<T>): Promise<T> {
  const { manifest, claim, schedule } = readerPod(cj);
  const pod = manifest.metadata!.name!;
  const namespace = manifest.metadata!.namespace!;
  return withThrowawayPod(kube, manifest, {
    what: `the reader pod "${pod}" for claim "${claim}"`,
    startHint: `kubectl describe pvc ${claim} -n ${namespace} shows where the volume is; its node must be up`,
    timeoutMs: 120_000,
    warn: (line) => void process.stderr.write(`warning: ${line}\n`),
  }, () => use(volumeIn(kube, namespace, pod, claim, schedule)));
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

/** The reader pod of a schedule's volume: made like the schedule's backup pod, the claim mounted read-only. */
function readerPod(cj: V1CronJob): { manifest: V1Pod; claim: string; schedule: string } {
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
  return { manifest, claim, schedule };
}

/** The volume, read through the running reader pod. */
function volumeIn(kube: KubeContext, namespace: string, pod: string, claim: string, schedule: string): ScheduleVolume {
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
  };
}
