// Kubelet-side fault injection (`sim fault --dir DIR KIND ...`, and callable from tests):
//   kill-container NS/POD [CONTAINER] [--signal SIG]   signal a container's main process (default
//                                                      SIGKILL); the kubelet restarts it per restartPolicy
//   node-not-ready NODE...                             the node stops heartbeating: Ready=False + not-ready taint
//   node-ready NODE...                                 undo node-not-ready
//   kubelet-stop NODE... [--for S] [--grace S]         the node's kubelet stops (for S seconds, or until
//                                                      kubelet-start): see stopped.ts and kubelet.ts
//   kubelet-start NODE...                              the node's kubelet starts again
//   fill-volume NS/POD [VOLUME] [--leave BYTES]        fill the pod's PersistentVolume until ENOSPC, or
//                                                      until only BYTES stay free
//   fill-volume NODE:/PATH [--leave BYTES]             the same for a node's own disk (nodedisk.ts)
//   clear                                              every node Ready again, every kubelet started,
//                                                      every fill file removed
// Node faults go through DIR/kubelet-control/not-ready.json, which the running kubelet watches and
// acknowledges in not-ready.ack.json (see kubelet.ts CONTROL). Fill files are recorded in
// DIR/kubelet-control/fills.json so that `clear` can remove them.
// Differs from a real cluster: a real one has no fault injection; a node made NotReady here keeps
// running its pods and nothing is evicted.
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readdirSync, rmSync, statSync, statfsSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type {
  V1PersistentVolume, V1PersistentVolumeClaim, V1PersistentVolumeClaimVolumeSource, V1Pod, V1Volume,
} from '@kubernetes/client-node';
import { runningPid } from '../apiserver/procs.js';
import type { Json } from '../json.js';
import { ApiClient, sleep } from './api.js';
import { CONTROL, type SimInfo } from './kubelet.js';
import { writeJsonAtomic } from './sandbox.js';
import { nodeDiskPath } from '../nodedisk.js';
import { readStopped, STOPPED, stoppedAt, type StoppedRequest } from './stopped.js';

const FILLS = 'fills.json';

/** A pod volume backed by a PersistentVolumeClaim. */
type ClaimVolume = Json<V1Volume> & { persistentVolumeClaim: Json<V1PersistentVolumeClaimVolumeSource> };

/** What `killContainer` signalled. */
export interface KilledContainer {
  namespace: string;
  pod: string;
  container: string;
  pid: number;
}

/** What `fillVolume` did. */
export interface FilledVolume {
  /** The volume's directory on the host (its loop-mounted filesystem). */
  path: string;
  /** The file written to fill it. */
  file: string;
  bytesWritten: number;
  /** Bytes still available to unprivileged writers afterwards. */
  freeBytes: number;
}

function splitPodRef(ref: string | undefined): { namespace: string; pod: string } {
  const m = /^([^/\s]+)\/([^/\s]+)$/.exec(ref ?? '');
  if (!m) throw new Error(`pod "${ref ?? ''}" must be given as NAMESPACE/NAME`);
  return { namespace: m[1], pod: m[2] };
}

function runtimeDir(dir: string, namespace: string, pod: string): string {
  return join(dir, 'runtime', 'pods', namespace, pod);
}

function alive(pid: number): boolean {
  try {
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** Signals the main process of a running container (default SIGKILL) and waits until it is gone. */
export async function killContainer(dirArg: string, opts: { namespace: string; pod: string; container?: string; signal?: NodeJS.Signals }): Promise<KilledContainer> {
  const dir = resolve(dirArg);
  const rt = runtimeDir(dir, opts.namespace, opts.pod);
  const key = `${opts.namespace}/${opts.pod}`;
  if (!existsSync(join(rt, 'pod.json'))) throw new Error(`pod "${key}" is not running on any node of the cluster in "${dir}"; check \`kubectl get pod -n ${opts.namespace} ${opts.pod}\``);
  const containers = readdirSync(rt).filter((f) => f.endsWith('.json') && f !== 'pod.json').map((f) => f.slice(0, -'.json'.length));
  let container = opts.container;
  if (!container) {
    if (containers.length !== 1) throw new Error(`pod "${key}" has containers ${containers.map((c) => `"${c}"`).join(', ')}; name the one to kill`);
    container = containers[0];
  }
  const info = readJson<{ pid: number | null }>(join(rt, `${container}.json`));
  if (!info) throw new Error(`container "${container}" not found in pod "${key}"; it has ${containers.map((c) => `"${c}"`).join(', ') || 'none started yet'}`);
  if (!info.pid || !alive(info.pid)) throw new Error(`container "${container}" of pod "${key}" is not running; wait for it to start`);
  const pid = info.pid;
  process.kill(pid, opts.signal ?? 'SIGKILL');
  for (let i = 0; i < 300 && alive(pid); i++) await sleep(100);
  if (alive(pid)) throw new Error(`container "${container}" of pod "${key}" (pid ${pid}) did not exit on ${opts.signal}; use --signal KILL`);
  return { namespace: opts.namespace, pod: opts.pod, container, pid };
}

/** The nodes currently forced NotReady. */
export function notReadyNodes(dirArg: string): string[] {
  return readJson<{ nodes: string[] }>(join(resolve(dirArg), CONTROL.dir, CONTROL.notReady))?.nodes ?? [];
}

/** A node fault needs the cluster, nodes of it, and its kubelet running to apply it; returns sim.json. */
function requireNodesAndKubelet(dir: string, nodes: string[]): SimInfo {
  const sim = readJson<SimInfo>(join(dir, 'sim.json'));
  if (!sim) throw new Error(`no cluster in "${dir}"; run \`npm run sim -- up --dir ${dir}\``);
  const unknown = nodes.filter((n) => !sim.nodes.includes(n));
  if (unknown.length) throw new Error(`node "${unknown[0]}" is not part of the cluster in "${dir}"; its nodes are ${sim.nodes.join(', ')}`);
  if (!runningPid(dir, 'kubelet')) throw new Error(`the kubelet of the cluster in "${dir}" is not running; see ${join(dir, 'logs', 'kubelet.log')}`);
  return sim;
}

/** Forces nodes NotReady (ready=false) or Ready again; resolves once the kubelet has applied it. */
export async function setNodesReady(dirArg: string, nodes: string[], ready: boolean, timeoutMs = 30_000): Promise<void> {
  const dir = resolve(dirArg);
  const sim = requireNodesAndKubelet(dir, nodes);
  const current = new Set(notReadyNodes(dir));
  for (const n of nodes) if (ready) current.delete(n); else current.add(n);
  const controlDir = join(dir, CONTROL.dir);
  const prev = readJson<{ seq: number }>(join(controlDir, CONTROL.notReady))?.seq ?? 0;
  const ack = readJson<{ seq: number }>(join(controlDir, CONTROL.ack))?.seq ?? 0;
  const req = { seq: Math.max(prev, ack) + 1, nodes: sim.nodes.filter((n) => current.has(n)) };
  writeJsonAtomic(join(controlDir, CONTROL.notReady), req);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((readJson<{ seq: number }>(join(controlDir, CONTROL.ack))?.seq ?? 0) >= req.seq) return;
    await sleep(100);
  }
  throw new Error(`the kubelet did not apply the node fault within ${Math.round(timeoutMs / 1000)}s; see ${join(dir, 'logs', 'kubelet.log')}`);
}

/**
 * The node lifecycle controller's --node-monitor-grace-period: how long a node may not post its
 * status before it is marked Unknown. 50 s since Kubernetes 1.32 (40 s before;
 * kubernetes/kubernetes#121793).
 */
export const NODE_MONITOR_GRACE_S = 50;

/** The nodes whose kubelet is stopped now. */
export function stoppedKubelets(dirArg: string): string[] {
  return stoppedAt(readStopped(resolve(dirArg)));
}

/**
 * Stops nodes' kubelets (`stop`; for `forS` seconds, or until started) or starts them again; resolves
 * once the kubelet has applied it. `graceS`: how long until the stopped node is marked Unknown.
 */
export async function setKubeletsStopped(dirArg: string, nodes: string[], stop: boolean, opts: { forS?: number; graceS?: number } = {}, timeoutMs = 30_000): Promise<void> {
  const dir = resolve(dirArg);
  requireNodesAndKubelet(dir, nodes);
  const prev = readStopped(dir);
  const current: Record<string, number | null> = Object.fromEntries(stoppedAt(prev).map((n) => [n, prev!.nodes[n]!]));
  for (const n of nodes) {
    if (stop) current[n] = opts.forS === undefined ? null : Date.now() + opts.forS * 1000;
    else delete current[n];
  }
  const ack = readStopped(dir, true)?.seq ?? 0;
  // The grace of the nodes this request stops (one already stopped keeps the timer it got).
  const graceMs = (opts.graceS ?? NODE_MONITOR_GRACE_S) * 1000;
  const req: StoppedRequest = { seq: Math.max(prev?.seq ?? 0, ack) + 1, nodes: current, graceMs };
  writeJsonAtomic(join(dir, STOPPED.dir, STOPPED.request), req);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((readStopped(dir, true)?.seq ?? 0) >= req.seq) return;
    await sleep(100);
  }
  throw new Error(`the kubelet did not apply the kubelet fault within ${Math.round(timeoutMs / 1000)}s; see ${join(dir, 'logs', 'kubelet.log')}`);
}

function seconds(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!(Number.isFinite(n) && n >= 0)) throw new Error(`invalid ${name} "${v}"; pass seconds, e.g. ${name} 30`);
  return n;
}

function fills(dir: string): string[] {
  return readJson<string[]>(join(dir, CONTROL.dir, FILLS)) ?? [];
}

function mountPoints(): Set<string> {
  return new Set(readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => (l.split(' ')[1] ?? '').replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)))));
}

/** The host directory of a pod's PersistentVolume (by volume name, or its only PVC volume). */
async function podVolumePath(dir: string, namespace: string, pod: string, volume?: string): Promise<string> {
  const api = await ApiClient.fromKubeconfig(join(dir, 'components.kubeconfig'));
  const obj = await api.request<Json<V1Pod>>('GET', `/api/v1/namespaces/${namespace}/pods/${pod}`);
  const pvcVolumes = (obj.spec?.volumes ?? []).filter((v): v is ClaimVolume => !!v.persistentVolumeClaim);
  const chosen = volume ? pvcVolumes.find((v) => v.name === volume) : pvcVolumes.length === 1 ? pvcVolumes[0] : undefined;
  if (!pvcVolumes.length) throw new Error(`pod "${namespace}/${pod}" has no persistentVolumeClaim volume; fill-volume fills only claims`);
  if (!chosen) {
    const names = pvcVolumes.map((v) => `"${v.name}"`).join(', ') || 'none';
    throw new Error(volume
      ? `pod "${namespace}/${pod}" has no persistentVolumeClaim volume "${volume}"; its claim volumes: ${names}`
      : `pod "${namespace}/${pod}" has claim volumes ${names}; name the one to fill`);
  }
  const claim = chosen.persistentVolumeClaim.claimName;
  const pvc = await api.request<Json<V1PersistentVolumeClaim>>('GET', `/api/v1/namespaces/${namespace}/persistentvolumeclaims/${claim}`);
  if (!pvc.spec?.volumeName) throw new Error(`persistentvolumeclaim "${claim}" is not bound; wait for the provisioner`);
  const pv = await api.request<Json<V1PersistentVolume>>('GET', `/api/v1/persistentvolumes/${pvc.spec.volumeName}`);
  const path: string | undefined = pv.spec?.local?.path ?? pv.spec?.hostPath?.path;
  if (!path || !mountPoints().has(path)) throw new Error(`persistentvolume "${pvc.spec.volumeName}" is not mounted on its node; wait for pod "${namespace}/${pod}" to start`);
  return path;
}

/** Writes a file into a pod's PersistentVolume until it is full (ENOSPC) or only leaveBytes stay free. */
export async function fillVolume(dirArg: string, opts: ({ namespace: string; pod: string; volume?: string } | { nodeDisk: string }) & { leaveBytes?: number }): Promise<FilledVolume> {
  const dir = resolve(dirArg);
  const path = 'nodeDisk' in opts ? nodeDiskPath(dir, opts.nodeDisk) : await podVolumePath(dir, opts.namespace, opts.pod, opts.volume);
  const leave = opts.leaveBytes ?? 0;
  const free = () => { const s = statfsSync(path); return s.bavail * s.bsize; };
  const file = join(path, `.sim-fill-${Date.now().toString(36)}`);
  writeJsonAtomic(join(dir, CONTROL.dir, FILLS), [...fills(dir), file]);
  const start = free();
  // Allocate most of it without writing data (the image file stays sparse), then write the rest.
  const bulk = Math.max(0, start - leave - (8 << 20)) & ~0xfffff;
  if (bulk > 0) {
    const r = spawnSync('fallocate', ['-l', String(bulk), file], { encoding: 'utf8' });
    if (r.status !== 0) rmSync(file, { force: true });
  }
  const fd = openSync(file, 'a', 0o600);
  const chunk = Buffer.alloc(1 << 20);
  try {
    for (;;) {
      const want = free() - leave;
      if (want <= 0) break;
      try {
        if (writeSync(fd, chunk, 0, Math.min(chunk.length, want)) === 0) break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
        throw err;
      }
    }
  } finally {
    closeSync(fd);
  }
  spawnSync('sync', ['-f', file]);
  const bytesWritten = statSync(file).size;
  return { path, file, bytesWritten, freeBytes: free() };
}

/** Removes every file fillVolume wrote. */
export function unfillVolumes(dirArg: string): string[] {
  const dir = resolve(dirArg);
  const files = fills(dir);
  for (const f of files) rmSync(f, { force: true });
  if (existsSync(join(dir, CONTROL.dir))) writeJsonAtomic(join(dir, CONTROL.dir, FILLS), []);
  return files;
}

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = args[i + 1];
  args.splice(i, 2);
  if (v === undefined) throw new Error(`${name} needs a value`);
  return v;
}

/** Runs one kubelet fault from `sim fault` arguments; returns a line describing what was done. */
export async function runKubeletFault(dirArg: string, argv: string[]): Promise<string> {
  const dir = resolve(dirArg);
  const [kind, ...rest] = argv;
  const args = [...rest];
  switch (kind) {
    case 'kill-container': {
      const sig = flag(args, '--signal');
      const signal = (sig ? (sig.startsWith('SIG') ? sig : `SIG${sig}`).toUpperCase() : 'SIGKILL') as NodeJS.Signals;
      const k = await killContainer(dir, { ...splitPodRef(args[0]), container: args[1], signal });
      return `sent ${signal} to container "${k.container}" of pod "${k.namespace}/${k.pod}" (pid ${k.pid})`;
    }
    case 'node-not-ready':
    case 'node-ready': {
      if (!args.length) throw new Error(`fault ${kind} needs one or more node names`);
      // A stopped kubelet posts no status at all (it turns Unknown after the grace period): neither
      // fault has a kubelet to act through until kubelet-start.
      const stoppedNow = stoppedKubelets(dir);
      const stopped = args.filter((n) => stoppedNow.includes(n));
      if (stopped.length) throw new Error(`the kubelet of ${stopped.join(', ')} is stopped; run fault kubelet-start ${stopped.join(' ')} first`);
      await setNodesReady(dir, args, kind === 'node-ready');
      return `nodes not ready: ${notReadyNodes(dir).join(', ') || '(none)'}`;
    }
    case 'kubelet-stop':
    case 'kubelet-start': {
      const forS = seconds(flag(args, '--for'), '--for');
      const graceS = seconds(flag(args, '--grace'), '--grace');
      if (!args.length) throw new Error(`fault ${kind} needs one or more node names`);
      await setKubeletsStopped(dir, args, kind === 'kubelet-stop', { forS, graceS });
      return `kubelets stopped: ${stoppedKubelets(dir).join(', ') || '(none)'}`;
    }
    case 'fill-volume': {
      const leave = flag(args, '--leave');
      const leaveBytes = leave === undefined ? undefined : Number(leave);
      if (leaveBytes !== undefined && !(Number.isInteger(leaveBytes) && leaveBytes >= 0)) throw new Error(`invalid byte count "${leave}"; pass --leave BYTES`);
      const f = /^[^/:]+:\//.test(args[0] ?? '')
        ? await fillVolume(dir, { nodeDisk: args[0]!, leaveBytes })
        : await fillVolume(dir, { ...splitPodRef(args[0]), volume: args[1], leaveBytes });
      return `wrote ${f.bytesWritten} bytes to ${f.file}; ${f.freeBytes} bytes free`;
    }
    case 'clear': {
      const removed = unfillVolumes(dir);
      const stopped = stoppedKubelets(dir);
      if (stopped.length) await setKubeletsStopped(dir, stopped, false);
      if (notReadyNodes(dir).length) {
        const sim = readJson<SimInfo>(join(dir, 'sim.json'));
        await setNodesReady(dir, sim?.nodes ?? [], true);
      }
      return `kubelet faults cleared (${removed.length} fill file(s) removed)`;
    }
    default:
      throw new Error(`unknown fault "${kind}"; known: restart-apiserver, stream, kill-container, node-not-ready, node-ready, kubelet-stop, kubelet-start, fill-volume, clear`);
  }
}
