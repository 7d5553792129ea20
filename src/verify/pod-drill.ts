/**
 * A restore drill in a throwaway pod of the cluster (`verify --restore --in-cluster`), for a
 * machine without etcd: the pod runs the members' own image (so the drill's etcd is the release
 * the cluster runs), as the members' user, with nothing but an emptyDir; no ServiceAccount token,
 * no Service, no port: the drill's etcd listens on the pod's own loopback, which nothing outside
 * the pod can reach. An image without a shell (distroless) runs beside a shell image in the same
 * pod, its tools reached through the shared process namespace, as a restore's utility pod does
 * (restore/manifests.ts toolsExec).
 * The snapshot is copied in (`head -c SIZE`, 0600), restored with the image's own etcdutl (or
 * etcdctl for 3.4), started, and what it serves is compared with what was read offline from the
 * local file, as the local drill does (drill.ts compare). The pod is deleted on every way out:
 * return, error, SIGINT/SIGTERM; after a SIGKILL it ends by itself within the hour
 * (activeDeadlineSeconds).
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import type { V1Pod } from '@kubernetes/client-node';
import { PluginError } from '../errors.js';
import type { KubeContext } from '../kube/client.js';
import { copyFileIntoPod } from '../kube/copy.js';
import { withThrowawayPod } from '../kube/throwaway.js';
import type { CommandResult, ContainerCommand } from '../kube/exec.js';
import { memberContainer, type EtcdMember } from '../etcd/topology.js';
import { shellQuote } from '../etcd/shell.js';
import { IDLE_COMMAND, MANAGED_BY, TOOLS_CONTAINER, TOOLS_SCRATCH_DIR, toolsExec, toolsIdleCommand, utilityUser, withoutEphemeralStorage } from '../restore/manifests.js';
import { DEFAULT_SHELL_IMAGE } from '../restore/preflight.js';
import type { KvHash } from '../etcd/snapshot/kvhash.js';
import { compare, failureLine, MACHINE_TROUBLE, type DrillReport, type Served } from './drill.js';

/** The label of drill pods (value: "true"). */
export const DRILL_LABEL = 'kubectl-etcd/drill';
const DRILL_CONTAINER = 'drill';
const WORK = '/kubectl-etcd-drill';
const SNAPSHOT = `${WORK}/snapshot.db`;
// Ports on the pod's loopback that no member, and not the etcd-tools container, uses.
const CLIENT_URL = 'http://127.0.0.1:32479';
const PEER_URL = 'http://127.0.0.1:32480';
const MEMBER = 'kubectl-etcd-drill';
/** The tools the drill's script needs in a shell image. */
const SCRIPT_TOOLS = ['head', 'chmod', 'cat', 'tail', 'sleep', 'kill', 'sed', 'env'];

/** A member whose container runs no command (its pod down or starting): another member may be asked. */
export class MemberUnreachable extends PluginError {}

/** How the drill pod is made, from a running member of the cluster. */
export interface DrillPodSpec {
  namespace: string;
  /** The members' image: its etcd serves the drill. */
  image: string;
  /** Set when that image has no shell: the shell image the pod runs beside it. */
  shellImage?: string;
  podSecurityContext?: Record<string, unknown>;
  securityContext?: Record<string, unknown>;
  imagePullSecrets?: Array<{ name: string }>;
  /** The member's node (the pod runs there: etcd's nodes hold the data already) and the tolerations that let it on. */
  node?: string;
  tolerations?: Array<Record<string, unknown>>;
  /** The etcd container's resources: a namespace quota that wants them admits the pod, and the drill's etcd gets what a member has. */
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
}

/**
 * Asks a running member what its image has: a shell with the script's tools, or no shell at all
 * (then `etcd --version` must answer an argv exec). Refuses an image with a shell that lacks a tool.
 */
export async function drillPodSpec(run: ContainerCommand, member: EtcdMember, utilityImage?: string): Promise<DrillPodSpec> {
  const target = memberContainer(member);
  const tryRun = (argv: string[]) => run(target, argv).catch((err: unknown) => ({ exitCode: 127, stdout: '', stderr: (err as Error).message }));
  const probe = await tryRun(['sh', '-c', `for t in ${SCRIPT_TOOLS.join(' ')} etcd etcdctl; do command -v $t >/dev/null 2>&1 || echo missing:$t; done; true`]);
  const pullSecrets = member.podFacts?.imagePullSecrets;
  const resources = withoutEphemeralStorage(member.podFacts?.resources);
  const tolerations = member.podFacts?.tolerations;
  const base = {
    namespace: member.namespace, image: member.image, ...(member.node ? { node: member.node } : {}), ...(tolerations?.length ? { tolerations } : {}),
    ...(pullSecrets?.length ? { imagePullSecrets: pullSecrets } : {}), ...(resources ? { resources } : {}),
  };
  if (probe.exitCode === 0) {
    const missing = [...probe.stdout.matchAll(/missing:(\S+)/g)].map((m) => m[1]!);
    if (missing.length) throw new PluginError(`image "${member.image}" of pod "${member.pod}" lacks ${missing.join(', ')}, which the drill in a pod needs`, 'run the drill on this machine instead: install etcd of the cluster\'s release and leave out --in-cluster');
    const user = utilityUser(member, false);
    return { ...base, ...(user.pod ? { podSecurityContext: user.pod } : {}), ...(Object.keys(user.container).length ? { securityContext: user.container } : {}) };
  }
  const alive = await tryRun(['etcd', '--version']);
  if (alive.exitCode !== 0) {
    throw new MemberUnreachable(`cannot run a command in pod "${member.pod}" (container "${member.container}"): ${probe.stderr.trim().split('\n').at(-1) || `exit code ${probe.exitCode}`}`,
      'check the pod with kubectl describe; the drill asks a running member what its image has');
  }
  // No shell: the shell image runs the script as root, reaching the etcd image's tools through
  // /proc (another user's process root needs CAP_SYS_PTRACE), as a restore's utility pod does.
  const user = utilityUser(member, true);
  return { ...base, shellImage: utilityImage ?? DEFAULT_SHELL_IMAGE, ...(user.pod ? { podSecurityContext: user.pod } : {}), securityContext: user.container };
}

/**
 * Asks the members, healthy ones first, what their image has (drillPodSpec): a member whose pod
 * runs nothing is passed over. The version is what the member asked reports (etcd's own status).
 */
export async function askMembers(run: ContainerCommand, members: Array<{ member: EtcdMember; healthy: boolean; version?: string }>, utilityImage?: string): Promise<{ spec: DrillPodSpec; version?: string }> {
  let failure: MemberUnreachable | undefined;
  for (const m of [...members].sort((a, b) => Number(b.healthy) - Number(a.healthy))) {
    try {
      return { spec: await drillPodSpec(run, m.member, utilityImage), ...(m.version ? { version: m.version } : {}) };
    } catch (err) {
      if (!(err instanceof MemberUnreachable)) throw err;
      failure ??= err;
    }
  }
  throw failure ?? new PluginError('the etcd workload has no members to ask what their image has', 'check it with kubectl etcd status');
}

/** The drill pod: one container of the members' image, or (no shell) a shell image beside it. */
export function drillPodManifest(spec: DrillPodSpec, name: string): V1Pod {
  const work = { name: 'work', mountPath: WORK };
  const sc = { ...(spec.securityContext ? { securityContext: spec.securityContext } : {}), ...(spec.resources ? { resources: spec.resources } : {}) };
  const containers = spec.shellImage
    ? [
        { name: DRILL_CONTAINER, image: spec.shellImage, command: IDLE_COMMAND, ...sc, volumeMounts: [work] },
        { name: TOOLS_CONTAINER, image: spec.image, command: toolsIdleCommand(), ...sc, volumeMounts: [work, { name: 'etcd-tools-scratch', mountPath: TOOLS_SCRATCH_DIR }] },
      ]
    : [{ name: DRILL_CONTAINER, image: spec.image, command: IDLE_COMMAND, ...sc, volumeMounts: [work] }];
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name, namespace: spec.namespace, labels: { ...MANAGED_BY, [DRILL_LABEL]: 'true' } },
    spec: {
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 2,
      // A drill pod left behind (the plugin killed) ends by itself; it holds a copy of every Secret.
      activeDeadlineSeconds: 3600,
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      ...(spec.shellImage ? { shareProcessNamespace: true } : {}),
      // On a member's node: the snapshot's Secrets go nowhere etcd's data is not already.
      ...(spec.node ? { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [spec.node] }] }] } } } } : {}),
      ...(spec.tolerations ? { tolerations: spec.tolerations } : {}),
      ...(spec.podSecurityContext ? { securityContext: spec.podSecurityContext } : {}),
      ...(spec.imagePullSecrets ? { imagePullSecrets: spec.imagePullSecrets } : {}),
      containers,
      volumes: [{ name: 'work', emptyDir: {} }, ...(spec.shellImage ? [{ name: 'etcd-tools-scratch', emptyDir: {} }] : [])],
    },
  } as V1Pod;
}

/** A started drill pod. */
export interface DrillPod {
  name: string;
  namespace: string;
  image: string;
  /** `etcd --version` of the members' image. */
  version: string;
  /** Copies the snapshot in, restores, starts and asks etcd; compares with what was read offline. */
  drill(opts: { snapshot: string; skipHashCheck: boolean; expected: KvHash; log(line: string): void; now?: () => Date }): Promise<DrillReport>;
}

/** Creates the drill pod, runs `use` with it and deletes it on every way out (SIGINT/SIGTERM too: then exits 130/143). */
export async function withDrillPod<T>(kube: KubeContext, run: ContainerCommand, spec: DrillPodSpec, log: (line: string) => void, use: (pod: DrillPod) => Promise<T>, timeoutMs = 180_000): Promise<T> {
  const name = `kubectl-etcd-drill-${randomBytes(3).toString('hex')}`;
  const { namespace } = spec;
  await sweepEndedDrillPods(kube, namespace, log);
  log(`creating the drill pod "${name}" in namespace "${namespace}" (image ${spec.image}${spec.shellImage ? ` beside ${spec.shellImage}` : ''})`);
  return withThrowawayPod(kube, drillPodManifest(spec, name), {
    what: `the drill pod "${name}" in namespace "${namespace}"`,
    startHint: `kubectl get events -n ${namespace} --field-selector involvedObject.name=${name} says more (the pod is deleted)`,
    timeoutMs,
    warn: (line) => void process.stderr.write(`warning: ${line}\n`),
  }, async () => {
    const target = { namespace, pod: name, container: DRILL_CONTAINER };
    const via = spec.shellImage ? toolsExec() : [];
    const v = await run(target, [...via, 'etcd', '--version']);
    const version = /etcd Version:\s*(\S+)/.exec(v.stdout)?.[1];
    if (v.exitCode !== 0 || !version) throw new PluginError(`etcd --version in the drill pod "${name}" failed: ${failureLine(v.stderr || v.stdout)}`, `check that image ${spec.image} runs etcd --version; the pod is deleted`);
    return use({
      name, namespace, image: spec.image, version,
      drill: (o) => drillInPod(kube, run, target, via, { ...o, pod: name, image: spec.image, version }),
    });
  });
}

/** Deletes drill pods that ended by their deadline (a drill killed with SIGKILL left them): best effort. */
async function sweepEndedDrillPods(kube: KubeContext, namespace: string, log: (line: string) => void): Promise<void> {
  try {
    const pods = await kube.core.listNamespacedPod({ namespace, labelSelector: `${DRILL_LABEL}=true` });
    for (const p of pods.items.filter((q) => q.status?.phase === 'Failed' || q.status?.phase === 'Succeeded')) {
      log(`deleting drill pod "${p.metadata!.name}", which an earlier drill left (it ended by its deadline)`);
      await kube.core.deleteNamespacedPod({ name: p.metadata!.name!, namespace }).catch(() => undefined);
    }
  } catch {
    // Not ours to fail on: the drill goes on.
  }
}

// Exit codes of the script: the snapshot refused (a failed drill) vs the pod unable to run it.
const REFUSED = 3;
const KILLED = 94;

/**
 * The drill's script (POSIX sh, for dash and busybox sh): $1 the work dir (the snapshot is
 * snapshot.db there), $2 "1" for
 * --skip-hash-check, $3 the revision to ask at (0: the current one). `X` runs a program of the
 * etcd image (empty, or toolsExec's words). It prints sections `== NAME` for the caller to read.
 */
export function drillScript(x: string): string {
  const member = `--name=${MEMBER} --initial-cluster=${MEMBER}=${PEER_URL} --initial-advertise-peer-urls=${PEER_URL}`;
  const ctl = `${x} etcdctl --endpoints=${CLIENT_URL} --dial-timeout=1s`;
  return `umask 077
# The image's ETCD_*/ETCDCTL_* variables must not add to the drill's flags (etcd refuses a flag set twice).
# (ETCD_UNSUPPORTED_ARCH stays: etcd on some architectures refuses to start without it.)
for v in $(env | sed -n 's/^\\(ETCD[A-Za-z0-9_]*\\)=.*/\\1/p'); do case $v in ETCD_UNSUPPORTED_ARCH) ;; *) unset "$v" ;; esac; done
export ETCDCTL_API=3
w=$1; rev=$3
skip=; [ "$2" = 1 ] && skip=--skip-hash-check
cd "$w" || exit 90
util=etcdctl
if ${x} etcdutl version >/dev/null 2>&1; then util=etcdutl; fi
echo "== util $util"
${x} $util snapshot restore "$w/snapshot.db" --data-dir "$w/data" ${member} $skip >"$w/restore.log" 2>&1
rc=$?
# Killed (out of memory?), or the tools not reached (toolsExec's 95/96): the pod's trouble, not the snapshot's.
case $rc in 0) ;; 95|96|1[3-9][0-9]|2[0-9][0-9]) echo "== killed $rc"; tail -c 4096 "$w/restore.log"; exit ${KILLED} ;;
  *) echo "== refused"; tail -c 16384 "$w/restore.log"; exit ${REFUSED} ;; esac
${x} etcd --data-dir "$w/data" ${member} --listen-client-urls=${CLIENT_URL} --advertise-client-urls=${CLIENT_URL} --listen-peer-urls=${PEER_URL} >"$w/etcd.log" 2>&1 &
pid=$!
trap 'kill -KILL "$pid" 2>/dev/null' EXIT
# Two minutes for the first answer (by the clock where date has %s, else by rounds of at least a second).
t0=$(date +%s 2>/dev/null); case $t0 in ''|*[!0-9]*) t0= ;; esac
i=0
while :; do
  if ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid"; rc=$?
    case $rc in 95|96|1[3-9][0-9]|2[0-9][0-9]) echo "== killed $rc"; tail -c 4096 "$w/etcd.log"; exit ${KILLED} ;; esac
    echo "== exited $rc"; tail -c 16384 "$w/etcd.log"; exit ${REFUSED}
  fi
  if ${ctl} --command-timeout=2s endpoint status -w json >"$w/status.json" 2>/dev/null; then break; fi
  i=$((i + 1))
  if [ -n "$t0" ]; then waited=$(( $(date +%s) - t0 )); else waited=$i; fi
  [ "$waited" -lt 120 ] || { echo "== silent"; tail -c 4096 "$w/etcd.log"; exit 91; }
  sleep 0.2 2>/dev/null || sleep 1
done
echo "== status"; cat "$w/status.json"; echo
echo "== hashkv"; ${ctl} --command-timeout=60s endpoint hashkv --rev="$rev" -w json || exit 92
echo
echo "== count"; ${ctl} --command-timeout=60s get '' --from-key --keys-only --limit=1 --rev="$rev" -w json || exit 92
echo
echo "== end"
`;
}

/** The script's sections by name (`== NAME rest` starts one; its text follows). */
function sections(out: string): Map<string, { arg: string; text: string }> {
  const found = new Map<string, { arg: string; text: string }>();
  let current: { arg: string; text: string } | undefined;
  for (const line of out.split('\n')) {
    const m = /^== (\w+)(?: (.*))?$/.exec(line);
    if (m) {
      current = { arg: m[2] ?? '', text: '' };
      found.set(m[1]!, current);
    } else if (current) {
      current.text += `${line}\n`;
    }
  }
  return found;
}

/** A number field of etcdctl's JSON (numbers may be bigger than 2^53: read as text). */
function jsonNumber(text: string, field: string): number | undefined {
  const m = new RegExp(`"${field}":(-?\\d+)`).exec(text);
  return m ? Number(m[1]) : undefined;
}

async function drillInPod(kube: KubeContext, run: ContainerCommand, target: { namespace: string; pod: string; container: string }, via: string[],
  o: { snapshot: string; skipHashCheck: boolean; expected: KvHash; log(line: string): void; now?: () => Date; pod: string; image: string; version: string }): Promise<DrillReport> {
  const now = o.now ?? (() => new Date());
  const at = now().toISOString();
  const size = statSync(o.snapshot).size;
  o.log(`copying the snapshot (${size} bytes) into the drill pod "${o.pod}"`);
  await copyFileIntoPod(kube, { ...target, path: SNAPSHOT, source: createReadStream(o.snapshot), size, mode: 0o600 });
  const rev = o.expected.revision > o.expected.compactRevision ? o.expected.revision : 0;
  o.log(`restoring it with the image's own tool and starting etcd ${o.version} on the pod's loopback`);
  const r = await run(target, ['sh', '-c', drillScript(via.map(shellQuote).join(' ')), 'sh', WORK, o.skipHashCheck ? '1' : '0', String(rev)]);
  return drillOutcome(r, { at, where: 'pod', pod: o.pod, namespace: target.namespace, image: o.image, etcdVersion: o.version }, o.expected);
}

/**
 * The report from the script's run: a snapshot the restore tool or etcd refused is a failed drill;
 * a script that could not run is an error (nothing recorded).
 */
export function drillOutcome(r: CommandResult, where: Omit<DrillReport, 'restoredWith' | 'expected' | 'outcome'>, expected: KvHash): DrillReport {
  const pod = where.pod ?? '?';
  const s = sections(r.stdout);
  const util = s.get('util')?.arg === 'etcdutl' ? 'etcdutl' : 'etcdctl';
  const base = { ...where, restoredWith: `${util} ${where.etcdVersion}`, expected };
  if (r.exitCode === REFUSED) {
    const refused = s.get('refused');
    const exited = s.get('exited');
    const log = refused?.text ?? exited?.text ?? '';
    // The pod, not the snapshot: no drill to record.
    if (MACHINE_TROUBLE.test(log)) throw new PluginError(`the drill in pod "${pod}" could not write its data: ${failureLine(log)}`, 'the pod\'s node needs room for the snapshot and its restored copy (an emptyDir); run verify again');
    const reason = refused ? `${util} snapshot restore refused the snapshot: ${failureLine(log)}`
      : `etcd exited with code ${exited?.arg ?? '?'} on the restored data: ${failureLine(log)}`;
    return { ...base, outcome: 'failed', reason };
  }
  if (r.exitCode !== 0 || !s.has('end')) {
    const killed = s.get('killed');
    if (killed) {
      throw new PluginError(`the drill in pod "${pod}" could not run: ${/^9[56]$/.test(killed.arg) ? `the etcd image's tools were not reached (exit code ${killed.arg}): ${failureLine(killed.text)}` : `a process was killed (exit code ${killed.arg}: out of memory?)`}`,
        'the drill pod takes the members\' resources; run verify again where the node has room, or drill on this machine (leave out --in-cluster)');
    }
    const silent = s.get('silent');
    if (silent) throw new PluginError(`the drill's etcd in pod "${pod}" did not answer within 2 minutes: ${failureLine(silent.text)}`, 'run the drill again when the node is less busy');
    throw new PluginError(`the drill in pod "${pod}" could not run (exit code ${r.exitCode}): ${failureLine(r.stderr || r.stdout)}`, 'check the pod\'s node (space, memory), then run verify again');
  }
  const status = s.get('status')!.text;
  const hashkv = s.get('hashkv')?.text ?? '';
  const count = s.get('count')?.text ?? '';
  const served: Served = {
    revision: jsonNumber(status, 'revision') ?? -1,
    keys: jsonNumber(count, 'count') ?? 0,
    hash: jsonNumber(hashkv, 'hash') ?? -1,
    compactRevision: jsonNumber(hashkv, 'compact_revision') ?? -1,
  };
  const mismatch = compare(expected, served);
  return { ...base, served, outcome: mismatch ? 'failed' : 'passed', ...(mismatch ? { reason: mismatch } : {}) };
}
