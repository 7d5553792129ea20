// The benchmark's cluster: the simulator (`npm run sim -- up/down`) with the `anthos` fixture,
// plus the bench-only workloads (bench/fixture.ts) created with real `kubectl create -f`; every
// etcd member of it runs one minor (`--etcd`).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../../test/sim/apiserver/procs.js';
import { tagMinor, type EtcdMinor } from '../../test/sim/etcd-versions.js';
import { ANTHOS_CERT_DIR, ANTHOS_OPTIONS } from '../../test/sim/fixtures/anthos.js';
import { BENCH_NS, benchManifests, SINGLE_NS, singleManifests, writeList } from '../fixture.js';
import { measure, must, type Measured, type RunOptions } from './proc.js';

/** The etcdctl environment that reaches a kube-etcd member from inside its pod. */
export const IN_POD_ETCDCTL_ENV =
  `export ETCDCTL_API=3 ETCDCTL_ENDPOINTS=https://127.0.0.1:2379 ETCDCTL_CACERT=${ANTHOS_CERT_DIR}/etcdCA.crt ` +
  `ETCDCTL_CERT=${ANTHOS_CERT_DIR}/etcd.crt ETCDCTL_KEY=${ANTHOS_CERT_DIR}/etcd.key`;

/** A running benchmark cluster. */
export class BenchCluster {
  readonly kubeconfig: string;
  /** Environment with the built plugin first on PATH and this cluster's kubeconfig. */
  readonly env: NodeJS.ProcessEnv;

  /** `pluginDir`: where kubectl finds `kubectl-etcd` (the shipped single executable's folder, or bin/ for the dev build). */
  private constructor(readonly dir: string, pluginDir = join(REPO_ROOT, 'bin')) {
    this.kubeconfig = join(dir, 'kubeconfig');
    this.env = { ...process.env, KUBECONFIG: this.kubeconfig, PATH: `${pluginDir}:${process.env.PATH ?? ''}` };
  }

  /** Starts the simulator with the anthos fixture and creates the bench workloads, all on etcd `opts.etcd`. */
  static async start(opts: { storage: string; etcd: EtcdMinor; log: (l: string) => void; pluginDir?: string }): Promise<BenchCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'kubectl-etcd-bench-'));
    const c = new BenchCluster(dir, opts.pluginDir);
    opts.log(`starting the local test cluster on etcd ${opts.etcd} in ${dir}`);
    const up = await sim(['up', '--dir', dir, '--fixture', 'anthos', '--etcd', opts.etcd]);
    if (up.code !== 0) {
      await sim(['down', '--dir', dir]).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`sim up failed: ${(up.stderr.trim() || up.stdout.trim()).split('\n').slice(-3).join(' | ')}`);
    }
    try {
      const file = join(dir, 'bench-workloads.json');
      writeList(file, [...benchManifests(dir, opts.storage, opts.etcd), ...singleManifests(dir, opts.etcd)]);
      await c.kubectlMust(['create', '-f', file]);
      await c.waitReady(BENCH_NS, 1);
      await c.waitReady(SINGLE_NS, 3);
    } catch (err) {
      await c.down();
      throw err;
    }
    return c;
  }

  /** Uses a cluster that is already up (e.g. one left by `--keep-cluster`); the caller brings it down. */
  static attach(dir: string, pluginDir?: string): BenchCluster {
    return new BenchCluster(dir, pluginDir);
  }

  /** Stops every process of the cluster and removes its directory. */
  async down(): Promise<void> {
    const r = await sim(['down', '--dir', this.dir]);
    if (r.code !== 0) throw new Error(`sim down failed for ${this.dir}: ${r.stderr.trim() || r.stdout.trim()}`);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /**
   * The etcd release every member runs (`etcd --version` in each namespace's first member);
   * throws when a member's image tag names another minor than `etcd` or the members disagree,
   * e.g. a `--cluster` left by a run with another `--etcd`.
   */
  async etcdRelease(etcd: EtcdMinor): Promise<string> {
    const releases = new Set<string>();
    for (const ns of BENCH_NAMESPACES) {
      const image = (await this.kubectlMust(['get', 'statefulset', 'kube-etcd', '-n', ns, '-o', 'jsonpath={.spec.template.spec.containers[0].image}'])).stdout.trim();
      const minor = tagMinor(image.split(':').pop());
      if (minor !== etcd) {
        throw new Error(`statefulset "kube-etcd" in namespace "${ns}" runs "${image}" (etcd ${minor ?? '?'}), not etcd ${etcd}; pass --etcd ${minor ?? '…'} or start a new cluster`);
      }
      const out = (await this.kubectlMust(['exec', '-n', ns, 'kube-etcd-0', '-c', 'kube-etcd', '--', 'etcd', '--version'])).stdout;
      releases.add(/etcd Version: (\S+)/.exec(out)?.[1] ?? '?');
    }
    if (releases.size !== 1) throw new Error(`the bench cluster's members run etcd ${[...releases].join(' and ')}, not one release`);
    return [...releases][0]!;
  }

  /** Runs real kubectl against this cluster. */
  kubectl(args: string[], opts: RunOptions = {}): Promise<Measured> {
    return measure('kubectl', args, { env: this.env, ...opts });
  }

  /** Runs real kubectl and throws when it fails. */
  kubectlMust(args: string[], opts: RunOptions = {}): Promise<Measured> {
    return must('kubectl', args, { env: this.env, ...opts });
  }

  /** Runs a shell script in a kube-etcd container with etcdctl set up to reach its member. */
  inEtcd(ns: string, pod: string, script: string, opts: RunOptions = {}): Promise<Measured> {
    return this.kubectlMust(['exec', '-n', ns, pod, '-c', 'kube-etcd', '--', 'sh', '-c', `${IN_POD_ETCDCTL_ENV}\n${script}`], opts);
  }

  /** Waits until `count` pods of the namespace are Ready (and none is not). */
  async waitReady(ns: string, count: number, timeoutMs = 300_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      const r = await this.kubectl(['get', 'pods', '-n', ns, '-o', 'json']);
      if (r.code === 0) {
        const pods = (JSON.parse(r.stdout) as { items: PodJson[] }).items.filter((p) => !p.metadata.deletionTimestamp);
        const ready = pods.filter((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
        last = `${ready.length}/${pods.length} ready`;
        if (pods.length === count && ready.length === count) return;
      } else last = r.stderr.trim();
      await new Promise((r) => setTimeout(r, 1000));
    }
    throw new Error(`pods in namespace "${ns}" not ready within ${timeoutMs / 1000} s (${last})`);
  }
}

/** Every namespace with a kube-etcd: the anthos fixture's and the bench's own. */
const BENCH_NAMESPACES = [ANTHOS_OPTIONS.namespace, BENCH_NS, SINGLE_NS];

interface PodJson {
  metadata: { name: string; deletionTimestamp?: string };
  status?: { conditions?: Array<{ type: string; status: string }> };
}

function sim(args: string[]): Promise<Measured> {
  return measure(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'test/sim/cli.ts'), ...args], { cwd: REPO_ROOT, timeoutMs: 600_000 });
}
