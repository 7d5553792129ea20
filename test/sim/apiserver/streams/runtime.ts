// What the kubelet publishes about running containers (DIR/runtime/pods/NS/POD/*.json), and how
// the API server enters a container: `nsenter --target PID --mount --uts --net --pid --root --wd=DIR
// -S UID -G GID -- argv` with the container's env (nsenter forks into the container's PID
// namespace, waits, and exits as the process did); with supplementary groups (the pod's fsGroup
// and supplementalGroups, which a real runtime gives exec'd processes too) setpriv sets them and
// the group first, and nsenter only the user.
// Differences from a real kubelet/runtime: no cgroup namespace, so an exec'd process is not
// confined to the container's cgroup.
import { readFile, lstat, readlink, stat } from 'node:fs/promises';
import path from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import type { Json } from '../../json.js';
import { execInContainerArgv } from '../../kubelet/container.js';

/** DIR/runtime/pods/NS/POD/CONTAINER.json as the kubelet writes it. */
export interface ContainerRuntime {
  pid: number | null;
  rootfs: string;
  env: string[];
  uid: number;
  gid: number;
  /** Supplementary groups of the container's processes (fsGroup, supplementalGroups). */
  groups?: number[];
  workingDir: string;
  image: string;
}

/** DIR/runtime/pods/NS/POD/pod.json as the kubelet writes it. */
export interface PodRuntime {
  uid: string;
  node: string;
  ip: string;
  sandboxPid: number | null;
  netns: string;
}

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The published state of a container, or undefined when the kubelet has none. */
export async function readContainerRuntime(dir: string, ns: string, pod: string, container: string): Promise<ContainerRuntime | undefined> {
  return readJson<ContainerRuntime>(path.join(dir, 'runtime', 'pods', ns, pod, `${container}.json`));
}

/** The published sandbox of a pod, or undefined when the kubelet has none. */
export async function readPodRuntime(dir: string, ns: string, pod: string): Promise<PodRuntime | undefined> {
  return readJson<PodRuntime>(path.join(dir, 'runtime', 'pods', ns, pod, 'pod.json'));
}

/** Host path of a container's log file. */
export function containerLogPath(dir: string, ns: string, pod: string, container: string): string {
  return path.join(dir, 'runtime', 'pods', ns, pod, `${container}.log`);
}

/** True when `pid` names a live process. */
export function isAlive(pid: number | null | undefined): pid is number {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The container a stream targets, chosen as kube-apiserver's streamLocation does; a string is
 * the BadRequest message to send instead.
 */
export function chooseContainer(pod: Json<V1Pod> | undefined, requested: string | null): { name: string } | string {
  const name = pod?.metadata?.name ?? '';
  const containers: string[] = (pod?.spec?.containers ?? []).map((c) => c.name);
  const inits: string[] = (pod?.spec?.initContainers ?? []).map((c) => c.name);
  const ephemeral: string[] = (pod?.spec?.ephemeralContainers ?? []).map((c) => c.name);
  if (!requested) {
    if (containers.length === 1) return { name: containers[0] };
    if (containers.length === 0) return `a container name must be specified for pod ${name}`;
    let msg = `a container name must be specified for pod ${name}, choose one of: [${containers.join(' ')}]`;
    if (inits.length) msg += ` or one of the init containers: [${inits.join(' ')}]`;
    if (ephemeral.length) msg += ` or one of the ephemeral containers: [${ephemeral.join(' ')}]`;
    return msg;
  }
  // every kind of container can be named, ephemeral ones too (podHasContainerWithName visits them all)
  if (!containers.includes(requested) && !inits.includes(requested) && !ephemeral.includes(requested)) {
    return `container ${requested} is not valid for pod ${name}`;
  }
  return { name: requested };
}

/** The container env as an object, with the defaults a runtime adds (PATH, HOME). */
export function containerEnv(c: ContainerRuntime): Record<string, string> {
  const env: Record<string, string> = {};
  for (const kv of c.env ?? []) {
    const i = kv.indexOf('=');
    if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  env.PATH ??= DEFAULT_PATH;
  env.HOME ??= c.uid === 0 ? '/root' : '/';
  return env;
}

/** The argv (program first) that runs `argv` inside the container as its user, in its workingDir. */
export function nsenterArgs(c: ContainerRuntime, argv: string[]): string[] {
  return execInContainerArgv(c.pid ?? 0, c.uid ?? 0, c.gid ?? 0, argv, c.groups ?? [], c.workingDir || '/');
}

/**
 * Checks that argv[0] exists inside the container, as runc's exec would find it; returns the
 * runc error text ("exec: \"sh\": executable file not found in $PATH") when it does not.
 */
export async function missingExecutable(c: ContainerRuntime, argv0: string, env: Record<string, string>): Promise<string | undefined> {
  const root = isAlive(c.pid) ? `/proc/${c.pid}/root` : c.rootfs;
  if (argv0.includes('/')) {
    const abs = path.posix.resolve(c.workingDir || '/', argv0);
    const host = await resolveInRoot(root, abs);
    if (!host) return `exec: "${argv0}": stat ${argv0}: no such file or directory`;
    if (!(await isExecutableFile(host))) return `exec: "${argv0}": permission denied`;
    return undefined;
  }
  for (const d of (env.PATH ?? DEFAULT_PATH).split(':')) {
    if (!d) continue;
    const host = await resolveInRoot(root, path.posix.join(path.posix.resolve('/', d), argv0));
    if (host && (await isExecutableFile(host))) return undefined;
  }
  return `exec: "${argv0}": executable file not found in $PATH`;
}

/** Resolves `p` (absolute, inside the container) to a host path, following symlinks inside `root`. */
async function resolveInRoot(root: string, p: string, depth = 0): Promise<string | undefined> {
  const parts = p.split('/').filter((s) => s && s !== '.');
  const cur: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    if (parts[i] === '..') { cur.pop(); continue; }
    const host = path.join(root, ...cur, parts[i]);
    let st;
    try { st = await lstat(host); } catch { return undefined; }
    if (st.isSymbolicLink()) {
      if (depth > 40) return undefined;
      const target = await readlink(host);
      const base = target.startsWith('/') ? target : `/${[...cur, target].join('/')}`;
      const rest = parts.slice(i + 1).join('/');
      return resolveInRoot(root, rest ? `${base}/${rest}` : base, depth + 1);
    }
    cur.push(parts[i]);
  }
  return path.join(root, ...cur);
}

async function isExecutableFile(host: string): Promise<boolean> {
  try {
    const st = await stat(host);
    return st.isFile() && (st.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}
