/**
 * Finds the etcd container of a pod and the argv etcd actually gets: `command` + `args` after
 * `$(VAR)` expansion, unwrapping `sh -c "… exec etcd …"` scripts, or nothing at all when the
 * image's entrypoint is etcd and configuration comes from ETCD_* env (Bitnami style).
 */
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { splitShellCommands } from '../shell.js';
import { expandKubeVars } from './env.js';

const SHELLS = new Set(['sh', 'bash', 'dash', 'ash', 'zsh', 'busybox']);

function base(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

function isEtcdEnv(name: string): boolean {
  return name.startsWith('ETCD_') && !name.startsWith('ETCDCTL_');
}

/** Drops leading `exec`, `env`, `VAR=value` words (and `env` options) before the program name. */
function stripPrefix(words: string[]): string[] {
  let i = 0;
  while (i < words.length) {
    const w = words[i]!;
    if (w === 'exec' || w === 'env' || w === 'nohup' || /^[A-Za-z_][A-Za-z0-9_]*=/.test(w) || (i > 0 && w.startsWith('-') && words[i - 1] === 'env')) i++;
    else break;
  }
  return words.slice(i);
}

/** The etcd argv inside a full container argv (program first), unwrapping shell scripts; undefined if etcd is not run. */
export function findEtcdArgv(argv: string[], shellEnv: ReadonlyMap<string, string> = new Map()): string[] | undefined {
  const words = stripPrefix(argv);
  if (!words.length) return undefined;
  if (base(words[0]!) === 'etcd') return words;
  if (SHELLS.has(base(words[0]!))) {
    const c = words.indexOf('-c', 1);
    const flagC = c < 0 ? words.findIndex((w, i) => i > 0 && /^-[a-z]*c[a-z]*$/.test(w)) : c;
    const script = flagC > 0 ? words[flagC + 1] : undefined;
    if (script === undefined) return undefined;
    for (const cmd of splitShellCommands(script, (n) => shellEnv.get(n))) {
      const found = findEtcdArgv(cmd, shellEnv);
      if (found) return found;
    }
  }
  return undefined;
}

/** The container's argv after Kubernetes `$(VAR)` expansion (command then args). */
export function containerArgv(container: V1Container, vars: ReadonlyMap<string, string>): string[] {
  return [...(container.command ?? []), ...(container.args ?? [])].map((a) => expandKubeVars(a, vars));
}

/** How a container was recognised as etcd. */
export type EtcdContainerMatch = 'command' | 'env' | 'name';

/** Picks the etcd container of a pod: by command/args running etcd, else ETCD_* env, else its name; `name` forces one. */
export function findEtcdContainer(pod: V1Pod, name?: string): { container: V1Container; match: EtcdContainerMatch } | undefined {
  const containers = pod.spec?.containers ?? [];
  if (name) {
    const container = containers.find((c) => c.name === name);
    return container ? { container, match: 'name' } : undefined;
  }
  const byCommand = containers.find((c) => findEtcdArgv([...(c.command ?? []), ...(c.args ?? [])]) !== undefined);
  if (byCommand) return { container: byCommand, match: 'command' };
  const byEnv = containers.find((c) => !c.command?.length && (c.env ?? []).some((e) => isEtcdEnv(e.name)));
  if (byEnv) return { container: byEnv, match: 'env' };
  const byName = containers.find((c) => /(^|-)etcd$/.test(c.name) && !(c.command ?? []).some((w) => /apiserver/.test(w)));
  return byName ? { container: byName, match: 'name' } : undefined;
}

/** etcd's arguments (program name removed) for the container; `[]` when it runs the image entrypoint with env only. */
export function etcdArgs(container: V1Container, vars: ReadonlyMap<string, string>, shellEnv: ReadonlyMap<string, string>): string[] {
  const argv = containerArgv(container, vars);
  if (!container.command?.length) {
    // No command: the image entrypoint (etcd) runs with the args, if any.
    const inner = findEtcdArgv(argv, shellEnv);
    return inner ? inner.slice(1) : argv;
  }
  return findEtcdArgv(argv, shellEnv)?.slice(1) ?? [];
}
