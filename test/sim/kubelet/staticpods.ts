// Static pods, as a real kubelet runs them from its staticPodPath (kubeadm: /etc/kubernetes/manifests),
// here DIR/nodes/NODE/hostpath/etc/kubernetes/manifests for each node; and their mirror pods.
// Modelled on kubernetes/kubernetes pkg/kubelet/config/file.go, file_linux.go (one Pod per file;
// dotfiles and subdirectories skipped; a file that does not parse is logged and skipped; changes
// seen by an inotify watch and by a full re-list every 20 s, fileCheckFrequency's default),
// config/common.go applyDefaults (name `<name>-<node>`, namespace `default` when none,
// spec.nodeName, a NoExecute toleration for every taint, the uid an md5 over node, file and pod,
// kept in annotation kubernetes.io/config.hash, kubernetes.io/config.source=file and
// kubernetes.io/config.seen), pod/mirror_client.go (the mirror: the pod with
// kubernetes.io/config.mirror=<hash> and one controller ownerReference to its Node; AlreadyExists
// with the same hash is success) and kubelet.go syncPod (a mirror being deleted, or of another
// hash, is deleted with grace 0 and a uid precondition and made again; the static pod runs on).
// Docs: https://kubernetes.io/docs/tasks/configure-pod-container/static-pod/ (a static pod's spec
// cannot refer to other API objects: refused here when its file is read, as newer kubelets do).
// So `kubectl delete pod` of a mirror succeeds and it is back within seconds, its containers
// untouched; moving the file out stops the pod (with its grace period) and deletes the mirror;
// moving it back starts it again; changing it starts the new pod once the old one has stopped.
// Differs from a real kubelet: one process serves every node's folder.
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ApiError, type ApiClient } from './api.js';
import type { BoundPod, Pod } from './objects.js';
import type { PodWorker } from './podworker.js';
import { now } from './status.js';

/** kubeadm's staticPodPath, inside each node's hostPath root. */
export const STATIC_POD_PATH = '/etc/kubernetes/manifests';
export const MIRROR_ANNOTATION = 'kubernetes.io/config.mirror';
export const HASH_ANNOTATION = 'kubernetes.io/config.hash';
const SOURCE_ANNOTATION = 'kubernetes.io/config.source';
const SEEN_ANNOTATION = 'kubernetes.io/config.seen';
/** fileCheckFrequency's default. */
const RESCAN_MS = 20_000;
const MIRROR_RETRY_MS = 1_000;

/** Whether a pod object is a mirror pod. */
export function isMirrorPod(pod: Pod): boolean {
  return pod.metadata.annotations?.[MIRROR_ANNOTATION] !== undefined;
}

/** One static pod the kubelet runs. */
interface Running {
  key: string;
  node: string;
  file: string;
  hash: string;
  pod: BoundPod;
  worker: PodWorker;
  /** Set once its file is gone or changed: the worker is stopping for good. */
  stopping?: Promise<void>;
  /** Set once its worker runs (after an older pod of the same name has stopped). */
  started?: boolean;
  mirrorUid?: string;
  mirrorTimer?: NodeJS.Timeout;
}

/** What the static pods need from the kubelet. */
export interface StaticPodHost {
  dir: string;
  nodes: string[];
  api: ApiClient;
  log(msg: string): void;
  /** A worker for the pod (not started). */
  worker(pod: BoundPod): PodWorker;
  grace(pod: Pod): number;
  /** false while the node is forced NotReady: its kubelet is unreachable and writes nothing to the API. */
  reachable(node: string): boolean;
  /** true while the node's kubelet is stopped: its folder is not read and its static pods are left as they are. */
  stopped(node: string): boolean;
}

/** The static pod a manifest file defines on a node, defaulted as the kubelet does; a string says why it is skipped. */
export function staticPodFromFile(node: string, file: string, text: string, seen: string): BoundPod | string {
  let obj: unknown;
  try {
    obj = parse(text);
  } catch (err) {
    return `cannot parse: ${(err as Error).message.split('\n')[0]}`;
  }
  const pod = obj as Pod | null;
  if (!pod || typeof pod !== 'object' || pod.kind !== 'Pod' || !pod.metadata?.name || !pod.spec) return 'not a Pod with a name and a spec';
  const refused = apiReference(pod);
  if (refused) return `a static pod may not refer to API objects: ${refused}`;
  const namespace = pod.metadata.namespace || 'default';
  const name = `${pod.metadata.name}-${node.toLowerCase()}`;
  // Over the decoded pod (keys in order), as the kubelet hashes the decoded object: reordering a file's keys restarts nothing.
  const hash = createHash('md5').update(node).update(file).update(canonical(pod)).digest('hex');
  const tolerations = [...(pod.spec.tolerations ?? [])];
  if (!tolerations.some((t) => t.operator === 'Exists' && !t.key && t.effect === 'NoExecute')) tolerations.push({ operator: 'Exists', effect: 'NoExecute' });
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: {
      ...pod.metadata, name, namespace, uid: hash,
      annotations: { ...(pod.metadata.annotations ?? {}), [HASH_ANNOTATION]: hash, [SOURCE_ANNOTATION]: 'file', [SEEN_ANNOTATION]: seen },
    },
    spec: { ...pod.spec, nodeName: node, tolerations },
    status: { phase: 'Pending' },
  } as BoundPod;
}

/** JSON with every object's keys sorted. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
  return JSON.stringify(v) ?? 'null';
}

/** What in the spec refers to another API object (Secret, ConfigMap, claim, ServiceAccount, pull secret), if anything. */
function apiReference(pod: Pod): string | undefined {
  const spec = pod.spec;
  if (spec.serviceAccountName || spec.serviceAccount) return 'serviceAccountName';
  if (spec.imagePullSecrets?.length) return 'imagePullSecrets';
  for (const v of spec.volumes ?? []) {
    if (v.secret || v.configMap || v.persistentVolumeClaim || v.projected?.sources?.some((s) => s.secret || s.configMap || s.serviceAccountToken)) return `volume "${v.name}"`;
  }
  for (const c of [...(spec.initContainers ?? []), ...(spec.containers ?? [])]) {
    if (c.envFrom?.length) return `envFrom of container "${c.name}"`;
    if (c.env?.some((e) => e.valueFrom?.secretKeyRef || e.valueFrom?.configMapKeyRef)) return `env of container "${c.name}"`;
  }
  return undefined;
}

/** The static pods of every node, and their mirror pods. */
export class StaticPods {
  private readonly running = new Map<string, Running>();
  /** Per pod key: the change being made, so a key's stop and next start never overlap. */
  private readonly chains = new Map<string, Promise<void>>();
  /** Per pod key: the mirror pod's API calls, apart, so a slow or absent API server never holds up a static pod. */
  private readonly mirrorChains = new Map<string, Promise<void>>();
  /** Every worker not yet stopped (one being replaced included). */
  private readonly alive = new Set<PodWorker>();
  private readonly watchers: FSWatcher[] = [];
  private timer?: NodeJS.Timeout;
  private scan: Promise<void> = Promise.resolve();
  private scanned = false;
  private stopped = false;
  private readonly skipped = new Map<string, string>();

  constructor(private readonly host: StaticPodHost) {}

  /** The folder of a node's manifests. */
  dirOf(node: string): string {
    return join(this.host.dir, 'nodes', node, 'hostpath', STATIC_POD_PATH);
  }

  /** Watches every node's folder and runs what is in it. */
  start(): void {
    for (const node of this.host.nodes) {
      const dir = this.dirOf(node);
      mkdirSync(dir, { recursive: true });
      try {
        this.watchers.push(watch(dir, () => this.rescan(true)));
      } catch (err) {
        this.host.log(`static pods of ${node}: cannot watch ${dir}: ${(err as Error).message}; re-listed every ${RESCAN_MS / 1000}s`);
      }
    }
    this.timer = setInterval(() => this.rescan(), RESCAN_MS);
    this.rescan();
  }

  /** The workers of the static pods (for /etc/hosts and node readiness). */
  workers(): PodWorker[] {
    return [...this.alive];
  }

  private rescan(fromWatch = false): void {
    if (this.stopped) return;
    this.scan = this.scan.then(() => this.sync(fromWatch)).catch((err) => this.host.log(`static pods: ${(err as Error).message}`));
  }

  /**
   * One pass: start what a file defines and does not run; stop what runs and no file defines as it
   * is. On a watch event a file that does not parse (half written) leaves its running pod alone, as
   * the kubelet's watch does; the periodic re-list drops it.
   */
  private async sync(fromWatch: boolean): Promise<void> {
    if (this.stopped) return;
    const desired = new Map<string, { node: string; file: string; pod: BoundPod }>();
    for (const node of this.host.nodes) {
      if (this.host.stopped(node)) {
        // A stopped kubelet reads nothing: what runs there runs on as it is.
        for (const r of this.running.values()) if (r.node === node && !r.stopping) desired.set(r.key, { node, file: r.file, pod: r.pod });
        continue;
      }
      const dir = this.dirOf(node);
      let names: string[] = [];
      try {
        names = readdirSync(dir);
      } catch {
        continue; // the folder itself moved away: nothing runs from it
      }
      for (const f of names.sort()) {
        if (f.startsWith('.')) continue;
        const file = join(dir, f);
        let text: string;
        try {
          if (!statSync(file).isFile()) continue;
          text = readFileSync(file, 'utf8');
        } catch {
          continue;
        }
        const known = [...this.running.values()].find((r) => r.file === file && !r.stopping);
        const pod = staticPodFromFile(node, file, text, known?.pod.metadata.annotations?.[SEEN_ANNOTATION] ?? now());
        if (typeof pod === 'string') {
          if (this.skipped.get(file) !== pod) this.host.log(`static pod file ${file} skipped: ${pod}`);
          this.skipped.set(file, pod);
          if (fromWatch && known) desired.set(known.key, { node, file, pod: known.pod });
          continue;
        }
        this.skipped.delete(file);
        const key = `${pod.metadata.namespace}/${pod.metadata.name}`;
        if (!desired.has(key)) desired.set(key, { node, file, pod });
      }
    }
    for (const [key, r] of this.running) {
      const want = desired.get(key);
      if (!r.stopping && (!want || want.pod.metadata.uid !== r.hash)) this.stop(r);
    }
    for (const [key, want] of desired) {
      const r = this.running.get(key);
      if (r && !r.stopping) continue; // runs as the file says (any other was stopped just above)
      this.begin(key, want.node, want.file, want.pod);
    }
    this.scanned = true;
  }

  private chain(key: string, step: () => Promise<void>, chains = this.chains): Promise<void> {
    const next = (chains.get(key) ?? Promise.resolve()).then(step).catch((err) => this.host.log(`static pod ${key}: ${(err as Error).message}`));
    chains.set(key, next);
    return next;
  }

  private mirrorWork(key: string, step: () => Promise<void>): Promise<void> {
    return this.chain(key, step, this.mirrorChains);
  }

  private begin(key: string, node: string, file: string, pod: BoundPod): void {
    const hash = pod.metadata.uid;
    // Marked at once, so the next pass does not start it twice while the old one stops.
    const r: Running = { key, node, file, hash, pod, worker: this.host.worker(pod) };
    const previous = this.running.get(key);
    void this.chain(key, async () => {
      if (previous?.stopping) await previous.stopping;
      if (this.stopped || r.stopping || this.running.get(key) !== r) return;
      this.host.log(`static pod ${key}: starting on ${node} from ${file}`);
      r.started = true;
      this.alive.add(r.worker);
      r.worker.start();
      void this.mirrorWork(key, () => this.ensureMirror(r));
    });
    this.running.set(key, r);
  }

  private stop(r: Running): void {
    this.host.log(`static pod ${r.key}: its file ${r.file} is gone or changed; stopping it`);
    if (r.mirrorTimer) clearTimeout(r.mirrorTimer);
    r.stopping = this.chain(r.key, async () => {
      if (r.started) await r.worker.terminate(this.host.grace(r.pod), false);
      this.alive.delete(r.worker);
      if (this.running.get(r.key) === r) this.running.delete(r.key);
      // The orphaned mirror goes once its pod has stopped (a newer static pod of the same name replaces it itself).
      if (!this.running.has(r.key)) void this.mirrorWork(r.key, () => this.deleteMirror(r.pod.metadata.namespace, r.pod.metadata.name, r.mirrorUid, r.node));
    });
  }

  /** Creates the mirror pod of r, retrying while the API cannot be reached. */
  private async ensureMirror(r: Running): Promise<void> {
    if (this.stopped || r.stopping || this.running.get(r.key) !== r) return;
    if (!this.host.reachable(r.node)) return; // made when the node is Ready again (nodeReady)
    const { namespace, name } = r.pod.metadata;
    try {
      const node = await this.host.api.request<{ metadata?: { uid?: string } }>('GET', `/api/v1/nodes/${r.node}`);
      const meta = r.pod.metadata;
      const body = {
        apiVersion: 'v1', kind: 'Pod',
        metadata: {
          name, namespace, ...(meta.labels ? { labels: meta.labels } : {}),
          annotations: { ...(meta.annotations ?? {}), [MIRROR_ANNOTATION]: r.hash },
          ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: r.node, uid: node.metadata?.uid, controller: true }],
        },
        spec: r.pod.spec,
      };
      try {
        const made = await this.host.api.request<Pod>('POST', `/api/v1/namespaces/${namespace}/pods`, body);
        r.mirrorUid = made.metadata.uid;
      } catch (err) {
        if (!(err instanceof ApiError && err.code === 409)) throw err;
        const there = await this.host.api.request<Pod>('GET', `/api/v1/namespaces/${namespace}/pods/${name}`);
        // A pod of the same name that is no mirror is never ours to delete (mirror_client.go returns the error).
        if (!isMirrorPod(there)) throw new ApiError(`pods "${name}" already exists and is not a mirror pod`, 409);
        if (there.metadata.annotations?.[MIRROR_ANNOTATION] !== r.hash || there.metadata.deletionTimestamp) {
          await this.deleteMirror(namespace, name, there.metadata.uid, r.node);
          throw new Error('an outdated mirror pod was in the way; deleted');
        }
        r.mirrorUid = there.metadata.uid;
      }
      r.worker.resendStatus();
    } catch (err) {
      // A refusal (4xx) is retried slowly; an unreachable or failing API server every second.
      const refused = err instanceof ApiError && err.code >= 400 && err.code < 500;
      this.host.log(`static pod ${r.key}: mirror pod${refused ? ' refused' : ''}: ${(err as Error).message}; retrying`);
      this.retryMirror(r, refused ? 10 * MIRROR_RETRY_MS : MIRROR_RETRY_MS);
    }
  }

  private retryMirror(r: Running, ms = MIRROR_RETRY_MS): void {
    if (this.stopped || r.stopping || r.mirrorTimer) return;
    r.mirrorTimer = setTimeout(() => {
      r.mirrorTimer = undefined;
      void this.mirrorWork(r.key, () => this.ensureMirror(r));
    }, ms);
  }

  /** Deletes the mirror pod (uid: that one; none: whichever mirror pod has the name, never a pod that is not one). */
  private async deleteMirror(namespace: string, name: string, uid: string | undefined, node: string): Promise<void> {
    if (!this.host.reachable(node)) return;
    try {
      if (!uid) {
        const there = await this.host.api.request<Pod>('GET', `/api/v1/namespaces/${namespace}/pods/${name}`);
        if (!isMirrorPod(there)) return;
        uid = there.metadata.uid;
      }
      await this.host.api.request('DELETE', `/api/v1/namespaces/${namespace}/pods/${name}`, { kind: 'DeleteOptions', apiVersion: 'v1', gracePeriodSeconds: 0, preconditions: { uid } });
    } catch (err) {
      if (!(err instanceof ApiError && (err.code === 404 || err.code === 409))) this.host.log(`mirror pod ${namespace}/${name}: delete: ${(err as Error).message}`);
    }
  }

  /**
   * A mirror pod of one of our nodes as the API shows it: its status goes back to the worker
   * (conditions as the API has them: a NotReady mark, transition times); one being deleted, of
   * another hash or orphaned is deleted (and made again while its file is there) — but not while
   * a pod of that name is still stopping or not yet started (the kubelet waits for it).
   */
  mirrorSeen(pod: Pod): void {
    if (!this.scanned || this.stopped) return;
    const key = `${pod.metadata.namespace}/${pod.metadata.name}`;
    const r = this.running.get(key);
    if (r && (r.stopping || !r.started)) return;
    const current = r && pod.metadata.annotations?.[MIRROR_ANNOTATION] === r.hash;
    if (current && !pod.metadata.deletionTimestamp) {
      r.mirrorUid = pod.metadata.uid;
      r.worker.observeStatus(pod.status);
      return;
    }
    const node = pod.spec?.nodeName ?? r?.node ?? '';
    void this.mirrorWork(key, () => this.deleteMirror(pod.metadata.namespace, pod.metadata.name, pod.metadata.uid, node));
  }

  /** A mirror pod was removed from the API: made again while its static pod runs. */
  mirrorGone(pod: Pod): void {
    const r = this.running.get(`${pod.metadata.namespace}/${pod.metadata.name}`);
    if (!r || r.stopping || !r.started || (r.mirrorUid && r.mirrorUid !== pod.metadata.uid)) return;
    r.mirrorUid = undefined;
    this.retryMirror(r);
  }

  /** The node's kubelet started again: its folder is read now, and its mirrors made or checked. */
  kubeletStarted(node: string): void {
    this.rescan();
    this.nodeReady(node);
  }

  /** The node is reachable again: its static pods' mirrors are made (or checked). */
  nodeReady(node: string): void {
    for (const r of this.running.values()) if (r.node === node && r.started && !r.stopping) this.retryMirror(r, 0);
  }

  /** Stops watching and stops every static pod (the cluster is going away), grace capped by `grace`. */
  async shutdown(grace: (pod: Pod) => number): Promise<void> {
    this.stopped = true;
    for (const w of this.watchers) w.close();
    if (this.timer) clearInterval(this.timer);
    for (const r of this.running.values()) if (r.mirrorTimer) clearTimeout(r.mirrorTimer);
    await this.scan.catch(() => undefined);
    await Promise.all([...this.alive].map((w) => w.terminate(grace(w.pod), false, true)));
    await Promise.all([...this.chains.values()]);
  }
}
