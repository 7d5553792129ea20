// Starting a container: a fresh root directory holding only the image's files, entered by a
// process in its own mount namespace that joins the sandbox's network and UTS namespaces,
// bind-mounts the image binaries (read-only), host shared libraries (read-only), a minimal /dev, a
// private /tmp, the pod's etc files and the volumes, then starts the container's process in its
// PID namespace (its own, as PID 1; or the pod's, with shareProcessNamespace; or, for an ephemeral
// container with targetContainerName, its target's), which mounts /proc
// for that namespace, sets group and supplementary groups (setpriv), chroots and switches user
// (nsenter --root/--wd/-S) before exec'ing the container's argv. As PID 1 it gets from outside
// only the signals it has a handler for, and SIGKILL (pid_namespaces(7)): a process without a
// SIGTERM handler runs until the grace period ends, as on a real node; what it orphans is
// reparented to it.
// Differs from a real runtime: no IPC or cgroup isolation (root in a container keeps the host's
// capabilities); a wrapper (perl) outside the namespace waits for the process and reports its
// exit; the root is rebuilt empty on every start; stdin is /dev/null.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import type { ImageSpec } from '../images.js';
import { shq } from './host.js';
import type { Sandbox } from './sandbox.js';
import { isFile } from './volumes.js';

/** One bind mount into the container. */
export interface ContainerMount {
  source: string;
  target: string;
  readOnly: boolean;
}

/** Everything needed to start one container process. */
export interface ContainerLaunch {
  /** Directory for this container's root and launch script (recreated on each start). */
  dir: string;
  image: ImageSpec;
  argv: string[];
  env: string[];
  uid: number;
  gid: number;
  groups: number[];
  workingDir: string;
  mounts: ContainerMount[];
  sandbox: Sandbox;
  /** The pod's shareProcessNamespace: join the sandbox's PID namespace instead of a new one. */
  sharePid: boolean;
  /**
   * A PID namespace to join instead (an ephemeral container's target container's: /proc/PID/ns/pid
   * of its process); takes precedence over sharePid.
   */
  pidNamespace?: string;
  logFile: string;
}

/** A started container process. */
export interface StartedContainer {
  /** The wrapper the kubelet spawned (its process group holds the set-up and the waiting wrapper). */
  pid: number;
  /** The container's own process, once it has entered its root (waitInRoot). */
  main?: number;
  rootfs: string;
  child: ChildProcess;
}

const LIB_DIRS = ['/usr/lib/x86_64-linux-gnu', '/usr/lib64', '/usr/lib/aarch64-linux-gnu'];
const DEV_NODES = ['null', 'zero', 'full', 'random', 'urandom', 'tty'];

function passwd(image: ImageSpec, uid: number, gid: number): { passwd: string; group: string } {
  const users = [`root:x:0:0:root:/root:/bin/sh`];
  const groups = ['root:x:0:'];
  for (const [u, g] of [[image.uid, image.gid], [uid, gid]]) {
    if (u !== 0 && !users.some((l) => l.split(':')[2] === String(u))) users.push(`user${u}:x:${u}:${g}::/:/bin/sh`);
    if (g !== 0 && !groups.some((l) => l.split(':')[2] === String(g))) groups.push(`group${g}:x:${g}:`);
  }
  return { passwd: users.join('\n') + '\n', group: groups.join('\n') + '\n' };
}

/** Builds the container's empty root directory with placeholders for every bind mount. */
export function buildRootfs(l: ContainerLaunch): string {
  const root = join(l.dir, 'rootfs');
  rmSync(root, { recursive: true, force: true });
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'usr/local/bin', 'usr/lib', 'etc', 'proc', 'dev', 'tmp', 'root', 'var/tmp', 'run']) {
    mkdirSync(join(root, d), { recursive: true, mode: 0o755 });
  }
  symlinkSync('usr/lib', join(root, 'lib'));
  symlinkSync('usr/lib64', join(root, 'lib64'));
  for (const d of l.image.dirs) mkdirSync(join(root, d), { recursive: true, mode: 0o755 });
  const pw = passwd(l.image, l.uid, l.gid);
  writeFileSync(join(root, 'etc/passwd'), pw.passwd);
  writeFileSync(join(root, 'etc/group'), pw.group);
  writeFileSync(join(root, 'etc/nsswitch.conf'), 'hosts: files dns\npasswd: files\ngroup: files\n');
  for (const f of ['hosts', 'resolv.conf', 'hostname']) writeFileSync(join(root, 'etc', f), '');
  for (const p of Object.keys(l.image.files)) {
    mkdirSync(join(root, dirname(p)), { recursive: true, mode: 0o755 });
    writeFileSync(join(root, p), '', { mode: 0o755 });
  }
  mkdirSync(join(root, l.workingDir), { recursive: true, mode: 0o755 });
  return root;
}

/**
 * The waiting wrapper, `perl -e WRAPPER INNER`: forks `/bin/sh -c INNER` into a process group of
 * its own with default SIGINT/SIGQUIT, waits for it to end and exits as it did (see launchScript).
 */
export const WRAPPER = [
  '$SIG{INT} = $SIG{QUIT} = "DEFAULT";',
  'my $pid = fork; defined $pid or die "fork: $!\\n";',
  'if (!$pid) { setpgrp(0, 0); exec("/bin/sh", "-c", $ARGV[0]) or exit 127; }',
  'waitpid($pid, 0) == $pid or die "waitpid: $!\\n";',
  'exit(($? & 127) ? 128 + ($? & 127) : $? >> 8);',
].join(' ');

/** Writes the bash script that sets up the mount namespace and execs the container. */
export function launchScript(l: ContainerLaunch, root: string): string {
  const lines = ['set -e', `R=${shq(root)}`];
  const bind = (src: string, dst: string, ro: boolean) => {
    lines.push(`mount --bind ${shq(src)} "$R"${shq(dst)}`);
    if (ro) lines.push(`mount -o remount,bind,ro "$R"${shq(dst)}`);
  };
  for (const [inImage, host] of Object.entries(l.image.files)) {
    if (existsSync(host)) bind(host, inImage, true);
    else lines.push(`rm -f "$R"${shq(inImage)}`);
  }
  for (const d of LIB_DIRS) {
    if (!existsSync(d)) continue;
    lines.push(`mkdir -p "$R"${shq(d)}`);
    bind(d, d, true);
  }
  lines.push('mount -t tmpfs -o mode=755,size=1m,nosuid tmpfs "$R/dev"');
  for (const n of DEV_NODES) lines.push(`touch "$R/dev/${n}"`, `mount --bind /dev/${n} "$R/dev/${n}"`);
  lines.push('mkdir -p "$R/dev/shm" "$R/dev/pts"', 'mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$R/dev/shm"');
  lines.push('ln -s /proc/self/fd "$R/dev/fd"', 'ln -s /proc/self/fd/0 "$R/dev/stdin"', 'ln -s /proc/self/fd/1 "$R/dev/stdout"', 'ln -s /proc/self/fd/2 "$R/dev/stderr"');
  lines.push('mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$R/tmp"');
  bind(l.sandbox.hostsFile, '/etc/hosts', false);
  bind(l.sandbox.resolvFile, '/etc/resolv.conf', false);
  bind(l.sandbox.hostnameFile, '/etc/hostname', false);
  const mounts = [...l.mounts].sort((a, b) => a.target.split('/').length - b.target.split('/').length);
  for (const m of mounts) {
    const target = posix.normalize(m.target);
    if (isFile(m.source)) lines.push(`mkdir -p "$R"${shq(posix.dirname(target))}`, `touch "$R"${shq(target)}`);
    else lines.push(`mkdir -p "$R"${shq(target)}`);
    bind(m.source, target, m.readOnly);
  }
  lines.push(`mkdir -p "$R"${shq(l.workingDir)}`);
  // Group and supplementary groups are set (setpriv, still root) before nsenter enters the root, and
  // the user by nsenter after: inside, /proc is the container's, where no host path can be named.
  const enter = ['/usr/bin/nsenter', `--root=${root}`, `--wd=${join(root, l.workingDir)}`];
  const exec = l.uid === 0 && l.gid === 0 && l.groups.length === 0
    ? ['/usr/bin/env', '-i', ...l.env, ...enter, '--', ...l.argv]
    : ['/usr/bin/env', '-i', ...l.env, '/usr/bin/setpriv', `--regid=${l.gid}`, `--groups=${[l.gid, ...l.groups].join(',')}`, '--',
      ...enter, '-S', String(l.uid), '--', ...l.argv];
  // Run inside the PID namespace: /proc mounted for it, then the container's process.
  const inner = `mount -t proc proc ${shq(join(root, 'proc'))} && exec ${exec.map(shq).join(' ')}`;
  // The wrapper (perl) stays outside the PID namespace and its child is in it: PID 1 of a new one
  // (unshare --pid without --fork), or a process of the pod's (nsenter --pid without forking:
  // neither tool's own fork-and-wait will do, unshare's exits 1 when its child is SIGKILLed, and
  // nsenter's stops itself for good when its child is stopped). The child gets a process group of
  // its own and default SIGINT/SIGQUIT; waitpid without WUNTRACED waits for it to end, not merely
  // to stop (a SIGSTOPped container is not an exited one); the wrapper exits as the child did
  // (128+N when killed by signal N). Not bash's `set -m; … & wait -f $!`: bash 5.2's `wait -f`
  // misses the child's exit about once in 200 runs and waits for ever (test/unit/sim-wrapper.test.ts),
  // which left containers Running after their process had ended.
  const joinPid = l.pidNamespace ?? (l.sharePid ? l.sandbox.pidNamespace : undefined);
  const pidns = joinPid ? ['/usr/bin/nsenter', `--pid=${joinPid}`, '--no-fork', '--'] : ['/usr/bin/unshare', '--pid', '--'];
  lines.push(`exec ${pidns.map(shq).join(' ')} /usr/bin/perl -e ${shq(WRAPPER)} ${shq(inner)}`);
  return lines.join('\n') + '\n';
}

/** Starts the container process; resolves once it has been spawned. */
export function startContainer(l: ContainerLaunch): StartedContainer {
  mkdirSync(l.dir, { recursive: true });
  const root = buildRootfs(l);
  const script = join(l.dir, 'launch.sh');
  writeFileSync(script, launchScript(l, root));
  const log = openSync(l.logFile, 'a');
  try {
    const child = spawn('/usr/bin/nsenter', [
      `--net=${l.sandbox.net.netnsPath}`, `--uts=/proc/${l.sandbox.pid}/ns/uts`, '--',
      '/usr/bin/unshare', '--mount', '--propagation', 'private', '--', '/bin/bash', script,
    ], { detached: true, stdio: ['ignore', log, log], env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
    if (!child.pid) throw new Error(`container in "${l.dir}" did not start; check that nsenter and unshare are installed`);
    return { pid: child.pid, rootfs: root, child };
  } finally {
    closeSync(log);
  }
}

/** A process's children (its main thread's), or undefined when it is gone. */
export function childrenOf(pid: number): number[] | undefined {
  try { return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number); } catch { return undefined; }
}

/**
 * Resolves the pid of the container's process once it has entered its root (until then the
 * wrapper is still setting up mounts in the host's root, and an exec or probe entering it would
 * land on the host's files); undefined when the wrapper exited first or it did not get there
 * within timeoutMs. The process is a child of the wrapper (every step before it execs).
 */
export async function waitInRoot(pid: number, rootfs: string, timeoutMs = 60_000): Promise<number | undefined> {
  let real = rootfs;
  try { real = realpathSync(rootfs); } catch { /* compare the path as given */ }
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const children = childrenOf(pid);
    if (!children) return undefined;
    for (const c of children) {
      let root: string;
      try { root = readlinkSync(`/proc/${c}/root`); } catch { continue; }
      if (root === rootfs || root === real) return c;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return undefined;
}

/**
 * Holds the mount namespace of a container that has entered its root, to kill, once the container
 * has exited, every process still in it: what an exec started there, even in a process group of
 * its own, and what the main process left behind. A real runtime kills every process of a
 * container when it stops (its cgroup); in a PID namespace of its own they die with its PID 1, but
 * in a pod's shared one they would live on, and every exec enters the container's mount namespace
 * (nsenter -m). The namespace is held open until then, so its inode cannot pass to a new container
 * meanwhile.
 */
export function holdMountNamespace(pid: number): { killAll(): string[] } | undefined {
  let fd: number;
  try { fd = openSync(`/proc/${pid}/ns/mnt`, 'r'); } catch { return undefined; }
  const ns = mountNamespaceOf(pid);
  if (!ns) { closeSync(fd); return undefined; }
  return {
    killAll() {
      const killed: string[] = [];
      for (const p of readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number)) {
        if (p === process.pid || mountNamespaceOf(p) !== ns) continue;
        const cmd = commandLine(p);
        try { process.kill(p, 'SIGKILL'); killed.push(`${p} ${cmd}`); } catch { /* gone meanwhile */ }
      }
      closeSync(fd);
      return killed;
    },
  };
}

/** A process's command line (for logs), at most 120 characters. */
export function commandLine(pid: number): string {
  try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim().slice(0, 120); } catch { return '?'; }
}

function mountNamespaceOf(pid: number): string | undefined {
  try { return readlinkSync(`/proc/${pid}/ns/mnt`); } catch { return undefined; }
}

/**
 * Stops a container as a runtime does: the stop signal to the container's process only (as PID 1
 * of its namespace it ignores one it has no handler for); SIGKILL to it and to the wrapper's
 * process group. Before the process has entered its root (not started yet, as far as the API
 * knows) everything is SIGKILLed, its process too: it is the wrapper's child in a process group of
 * its own, and would outlive the wrapper. False when all is already gone.
 */
export function signalContainer(proc: StartedContainer, signal: NodeJS.Signals, log?: (msg: string) => void): boolean {
  let sent = false;
  const kill = (pid: number, sig: NodeJS.Signals) => {
    const cmd = log ? commandLine(Math.abs(pid)) : '';
    process.kill(pid, sig);
    log?.(`${sig} to ${pid < 0 ? 'group ' : ''}${Math.abs(pid)} (${cmd})`);
  };
  if (proc.main !== undefined) {
    try { kill(proc.main, signal); sent = true; } catch { /* gone */ }
    if (signal !== 'SIGKILL') return sent;
  } else {
    signal = 'SIGKILL';
    for (const c of childrenOf(proc.pid) ?? []) { try { kill(c, 'SIGKILL'); sent = true; } catch { /* gone */ } }
  }
  try {
    kill(-proc.pid, signal);
    return true;
  } catch {
    try { kill(proc.pid, signal); return true; } catch { return sent; }
  }
}

/**
 * Argv (for spawn) that runs a command inside a running container as its user, like `kubectl exec`.
 * With `groups` (fsGroup, supplementalGroups) the command gets them too, as the container's own
 * process has them: setpriv sets them (and the group) before nsenter enters, as at container start.
 */
export function execInContainerArgv(pid: number, uid: number, gid: number, argv: string[], groups: number[] = [], workingDir?: string): string[] {
  // Without workingDir, the target's own; with it, named through the target's root (nsenter opens
  // --wd before it enters the mount namespace).
  const wd = workingDir === undefined ? '-w' : `--wd=/proc/${pid}/root${posix.resolve('/', workingDir || '/')}`;
  const enter = ['/usr/bin/nsenter', '-t', String(pid), '-m', '-u', '-n', '-p', '-r', wd];
  if (!groups.length) return [...enter, '-S', String(uid), '-G', String(gid), '--', ...argv];
  return ['/usr/bin/setpriv', `--regid=${gid}`, `--groups=${[gid, ...groups].join(',')}`, '--', ...enter, '-S', String(uid), '--', ...argv];
}
