/**
 * Adapters from the kube seam (src/kube) to the narrow interfaces the restore runner declares
 * (RestoreCluster, RestorePodIO, RestoreVerifier, ConfigMapAccess), all within one namespace.
 * Every call is retried while the API server is unreachable (restarts, connection resets): every
 * restore step is idempotent, so a repeat is safe.
 */
import { createReadStream } from 'node:fs';
import { PassThrough, type Readable } from 'node:stream';
import type { V1Pod } from '@kubernetes/client-node';
import { ForbiddenError, NotFoundError, PluginError } from '../errors.js';
import { labelSelectorString } from '../etcd/discovery/index.js';
import { etcdctlConnectionArgs, execStatusProbe, type MemberCommandRunner } from '../etcd/status.js';
import type { EtcdMember } from '../etcd/topology.js';
import type { KubeContext } from '../kube/client.js';
import { copyFileIntoPod } from '../kube/copy.js';
import { apiError, ConflictError } from '../kube/errors.js';
import { execCapture } from '../kube/exec.js';
import { getPod, isPodReady, waitForPodGone, waitForPods, waitForPodsReady } from '../kube/pods.js';
import { deletePdb, deletePod, recreatePdb, rolloutRestart, scaleWorkload } from '../kube/workloads.js';
import type { ConfigMapAccess } from './journal.js';
import { TOOLS_CONTAINER } from './manifests.js';
import type { RestorePlan } from './plan.js';
import type { RestoreCluster, RestorePodIO, RestoreVerifier, WorkloadKind } from './runner.js';

/** How long to wait for pods to start, stop or become Ready. */
export const POD_TIMEOUT_MS = 5 * 60_000;
/** How long to keep retrying while the API server does not answer. */
const RETRY_FOR_MS = 90_000;

/** True for errors that mean "the API server or the connection went away", not "the request was wrong". */
export function isTransient(err: unknown): boolean {
  const msg = err instanceof Error ? err.message : String(err);
  if (/timed out after \d+s waiting/.test(msg)) return false;
  return /ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|socket hang up|fetch failed|connection error|ended before the command reported|other side closed|timed out|HTTP 50[0234]|service unavailable|terminated|network/i.test(msg);
}

/** Runs fn, retrying transient failures with a growing pause for up to RETRY_FOR_MS. */
export async function retrying<T>(fn: () => Promise<T>, onRetry?: (err: unknown) => void): Promise<T> {
  const deadline = Date.now() + RETRY_FOR_MS;
  let pause = 500;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!isTransient(err) || Date.now() > deadline) throw err;
      onRetry?.(err);
      await new Promise((r) => setTimeout(r, pause));
      pause = Math.min(pause * 2, 5000);
    }
  }
}

async function selectorOf(kube: KubeContext, namespace: string, kind: WorkloadKind, name: string): Promise<string> {
  try {
    const w = kind === 'StatefulSet'
      ? await kube.apps.readNamespacedStatefulSet({ name, namespace })
      : await kube.apps.readNamespacedDeployment({ name, namespace });
    return labelSelectorString(w.spec?.selector);
  } catch (err) {
    throw apiError(err, `get ${kind.toLowerCase()} "${name}" in namespace "${namespace}"`);
  }
}

function podRunning(pod: V1Pod | undefined): boolean {
  return !!pod && !pod.metadata?.deletionTimestamp && pod.status?.phase === 'Running' &&
    (pod.status?.containerStatuses ?? []).every((c) => c.ready || c.state?.running);
}

/** The cluster operations of a restore, over the kube seam. */
export function kubeRestoreCluster(kube: KubeContext, namespace: string, onRetry?: (err: unknown) => void): RestoreCluster {
  const r = <T>(fn: () => Promise<T>) => retrying(fn, onRetry);
  return {
    getReplicas: (kind, name) => r(async () => {
      try {
        const s = kind === 'StatefulSet'
          ? await kube.apps.readNamespacedStatefulSetScale({ name, namespace })
          : await kube.apps.readNamespacedDeploymentScale({ name, namespace });
        return s.spec?.replicas ?? 0;
      } catch (err) {
        throw apiError(err, `get ${kind.toLowerCase()} "${name}" in namespace "${namespace}"`);
      }
    }),
    async scale(kind, name, replicas, wait) {
      await r(() => scaleWorkload(kube, { kind, name, namespace }, replicas));
      if (!wait) return;
      const labelSelector = await r(() => selectorOf(kube, namespace, kind, name));
      await r(() => waitForPods(kube, {
        namespace,
        labelSelector,
        timeoutMs: POD_TIMEOUT_MS,
        what: replicas === 0 ? `the pods of ${kind.toLowerCase()} "${name}" to be gone` : `${replicas} ready pods of ${kind.toLowerCase()} "${name}"`,
        until: (pods) => replicas === 0 ? pods.length === 0 : pods.filter(isPodReady).length >= replicas,
      }));
    },
    rolloutRestart: (kind, name) => r(() => rolloutRestart(kube, { kind, name, namespace }).then(() => undefined)),
    async createPodAndWait(manifest) {
      const name = manifest.metadata.name;
      await r(async () => {
        try {
          await kube.core.createNamespacedPod({ namespace, body: manifest as V1Pod });
        } catch (err) {
          const e = apiError(err, `create pod "${name}" in namespace "${namespace}"`);
          if (!(e instanceof ConflictError)) throw e;
          // Ours from an earlier attempt: keep it if it runs, replace it if it ended. A pod of the
          // same name that lacks this restore's labels is someone else's: never exec into it.
          const existing = await getPod(kube, namespace, name);
          const want = (manifest as { metadata: { labels?: Record<string, string> } }).metadata.labels ?? {};
          const have = existing.metadata?.labels ?? {};
          if (['kubectl-etcd/restore', 'kubectl-etcd/member'].some((k) => !want[k] || have[k] !== want[k])) {
            throw new PluginError(
              `pod "${name}" already exists in namespace "${namespace}" and is not part of this restore`,
              `delete it (kubectl delete pod ${name} -n ${namespace}) and run \`kubectl etcd restore --resume\``,
            );
          }
          if (existing.metadata?.deletionTimestamp || ['Failed', 'Succeeded'].includes(existing.status?.phase ?? '')) {
            const uid = await deletePod(kube, namespace, name, 0);
            await waitForPodGone(kube, namespace, name, POD_TIMEOUT_MS, uid);
            await kube.core.createNamespacedPod({ namespace, body: manifest as V1Pod });
          }
        }
      });
      await r(() => waitForPods(kube, {
        namespace, names: [name], timeoutMs: POD_TIMEOUT_MS, what: `utility pod "${name}" to run`,
        until: (pods) => {
          const p = pods.find((x) => x.metadata?.name === name);
          if (p?.status?.phase === 'Failed') throw new PluginError(`utility pod "${name}" failed: ${p.status.message ?? p.status.reason ?? 'unknown'}`, `check \`kubectl describe pod ${name} -n ${namespace}\``);
          return podRunning(p);
        },
      }));
      // Only act once every container answers from inside its own root: a runtime may report a
      // container running a moment before its filesystem is in place.
      for (const c of (manifest as { spec?: { containers?: Array<{ name?: string }> } }).spec?.containers ?? []) {
        const container = c.name ?? '';
        // etcd-tools runs a distroless etcd image (no cat): its etcd answering shows its root is in place.
        const probe = container === TOOLS_CONTAINER
          ? () => execCapture(kube, { namespace, pod: name, container, command: ['etcd', '--version'] }).then((r) => (r.exitCode === 0 ? { ...r, stdout: name } : r))
          : () => execCapture(kube, { namespace, pod: name, container, command: ['cat', '/etc/hostname'] });
        await insideContainer(() => retrying(probe), { namespace, pod: name, container, probe: container === TOOLS_CONTAINER ? 'etcd --version' : 'cat /etc/hostname' });
      }
    },
    async deletePodAndWait(name) {
      const uid = await r(() => deletePod(kube, namespace, name, 0));
      if (uid) await r(() => waitForPodGone(kube, namespace, name, POD_TIMEOUT_MS, uid));
    },
    async recreatePods(names) {
      // The pods' own grace period, never a forced delete: a forced delete drops the pod object at
      // once, and the StatefulSet would start a new member on the same volume while the old
      // process may still run. etcd stops on SIGTERM without writing a new file.
      const uids = await Promise.all(names.map((name) => r(() => deletePod(kube, namespace, name))));
      await Promise.all(names.map((name, i) => (uids[i] ? r(() => waitForPodGone(kube, namespace, name, POD_TIMEOUT_MS, uids[i])) : undefined)));
    },
    waitPodsReady: (names) => r(() => waitForPodsReady(kube, namespace, names, POD_TIMEOUT_MS).then(() => undefined)),
    deletePdb: (name) => r(() => deletePdb(kube, namespace, name).then(() => undefined)),
    createPdb: (manifest) => r(() => recreatePdb(kube, manifest as never).then(() => undefined)),
  };
}

/**
 * Waits until an exec in the container sees the pod's own hostname (its root filesystem is in
 * place). Failures that waiting cannot cure (no permission to exec, the pod gone) are thrown at
 * once; others (the runtime still setting the container up) are retried, and the last one is
 * named if the container never answers.
 */
export async function insideContainer(
  exec: () => Promise<{ exitCode: number; stdout: string; stderr: string }>,
  where: { namespace: string; pod: string; container: string; /** the probe's command, for messages */ probe?: string },
  waitMs = 60_000,
): Promise<void> {
  const { namespace, pod, container } = where;
  const deadline = Date.now() + waitMs;
  for (;;) {
    let last: string;
    try {
      const r = await exec();
      if (r.exitCode === 0 && r.stdout.trim() === pod) return;
      last = `${where.probe ?? 'cat /etc/hostname'} gave exit code ${r.exitCode}${r.exitCode === 0 ? ` and "${r.stdout.trim()}"` : `: ${(r.stderr.trim().split('\n').pop() ?? '')}`}`;
    } catch (err) {
      if (err instanceof ForbiddenError) {
        throw new ForbiddenError(`cannot exec into utility pod "${pod}" in namespace "${namespace}": ${err.message}`, `ask a cluster admin for pods/exec permission in namespace "${namespace}", then run \`kubectl etcd restore --resume\``);
      }
      if (err instanceof NotFoundError) {
        throw new NotFoundError(`utility pod "${pod}" in namespace "${namespace}" went away while starting: ${err.message}`, `check \`kubectl get events -n ${namespace}\`, then run \`kubectl etcd restore --resume\``);
      }
      last = (err as Error).message.split('\n')[0] ?? String(err);
    }
    if (Date.now() > deadline) {
      throw new PluginError(`container "${container}" of utility pod "${pod}" does not answer from inside the pod (${last})`, `check \`kubectl describe pod ${pod} -n ${namespace}\`, then run \`kubectl etcd restore --resume\``);
    }
    await new Promise((res) => setTimeout(res, 500));
  }
}

const COPY_ATTEMPTS = 4;
const COPY_STALL_MS = 20_000;

/** A copy that made no progress (or did not finish after the last byte) for COPY_STALL_MS. */
class CopyStalled extends PluginError {}

/**
 * Copies a local file into a pod (`head -c SIZE`, no tar needed), giving up when it stalls: no
 * byte accepted, or the command not done, for COPY_STALL_MS. The caller checks the sha256.
 */
async function copyWatched(
  kube: KubeContext,
  o: { namespace: string; pod: string; container: string; path: string; source: () => Readable; size: number },
): Promise<void> {
  const file = o.source();
  const feed = new PassThrough({ autoDestroy: false });
  file.on('error', (err) => feed.destroy(err));
  file.pipe(feed);
  let last = Date.now();
  const stalled = new CopyStalled(`copying the snapshot into pod "${o.pod}" stalled`, 'check the pod and the network, then run `kubectl etcd restore --resume`');
  const timer = setInterval(() => {
    if (Date.now() - last > COPY_STALL_MS) feed.destroy(stalled);
  }, 1000);
  try {
    await copyFileIntoPod(kube, {
      namespace: o.namespace, pod: o.pod, container: o.container, path: o.path, source: feed, size: o.size, mode: 0o600, method: 'head',
      onProgress: () => { last = Date.now(); },
    });
  } catch (err) {
    if (feed.destroyed && (feed as { errored?: unknown }).errored === stalled) throw stalled;
    throw err;
  } finally {
    clearInterval(timer);
    file.destroy();
  }
}

/** exec and copy-in in utility pods. */
export function kubeRestorePodIO(kube: KubeContext, namespace: string, onRetry?: (err: unknown) => void): RestorePodIO {
  return {
    exec: (pod, container, argv) => retrying(() => execCapture(kube, { namespace, pod, container, command: argv }), onRetry),
    async copyIn(pod, container, path, source, size) {
      for (let attempt = 1; ; attempt++) {
        try {
          return await retrying(() => copyWatched(kube, { namespace, pod, container, path, source, size }), onRetry);
        } catch (err) {
          if (!(err instanceof CopyStalled) || attempt >= COPY_ATTEMPTS) throw err;
          onRetry?.(err);
        }
      }
    },
  };
}

/** ConfigMap reads and writes for the journal's cluster copy. */
export function kubeConfigMaps(kube: KubeContext): ConfigMapAccess {
  return {
    listConfigMaps: (namespace, labelSelector) => retrying(async () => {
      try {
        return (await kube.core.listNamespacedConfigMap({ namespace, labelSelector })).items.map((c) => c.metadata?.name ?? '').filter(Boolean);
      } catch (err) {
        throw apiError(err, `list configmaps in namespace "${namespace}"`);
      }
    }),
    readConfigMap: (namespace, name) => retrying(async () => {
      try {
        return (await kube.core.readNamespacedConfigMap({ name, namespace })).data ?? {};
      } catch (err) {
        if ((err as { code?: number }).code === 404) return undefined;
        throw apiError(err, `get configmap "${name}" in namespace "${namespace}"`);
      }
    }),
    writeConfigMap: (namespace, name, data, labels) => retrying(async () => {
      const body = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace, labels }, data };
      try {
        await kube.core.replaceNamespacedConfigMap({ name, namespace, body });
      } catch (err) {
        if ((err as { code?: number }).code !== 404) throw apiError(err, `update configmap "${name}" in namespace "${namespace}"`);
        try {
          await kube.core.createNamespacedConfigMap({ namespace, body });
        } catch (err2) {
          throw apiError(err2, `create configmap "${name}" in namespace "${namespace}"`);
        }
      }
    }),
    deleteConfigMap: (namespace, name) => retrying(async () => {
      try {
        await kube.core.deleteNamespacedConfigMap({ name, namespace });
      } catch (err) {
        if ((err as { code?: number }).code !== 404) throw apiError(err, `delete configmap "${name}" in namespace "${namespace}"`);
      }
    }),
  };
}

/** Runs a command in a member's etcd container. */
export function memberExec(kube: KubeContext): MemberCommandRunner {
  return { run: (m, argv) => retrying(() => execCapture(kube, { namespace: m.namespace, pod: m.pod, container: m.container, command: argv })) };
}

/** Checks the restored cluster through etcdctl in the member pods; retries while it settles. */
export function etcdRestoreVerifier(runner: MemberCommandRunner, expected: { liveKeys?: number }, settleMs = 60_000): RestoreVerifier {
  const probe = execStatusProbe(runner);
  const once = async (plan: RestorePlan, healthOnly: boolean) => {
    const members = plan.members.map((m) => m.member);
    const rows = await Promise.all(members.map((m) => probe(m)));
    const problems: string[] = [];
    for (const row of rows) if (!row.healthy) problems.push(`member "${row.name}" is unhealthy (${row.error ?? 'unknown'})`);
    const leaders = new Set(rows.map((x) => x.leaderId).filter((x) => x !== undefined));
    const leaderCount = rows.filter((x) => x.isLeader).length;
    if (leaderCount !== 1 || leaders.size !== 1) problems.push(`expected one leader, found ${leaderCount} (members name ${leaders.size} leaders)`);
    const revisions = rows.map((x) => x.revision ?? -1);
    if (!healthOnly && revisions.some((rv) => rv < plan.snapshot.revision)) problems.push(`revision ${Math.min(...revisions)} is below the snapshot's ${plan.snapshot.revision}`);
    // Separate execs seconds apart see a moving revision while clients write: only a restore, with its writers quiesced, compares them.
    if (!healthOnly && new Set(revisions).size > 1) problems.push(`members disagree on the revision (${revisions.join(', ')})`);
    const clusterIds = new Set(rows.map((x) => x.clusterId));
    if (clusterIds.size > 1) problems.push(`members belong to different clusters (${[...clusterIds].join(', ')})`);
    const first = members[0]!;
    const list = await runner.run(first, ['etcdctl', ...etcdctlConnectionArgs(first), 'member', 'list', '-w', 'json']);
    let listed: Array<{ name: string; peerURLs: string[] }> = [];
    try {
      listed = ((JSON.parse(list.stdout.replace(/:\s*(\d{16,})/g, ':"$1"')) as { members?: Array<{ name?: string; peerURLs?: string[] }> }).members ?? [])
        .map((m) => ({ name: m.name ?? '', peerURLs: m.peerURLs ?? [] }));
    } catch {
      problems.push(`member list failed: ${list.stderr.trim().split('\n').pop() ?? `exit ${list.exitCode}`}`);
    }
    const want = members.map((m) => `${m.name}=${m.peerUrl}`).sort();
    const got = listed.map((m) => `${m.name}=${m.peerURLs.join(',')}`).sort();
    if (listed.length && JSON.stringify(want) !== JSON.stringify(got)) problems.push(`member list is ${got.join(',')}, planned ${want.join(',')}`);
    let keys: number | undefined;
    const count = await runner.run(first, ['etcdctl', ...etcdctlConnectionArgs(first), 'get', '', '--prefix', '--keys-only', '--limit=1', '-w', 'json']);
    const cm = /"count"\s*:\s*(\d+)/.exec(count.stdout);
    keys = cm ? Number(cm[1]) : cm === null && count.exitCode === 0 ? 0 : undefined;
    if (keys === undefined) problems.push(`counting keys failed: ${count.stderr.trim().split('\n').pop() ?? ''}`);
    else if (!healthOnly && expected.liveKeys !== undefined && keys !== expected.liveKeys) problems.push(`the cluster has ${keys} keys, the snapshot ${expected.liveKeys}`);
    return {
      ok: problems.length === 0,
      problems,
      summary: {
        members: rows.map((x) => ({ name: x.name, healthy: x.healthy, leader: x.isLeader ?? false, revision: x.revision })),
        keys,
        revision: revisions[0],
        clusterId: rows[0]?.clusterId,
      },
    };
  };
  return {
    async verify(plan, opts = {}) {
      const deadline = Date.now() + settleMs;
      for (;;) {
        // A member restarting right now (its container briefly gone) is a failed check, not the end.
        const report = await once(plan, opts.healthOnly ?? false).catch((err: unknown) => {
          // Waiting does not cure a refusal: say so at once.
          if (err instanceof ForbiddenError) throw err;
          return { ok: false, problems: [(err as Error).message.split('\n')[0] ?? String(err)], summary: {} };
        });
        if (report.ok || Date.now() > deadline) return report;
        await new Promise((res) => setTimeout(res, 2000));
      }
    },
  };
}

/** For members whose pod is gone: the node their local volume is pinned to (PVC → PV node affinity). */
export async function nodeOfClaim(kube: KubeContext, member: EtcdMember): Promise<string | undefined> {
  if (member.dataVolume?.kind !== 'pvc') return undefined;
  try {
    const claimName = member.dataVolume.claimName;
    const pvc = await retrying(() => kube.core.readNamespacedPersistentVolumeClaim({ name: claimName, namespace: member.namespace }));
    const pvName = pvc.spec?.volumeName;
    if (!pvName) return undefined;
    const pv = await retrying(() => kube.core.readPersistentVolume({ name: pvName }));
    for (const term of pv.spec?.nodeAffinity?.required?.nodeSelectorTerms ?? []) {
      for (const e of term.matchExpressions ?? []) {
        if (e.key === 'kubernetes.io/hostname' && e.operator === 'In' && e.values?.length === 1) return e.values[0];
      }
    }
  } catch (err) {
    const e = apiError(err, `find the node of persistentvolumeclaim "${member.dataVolume.claimName}" in namespace "${member.namespace}"`);
    // A claim or volume that is gone leaves the node unknown (preflight reports the member); a
    // refusal or a failure must not pass for that.
    if (e instanceof NotFoundError) return undefined;
    if (e instanceof ForbiddenError) {
      throw new ForbiddenError(
        `cannot find the node of member "${member.name}" (its pod is gone): ${e.message}`,
        `ask a cluster admin for get permission on persistentvolumeclaims in namespace "${member.namespace}" and on persistentvolumes, or start the member's pod again`,
      );
    }
    throw e;
  }
  return undefined;
}
