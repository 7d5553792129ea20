// Container lifecycle hooks (exec handlers only): postStart runs right after the container's
// process starts, and the container counts as running only once it has succeeded (a failure kills
// the container: FailedPostStartHook); preStop runs before SIGTERM when the container is stopped
// for a pod deletion or a failed liveness probe, and shares the termination grace period with it
// (kubernetes docs: concepts/containers/container-lifecycle-hooks; pods/pod-lifecycle
// "Termination of Pods": a hook still running when the grace period ends gets a one-off 2 s
// extension, then the container is killed; a failing preStop is an event, the stop goes on).
// Differs from a real kubelet: httpGet and sleep handlers are not run (an event says so).
import { spawn } from 'node:child_process';
import type { V1LifecycleHandler } from '@kubernetes/client-node';
import type { Json } from '../json.js';
import { execInContainerArgv } from './container.js';

/** The running container a hook is executed in. */
export interface HookTarget {
  pid: number;
  uid: number;
  gid: number;
  /** Supplementary groups of the container's process (fsGroup, supplementalGroups). */
  groups: number[];
  env: string[];
}

/** How a hook ended: ok, or why not (its last output line or the timeout). */
export interface HookOutcome {
  ok: boolean;
  message: string;
}

/** Runs an exec hook inside the container, as its user, with its env; killed after timeoutMs. */
export function runHook(handler: Json<V1LifecycleHandler>, t: HookTarget, timeoutMs: number): Promise<HookOutcome> {
  const command = handler.exec?.command;
  if (!command?.length) return Promise.resolve({ ok: true, message: 'only exec hooks are run by the simulator' });
  const env = Object.fromEntries(t.env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  return new Promise((resolve) => {
    const argv = execInContainerArgv(t.pid, t.uid, t.gid, command, t.groups);
    // Its own process group, killed whole on timeout (nsenter forks into the container's PID namespace).
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env, detached: true });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out = (out + d.toString()).slice(-4096); });
    child.stderr.on('data', (d: Buffer) => { out = (out + d.toString()).slice(-4096); });
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; try { process.kill(-child.pid!, 'SIGKILL'); } catch { child.kill('SIGKILL'); } }, timeoutMs);
    const last = () => out.trim().split('\n').pop() ?? '';
    child.on('error', (err) => { clearTimeout(timer); resolve({ ok: false, message: err.message }); });
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (timedOut) resolve({ ok: false, message: `timed out after ${Math.round(timeoutMs / 1000)}s` });
      else resolve({ ok: code === 0, message: code === 0 ? last() : `command ${JSON.stringify(command)} exited with ${code}: ${last()}` });
    });
  });
}
