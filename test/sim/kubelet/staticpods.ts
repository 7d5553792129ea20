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
  const hash = createHash('md5').update(node).update(file).update(JSON.stringify(pod)).digest('hex');
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
        this.watchers.push(watch(dir, () => this.rescan()));
      } catch (err) {
        this.host.log(`static pods of ${node}: cannot watch ${dir}: ${(err as Error).message}; re-listed every ${RESCAN_MS / 1000}s`);
      }
    }
    this.timer = setInterval(() => this.rescan(), RESCAN_MS);
    this.rescan();
  }

  /** The workers of the static pods (for /etc/hosts and node readiness). */
  workers(): PodWorker[] {
    return [...this.running.values()].map((r) => r.worker);
  }

  private rescan(): void {
    if (this.stopped) return;
    this.scan = this.scan.then(() => this.sync()).catch((err) => this.host.log(`static pods: ${(err as Error).message}`));
  }

  /** One pass: start what a file defines and does not run; stop what runs and no file defines as it is. */
  private async sync(): Promise<void> {
    if (this.stopped) return;
    const desired = new Map<string, { node: string; file: string; pod: BoundPod }>();
    for (const node of this.host.nodes) {
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

  private chain(key: string, step: () => Promise<void>): Promise<void> {
    const next = (this.chains.get(key) ?? Promise.resolve()).then(step).catch((err) => this.host.log(`static pod ${key}: ${(err as Error).message}`));
    this.chains.set(key, next);
    return next;
  }

  private begin(key: string, node: string, file: string, pod: BoundPod): void {
    const hash = pod.metadata.uid;
    // Marked at once, so the next pass does not start it twice while the old one stops.
    const r: Running = { key, node, file, hash, pod, worker: this.host.worker(pod) };
    const previous = this.running.get(key);
    void this.chain(key, async () => {
      if (previous?.stopping) await previous.stopping;
      if (this.stopped || this.running.get(key) !== r) return;
      this.host.log(`static pod ${key}: starting on ${node} from ${file}`);
      r.worker.start();
      await this.ensureMirror(r);
    });
    this.running.set(key, r);
  }

  private stop(r: Running): void {
    this.host.log(`static pod ${r.key}: its file ${r.file} is gone or changed; stopping it`);
    if (r.mirrorTimer) clearTimeout(r.mirrorTimer);
    r.stopping = this.chain(r.key, async () => {
      await r.worker.terminate(this.host.grace(r.pod), false);
      if (this.running.get(r.key) === r) this.running.delete(r.key);
      // The orphaned mirror goes (a newer static pod of the same name makes its own).
      if (!this.running.has(r.key)) await this.deleteMirror(r.pod.metadata.namespace, r.pod.metadata.name, r.mirrorUid);
    });
  }

  /** Creates the mirror pod of r, retrying while the API cannot be reached. */
  private async ensureMirror(r: Running): Promise<void> {
    if (this.stopped || r.stopping || this.running.get(r.key) !== r) return;
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
        if (there.metadata.annotations?.[MIRROR_ANNOTATION] !== r.hash || there.metadata.deletionTimestamp) {
          await this.deleteMirror(namespace, name, there.metadata.uid);
          throw new Error('an outdated mirror pod was in the way; deleted');
        }
        r.mirrorUid = there.metadata.uid;
      }
      r.worker.resendStatus();
    } catch (err) {
      if (!(err instanceof ApiError && err.code === 403)) this.host.log(`static pod ${r.key}: mirror pod: ${(err as Error).message}; retrying`);
      else this.host.log(`static pod ${r.key}: mirror pod refused: ${err.message}`);
      this.retryMirror(r);
    }
  }

  private retryMirror(r: Running): void {
    if (this.stopped || r.stopping || r.mirrorTimer) return;
    r.mirrorTimer = setTimeout(() => {
      r.mirrorTimer = undefined;
      void this.chain(r.key, () => this.ensureMirror(r));
    }, MIRROR_RETRY_MS);
  }

  private async deleteMirror(namespace: string, name: string, uid: string | undefined): Promise<void> {
    try {
      await this.host.api.request('DELETE', `/api/v1/namespaces/${namespace}/pods/${name}`, { kind: 'DeleteOptions', apiVersion: 'v1', gracePeriodSeconds: 0, ...(uid ? { preconditions: { uid } } : {}) });
    } catch (err) {
      if (!(err instanceof ApiError && (err.code === 404 || err.code === 409))) this.host.log(`mirror pod ${namespace}/${name}: delete: ${(err as Error).message}`);
    }
  }

  /** A mirror pod of one of our nodes as the API shows it: one being deleted, outdated or orphaned goes (and comes back if its file is there). */
  mirrorSeen(pod: Pod): void {
    if (!this.scanned || this.stopped) return;
    const key = `${pod.metadata.namespace}/${pod.metadata.name}`;
    const r = this.running.get(key);
    const current = r && !r.stopping && pod.metadata.annotations?.[MIRROR_ANNOTATION] === r.hash;
    if (current && !pod.metadata.deletionTimestamp) {
      r.mirrorUid = pod.metadata.uid;
      return;
    }
    void this.chain(key, () => this.deleteMirror(pod.metadata.namespace, pod.metadata.name, pod.metadata.uid));
  }

  /** A mirror pod was removed from the API: made again while its static pod runs. */
  mirrorGone(pod: Pod): void {
    const r = this.running.get(`${pod.metadata.namespace}/${pod.metadata.name}`);
    if (!r || r.stopping || (r.mirrorUid && r.mirrorUid !== pod.metadata.uid)) return;
    r.mirrorUid = undefined;
    this.retryMirror(r);
  }

  /** Stops watching and stops every static pod (the cluster is going away). */
  async shutdown(grace: (pod: Pod) => number): Promise<void> {
    this.stopped = true;
    for (const w of this.watchers) w.close();
    if (this.timer) clearInterval(this.timer);
    await this.scan.catch(() => undefined);
    await Promise.all([...this.running.values()].map((r) => {
      if (r.mirrorTimer) clearTimeout(r.mirrorTimer);
      return r.worker.terminate(grace(r.pod), false);
    }));
  }
}
