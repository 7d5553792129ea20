// A pod sandbox: the pod's network namespace (network.ts) plus a holder process in its own UTS
// namespace (hostname = pod name) and its own PID namespace, whose pid is published as sandboxPid,
// and the pod's /etc/hosts, /etc/resolv.conf and /etc/hostname files that containers bind-mount.
// The holder's child is PID 1 of that namespace, as the pause container is, and reaps what is
// orphaned there; containers of a pod with shareProcessNamespace join it (pidNamespace), others
// get one each (container.ts). Kubernetes docs, "Share Process Namespace between Containers in a
// Pod": with it, processes are visible to every container of the pod and the pause container is
// PID 1; without it, each container's first process is PID 1 of its own namespace.
// Differs from a real runtime: no pause image (bash waits in its place), no IPC namespace;
// resolv.conf points at 127.0.0.1 where nothing answers (names resolve only through /etc/hosts).
import { spawn } from 'node:child_process';
import { mkdirSync, openSync, readFileSync, readlinkSync, writeSync, ftruncateSync, closeSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { sleep } from './api.js';
import { must } from './host.js';
import type { PodNet } from './network.js';
import { childrenOf } from './container.js';

/** A running sandbox. */
export interface Sandbox {
  pid: number;
  net: PodNet;
  hostsFile: string;
  resolvFile: string;
  hostnameFile: string;
  /** The pod's PID namespace (its PID 1 reaps orphans), for containers of a pod with shareProcessNamespace. */
  pidNamespace: string;
}

// PID 1 of the pod's PID namespace: waits forever, reaping every orphan reparented to it (bash
// reaps any child on SIGCHLD), and ignores the signals a PID 1 without handlers never gets.
const PAUSE = 'while :; do sleep 86400 & wait; done';

/** Writes JSON to path atomically (temp file + rename). */
export function writeJsonAtomic(path: string, value: unknown): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n');
  renameSync(tmp, path);
}

/** Rewrites a file in place (same inode), so existing bind mounts of it see the new content. */
export function rewriteInPlace(path: string, content: string): void {
  const fd = openSync(path, 'r+');
  try {
    ftruncateSync(fd, 0);
    writeSync(fd, content, 0);
  } finally {
    closeSync(fd);
  }
}

/** Starts the sandbox holder for a pod in its network namespace and writes its etc files. */
export async function startSandbox(podDir: string, hostname: string, namespace: string, net: PodNet): Promise<Sandbox> {
  const etc = join(podDir, 'etc');
  mkdirSync(etc, { recursive: true });
  const hostsFile = join(etc, 'hosts');
  const resolvFile = join(etc, 'resolv.conf');
  const hostnameFile = join(etc, 'hostname');
  writeFileSync(hostsFile, `127.0.0.1\tlocalhost\n${net.ip}\t${hostname}\n`, { mode: 0o644 });
  writeFileSync(resolvFile, `search ${namespace}.svc.cluster.local svc.cluster.local cluster.local\nnameserver 127.0.0.1\noptions ndots:1 timeout:1 attempts:1\n`, { mode: 0o644 });
  writeFileSync(hostnameFile, `${hostname}\n`, { mode: 0o644 });
  const child = spawn('nsenter', [`--net=${net.netnsPath}`, '--', 'unshare', '--uts', '--pid', '--fork', '--kill-child', '--', '/bin/bash', '-c', PAUSE], {
    detached: true, stdio: 'ignore',
  });
  child.unref();
  const pid = child.pid;
  if (!pid) throw new Error(`sandbox for pod "${hostname}" did not start; check that nsenter and unshare are installed`);
  const hostUts = readlinkSync('/proc/self/ns/uts');
  for (let i = 0; i < 200; i++) {
    let uts = hostUts;
    try { uts = readlinkSync(`/proc/${pid}/ns/uts`); } catch { /* not yet */ }
    if (uts !== hostUts) break;
    await sleep(10);
  }
  // and until the holder has forked PID 1 of the pod's PID namespace (containers of a pod with
  // shareProcessNamespace join it, which needs a live PID 1)
  for (let i = 0; i < 200; i++) {
    if (childrenOf(pid)?.length) break;
    await sleep(10);
  }
  await must('nsenter', [`--uts=/proc/${pid}/ns/uts`, '--', 'hostname', hostname]);
  return { pid, net, hostsFile, resolvFile, hostnameFile, pidNamespace: `/proc/${pid}/ns/pid_for_children` };
}

/** Kills the sandbox holder (and with it, --kill-child, PID 1 of the pod's PID namespace and all in it). */
export function stopSandbox(sb: Sandbox): void {
  try { process.kill(sb.pid, 'SIGKILL'); } catch { /* already gone */ }
}

/** Reads a file or returns undefined. */
export function readIfExists(path: string): string | undefined {
  try { return readFileSync(path, 'utf8'); } catch { return undefined; }
}
