// `sim up` and `sim down`: bring a cluster's processes up in order and wait until it is usable,
// or stop them all and report anything left behind.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { V1Node, V1Pod, V1StatefulSet, V1Status } from '@kubernetes/client-node';
import type { Json } from '../json.js';
import { call, collectionPath, resourceFor, type ClientConfig } from './client.js';
import { clientConfig, readSimConfig, writeClusterFiles, type HostnameLabels } from './clusterfiles.js';
import { prepareBundles } from '../bundle.js';
import { unmountNodeDisks } from '../nodedisk.js';
import { COMPONENTS, componentPresent, mountsUnder, processesMentioning, REPO_ROOT, runningPid, startComponent, stopComponent } from './procs.js';
import type { ServerMinor } from './discovery.js';
import { GATE_FILE } from './gate.js';
import type { FixtureBuild } from '../fixtures/common.js';

/** Options of `sim up`. */
export interface UpOptions {
  dir: string;
  fixtures: string[];
  nodes: number;
  /** `differ`: every node's `kubernetes.io/hostname` label differs from its name (default `name`: equal). */
  hostnameLabels?: HostnameLabels;
  /** The Kubernetes version the API server pretends to be (default 1.32). */
  serverVersion?: ServerMinor;
  /** How long to wait for nodes and fixture pods, in ms. */
  readyTimeoutMs: number;
  log: (line: string) => void;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls /readyz until it answers 200 or timeoutMs passes. */
export async function waitApiReady(cfg: ClientConfig, dir: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const r = await call(cfg, 'GET', '/readyz');
      if (r.code === 200) return;
      last = `HTTP ${r.code}`;
    } catch (err) {
      last = (err as Error).message;
    }
    if (!runningPid(dir, 'apiserver')) break;
    await sleep(150);
  }
  throw new Error(`the simulated apiserver did not become ready (${last}); see ${join(dir, 'logs', 'apiserver.log')}`);
}

/** A list as the API answers it; undefined items when the answer was an error Status instead. */
type ListBody<T> = { items?: Json<T>[] } | undefined;

/** A fixture object, as much as creating it needs. */
interface FixtureObject {
  apiVersion: string;
  kind: string;
  metadata?: { name?: string; namespace?: string };
}

function isReady(obj: Json<V1Node> | Json<V1Pod>): boolean {
  return (obj.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

async function waitNodesReady(cfg: ClientConfig, dir: string, nodes: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let missing = nodes;
  while (Date.now() < deadline) {
    const r = await call(cfg, 'GET', '/api/v1/nodes');
    const ready = new Set(((r.body as ListBody<V1Node>)?.items ?? []).filter(isReady).map((n) => n.metadata!.name));
    missing = nodes.filter((n) => !ready.has(n));
    if (!missing.length) return;
    await sleep(300);
  }
  throw new Error(`nodes not ready: ${missing.join(', ')}; see ${join(dir, 'logs', 'kubelet.log')}`);
}

async function createObjects(cfg: ClientConfig, objects: object[]): Promise<Set<string>> {
  const namespaces = new Set<string>();
  for (const obj of objects as FixtureObject[]) {
    const def = resourceFor(obj.apiVersion, obj.kind);
    if (!def) throw new Error(`fixture object kind "${obj.kind}" (${obj.apiVersion}) is not served by the simulator`);
    const ns = def.namespaced ? obj.metadata?.namespace ?? 'default' : undefined;
    if (ns) namespaces.add(ns);
    const r = await call(cfg, 'POST', collectionPath(def, ns), obj);
    const status = r.body as Json<V1Status> | undefined;
    if (r.code >= 300 && status?.reason !== 'AlreadyExists') {
      throw new Error(`creating ${def.resource} "${obj.metadata?.name}" failed: ${status?.message ?? r.code}`);
    }
  }
  return namespaces;
}

/** Waits until every pod of the namespaces is Ready, and each expected one (a static pod's mirror, which comes when the kubelet makes it) is there. */
async function waitPodsReady(cfg: ClientConfig, dir: string, namespaces: Set<string>, timeoutMs: number, expected: Map<string, Set<string>> = new Map()): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let notReady: string[] = [];
  while (Date.now() < deadline) {
    notReady = [];
    let total = 0;
    for (const ns of namespaces) {
      const r = await call(cfg, 'GET', `/api/v1/namespaces/${ns}/pods`);
      const items = (r.body as ListBody<V1Pod>)?.items ?? [];
      for (const p of items) {
        if (p.status?.phase === 'Succeeded') continue;
        total++;
        if (!isReady(p)) notReady.push(`${ns}/${p.metadata!.name} (${p.status?.phase ?? 'Unknown'})`);
      }
      for (const name of expected.get(ns) ?? []) {
        if (!items.some((p) => p.metadata?.name === name)) notReady.push(`${ns}/${name} (no mirror pod yet)`);
      }
    }
    if (!notReady.length && total > 0) return;
    if (!notReady.length && total === 0 && Date.now() > deadline - timeoutMs + 5000) return;
    await sleep(500);
  }
  throw new Error(`pods not ready after ${Math.round(timeoutMs / 1000)}s: ${notReady.join(', ')}; see the logs in ${join(dir, 'logs')}`);
}


async function loadFixtureBuild(name: string, dir: string): Promise<FixtureBuild> {
  const file = join(REPO_ROOT, 'test/sim/fixtures/index.ts');
  if (!existsSync(file)) throw new Error(`fixture "${name}" cannot be loaded: test/sim/fixtures/index.ts is missing`);
  // A literal specifier: the CLI's bundle (../bundle.ts) carries the fixtures along.
  const mod = await import('../fixtures/index.js') as { loadFixtureBuild(n: string, ctx: { dir: string }): Promise<FixtureBuild> };
  return mod.loadFixtureBuild(name, { dir });
}

/** Applies a fixture's follow-ups, then waits until every StatefulSet of its namespaces has rolled out and is Ready. */
async function applyFollowUps(cfg: ClientConfig, dir: string, build: FixtureBuild, namespaces: Set<string>, timeoutMs: number): Promise<void> {
  for (const f of build.followUps) {
    const r = await call(cfg, 'PATCH', f.path, f.patch, 'application/merge-patch+json');
    if (r.code >= 300) throw new Error(`fixture follow-up ${f.path} failed: ${(r.body as Json<V1Status> | undefined)?.message ?? r.code}`);
  }
  const deadline = Date.now() + timeoutMs;
  let pending: string[] = [];
  while (Date.now() < deadline) {
    pending = [];
    for (const ns of namespaces) {
      const r = await call(cfg, 'GET', `/apis/apps/v1/namespaces/${ns}/statefulsets`);
      for (const s of (r.body as ListBody<V1StatefulSet>)?.items ?? []) {
        const st = s.status;
        const want = s.spec?.replicas ?? 1;
        const done = (st?.observedGeneration ?? 0) >= (s.metadata?.generation ?? 1) && st?.updateRevision === st?.currentRevision &&
          st?.updatedReplicas === want && st?.readyReplicas === want;
        if (!done) pending.push(`${ns}/${s.metadata!.name}`);
      }
    }
    if (!pending.length) return waitPodsReady(cfg, dir, namespaces, Math.max(1000, deadline - Date.now()));
    await sleep(500);
  }
  throw new Error(`statefulsets not rolled out after the fixture's follow-ups: ${pending.join(', ')}; see the logs in ${join(dir, 'logs')}`);
}

/** Starts a cluster in opts.dir and waits until its nodes and fixture pods are ready. */
export async function up(opts: UpOptions): Promise<void> {
  const dir = resolve(opts.dir);
  mkdirSync(dir, { recursive: true });
  if (runningPid(dir, 'apiserver')) throw new Error(`a cluster is already running in "${dir}"; run \`npm run sim -- down --dir ${dir}\` first`);
  const bundles = prepareBundles(REPO_ROOT);
  const sim = await writeClusterFiles(dir, opts.nodes, opts.hostnameLabels, opts.serverVersion);
  const cfg = clientConfig(dir);
  startComponent(dir, 'apiserver', COMPONENTS[0].file);
  await waitApiReady(cfg, dir, 30_000);
  await bundles;
  const started = ['apiserver'];
  for (const c of COMPONENTS.slice(1)) {
    if (!componentPresent(c.file)) continue;
    startComponent(dir, c.name, c.file);
    started.push(c.name);
  }
  if (started.includes('kubelet')) await waitNodesReady(cfg, dir, sim.nodes, opts.readyTimeoutMs);
  const namespaces = new Set<string>();
  rmSync(join(dir, GATE_FILE), { force: true });
  const builds: FixtureBuild[] = [];
  const expected = new Map<string, Set<string>>();
  for (const f of opts.fixtures) {
    const build = await loadFixtureBuild(f, dir);
    builds.push(build);
    for (const s of build.setup ?? []) {
      const r = await call(cfg, 'PATCH', s.path, s.patch, 'application/merge-patch+json');
      if (r.code >= 300) throw new Error(`fixture setup ${s.path} failed: ${(r.body as Json<V1Status> | undefined)?.message ?? r.code}`);
    }
    for (const ns of await createObjects(cfg, build.objects)) namespaces.add(ns);
    if (build.staticPods) {
      namespaces.add(build.staticPods.namespace);
      const names = expected.get(build.staticPods.namespace) ?? new Set<string>();
      for (const p of build.staticPods.pods) names.add(p);
      expected.set(build.staticPods.namespace, names);
    }
  }
  if (namespaces.size && started.includes('kubelet')) {
    await waitPodsReady(cfg, dir, namespaces, opts.readyTimeoutMs, expected);
    for (const b of builds.filter((x) => x.followUps.length)) await applyFollowUps(cfg, dir, b, namespaces, opts.readyTimeoutMs);
  }
  if (builds.some((b) => b.apiServerGate)) writeFileSync(join(dir, GATE_FILE), `${JSON.stringify({ since: new Date().toISOString() })}\n`);
  opts.log(`cluster ${sim.id} ready in ${dir}: https://127.0.0.1:${sim.port}, nodes ${sim.nodes.join(', ')}, ` +
    `components ${started.join(', ')}${opts.fixtures.length ? `, fixtures ${opts.fixtures.join(', ')}` : ''}`);
  opts.log(`export KUBECONFIG=${join(dir, 'kubeconfig')}`);
}

/** Stops every component of the cluster in dir; returns what was left behind (empty when clean). */
export async function down(dirArg: string, log: (line: string) => void): Promise<string[]> {
  const dir = resolve(dirArg);
  const sim = readSimConfig(dir);
  // The API stays open while the kubelet stops the static kube-apiservers (and updates what it must).
  rmSync(join(dir, GATE_FILE), { force: true });
  for (const c of [...COMPONENTS].reverse()) {
    const grace = c.name === 'kubelet' ? 60_000 : 10_000;
    if (await stopComponent(dir, c.name, grace)) log(`${c.name} did not stop on SIGTERM and was killed`);
  }
  const left: string[] = [];
  for (const d of unmountNodeDisks(dir)) left.push(`node disk ${d}`);
  for (const p of processesMentioning(dir)) left.push(`process ${p.pid}: ${p.cmd}`);
  for (const m of mountsUnder(dir)) left.push(`mount ${m}`);
  try {
    const netns = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
    for (const line of netns.split('\n')) if (line.startsWith(`ks${sim.id}-`)) left.push(`network namespace ${line.split(' ')[0]}`);
  } catch { /* no ip tool: nothing to check */ }
  return left;
}
