// Shared helpers of the restore e2e tests: the plugin through `kubectl etcd`, etcdctl inside the
// member pods, the simulator's audit log.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { requireCommand, requireRoot, run, startCluster, type CommandResult, type SimCluster } from '../sim/harness.js';
import { buildIfStale } from './plugin-build.js';

export const REPO = resolve(import.meta.dirname, '../..');

/** Environment for the plugin: repo bin/ on PATH, the cluster's kubeconfig, a private state dir. */
export function pluginEnv(cluster: SimCluster, stateDir: string, kubeconfig = cluster.kubeconfig): NodeJS.ProcessEnv {
  return { ...process.env, PATH: `${join(REPO, 'bin')}${delimiter}${process.env.PATH}`, KUBECONFIG: kubeconfig, KUBECTL_ETCD_STATE_DIR: stateDir };
}

/** Runs `kubectl etcd ARGS` to completion. */
export function kubectlEtcd(cluster: SimCluster, stateDir: string, args: string[], opts: { kubeconfig?: string; timeoutMs?: number } = {}): Promise<CommandResult> {
  return run('kubectl', ['etcd', ...args], { env: pluginEnv(cluster, stateDir, opts.kubeconfig), timeoutMs: opts.timeoutMs ?? 600_000 });
}

/** Starts `kubectl etcd ARGS`; `until(re)` resolves once stderr matches re. */
export function startKubectlEtcd(cluster: SimCluster, stateDir: string, args: string[]): {
  child: ChildProcess; until(re: RegExp, timeoutMs?: number): Promise<void>; done: Promise<CommandResult>;
} {
  const child = spawn('kubectl', ['etcd', ...args], { env: pluginEnv(cluster, stateDir), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const waiters: Array<{ re: RegExp; resolve: () => void }> = [];
  child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    for (const w of [...waiters]) if (w.re.test(stderr)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(); }
  });
  const done = new Promise<CommandResult>((res) => child.on('close', (code, signal) => res({ code: code ?? (signal ? 137 : -1), stdout, stderr })));
  return {
    child,
    done,
    until: (re, timeoutMs = 300_000) => new Promise<void>((res, rej) => {
      if (re.test(stderr)) return res();
      const timer = setTimeout(() => rej(new Error(`no ${re} on stderr within ${timeoutMs} ms: ${stderr}`)), timeoutMs);
      waiters.push({ re, resolve: () => { clearTimeout(timer); res(); } });
      void done.then(() => { clearTimeout(timer); if (!re.test(stderr)) rej(new Error(`exited before ${re}: ${stderr}`)); });
    }),
  };
}

/** How to reach etcd from inside a member pod of a fixture. */
export interface EtcdAccess {
  namespace: string;
  container: string;
  pods: string[];
  /** etcdctl with the connection flags. */
  etcdctl: string[];
  /** The directory holding member/ inside the pod. */
  dataDir: string;
  /** The member volume's mount path: where a restore keeps the old data (member.pre-restore-*). */
  volumeDir: string;
}

const ANTHOS_CERTS = '/etcd.local.config/certificates';
/** The anthos / single fixture. */
export function anthosAccess(members: number): EtcdAccess {
  return {
    namespace: 'uc1', container: 'kube-etcd', pods: Array.from({ length: members }, (_, i) => `kube-etcd-${i}`),
    etcdctl: ['etcdctl', '--endpoints=https://127.0.0.1:2379', `--cacert=${ANTHOS_CERTS}/etcdCA.crt`, `--cert=${ANTHOS_CERTS}/etcd.crt`, `--key=${ANTHOS_CERTS}/etcd.key`],
    dataDir: '/var/lib/etcd', volumeDir: '/var/lib/etcd',
  };
}
/** The bitnami fixture. */
export const BITNAMI_ACCESS: EtcdAccess = {
  namespace: 'etcd', container: 'etcd', pods: ['etcd-0', 'etcd-1', 'etcd-2'],
  etcdctl: ['etcdctl', '--endpoints=http://127.0.0.1:2379'], dataDir: '/bitnami/etcd/data', volumeDir: '/bitnami/etcd',
};

/**
 * Runs etcdctl in a member pod; throws on failure. Every call the tests make may be sent again (reads,
 * put and del of their own keys, snapshot save to a fixed path), and etcd answers most through the
 * leader: a leader election on a loaded machine times such a request out ("request timed out",
 * "deadline exceeded", "no leader", "leader changed"), and a user would simply send it again. So it
 * is, for up to 60 s; any other failure throws at once.
 */
export async function etcdctl(cluster: SimCluster, a: EtcdAccess, pod: string, args: string[]): Promise<string> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const r = await cluster.kubectl(['-n', a.namespace, 'exec', pod, '-c', a.container, '--', ...a.etcdctl, ...args]);
    if (r.code === 0) return r.stdout;
    if (Date.now() > deadline || !/request timed out|deadline exceeded|no leader|leader changed/i.test(r.stderr)) {
      throw new Error(`etcdctl ${args.join(' ')} in ${pod} failed: ${r.stderr}`);
    }
    await new Promise((res) => setTimeout(res, 1000));
  }
}

/** The member list as `pod` sees it (etcd 3.5 answers it linearizably, through the leader). */
export async function memberList(cluster: SimCluster, a: EtcdAccess, pod: string): Promise<string> {
  return etcdctl(cluster, a, pod, ['member', 'list']);
}

/** Keys under prefix as the member itself holds them (serializable read, no quorum). */
export async function keysOn(cluster: SimCluster, a: EtcdAccess, pod: string, prefix: string): Promise<string[]> {
  const out = await etcdctl(cluster, a, pod, ['get', prefix, '--prefix', '--keys-only', '--consistency=s']);
  return out.split('\n').filter((l) => l.trim() !== '').sort();
}

/** Every member's status row (revision, leader, health), from `endpoint status` in the pod. */
export async function memberRevision(cluster: SimCluster, a: EtcdAccess, pod: string): Promise<{ revision: number; leader: boolean }> {
  const out = await etcdctl(cluster, a, pod, ['endpoint', 'status', '-w', 'json']);
  const s = (JSON.parse(out.replace(/:\s*(\d{16,})/g, ':"$1"')) as Array<{ Status: { header: { revision: number | string; member_id: string }; leader: string } }>)[0]!.Status;
  return { revision: Number(s.header.revision), leader: s.header.member_id === s.leader };
}

/**
 * Every member's revision from one `endpoint status --cluster` in the first pod: the members are
 * asked within milliseconds of each other, so writers running meanwhile (the API servers) rarely
 * put a write between two answers, as separate execs seconds apart do.
 */
export async function clusterRevisions(cluster: SimCluster, a: EtcdAccess): Promise<number[]> {
  const out = await etcdctl(cluster, a, a.pods[0]!, ['endpoint', 'status', '--cluster', '-w', 'json']);
  return (JSON.parse(out.replace(/:\s*(\d{16,})/g, ':"$1"')) as Array<{ Status: { header: { revision: number | string } } }>).map((e) => Number(e.Status.header.revision));
}

/**
 * Waits until `ms` have passed since the newest start of a member container: right after a start
 * etcd refuses member removals (--strict-reconfig-check: every peer connected for 5 s first), so a
 * preStop hook's `member remove` needs that long. Waits no longer than that.
 */
export async function settledSinceStart(cluster: SimCluster, a: EtcdAccess, ms = 10_000): Promise<void> {
  const r = await cluster.kubectl(['-n', a.namespace, 'get', 'pods', '-o', 'json']);
  const pods = JSON.parse(r.stdout) as { items: Array<{ metadata: { name: string }; status: { containerStatuses?: Array<{ name: string; state?: { running?: { startedAt?: string } } }> } }> };
  const starts = pods.items.filter((p) => a.pods.includes(p.metadata.name))
    .flatMap((p) => (p.status.containerStatuses ?? []).filter((c) => c.name === a.container).map((c) => c.state?.running?.startedAt))
    .map((t) => (t ? Date.parse(t) : Date.now()));
  // startedAt has whole seconds: one more covers the part cut off.
  const wait = Math.max(Date.now(), ...starts) + ms + 1000 - Date.now();
  if (wait > 0) await new Promise((done) => setTimeout(done, Math.min(wait, ms + 1000)));
}

/** Lists a directory in a member pod. */
export async function lsInPod(cluster: SimCluster, a: EtcdAccess, pod: string, dir: string): Promise<string[]> {
  const r = await cluster.kubectl(['-n', a.namespace, 'exec', pod, '-c', a.container, '--', 'ls', '-1', dir]);
  if (r.code !== 0) throw new Error(`ls ${dir} in ${pod} failed: ${r.stderr}`);
  return r.stdout.split('\n').filter(Boolean);
}

/** One request as the simulator's audit log records it. */
export interface AuditEntry { user: string; verb: string; apiGroup: string; resource: string; subresource: string; namespace: string; name: string; code: number; requestURI?: string }

/** Number of lines in the audit log now (to read only what follows). */
export function auditMark(cluster: SimCluster): number {
  return readFileSync(join(cluster.dir, 'audit.log'), 'utf8').split('\n').filter(Boolean).length;
}

/** Audit entries after a mark. */
export function auditSince(cluster: SimCluster, mark: number): AuditEntry[] {
  return readFileSync(join(cluster.dir, 'audit.log'), 'utf8').split('\n').filter(Boolean).slice(mark).map((l) => JSON.parse(l) as AuditEntry);
}

/**
 * Requests that change cluster state. Not counted: SelfSubjectAccessReviews (a question, stored
 * nowhere), pods/exec (a read-only command such as `etcd --version` or `df` in a member) and
 * dry-run writes (dryRun=All: admitted or refused, never stored).
 */
export function mutations(entries: AuditEntry[], user: string): AuditEntry[] {
  return entries.filter((e) => e.user === user && ['create', 'update', 'patch', 'delete', 'deletecollection'].includes(e.verb)
    && e.resource !== 'selfsubjectaccessreviews' && e.subresource !== 'exec' && !/[?&]dryRun=All(&|$)/.test(e.requestURI ?? ''));
}

/**
 * Runs a plugin command that must be refused before any change: exit 1, no mutating request by
 * `user` in the audit log, one stderr line (warnings aside). Returns that line; throws otherwise.
 */
export async function refusedBeforeChange(cluster: SimCluster, stateDir: string, args: string[], opts: { kubeconfig?: string; user?: string } = {}): Promise<string> {
  const mark = auditMark(cluster);
  const r = await kubectlEtcd(cluster, stateDir, args, opts.kubeconfig ? { kubeconfig: opts.kubeconfig } : {});
  if (r.code !== 1) throw new Error(`kubectl etcd ${args.join(' ')} exited ${r.code}, not 1 (refused): ${r.stderr}`);
  const changed = mutations(auditSince(cluster, mark), opts.user ?? 'admin');
  if (changed.length) throw new Error(`kubectl etcd ${args.join(' ')} changed the cluster before refusing: ${JSON.stringify(changed)}`);
  const lines = r.stderr.trim().split('\n').filter((l) => !l.startsWith('warning:'));
  if (lines.length !== 1) throw new Error(`kubectl etcd ${args.join(' ')} refused in ${lines.length} lines, not one: ${r.stderr}`);
  return lines[0]!;
}

/**
 * Waits until `endpoint health --cluster` passes from the first pod (a quorum read), as an operator
 * would before writing after a restore or an abort. A plain loop, so it also works in beforeAll.
 */
export async function waitClusterHealthy(cluster: SimCluster, a: EtcdAccess, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await cluster.kubectl(['-n', a.namespace, 'exec', a.pods[0]!, '-c', a.container, '--', ...a.etcdctl, 'endpoint', 'health', '--cluster']);
    if (r.code === 0) return;
    if (Date.now() > deadline) throw new Error(`etcd in ${a.namespace} did not become healthy within ${timeoutMs / 1000} s: ${r.stderr.trim().split('\n').pop()}`);
    await new Promise((res) => setTimeout(res, 1000));
  }
}

/**
 * Waits until a run-to-completion pod has ended and asserts it Succeeded. When it failed, or did not
 * end in time, the error carries what an operator would look at: phase, container states, the
 * pod's events and its logs (a bare `kubectl wait` timeout said none of that).
 */
export async function waitPodSucceeded(cluster: SimCluster, ns: string, pod: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let phase = '';
  while (Date.now() < deadline) {
    const r = await cluster.kubectl(['-n', ns, 'get', 'pod', pod, '-o', 'jsonpath={.status.phase}']);
    phase = r.code === 0 ? r.stdout.trim() : `(get failed: ${r.stderr.trim()})`;
    if (phase === 'Succeeded') return;
    if (phase === 'Failed') break;
    await new Promise((res) => setTimeout(res, 500));
  }
  const status = await cluster.kubectl(['-n', ns, 'get', 'pod', pod, '-o', 'jsonpath={.spec.nodeName} {.status.containerStatuses}']);
  const events = await cluster.kubectl(['-n', ns, 'get', 'events', '--field-selector', `involvedObject.name=${pod}`, '-o', 'custom-columns=REASON:.reason,MESSAGE:.message']);
  const logs = await cluster.kubectl(['-n', ns, 'logs', pod, '--all-containers']);
  const uid = (await cluster.kubectl(['-n', ns, 'get', 'pod', pod, '-o', 'jsonpath={.metadata.uid}'])).stdout.trim();
  throw new Error(`pod ${ns}/${pod} ${phase === 'Failed' ? 'failed' : `did not end within ${timeoutMs / 1000} s (phase ${phase || 'unknown'})`}\n` +
    `status: ${status.stdout.trim() || status.stderr.trim()}\nevents:\n${events.stdout.trim() || events.stderr.trim()}\nlogs:\n${(logs.stdout + logs.stderr).trim()}\n` +
    `kubelet:\n${simLogLines(cluster, 'kubelet', `${ns}/${pod}`).join('\n')}\nprocesses:\n${uid ? podProcesses(cluster, uid).join('\n') : '(no uid)'}`);
}

/**
 * What an operator would look at when pods do not become Ready: each pod's phase and container
 * states, the last lines of its logs (and of its previous run), the kubelet's lines about it and
 * its live processes. For a failure's message.
 */
export async function describePods(cluster: SimCluster, ns: string, pods: string[]): Promise<string> {
  const out: string[] = [];
  for (const pod of pods) {
    const r = await cluster.kubectl(['-n', ns, 'get', 'pod', pod, '-o', 'json']);
    if (r.code !== 0) { out.push(`${pod}: ${r.stderr.trim()}`); continue; }
    const p = JSON.parse(r.stdout) as { metadata: { uid: string }; status?: { phase?: string; containerStatuses?: unknown[] } };
    out.push(`${pod}: ${p.status?.phase} ${JSON.stringify(p.status?.containerStatuses ?? [])}`);
    for (const previous of [true, false]) {
      const l = await cluster.kubectl(['-n', ns, 'logs', pod, '--all-containers', `--previous=${previous}`, '--tail=15']);
      out.push(`  logs${previous ? ' (previous)' : ''}:\n${(l.stdout + l.stderr).trim().replace(/^/gm, '    ')}`);
    }
    out.push(`  kubelet:\n${simLogLines(cluster, 'kubelet', `${ns}/${pod}`, 10).join('\n').replace(/^/gm, '    ')}`);
    out.push(`  processes:\n${podProcesses(cluster, p.metadata.uid).join('\n').replace(/^/gm, '    ')}`);
  }
  return out.join('\n');
}

/** The last lines of a sim component's log that name `needle` (for a failure's message). */
function simLogLines(cluster: SimCluster, component: string, needle: string, max = 20): string[] {
  const file = join(cluster.dir, 'logs', `${component}.log`);
  if (!existsSync(file)) return [`(no ${file})`];
  return readFileSync(file, 'utf8').split('\n').filter((l) => l.includes(needle)).slice(-max);
}

/**
 * Every process of a simulated pod still alive, with its state (R, S, D, Z, T) and command line:
 * those in a container's root and the wrappers that name the pod's directory. A pod stuck Running
 * says here which process did not exit.
 */
function podProcesses(cluster: SimCluster, uid: string): string[] {
  const podDir = join(cluster.dir, 'kubelet', 'pods', uid);
  const out: string[] = [];
  for (const p of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').join(' ').trim();
      let root = '';
      try { root = readlinkSync(`/proc/${p}/root`); } catch { /* gone or not ours */ }
      if (!root.startsWith(podDir) && !cmd.includes(podDir)) continue;
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.push(`${p} ppid=${state[1]} ${state[0]} ${cmd.slice(0, 200)}`);
    } catch { /* gone meanwhile */ }
  }
  return out.length ? out : ['(none)'];
}

/** Removes the data earlier restores set aside (as an operator would once satisfied): room on the volumes. */
export async function pruneSetAside(cluster: SimCluster, a: EtcdAccess): Promise<void> {
  for (const pod of a.pods) {
    const r = await cluster.kubectl(['-n', a.namespace, 'exec', pod, '-c', a.container, '--', 'sh', '-c', `rm -rf ${a.volumeDir}/member.pre-restore-* ${a.volumeDir}/member.restored-*`]);
    if (r.code !== 0) throw new Error(`pruning set-aside data in ${pod} failed: ${r.stderr}`);
  }
}

/** The keys a round writes before its backup (backupThenDiverge). */
export const A_KEYS = ['/test/a1', '/test/a2', '/test/a3'];

/**
 * One round of a restore test: on a healthy cluster with earlier kept copies pruned, writes the
 * A keys, backs up with the plugin to WORK/round-N.db, then diverges (b<N> written, a1 deleted);
 * returns the snapshot and the keys after diverging (what --abort must bring back).
 */
export async function backupThenDiverge(cluster: SimCluster, a: EtcdAccess, dirs: { work: string; state: string }, round: number): Promise<{ snapshot: string; before: string[] }> {
  await waitClusterHealthy(cluster, a);
  await pruneSetAside(cluster, a);
  const pod = a.pods[0]!;
  await etcdctl(cluster, a, pod, ['del', '/test/', '--prefix']);
  for (const k of A_KEYS) await etcdctl(cluster, a, pod, ['put', k, k]);
  const snapshot = join(dirs.work, `round-${round}.db`);
  const b = await kubectlEtcd(cluster, dirs.state, ['backup', '-n', a.namespace, '-f', snapshot]);
  if (b.code !== 0) throw new Error(`backup failed (exit ${b.code}): ${b.stderr}`);
  await etcdctl(cluster, a, pod, ['put', `/test/b${round}`, 'written after the backup']);
  await etcdctl(cluster, a, pod, ['del', '/test/a1']);
  return { snapshot, before: await keysOn(cluster, a, pod, '/test/') };
}

/**
 * The set-up every restore e2e file shares: the prerequisites (a clear failure naming what to
 * install), the built plugin, one local test cluster with the fixtures, and a private work dir
 * with the plugin's state dir inside.
 */
export async function startRestoreCluster(fixtures: string[], name: string, opts: { hostnameLabels?: 'name' | 'differ'; serverVersion?: '1.32' | '1.35'; nodes?: number } = {}): Promise<{ cluster: SimCluster; work: string; state: string }> {
  requireRoot();
  requireCommand('kubectl', 'install kubectl ≥ 1.30');
  requireCommand('etcd', 'install etcd-server (apt-get install -y etcd-server etcd-client)');
  const built = await buildIfStale(REPO);
  if (built && built.code !== 0) throw new Error(`npm run build failed: ${built.stdout}${built.stderr}`);
  const cluster = await startCluster({ fixtures, ...opts });
  const work = mkdtempSync(join(tmpdir(), `${name}-e2e-`));
  return { cluster, work, state: join(work, 'state') };
}

/** spec.replicas and status.readyReplicas of a StatefulSet or Deployment. */
export async function workloadReplicas(cluster: SimCluster, namespace: string, kind: string, name: string): Promise<{ spec: number; ready: number }> {
  const r = await cluster.kubectl(['-n', namespace, 'get', kind, name, '-o', 'json']);
  if (r.code !== 0) throw new Error(`kubectl get ${kind} ${name} -n ${namespace} failed: ${r.stderr}`);
  const o = JSON.parse(r.stdout) as { spec: { replicas: number }; status: { readyReplicas?: number } };
  return { spec: o.spec.replicas, ready: o.status.readyReplicas ?? 0 };
}
