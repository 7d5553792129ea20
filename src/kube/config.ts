/**
 * kubeconfig loading with kubectl's rules: --kubeconfig, else KUBECONFIG (files merged, first
 * file wins for current-context and for any cluster/user/context name defined twice; missing
 * files skipped), else ~/.kube/config; then the global flag overrides.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KubeConfig, type Cluster, type Context, type User } from '@kubernetes/client-node';
import { NotFoundError, UsageError } from '../errors.js';

/** kubectl's global connection flags, as parsed (all optional). */
export interface KubeFlags {
  kubeconfig?: string;
  context?: string;
  cluster?: string;
  user?: string;
  namespace?: string;
  requestTimeout?: string;
  insecureSkipTlsVerify?: boolean;
  certificateAuthority?: string;
  token?: string;
  server?: string;
}

/** The resolved connection: a single-context KubeConfig plus what the flags decided. */
export interface ResolvedKubeConfig {
  kubeConfig: KubeConfig;
  contextName: string;
  namespace: string;
  /** Milliseconds; undefined means no timeout (kubectl's default "0"). */
  requestTimeoutMs?: number;
}

/** Where to look for kubeconfig files when no flag is given. */
export interface KubeConfigEnv {
  KUBECONFIG?: string;
  HOME?: string;
}

/** Reads and merges kubeconfig files in kubectl's order; the flags pick and override the context. */
export function loadKubeConfig(flags: KubeFlags, env: KubeConfigEnv = process.env): ResolvedKubeConfig {
  const merged = mergeKubeConfigFiles(kubeConfigFiles(flags, env), flags.kubeconfig !== undefined);
  return resolveContext(merged, flags);
}

/** The kubeconfig files kubectl would read, in priority order. */
export function kubeConfigFiles(flags: KubeFlags, env: KubeConfigEnv): string[] {
  if (flags.kubeconfig) return [flags.kubeconfig];
  if (env.KUBECONFIG) return env.KUBECONFIG.split(path.delimiter).filter((f) => f.length > 0);
  const home = env.HOME || os.homedir();
  return [path.join(home, '.kube', 'config')];
}

/** Merges files with kubectl's rules: the first definition of a name wins, missing files are skipped unless required. */
export function mergeKubeConfigFiles(files: string[], required: boolean): KubeConfig {
  const merged = new KubeConfig();
  merged.loadFromOptions({ clusters: [], users: [], contexts: [], currentContext: '' });
  const seen = new Set<string>();
  for (const file of files) {
    const abs = path.resolve(file);
    if (seen.has(abs)) continue;
    seen.add(abs);
    let text: string;
    try {
      text = fs.readFileSync(abs, 'utf8');
    } catch (err) {
      if (!required && (err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new NotFoundError(`kubeconfig "${file}" cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, 'check --kubeconfig or KUBECONFIG');
    }
    const one = new KubeConfig();
    try {
      one.loadFromString(text);
    } catch (err) {
      throw new UsageError(`kubeconfig "${file}" is not valid: ${(err as Error).message.split('\n')[0]}`, 'fix the file or point --kubeconfig elsewhere');
    }
    one.makePathsAbsolute(path.dirname(abs));
    if (!merged.currentContext && one.currentContext) merged.currentContext = one.currentContext;
    addNew(merged.clusters, one.clusters);
    addNew(merged.users, one.users);
    addNew(merged.contexts, one.contexts);
  }
  return merged;
}

function addNew<T extends { name: string }>(into: T[], from: T[]): void {
  for (const item of from) if (!into.some((x) => x.name === item.name)) into.push(item);
}

/** Picks the context (--context or current-context) and applies --cluster/--user/--server/... overrides. */
export function resolveContext(merged: KubeConfig, flags: KubeFlags): ResolvedKubeConfig {
  const contextName = flags.context || merged.currentContext || '';
  let context: Context | null = null;
  if (contextName) {
    context = merged.getContextObject(contextName);
    if (!context) {
      throw new NotFoundError(`context "${contextName}" not found in kubeconfig`, 'run `kubectl config get-contexts` to list contexts, then pass --context');
    }
  }
  const clusterName = flags.cluster || context?.cluster || '';
  const userName = flags.user || context?.user || '';
  let cluster: Cluster | null = clusterName ? merged.getCluster(clusterName) : null;
  if (clusterName && !cluster && !flags.server) {
    throw new NotFoundError(`cluster "${clusterName}" not found in kubeconfig`, 'run `kubectl config get-clusters` to list clusters, or pass --server');
  }
  if (!cluster && !flags.server) {
    throw new UsageError('no cluster configured: kubeconfig has no current context', 'pass --kubeconfig, --context or --server, or set KUBECONFIG');
  }
  let user: User | null = userName ? merged.getUser(userName) : null;
  if (userName && !user) {
    throw new NotFoundError(`user "${userName}" not found in kubeconfig`, 'run `kubectl config view` to list users, then pass --user');
  }
  cluster = overrideCluster(cluster ?? { name: clusterName || 'cluster', server: '', skipTLSVerify: false }, flags);
  user = overrideUser(user ?? { name: userName || 'user' }, flags);
  const namespace = flags.namespace || context?.namespace || 'default';
  const kubeConfig = new KubeConfig();
  const name = contextName || 'flags';
  kubeConfig.loadFromOptions({
    clusters: [cluster],
    users: [user],
    contexts: [{ name, cluster: cluster.name, user: user.name, namespace }],
    currentContext: name,
  });
  return { kubeConfig, contextName: name, namespace, requestTimeoutMs: parseRequestTimeout(flags.requestTimeout) };
}

function overrideCluster(cluster: Cluster, flags: KubeFlags): Cluster {
  const out: { -readonly [K in keyof Cluster]: Cluster[K] } = { ...cluster };
  if (flags.server) {
    out.server = flags.server;
    // kubectl drops tls-server-name when --server points somewhere else.
    if (flags.server !== cluster.server) out.tlsServerName = undefined;
  }
  if (flags.certificateAuthority) {
    out.caFile = path.resolve(flags.certificateAuthority);
    out.caData = undefined;
  }
  if (flags.insecureSkipTlsVerify) {
    out.skipTLSVerify = true;
    // kubectl clears the CA when the insecure flag is given on the command line.
    out.caFile = undefined;
    out.caData = undefined;
  }
  return out;
}

function overrideUser(user: User, flags: KubeFlags): User {
  if (!flags.token) return user;
  // A token on the command line replaces the kubeconfig's token-based and basic auth.
  return { ...user, token: flags.token, username: undefined, password: undefined, authProvider: undefined, exec: undefined };
}

const durationUnits: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses kubectl's --request-timeout ("0" = none, bare integer = seconds, else a Go duration like 1m30s). */
export function parseRequestTimeout(value: string | undefined, flag = '--request-timeout'): number | undefined {
  if (value === undefined || value === '' || value === '0') return undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(value); m; m = re.exec(value)) {
    total += Number(m[1]) * durationUnits[m[2]!]!;
    consumed = re.lastIndex;
  }
  if (consumed !== value.length || consumed === 0) {
    throw new UsageError(`invalid ${flag} "${value}"`, 'use a duration such as 30s, 1m or 0 for none');
  }
  return total === 0 ? undefined : total;
}
