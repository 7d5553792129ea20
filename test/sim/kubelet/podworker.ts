// One pod's life on its node: image check, sandbox, volumes, init containers in order, then the
// containers with restarts (restartPolicy, CrashLoopBackOff), probes, status reports, runtime
// files in DIR/runtime/pods/NS/POD, and graceful termination.
// Differs from a real kubelet: CrashLoopBackOff delay is 1 s doubling to a 10 s cap (reset after
// 30 s of running) instead of 10 s to 5 min; a restarted container gets a fresh empty root; an
// unknown image is reported as ErrImagePull then ImagePullBackOff but never retried (the image
// table is fixed), a private one refused for want of pull credentials is retried (2 s to 10 s); terminal pods keep their sandbox until deleted; sidecar init containers
// (restartPolicy Always on an init container) run like ordinary init containers.
// Ephemeral containers (docs: concepts/workloads/pods/ephemeral-containers; kubelet
// kuberuntime_manager.go computePodActions/SyncPod, which start each new one once and never
// restart it; kuberuntime_container.go, whose getTargetID puts one with targetContainerName in
// its target's PID namespace): each one the pod gains is pulled and started once, with the same
// env, command/args expansion, securityContext checks and volume mounts as any container, in the
// pod's network and UTS namespaces, and in a PID namespace of its own (the pod's with
// shareProcessNamespace; its target's with targetContainerName); never restarted, whatever the
// pod's restartPolicy; never ready; outside the pod's phase and readiness; stopped with the pod.
// A pod that has ended (Succeeded/Failed) or is being deleted never starts one. They are started
// once the pod's volumes are ready (a real kubelet: once the sandbox is, even while an init
// container or an image pull of a regular container fails); a target container that is not
// running keeps it waiting (CreateContainerConfigError) until it is. One still running when the
// pod's regular containers end (Succeeded/Failed) runs on until the pod is deleted (a real kubelet
// stops every container of a pod that has ended).
// While its node's kubelet is stopped (fault kubelet-stop, setFrozen) the pod's processes run on,
// but nothing of the kubelet's own happens: no container is started or restarted, no probe runs,
// no status is sent; all of it resumes when the kubelet starts again.
import { constants } from 'node:os';
import { chmodSync, closeSync, existsSync, fstatSync, mkdirSync, openSync, readSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { V1ConfigMap, V1Container, V1Probe, V1Secret } from '@kubernetes/client-node';
import { pullImage, type ImageSpec } from '../images.js';
import type { Json } from '../json.js';
import { ApiError, sleep, type ApiClient } from './api.js';
import { holdMountNamespace, signalContainer, startContainer, waitInRoot, type ContainerMount, type StartedContainer } from './container.js';
import { containerArgv, containerEnv, expandVars, processEnv, type KeySource } from './env.js';
import type { LocalVolumes } from './localpv.js';
import type { PodNet, PodNetwork } from './network.js';
import type { BoundPod, Pod } from './objects.js';
import { runHook } from './hooks.js';
import { runProbe, type ProbeTarget } from './probes.js';
import { readIfExists, rewriteInPlace, startSandbox, stopSandbox, writeJsonAtomic, type Sandbox } from './sandbox.js';
import { pullCredentials } from './pullsecrets.js';
import { buildPodStatus, now, type ContainerState } from './status.js';
import { prepareVolume, type PreparedVolume } from './volumes.js';

/** What a pod worker needs from the kubelet. */
export interface PodWorkerContext {
  dir: string;
  api: ApiClient;
  network: PodNetwork;
  localVolumes: LocalVolumes;
  log(msg: string): void;
  hostIP(node: string): string;
  /** The node's own network namespace, for a hostNetwork pod (network.ts). */
  nodeNet(node: string): Promise<PodNet>;
  /** The current /etc/hosts content for this pod. */
  hosts(pod: Pod, podIP: string): string;
  /** Posts an event about the pod (best effort). */
  event(pod: Pod, type: 'Normal' | 'Warning', reason: string, message: string): void;
}

interface Container extends ContainerState {
  spec: Json<V1Container> & { targetContainerName?: string };
  kind: 'init' | 'regular' | 'ephemeral';
  imageSpec?: ImageSpec;
  proc?: StartedContainer;
  uid: number;
  gid: number;
  env: string[];
  exit?: Promise<number>;
  /** A sidecar being stopped for good (not to be restarted). */
  stopping?: boolean;
  /** Whether it has started at least once (a sidecar that exits at once still let the next one start). */
  everStarted?: boolean;
}

const MAX_BACKOFF_MS = 10_000;
/** A container gets at least 2 s after SIGTERM, as the kubelet's minimumGracePeriodInSeconds (pkg/kubelet/kuberuntime/kuberuntime_container.go). */
const MIN_GRACE_MS = 2000;

function newContainer(spec: Json<V1Container>, kind: Container['kind']): Container {
  return {
    name: spec.name, image: spec.image, spec, kind, state: { waiting: { reason: 'ContainerCreating' } }, lastState: {},
    ready: false, restartCount: 0, done: false, started: false, uid: 0, gid: 0, env: [],
    sidecar: kind === 'init' && spec.restartPolicy === 'Always',
  };
}

/** Runs and tears down one pod; created per pod UID. */
export class PodWorker {
  pod: BoundPod;
  private readonly abort = new AbortController();
  /** The run loops of the native sidecars, which end once they are stopped. */
  private readonly sidecars: Promise<void>[] = [];
  private terminating?: Promise<void>;
  private sandbox?: Sandbox;
  private sandboxReady: Promise<void> = Promise.resolve();
  private net?: PodNet;
  private readonly init: Container[];
  private readonly regular: Container[];
  /** Ephemeral containers by name, as the pod gained them. */
  private readonly ephemeral = new Map<string, Container>();
  /** Ephemeral containers the pod gained after it had ended (never started, never reported). */
  private readonly notStarted = new Set<string>();
  private volumesReady!: (v: Map<string, PreparedVolume> | undefined) => void;
  private readonly volumes = new Promise<Map<string, PreparedVolume> | undefined>((resolve) => { this.volumesReady = resolve; });
  private setupDone = false;
  private initDone = false;
  private failed?: { reason: string; message: string };
  private readonly startTime = now();
  private statusTimer?: NodeJS.Timeout;
  private statusChain: Promise<void> = Promise.resolve();
  private lastSent = '';
  private nodeNotReady = false;
  /** Set while the node's kubelet is stopped: resolved when it starts again. */
  private frozen?: { done: Promise<void>; release: () => void };
  private readonly podDir: string;
  private readonly runtimeDir: string;

  constructor(private readonly ctx: PodWorkerContext, pod: BoundPod) {
    this.pod = pod;
    this.init = (pod.spec.initContainers ?? []).map((c) => newContainer(c, 'init'));
    this.regular = (pod.spec.containers ?? []).map((c) => newContainer(c, 'regular'));
    this.podDir = join(ctx.dir, 'kubelet', 'pods', pod.metadata.uid);
    this.runtimeDir = join(ctx.dir, 'runtime', 'pods', pod.metadata.namespace, pod.metadata.name);
  }

  private get hostNetwork(): boolean {
    return this.pod.spec.hostNetwork === true;
  }

  private get key(): string {
    return `${this.pod.metadata.namespace}/${this.pod.metadata.name}`;
  }

  /** Starts the pod in the background. */
  start(): void {
    void this.run().catch((err) => this.ctx.log(`pod ${this.key}: ${(err as Error).stack ?? err}`));
  }

  /** Takes a newer version of the pod object (labels, annotations, deletion). */
  update(pod: BoundPod): void {
    this.pod = pod;
    this.syncEphemeral();
  }

  /** Starts (once) each ephemeral container of the pod this worker has not seen yet. */
  private syncEphemeral(): void {
    if (this.terminating || this.pod.metadata.deletionTimestamp) return;
    for (const spec of this.pod.spec.ephemeralContainers ?? []) {
      if (this.ephemeral.has(spec.name) || this.notStarted.has(spec.name)) continue;
      if (this.ended) {
        this.notStarted.add(spec.name);
        // a terminated pod is not synced any more: the container is neither started nor reported
        this.ctx.log(`pod ${this.key}: ephemeral container ${spec.name} not started: the pod has ended`);
        continue;
      }
      const c = newContainer(spec as Json<V1Container>, 'ephemeral');
      this.ephemeral.set(spec.name, c);
      this.ctx.log(`pod ${this.key}: ephemeral container ${spec.name} added`);
      void this.runEphemeral(c).catch((err) => this.ctx.log(`pod ${this.key}: ephemeral container ${spec.name}: ${(err as Error).stack ?? err}`));
    }
  }

  /** True once the pod has ended (its phase Succeeded or Failed). */
  private get ended(): boolean {
    return !!this.failed || (this.regular.length > 0 && this.regular.every((c) => c.done));
  }

  /** One ephemeral container's only run: pull, wait for the volumes, start; never restarted. */
  private async runEphemeral(c: Container): Promise<void> {
    this.reportStatus();
    if (!(await this.pullImages([c]))) return;
    const volumes = await this.volumes;
    while (volumes && !this.terminating && !this.ended) {
      const code = await this.startOnce(c, volumes);
      if (this.terminating) return;
      if (code === -1) continue; // never created (a config error): tried again, as the kubelet does
      c.done = true;
      this.reportStatus();
      return;
    }
  }

  /** The pod's IP once its sandbox exists. */
  get podIP(): string | undefined {
    return this.net?.ip;
  }

  /** Rewrites the pod's /etc/hosts in place if it changed. */
  refreshHosts(content: string): void {
    if (!this.sandbox || this.terminating) return;
    if (readIfExists(this.sandbox.hostsFile) === content) return;
    try { rewriteInPlace(this.sandbox.hostsFile, content); } catch { /* pod going away */ }
  }

  private async run(): Promise<void> {
    try {
      await this.runPod();
    } finally {
      this.volumesReady(undefined); // (no-op once the volumes were ready)
    }
  }

  private async runPod(): Promise<void> {
    this.syncEphemeral();
    if (!(await this.pullImages())) return;
    // Stopped while its images were pulled: no sandbox, no files (terminate has passed its wait for them).
    if (this.terminating) return;
    mkdirSync(this.runtimeDir, { recursive: true });
    mkdirSync(this.podDir, { recursive: true });
    this.sandboxReady = (async () => {
      // A hostNetwork pod shares its node's network (and has the node's name as hostname).
      this.net = this.hostNetwork ? await this.ctx.nodeNet(this.pod.spec.nodeName) : await this.ctx.network.create(this.pod.metadata.uid);
      this.sandbox = await startSandbox(this.podDir, this.hostNetwork ? this.pod.spec.nodeName : this.pod.spec.hostname ?? this.pod.metadata.name, this.pod.metadata.namespace, this.net);
    })();
    await this.sandboxReady;
    const net = this.net!;
    const sandbox = this.sandbox!;
    if (this.terminating) return;
    this.refreshHosts(this.ctx.hosts(this.pod, net.ip));
    writeJsonAtomic(join(this.runtimeDir, 'pod.json'), {
      uid: this.pod.metadata.uid, node: this.pod.spec.nodeName, ip: net.ip, sandboxPid: sandbox.pid, netns: net.netnsPath,
    });
    this.reportStatus();
    const volumes = await this.prepareVolumes();
    if (!volumes) return;
    this.setupDone = true;
    this.volumesReady(volumes);
    for (const c of this.init) {
      if (c.sidecar) {
        // A native sidecar (restartPolicy Always): the next container starts once it has started; it
        // keeps running, restarted whatever the pod's restartPolicy.
        this.sidecars.push(this.runSidecar(c, volumes));
        while (!c.everStarted && !this.terminating) await sleep(20, this.abort.signal);
        if (this.terminating) return;
        continue;
      }
      const ok = await this.runInit(c, volumes);
      if (!ok) return;
    }
    this.initDone = true;
    this.reportStatus();
    await Promise.all(this.regular.map((c) => this.runContainerLoop(c, volumes)));
    // Every regular container has ended for good: the sidecars are stopped, the last started first,
    // and their exit codes do not count toward the pod's phase.
    if (!this.terminating) await this.stopSidecars(this.graceSeconds());
  }

  /** Runs a native sidecar until it is stopped or the pod ends, restarting it whenever it exits. */
  private async runSidecar(c: Container, volumes: Map<string, PreparedVolume>): Promise<void> {
    let failures = 0;
    while (!this.terminating && !c.stopping) {
      const started = Date.now();
      const code = await this.startOnce(c, volumes);
      if (this.terminating || c.stopping) break;
      if (code === -1) continue;
      failures = Date.now() - started > 30_000 ? 1 : failures + 1;
      await this.backoff(c, failures);
    }
    c.done = true;
    this.reportStatus();
  }

  /** Stops the sidecars in the reverse of their start order, within one grace period (each at least 2 s). */
  private async stopSidecars(graceSeconds: number, minGraceMs = MIN_GRACE_MS): Promise<void> {
    const deadline = Date.now() + graceSeconds * 1000;
    for (const c of this.init.filter((x) => x.sidecar).reverse()) {
      c.stopping = true;
      await this.killContainer(c, Math.max(minGraceMs / 1000, (deadline - Date.now()) / 1000), minGraceMs);
    }
    await Promise.all(this.sidecars);
  }

  /**
   * "Pulls" every container's image with the pod's pull Secrets; a failure is ErrImagePull (and a
   * `Failed` event), then ImagePullBackOff. A refused private image is tried again (2 s doubling
   * to 10 s; a real kubelet: 10 s to 5 min), as its credentials may appear; an image the table
   * lacks never will. Resolves true once every image is at hand.
   */
  private async pullImages(all: Container[] = [...this.init, ...this.regular]): Promise<boolean> {
    let warned = false;
    for (let attempt = 0; !this.terminating; attempt++) {
      const creds = await pullCredentials(this.ctx.api, this.pod, (m) => {
        if (!warned) this.ctx.event(this.pod, 'Warning', 'FailedToRetrieveImagePullSecret', m);
        warned = true;
      }).catch((err: Error) => { this.ctx.log(`pod ${this.key}: pull secrets: ${err.message}`); return () => false; });
      let retry = false;
      for (const c of all.filter((x) => !x.imageSpec)) {
        const pulled = pullImage(c.spec.image!, creds); // the API requires an image (client-node types it optional)
        if ('spec' in pulled) { c.imageSpec = pulled.spec; continue; }
        retry ||= !!pulled.retry;
        c.state = { waiting: { reason: 'ErrImagePull', message: pulled.why } };
        this.ctx.event(this.pod, 'Warning', 'Failed', `Failed to pull image "${c.spec.image}": ${pulled.why}`);
        this.ctx.event(this.pod, 'Warning', 'Failed', 'Error: ErrImagePull');
      }
      if (all.every((c) => c.imageSpec)) return true;
      this.reportStatus();
      await sleep(2000, this.abort.signal);
      for (const c of all) if (!c.imageSpec) c.state = { waiting: { reason: 'ImagePullBackOff', message: `Back-off pulling image "${c.spec.image}"` } };
      this.reportStatus();
      if (!retry) return false;
      await sleep(Math.min(10_000, 2000 * 2 ** attempt), this.abort.signal);
    }
    return false;
  }

  private async prepareVolumes(): Promise<Map<string, PreparedVolume> | undefined> {
    const ctx = {
      api: this.ctx.api, localVolumes: this.ctx.localVolumes, podDir: this.podDir,
      nodeDir: join(this.ctx.dir, 'nodes', this.pod.spec.nodeName),
    };
    let warned = '';
    while (!this.terminating) {
      try {
        const out = new Map<string, PreparedVolume>();
        for (const v of this.pod.spec.volumes ?? []) out.set(v.name, await prepareVolume(ctx, this.pod, v));
        return out;
      } catch (err) {
        const msg = (err as Error).message;
        if (msg !== warned) {
          this.ctx.event(this.pod, 'Warning', 'FailedMount', msg);
          this.ctx.log(`pod ${this.key}: volumes: ${msg}`);
          warned = msg;
        }
        await sleep(2000, this.abort.signal);
      }
    }
    return undefined;
  }

  /**
   * The container's mounts. `subPath` mounts a sub-folder of the volume instead of its root, made
   * when missing; `subPathExpr` is the same with `$(VAR)` expanded from the container's env, as
   * https://kubernetes.io/docs/concepts/storage/volumes/#using-subpath describes. Both must stay
   * relative and inside the volume (the API server refuses `..` and absolute paths).
   */
  private mountsFor(c: Container, volumes: Map<string, PreparedVolume>, env: Map<string, string>): ContainerMount[] {
    return (c.spec.volumeMounts ?? []).map((m) => {
      const v = volumes.get(m.name);
      if (!v) throw new Error(`volumeMount "${m.name}" of container "${c.name}" names no volume of the pod; add it to spec.volumes`);
      if (m.subPath && m.subPathExpr) throw new Error(`volumeMount "${m.name}" of container "${c.name}" sets both subPath and subPathExpr; use one`);
      const sub = m.subPathExpr ? expandVars(m.subPathExpr, (n) => env.get(n)) : m.subPath;
      let source = v.source;
      if (sub) {
        if (isAbsolute(sub) || sub.split('/').includes('..')) throw new Error(`subPath "${sub}" of volumeMount "${m.name}" must be a relative path without ".."`);
        source = join(v.source, sub);
        if (!source.startsWith(`${v.source.replace(/\/+$/, '')}/`)) throw new Error(`subPath "${sub}" escapes volume "${m.name}"`);
        if (!existsSync(source)) mkdirSync(source, { recursive: true });
      }
      return { source, target: m.mountPath, readOnly: v.alwaysReadOnly || !!m.readOnly };
    });
  }

  private keySource(): KeySource {
    const get = async <T>(kind: string, ns: string, name: string) => {
      try {
        return await this.ctx.api.request<T>('GET', `/api/v1/namespaces/${ns}/${kind}/${name}`);
      } catch (err) {
        if (err instanceof ApiError && err.code === 404) return undefined;
        throw err;
      }
    };
    return {
      secret: async (ns, name) => {
        const o = await get<Json<V1Secret>>('secrets', ns, name);
        return o && Object.fromEntries(Object.entries(o.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
      },
      configMap: async (ns, name) => (await get<Json<V1ConfigMap>>('configmaps', ns, name))?.data ?? undefined,
    };
  }

  /**
   * Follows the node's kubelet (fault kubelet-stop): frozen, nothing is started, probed or reported;
   * thawed, the whole status is reported again.
   */
  setFrozen(frozen: boolean): void {
    if (frozen === !!this.frozen) return;
    if (frozen) {
      let release!: () => void;
      const done = new Promise<void>((r) => { release = r; });
      this.frozen = { done, release };
      return;
    }
    const f = this.frozen!;
    this.frozen = undefined;
    f.release();
    this.lastSent = '';
    this.reportStatus();
  }

  /** Waits while the node's kubelet is stopped. */
  private async whileFrozen(): Promise<void> {
    while (this.frozen && !this.terminating) await this.frozen.done;
  }

  /** Starts one run of a container; resolves with its exit code (128 for a start error). */
  private async startOnce(c: Container, volumes: Map<string, PreparedVolume>): Promise<number> {
    // A stopped kubelet starts nothing: an exited container stays exited until it is back.
    await this.whileFrozen();
    if (this.terminating) return -1;
    const pod = { ...this.pod, status: { ...(this.pod.status ?? {}), podIP: this.net!.ip, hostIP: this.ctx.hostIP(this.pod.spec.nodeName) } };
    const image = c.imageSpec!;
    let kubeEnv: Map<string, string>;
    let mounts: ContainerMount[];
    try {
      kubeEnv = await containerEnv(pod, c.spec, this.keySource());
      mounts = this.mountsFor(c, volumes, kubeEnv);
    } catch (err) {
      const message = (err as Error).message;
      c.state = { waiting: { reason: 'CreateContainerConfigError', message } };
      this.ctx.event(this.pod, 'Warning', 'Failed', `Error: ${message}`);
      this.reportStatus();
      await sleep(2000, this.abort.signal);
      return -1;
    }
    let pidNamespace: string | undefined;
    const target = c.kind === 'ephemeral' && this.pod.spec.shareProcessNamespace !== true ? c.spec.targetContainerName : undefined;
    if (target) {
      // the target's PID namespace is its process's (getTargetID in the kubelet; the runtime joins it)
      const main = [...this.regular, ...this.init].find((x) => x.name === target)?.proc?.main;
      if (main === undefined) {
        const message = `unable to find target container ${target}`;
        c.state = { waiting: { reason: 'CreateContainerConfigError', message } };
        this.ctx.event(this.pod, 'Warning', 'Failed', `Error: ${message}`);
        this.reportStatus();
        await sleep(2000, this.abort.signal);
        return -1;
      }
      pidNamespace = `/proc/${main}/ns/pid`;
    }
    // The termination message file: a new host file for each run, writable by any user (the
    // kubelet creates it 0666 whatever the umask: kuberuntime_container.go, makeMounts), mounted at
    // terminationMessagePath (here not when a volume is mounted at that very path).
    const tmPath = c.spec.terminationMessagePath;
    let tmFile: string | undefined;
    if (tmPath && !mounts.some((m) => m.target === tmPath)) {
      tmFile = join(this.podDir, 'termination', `${c.name}-${c.restartCount}`);
      mkdirSync(join(this.podDir, 'termination'), { recursive: true });
      writeFileSync(tmFile, '');
      chmodSync(tmFile, 0o666);
      mounts = [...mounts, { source: tmFile, target: tmPath, readOnly: false }];
    }
    const podSc = this.pod.spec.securityContext ?? {};
    const sc = c.spec.securityContext ?? {};
    c.uid = sc.runAsUser ?? podSc.runAsUser ?? image.uid;
    const runAsUser = sc.runAsUser ?? podSc.runAsUser;
    // runAsNonRoot is the kubelet's to verify, against the image's user when no runAsUser is set
    // (pkg/kubelet/kuberuntime/security_context_others.go, verifyRunAsNonRoot; the pod as format.Pod writes it).
    if (sc.runAsNonRoot ?? podSc.runAsNonRoot) {
      const who = `(pod: "${this.pod.metadata.name}_${this.pod.metadata.namespace}(${this.pod.metadata.uid})", container: ${c.name})`;
      const message = runAsUser === 0 ? `container's runAsUser breaks non-root policy ${who}`
        : runAsUser === undefined && image.uid === 0 ? `container has runAsNonRoot and image will run as root ${who}` : undefined;
      if (message) {
        c.state = { waiting: { reason: 'CreateContainerConfigError', message } };
        this.ctx.event(this.pod, 'Warning', 'Failed', `Error: ${message}`);
        this.reportStatus();
        await sleep(2000, this.abort.signal);
        return -1;
      }
    }
    c.gid = sc.runAsGroup ?? podSc.runAsGroup ?? (runAsUser !== undefined && runAsUser !== image.uid ? 0 : image.gid);
    const groups = [...(podSc.fsGroup !== undefined ? [podSc.fsGroup] : []), ...(podSc.supplementalGroups ?? [])];
    c.env = processEnv(image, kubeEnv, this.pod.spec.hostname ?? this.pod.metadata.name);
    const argv = containerArgv(c.spec, image, kubeEnv);
    const workingDir = c.spec.workingDir || image.workingDir;
    const logFile = join(this.runtimeDir, `${c.name}.log`);
    if (existsSync(logFile)) renameSync(logFile, join(this.runtimeDir, `${c.name}.previous.log`));
    c.containerID = `sim://${this.pod.metadata.uid.slice(0, 8)}-${c.name}-${c.restartCount}`;
    const launch = {
      dir: join(this.podDir, 'containers', c.name), image, argv, env: c.env, uid: c.uid, gid: c.gid, groups,
      workingDir, mounts, sandbox: this.sandbox!, sharePid: this.pod.spec.shareProcessNamespace === true, pidNamespace, logFile,
    };
    const started = Date.now();
    if (this.terminating || c.stopping) return -1;
    c.proc = startContainer(launch);
    const exit = new Promise<number>((resolve) => c.proc!.child.on('exit', (code, sig) => {
      resolve(code ?? 128 + (sig ? constants.signals[sig] : 0));
    }));
    c.exit = exit;
    // Publish the pid (for exec, port-forward, probes) only once the process is inside its root.
    const main = await waitInRoot(c.proc.pid, c.proc.rootfs);
    c.proc.main = main;
    if (main === undefined && signalContainer(c.proc, 'SIGKILL')) {
      this.ctx.log(`pod ${this.key}: container ${c.name} did not enter its root in time; killed`);
    }
    const pid = main ?? c.proc.pid;
    const namespace = main !== undefined ? holdMountNamespace(main) : undefined;
    const postStart = c.spec.lifecycle?.postStart;
    if (postStart) {
      // The container is not running until its postStart hook has succeeded; a failure kills it.
      const hook = await runHook(postStart, { pid, uid: c.uid, gid: c.gid, groups, env: c.env }, this.graceSeconds() * 1000);
      if (!hook.ok) {
        this.ctx.event(this.pod, 'Warning', 'FailedPostStartHook', `PostStartHook failed: ${hook.message}`);
        signalContainer(c.proc, 'SIGKILL');
      }
    }
    c.state = { running: { startedAt: now() } };
    c.started = true;
    c.everStarted = true;
    this.writeContainerJson(c, pid, workingDir);
    this.reportStatus();
    // an ephemeral container has no probes and is never ready
    const stopProbes = c.kind === 'ephemeral' ? () => undefined
      : c.spec.readinessProbe || c.spec.livenessProbe ? this.startProbes(c) : (() => { c.ready = true; this.reportStatus(); return () => undefined; })();
    const code = await exit;
    stopProbes();
    // Nothing is signalled by pid now: the wrapper has reaped the container's process, so its pid
    // may already name another process. What is left in the container's mount namespace goes.
    const left = namespace?.killAll() ?? [];
    this.ctx.log(`pod ${this.key}: container ${c.name} exited with ${code}${left.length ? `; killed what was left in it: ${left.join('; ')}` : ''}`);
    c.ready = false;
    c.started = false;
    const startedAt = c.state.running?.startedAt ?? now();
    const tail = (readIfExists(logFile) ?? '').trim().split('\n').slice(-1)[0] ?? '';
    const startError = (code === 126 || code === 127) && Date.now() - started < 5000 && /failed to execute/.test(tail);
    const message = terminationMessage(tmFile, c.spec.terminationMessagePolicy, code, logFile);
    c.state = {
      terminated: startError
        ? { exitCode: 128, reason: 'StartError', message: tail.replace(/^nsenter: |^setpriv: /, ''), startedAt: '1970-01-01T00:00:00Z', finishedAt: now(), containerID: c.containerID }
        : { exitCode: code, reason: code === 0 ? 'Completed' : 'Error', ...(message ? { message } : {}), startedAt, finishedAt: now(), containerID: c.containerID },
    };
    c.proc = undefined;
    this.writeContainerJson(c, null, workingDir);
    this.reportStatus();
    return startError ? 128 : code;
  }

  private writeContainerJson(c: Container, pid: number | null, workingDir: string): void {
    if (!existsSync(this.runtimeDir)) return;
    writeJsonAtomic(join(this.runtimeDir, `${c.name}.json`), {
      pid, rootfs: join(this.podDir, 'containers', c.name, 'rootfs'), env: c.env, uid: c.uid, gid: c.gid, groups: this.supplementaryGroups(), workingDir, image: c.spec.image,
    });
  }

  private startProbes(c: Container): () => void {
    const timers: NodeJS.Timeout[] = [];
    let stopped = false;
    const target = (): ProbeTarget | undefined => c.proc && {
      pid: c.proc.main ?? c.proc.pid, uid: c.uid, gid: c.gid, env: c.env, netnsPath: this.net!.netnsPath, podIP: this.net!.ip, ports: c.spec.ports ?? [],
    };
    const loop = (probe: Json<V1Probe>, onResult: (ok: boolean, failures: number) => void) => {
      let failures = 0;
      const tick = async () => {
        if (stopped) return;
        if (this.frozen) {
          timers.push(setTimeout(tick, (probe.periodSeconds ?? 10) * 1000));
          return;
        }
        const t = target();
        if (!t) return;
        const ok = await runProbe(probe, t);
        if (stopped) return;
        failures = ok ? 0 : failures + 1;
        onResult(ok, failures);
        timers.push(setTimeout(tick, (probe.periodSeconds ?? 10) * 1000));
      };
      timers.push(setTimeout(tick, (probe.initialDelaySeconds ?? 0) * 1000));
    };
    if (c.spec.readinessProbe) {
      const threshold = c.spec.readinessProbe.failureThreshold ?? 3;
      loop(c.spec.readinessProbe, (ok, failures) => {
        const ready = ok ? true : failures >= threshold ? false : c.ready;
        if (ready !== c.ready) { c.ready = ready; this.reportStatus(); }
      });
    } else {
      c.ready = true;
      this.reportStatus();
    }
    if (c.spec.livenessProbe) {
      const threshold = c.spec.livenessProbe.failureThreshold ?? 3;
      loop(c.spec.livenessProbe, (ok, failures) => {
        if (ok || failures < threshold || !c.proc) return;
        this.ctx.event(this.pod, 'Normal', 'Killing', `Container ${c.name} failed liveness probe, will be restarted`);
        void this.killContainer(c, this.graceSeconds());
      });
    }
    return () => { stopped = true; timers.forEach(clearTimeout); };
  }

  /** fsGroup and supplementalGroups: the groups every process of the pod's containers has. */
  private supplementaryGroups(): number[] {
    const podSc = this.pod.spec.securityContext ?? {};
    return [...(podSc.fsGroup !== undefined ? [podSc.fsGroup] : []), ...(podSc.supplementalGroups ?? [])];
  }

  private graceSeconds(): number {
    return this.pod.metadata.deletionGracePeriodSeconds ?? this.pod.spec.terminationGracePeriodSeconds ?? 30;
  }

  private async killContainer(c: Container, graceSeconds: number, minGraceMs = MIN_GRACE_MS): Promise<void> {
    const proc = c.proc;
    if (!proc || !c.exit) return;
    const deadline = Date.now() + graceSeconds * 1000;
    const preStop = c.spec.lifecycle?.preStop;
    if (preStop && c.started) {
      // The hook shares the grace period with SIGTERM; one still running at its end gets 2 s more.
      const hook = await runHook(preStop, { pid: proc.main ?? proc.pid, uid: c.uid, gid: c.gid, groups: this.supplementaryGroups(), env: c.env }, graceSeconds * 1000 + 2000);
      if (!hook.ok) this.ctx.event(this.pod, 'Warning', 'FailedPreStopHook', `PreStopHook failed: ${hook.message}`);
    }
    signalContainer(proc, 'SIGTERM', (m) => this.ctx.log(`pod ${this.key}: stopping container ${c.name}: ${m}`));
    const t = setTimeout(() => signalContainer(proc, 'SIGKILL', (m) => this.ctx.log(`pod ${this.key}: grace period of ${c.name} over: ${m}`)), Math.max(minGraceMs, deadline - Date.now()));
    await c.exit;
    clearTimeout(t);
  }

  private async runInit(c: Container, volumes: Map<string, PreparedVolume>): Promise<boolean> {
    let failures = 0;
    while (!this.terminating) {
      const code = await this.startOnce(c, volumes);
      if (this.terminating) return false;
      if (code === 0) { c.done = true; return true; }
      if (code === -1) continue;
      if ((this.pod.spec.restartPolicy ?? 'Always') === 'Never') {
        this.failed = { reason: 'Failed', message: `init container "${c.name}" exited with ${code}` };
        c.done = true;
        this.reportStatus();
        return false;
      }
      failures++;
      await this.backoff(c, failures);
    }
    return false;
  }

  private async backoff(c: Container, failures: number): Promise<void> {
    const delay = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (failures - 1));
    c.lastState = c.state;
    c.state = { waiting: { reason: 'CrashLoopBackOff', message: `back-off ${Math.round(delay / 1000)}s restarting failed container=${c.name} pod=${this.pod.metadata.name}` } };
    this.reportStatus();
    await sleep(delay, this.abort.signal);
    if (!this.terminating && !c.stopping) c.restartCount++;
  }

  private async runContainerLoop(c: Container, volumes: Map<string, PreparedVolume>): Promise<void> {
    let failures = 0;
    const policy = this.pod.spec.restartPolicy ?? 'Always';
    while (!this.terminating) {
      const started = Date.now();
      const code = await this.startOnce(c, volumes);
      if (this.terminating) return;
      if (code === -1) continue;
      const restart = policy === 'Always' || (policy === 'OnFailure' && code !== 0);
      if (!restart) { c.done = true; this.reportStatus(); return; }
      failures = Date.now() - started > 30_000 ? 1 : failures + 1;
      await this.backoff(c, failures);
    }
  }

  /** Takes the status the API shows for a static pod's mirror (its conditions as a NotReady node left them). */
  observeStatus(status: BoundPod['status']): void {
    if (status) this.pod = { ...this.pod, status };
  }

  /** Reports the whole status again (a static pod's mirror was just made: the API had no pod to take it). */
  resendStatus(): void {
    this.lastSent = '';
    this.reportStatus();
  }

  /** Schedules a status report (coalesced). */
  reportStatus(): void {
    if (this.statusTimer) return;
    this.statusTimer = setTimeout(() => {
      this.statusTimer = undefined;
      this.statusChain = this.statusChain.then(() => this.sendStatus()).catch(() => undefined);
    }, 100);
  }

  /**
   * Follows the node's forced readiness (fault node-not-ready). While the node is NotReady the
   * worker sends no status (its kubelet is "unreachable") and the pod's Ready condition is set to
   * False once, as the node lifecycle controller does; when the node is Ready again the full
   * status is reported.
   */
  async setNodeReady(ready: boolean): Promise<void> {
    if (this.nodeNotReady === !ready) return;
    this.nodeNotReady = !ready;
    if (ready) {
      this.lastSent = '';
      this.reportStatus();
      return;
    }
    await this.statusChain;
    const conditions = this.pod.status?.conditions;
    if (!conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) return;
    const t = now();
    const next = conditions.map((c) => (c.type === 'Ready' ? { ...c, status: 'False', lastTransitionTime: t, reason: undefined } : c));
    const { namespace, name } = this.pod.metadata;
    try {
      await this.ctx.api.request('PATCH', `/api/v1/namespaces/${namespace}/pods/${name}/status`, { status: { conditions: next } }, 'application/merge-patch+json');
    } catch (err) {
      if (!(err instanceof ApiError && err.code === 404)) this.ctx.log(`pod ${this.key}: marking not ready: ${(err as Error).message}`);
    }
  }

  private async sendStatus(): Promise<void> {
    if (this.terminating && !this.pod) return;
    if (this.nodeNotReady || this.frozen) return;
    const status = buildPodStatus({
      podIP: this.net?.ip, hostIP: this.ctx.hostIP(this.pod.spec.nodeName), startTime: this.startTime,
      initDone: this.initDone || this.init.length === 0 && this.setupDone, setupDone: this.setupDone,
      init: this.init, regular: this.regular, ephemeral: [...this.ephemeral.values()], failed: this.failed, previous: this.pod.status?.conditions ?? [],
    });
    const body = JSON.stringify(status);
    if (body === this.lastSent) return;
    const { namespace, name } = this.pod.metadata;
    try {
      await this.ctx.api.request('PATCH', `/api/v1/namespaces/${namespace}/pods/${name}/status`, { status }, 'application/merge-patch+json');
      this.lastSent = body;
    } catch (err) {
      if (err instanceof ApiError && err.code === 404) return;
      this.ctx.log(`pod ${this.key}: status: ${(err as Error).message}`);
      setTimeout(() => this.reportStatus(), 1000);
    }
  }

  /**
   * Stops every container (SIGTERM, grace, SIGKILL) and removes the pod's sandbox and files.
   * `simDown`: the test cluster itself is going away (`sim down`), not a pod: the kubelet's 2 s
   * minimum grace is not kept, since nothing reads the pod afterwards.
   */
  terminate(graceSeconds: number, deleteObject: boolean, simDown = false): Promise<void> {
    if (!this.terminating) this.terminating = this.doTerminate(graceSeconds, deleteObject, simDown ? 0 : MIN_GRACE_MS);
    return this.terminating;
  }

  private async doTerminate(graceSeconds: number, deleteObject: boolean, minGraceMs: number): Promise<void> {
    this.abort.abort();
    this.frozen?.release();
    if (this.statusTimer) clearTimeout(this.statusTimer);
    await this.sandboxReady.catch(() => undefined);
    // Sidecars stop after every other container (pkg/kubelet/kuberuntime, killContainersWithSyncResult).
    await Promise.all([...this.init.filter((c) => !c.sidecar), ...this.regular, ...this.ephemeral.values()].map((c) => this.killContainer(c, graceSeconds, minGraceMs)));
    await this.stopSidecars(graceSeconds, minGraceMs);
    if (this.sandbox) stopSandbox(this.sandbox);
    if (this.net && !this.hostNetwork) await this.ctx.network.remove(this.net);
    rmSync(this.runtimeDir, { recursive: true, force: true });
    rmSync(this.podDir, { recursive: true, force: true });
    await this.statusChain;
    if (!deleteObject) return;
    const { namespace, name, uid } = this.pod.metadata;
    try {
      await this.ctx.api.request('DELETE', `/api/v1/namespaces/${namespace}/pods/${name}`, { kind: 'DeleteOptions', apiVersion: 'v1', gracePeriodSeconds: 0, preconditions: { uid } });
    } catch (err) {
      if (!(err instanceof ApiError && (err.code === 404 || err.code === 409))) this.ctx.log(`pod ${this.key}: delete: ${(err as Error).message}`);
    }
  }
}

/** The kubelet caps a container's termination message at 4 KiB, and a log-tail fallback at 80 lines and 2 KiB. */
const MAX_TERMINATION_MESSAGE = 4096;
const MAX_FALLBACK_BYTES = 2048;
const MAX_FALLBACK_LINES = 80;

/**
 * A finished container's termination message (docs: tasks/debug/debug-application/
 * determine-reason-pod-failure, "Customizing the termination message"): what it wrote to its
 * terminationMessagePath, its last 4096 bytes; with FallbackToLogsOnError and a non-zero exit, an
 * empty file gives the last 80 lines of its log, at most 2048 bytes.
 */
function terminationMessage(file: string | undefined, policy: string | undefined, code: number, logFile: string): string | undefined {
  // The kubelet keeps the end of an over-long message (tail.ReadAtMost).
  const tail = (path: string, max: number): string => {
    let fd: number;
    try { fd = openSync(path, 'r'); } catch { return ''; }
    try {
      const size = fstatSync(fd).size;
      const buf = Buffer.alloc(Math.min(max, size));
      return buf.subarray(0, readSync(fd, buf, 0, buf.length, Math.max(0, size - max))).toString('utf8');
    } finally {
      closeSync(fd);
    }
  };
  const written = file ? tail(file, MAX_TERMINATION_MESSAGE) : '';
  if (written || policy !== 'FallbackToLogsOnError' || code === 0) return written || undefined;
  const lines = (readIfExists(logFile) ?? '').replace(/\n$/, '').split('\n').slice(-MAX_FALLBACK_LINES).join('\n');
  const bytes = Buffer.from(lines, 'utf8');
  return bytes.subarray(Math.max(0, bytes.length - MAX_FALLBACK_BYTES)).toString('utf8') || undefined;
}
