/**
 * `kubectl etcd schedule create`: plans the schedule's objects from the cluster as discovery sees
 * it (members, their image, client certificate Secrets, security context), proves every object
 * would be admitted with a server-side dry run before the first change, then creates the
 * ServiceAccount, the backup volume (unless given) and the CronJob, in that order; a failure
 * part-way deletes what this run created.
 */
import type { V1CronJob, V1PersistentVolumeClaim, V1Pod, V1ServiceAccount } from '@kubernetes/client-node';
import { ForbiddenError, PluginError, UsageError } from '../errors.js';
import type { LiveMember } from '../etcd/discovery/confirm.js';
import type { MemberStatus } from '../etcd/status.js';
import { memberContainer, type EtcdMember, type EtcdTopology } from '../etcd/topology.js';
import type { ContainerCommand } from '../kube/exec.js';
import type { KubeContext } from '../kube/client.js';
import { apiError } from '../kube/errors.js';
import { toolsExec, utilityUser, withoutEphemeralStorage } from '../restore/manifests.js';
import { DEFAULT_SHELL_IMAGE } from '../restore/preflight.js';
import { VERSION } from '../version.js';
import { BACKUP_DIR, TLS_DIR, TLS_FILES, WORK_DIR, claimManifest, cronJobManifest, serviceAccountManifest, serviceAccountName, type ScheduleSpec, type SecretFile } from './manifests.js';
import { backupScript, endpointHost, type ScheduleEndpoint } from './script.js';

export interface CreateOptions {
  /** The schedule's name (default `<workload>-backup`). */
  name?: string;
  every: string;
  keep: number;
  /** `pvc/NAME`: an existing claim to write to. */
  to?: string;
  /** The size of the claim created (default: room for keep+1 copies of the largest db, at least 1Gi). */
  size?: string;
  storageClass?: string;
  timeZone: string;
  deadlineSeconds: number;
  /** The shell image for an etcd image without a shell (default DEFAULT_SHELL_IMAGE). */
  utilityImage?: string;
  /** A restore drill in the pod before each backup is saved (script.ts drill). */
  verifyRestore?: boolean;
}

/** What create would make, ready to apply. */
export interface SchedulePlan {
  spec: ScheduleSpec;
  objects: Array<{ kind: 'ServiceAccount' | 'PersistentVolumeClaim' | 'CronJob'; name: string; manifest: Record<string, unknown> }>;
  /** The members the script tries, in order. */
  endpoints: ScheduleEndpoint[];
  /** The tools the image gives the script. */
  tool: 'etcdctl' | 'etcdutl';
  /** The etcd image runs beside a shell image (it has no shell). */
  viaTools: boolean;
}

/** The tools backupScript runs; all in busybox and the vendor etcd images with a shell. */
/** And the reader pod's (schedule/volume.ts): cat, head, stat. */
const SCRIPT_TOOLS = ['cat', 'head', 'stat', 'sleep', 'sed', 'grep', 'sort', 'tail', 'cut', 'tr', 'wc', 'df', 'find', 'od', 'date', 'mv', 'rm', 'mkdir', 'sha256sum', 'sync', 'etcdctl'];

const ROLE_HINT = 'ask a cluster admin for the Role kubectl-etcd-schedule in the README\'s "Permissions"';

const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** A CronJob's name is at most 52 characters (its Jobs' names add 11: kube-apiserver ValidateCronJob). */
export function checkScheduleName(name: string): void {
  if (name.length > 52 || !NAME.test(name)) {
    throw new UsageError(`"${name}" is not a schedule name: lowercase letters, digits and '-', at most 52 characters`, 'pass --name with another name');
  }
}

/** Bytes as a Kubernetes quantity in whole Mi, rounded up. */
function mebibytes(bytes: number): string {
  const mi = Math.ceil(bytes / 2 ** 20);
  return mi % 1024 === 0 ? `${mi / 1024}Gi` : `${mi}Mi`;
}

/** The claim's default size: keep+1 copies of the largest db (the new one is written before the oldest goes) and a quarter more, at least 1Gi. */
export function defaultClaimBytes(keep: number, dbBytes: number): number {
  return Math.max(2 ** 30, Math.ceil((keep + 1) * dbBytes * 1.25));
}

/** Plans the schedule (no change to the cluster). */
export async function planSchedule(
  deps: { kube: KubeContext; run: ContainerCommand; listMembers: (asker: EtcdMember) => Promise<LiveMember[]>; warn?: (line: string) => void },
  topology: EtcdTopology, rows: MemberStatus[], opts: CreateOptions,
): Promise<SchedulePlan> {
  const { kube, run } = deps;
  const warn = deps.warn ?? (() => undefined);
  const namespace = topology.namespace;
  const name = opts.name ?? `${topology.workload.name}-backup`.toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 52).replace(/^-+|-+$/g, '');
  checkScheduleName(name);
  if (!Number.isSafeInteger(opts.keep) || opts.keep < 1) throw new UsageError(`--keep must be a whole number of at least 1, not "${opts.keep}"`, 'e.g. --keep 7');
  const healthy = topology.members.filter((_, i) => rows[i]?.memberId !== undefined);
  const asker = healthy[0];
  if (!asker) {
    throw new PluginError(`no etcd member answered: ${rows.map((r) => `"${r.pod}" (${r.error ?? 'no answer'})`).join(', ')}`,
      'a schedule is made from a healthy cluster; check it with kubectl etcd status');
  }

  // A schedule of this name, or a claim of the name a new one would get: refused before anything
  // else (the ServiceAccount would be the first object the API server says exists).
  const exists = async (read: () => Promise<unknown>, what: string) => {
    try { await read(); return true; } catch (err) {
      const code = (err as { code?: number }).code;
      if (code === 404) return false;
      if (code === 403) throw new ForbiddenError(apiError(err, what).message, ROLE_HINT);
      throw apiError(err, what);
    }
  };
  if (await exists(() => kube.batch.readNamespacedCronJob({ name, namespace }), `cronjob "${name}"`)) {
    throw new PluginError(`schedule "${name}" exists already in namespace "${namespace}"`, 'kubectl etcd schedule list shows it; delete it first, or pass --name for another');
  }
  if (opts.to === undefined && await exists(() => kube.core.readNamespacedPersistentVolumeClaim({ name: `${name}s`.slice(0, 63), namespace }), `persistentvolumeclaim "${name}s"`)) {
    throw new PluginError(`claim "${name}s" exists already in namespace "${namespace}" (the backups of an earlier schedule "${name}"?)`, `pass --to pvc/${name}s to back up onto it again, or --name for another schedule`);
  }

  // The image: the members' own, with a shell and the script's tools; or, without a shell, the
  // shell image with the members' image beside it as a sidecar (manifests.ts, tools).
  const image = asker.image;
  const target = memberContainer(asker);
  const tryRun = (argv: string[]) => run(target, argv).catch((err: unknown) => ({ exitCode: 127, stdout: '', stderr: (err as Error).message }));
  const probe = await tryRun(['sh', '-c',
    `for t in ${SCRIPT_TOOLS.join(' ')} etcd; do command -v $t >/dev/null 2>&1 || echo missing:$t; done; command -v etcdutl >/dev/null 2>&1 && echo has:etcdutl; echo uid:$(id -u 2>/dev/null); true`]);
  let tool: 'etcdctl' | 'etcdutl';
  let tools: ScheduleSpec['tools'];
  if (probe.exitCode === 0) {
    const missing = [...probe.stdout.matchAll(/missing:(\S+)/g)].map((m) => m[1]!).filter((t) => t !== 'etcd' || opts.verifyRestore);
    if (missing.length) throw new PluginError(`image "${image}" lacks ${missing.join(', ')}, which the scheduled backup needs`, 'use an etcd image of the same version that has them');
    tool = /has:etcdutl/.test(probe.stdout) ? 'etcdutl' : 'etcdctl';
    if (opts.utilityImage !== undefined) warn(`--utility-image ${opts.utilityImage} is not used: image "${image}" has a shell, and the backup runs in it`);
  } else {
    // No shell answered. If etcd itself answers an argv exec, the container runs and sh is what is missing.
    const alive = await tryRun(['etcd', '--version']);
    if (alive.exitCode !== 0) {
      throw new PluginError(`cannot run a command in pod "${asker.pod}" (container "${asker.container}"): ${probe.stderr.trim().split('\n').at(-1) ?? `exit code ${probe.exitCode}`}`,
        'check the pod with kubectl describe; schedule create asks a running member what its image has');
    }
    if ((await tryRun(['etcdctl', 'version'])).exitCode !== 0) {
      throw new PluginError(`image "${image}" has no shell and no etcdctl: the scheduled backup has nothing to take a snapshot with`, 'use an etcd image that ships etcdctl');
    }
    tool = (await tryRun(['etcdutl', 'version'])).exitCode === 0 ? 'etcdutl' : 'etcdctl';
    // Root as the shell container is: a process of another user is not reachable through /proc
    // (its root, environ) without CAP_SYS_PTRACE (restore/manifests.ts runs its tools pod so too).
    tools = { image, securityContext: utilityUser(asker, true).container };
  }

  // The client certificate: the files the member's etcdctl uses, from the Secrets they come from.
  const tls: NonNullable<ScheduleSpec['tls']> = {};
  for (const [role, file] of [['ca', asker.tls.caFile], ['cert', asker.tls.certFile], ['key', asker.tls.keyFile]] as const) {
    if (!file) continue;
    const ref: SecretFile | undefined = asker.secretFiles?.[file]?.[0];
    if (!ref) {
      throw new PluginError(`the member's client TLS file ${file} is not from a Secret (pod "${asker.pod}"): the scheduled backup mounts it from one`,
        'schedule create supports certificates mounted from Secrets; on kubeadm clusters (certificates on the node) back up with kubectl etcd backup');
    }
    tls[role] = ref;
  }

  // The members, followers first (a snapshot loads the member that sends it), each by the client URL it advertises.
  const live = await deps.listMembers(asker);
  const leader = rows.find((r) => r.isLeader)?.memberId;
  const endpoints: ScheduleEndpoint[] = live
    .filter((l) => l.name !== '' && l.clientURLs.length > 0 && !l.isLearner)
    .sort((a, b) => Number(a.id === leader) - Number(b.id === leader))
    .map((l) => {
      const i = rows.findIndex((r) => r.memberId === l.id);
      return { url: l.clientURLs[0]!, pod: i >= 0 ? rows[i]!.pod : undefined, member: l.name };
    });
  if (endpoints.length === 0) throw new PluginError('the member list names no started member with a client URL', 'check the cluster with kubectl etcd status');
  const loopback = endpoints.find((e) => /^(localhost|127\.[0-9.]+|::1)$/i.test(endpointHost(e.url)));
  if (loopback) {
    throw new PluginError(`member "${loopback.member}" advertises the client URL ${loopback.url}, which another pod cannot reach`,
      'set --advertise-client-urls of the members to an address of their pod (e.g. https://$(POD_NAME).SERVICE:2379)');
  }
  const byIp = endpoints.filter((e) => /^[0-9.]+$|:/.test(endpointHost(e.url)));
  if (byIp.length) warn(`members advertise pod IPs (${byIp.map((e) => e.url).join(', ')}): a member that restarts on another IP is tried at its old one until the schedule is made again`);
  const https = endpoints.some((e) => e.url.startsWith('https:'));
  if (https && !tls.ca) throw new PluginError('the members serve https, but their pod names no CA file (--trusted-ca-file) to verify them with', 'schedule create needs the member\'s CA in a Secret');

  // The volume.
  let volume: ScheduleSpec['volume'];
  if (opts.to !== undefined) {
    const m = /^(?:pvc|persistentvolumeclaim)\/([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/.exec(opts.to);
    if (!m) throw new UsageError(`--to "${opts.to}" is not pvc/NAME`, 'e.g. --to pvc/etcd-backups (a claim in the etcd namespace), or leave --to out for a new one');
    if (opts.size || opts.storageClass) throw new UsageError('--size and --storage-class are for a volume schedule create makes, not one given with --to', 'leave them out, or leave out --to');
    try {
      await kube.core.readNamespacedPersistentVolumeClaim({ name: m[1]!, namespace });
    } catch (err) {
      throw apiError(err, `persistentvolumeclaim "${m[1]}" in namespace "${namespace}"`);
    }
    volume = { claimName: m[1]! };
  } else {
    const db = Math.max(0, ...rows.map((r) => r.dbSize ?? 0));
    volume = { claimName: `${name}s`.slice(0, 63), create: { size: opts.size ?? mebibytes(defaultClaimBytes(opts.keep, db)), ...(opts.storageClass ? { storageClassName: opts.storageClass } : {}) } };
  }

  // chroot into the sidecar's root needs root in the shell container (as for a restore's utility pod).
  const user = utilityUser(asker, tools !== undefined);
  if (!tools) {
    // The members' user, named: the certificate files are root's, readable by the pod's user
    // through its fsGroup (mode 0440); a non-root user without one gets one (its group, or its uid).
    const uid = Number(/uid:(\d+)/.exec(probe.stdout)?.[1]);
    const container = { ...user.container };
    if (container.runAsUser === undefined && Number.isSafeInteger(uid)) container.runAsUser = uid;
    const runAs = container.runAsUser as number | undefined;
    const pod = { ...(user.pod ?? {}) };
    if (runAs !== undefined && runAs !== 0 && pod.fsGroup === undefined) pod.fsGroup = (container.runAsGroup ?? pod.runAsGroup ?? runAs) as number;
    user.container = container;
    if (Object.keys(pod).length) user.pod = pod;
  }
  const viaTools = tools ? toolsExec() : [];
  // Not ephemeral-storage: its limit covers the work emptyDir, which holds the verifying restore.
  const resources = withoutEphemeralStorage(asker.podFacts?.resources);
  const script = backupScript({
    endpoints,
    tls: {
      ...(tls.ca ? { cacert: `${TLS_DIR}/${TLS_FILES.ca}` } : {}),
      ...(tls.cert ? { cert: `${TLS_DIR}/${TLS_FILES.cert}` } : {}),
      ...(tls.key ? { key: `${TLS_DIR}/${TLS_FILES.key}` } : {}),
    },
    etcdctl: [...viaTools, 'etcdctl'],
    ...(tool === 'etcdutl' ? { etcdutl: [...viaTools, 'etcdutl'] } : {}),
    ...(opts.verifyRestore ? { drill: { etcd: [...viaTools, 'etcd'] } } : {}),
    dir: BACKUP_DIR, work: WORK_DIR, namespace, workload: topology.workload.name, keep: opts.keep, schedule: name, pluginVersion: VERSION,
  });
  const spec: ScheduleSpec = {
    name, namespace, every: opts.every, timeZone: opts.timeZone, image: tools ? opts.utilityImage ?? DEFAULT_SHELL_IMAGE : image, script, tls, volume,
    ...(tools ? { tools } : {}),
    ...(user.pod ? { podSecurityContext: user.pod } : {}),
    ...(Object.keys(user.container).length ? { securityContext: user.container } : {}),
    ...(asker.podFacts?.imagePullSecrets ? { imagePullSecrets: asker.podFacts.imagePullSecrets } : {}),
    ...(resources ? { resources } : {}),
    deadlineSeconds: opts.deadlineSeconds, workload: topology.workload.name, keep: opts.keep,
  };
  const objects: SchedulePlan['objects'] = [
    { kind: 'ServiceAccount', name: serviceAccountName(name), manifest: serviceAccountManifest(spec) },
    ...(volume.create ? [{ kind: 'PersistentVolumeClaim' as const, name: volume.claimName, manifest: claimManifest(spec) }] : []),
    { kind: 'CronJob', name, manifest: cronJobManifest(spec) },
  ];
  return { spec, objects, endpoints, tool, viaTools: tools !== undefined };
}

/** Creates one object (or, with dryRun, has the API server admit it without storing it). */
async function createObject(kube: KubeContext, namespace: string, o: SchedulePlan['objects'][number], dryRun: boolean): Promise<void> {
  const opt = dryRun ? { dryRun: 'All' } : {};
  try {
    if (o.kind === 'ServiceAccount') await kube.core.createNamespacedServiceAccount({ namespace, body: o.manifest as V1ServiceAccount, ...opt });
    else if (o.kind === 'PersistentVolumeClaim') await kube.core.createNamespacedPersistentVolumeClaim({ namespace, body: o.manifest as V1PersistentVolumeClaim, ...opt });
    else await kube.batch.createNamespacedCronJob({ namespace, body: o.manifest as V1CronJob, ...opt });
  } catch (err) {
    const e = apiError(err, `${o.kind.toLowerCase()} "${o.name}" in namespace "${namespace}"`);
    const code = (err as { code?: number }).code;
    if (code === 422 && o.kind === 'CronJob') {
      throw new UsageError(e.message, 'check --every (five cron fields: minute hour day-of-month month day-of-week, e.g. "0 */6 * * *") and --time-zone (an IANA name such as Europe/Berlin)');
    }
    if (code === 422 && o.kind === 'PersistentVolumeClaim') throw new UsageError(e.message, 'check --size (a quantity such as 10Gi) and --storage-class');
    if (code === 403) throw new ForbiddenError(e.message, ROLE_HINT);
    if (code === 409) {
      throw new PluginError(`${o.kind} "${o.name}" exists already in namespace "${namespace}"`,
        o.kind === 'CronJob' ? 'kubectl etcd schedule list shows it; delete it first, or pass --name' : `pass --name for another schedule, or delete ${o.kind.toLowerCase()} "${o.name}" if nothing uses it`);
    }
    throw e;
  }
}

async function deleteObject(kube: KubeContext, namespace: string, o: SchedulePlan['objects'][number]): Promise<void> {
  if (o.kind === 'ServiceAccount') await kube.core.deleteNamespacedServiceAccount({ name: o.name, namespace });
  else if (o.kind === 'PersistentVolumeClaim') await kube.core.deleteNamespacedPersistentVolumeClaim({ name: o.name, namespace });
  else await kube.batch.deleteNamespacedCronJob({ name: o.name, namespace, propagationPolicy: 'Background' });
}

/**
 * Proves every object would be admitted: a server-side dry run of each (nothing is stored), and
 * of a pod as the CronJob would make it, which a CronJob's own dry run does not judge (Pod
 * Security, LimitRanges, quotas); and that the API server keeps a native sidecar's
 * restartPolicy (Kubernetes 1.29+: older ones drop it, and the sidecar would hold every Job open).
 */
export async function admitSchedule(kube: KubeContext, plan: SchedulePlan): Promise<void> {
  const { namespace } = plan.spec;
  for (const o of plan.objects) await createObject(kube, namespace, o, true);
  const cronJob = plan.objects.find((o) => o.kind === 'CronJob')!.manifest as ReturnType<typeof cronJobManifest>;
  const template = cronJob.spec.jobTemplate.spec.template;
  // The schedule's ServiceAccount does not exist yet: the pod is judged with the namespace's default.
  const { serviceAccountName: _sa, ...spec } = template.spec as Record<string, unknown>;
  let admitted: V1Pod;
  try {
    admitted = await kube.core.createNamespacedPod({ namespace, dryRun: 'All', body: { apiVersion: 'v1', kind: 'Pod', metadata: { name: `${plan.spec.name}-admission-check`, namespace, labels: template.metadata.labels }, spec } as unknown as V1Pod });
  } catch (err) {
    const e = apiError(err, `the backup pod of schedule "${plan.spec.name}"`);
    throw new PluginError(`the backup pod would not be admitted: ${e.message}`, plan.spec.tools
      ? 'its shell container runs as root to reach the etcd image beside it (an etcd image without a shell); allow it in this namespace, or use an etcd image with a shell'
      : (e as PluginError).hint ?? 'kubectl describe namespace shows its Pod Security labels; kubectl get limitrange,resourcequota its limits');
  }
  if (plan.spec.tools && admitted.spec?.initContainers?.[0]?.restartPolicy !== 'Always') {
    throw new PluginError('this cluster does not keep a native sidecar (an init container with restartPolicy: Always, Kubernetes 1.29+), which a schedule of an etcd image without a shell needs',
      'upgrade to Kubernetes 1.29 or later (or enable the SidecarContainers feature gate), or use an etcd image with a shell');
  }
}

/**
 * Creates the objects in order (after admitSchedule); when one fails, what this run created is
 * deleted again before the error goes up.
 */
export async function createSchedule(kube: KubeContext, plan: SchedulePlan): Promise<void> {
  const { namespace } = plan.spec;
  const created: SchedulePlan['objects'] = [];
  try {
    for (const o of plan.objects) {
      await createObject(kube, namespace, o, false);
      created.push(o);
    }
  } catch (err) {
    const left: string[] = [];
    for (const o of created.reverse()) {
      try { await deleteObject(kube, namespace, o); } catch { left.push(`${o.kind.toLowerCase()}/${o.name}`); }
    }
    if (left.length && err instanceof PluginError) {
      throw new PluginError(`${err.message}; and deleting what was created failed: ${left.join(', ')}`, `delete ${left.join(' ')} in namespace "${namespace}" by hand`);
    }
    throw err;
  }
}
