/**
 * The kubeadm restore's node agent (src/restore/kubeadm/agent.ts) run for real, under busybox sh
 * (busybox's applets first on PATH; dash too with ALL_SHELLS=1), against a real etcd that a small stand-in kubelet
 * runs while `etcd.yaml` is in the node's manifest folder (and stops, SIGTERM, when it is not),
 * as the kubelet does a static pod. One member on 127.0.0.1, no TLS: the script's part is the
 * node's, the cluster's is the e2e tests'. etcd 3.4 restores with etcdctl, 3.5 with etcdutl and
 * a revision bump. With CI=true a missing busybox or etcd 3.5 fails.
 * (How a cut run finishes and a node whose kubelet is down run under busybox on 3.4 only: the
 * script takes the same path there on every shell and minor.)
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { agentArgv, agentRestoreDir, agentWorkDir, parseAgentOutcome, type AgentOptions } from '../../src/restore/kubeadm/agent.js';
import { restoreArgvFor, type RestoreTool } from '../../src/restore/plan.js';
import type { EtcdMember } from '../../src/etcd/topology.js';
import { freePort } from '../helpers/etcd.js';
import { etcdBinaries, type EtcdMinor } from '../sim/etcd-versions.js';

const CI = process.env['CI'] === 'true';
const root = mkdtempSync(join(tmpdir(), 'kubeadm-agent-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function which(bin: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

interface Shell { name: string; sh: string[]; path: string }

/** dash, and busybox sh with its applets first on PATH; the etcd tools of the minor after them. */
function shells(minor: EtcdMinor): Shell[] {
  const bins = etcdBinaries(minor);
  if (!existsSync(bins.etcd)) {
    if (CI) throw new Error(`etcd ${minor} is missing at ${bins.etcd}: run npm run setup (scripts/setup.sh)`);
    return [];
  }
  const tools = join(root, `tools-${minor}`);
  if (!existsSync(tools)) {
    mkdirSync(tools);
    symlinkSync(bins.etcdctl, join(tools, 'etcdctl'));
    if (bins.etcdutl) symlinkSync(bins.etcdutl, join(tools, 'etcdutl'));
  }
  const path = `${tools}:${process.env['PATH'] ?? '/usr/bin:/bin'}`;
  const list: Shell[] = [{ name: 'dash', sh: [which('dash') ?? 'dash'], path }];
  const busybox = which('busybox');
  if (!busybox && CI) throw new Error('busybox is missing: apt-get install busybox-static (scripts/setup.sh does)');
  if (busybox) {
    const apps = join(root, 'busybox-applets');
    if (!existsSync(apps)) {
      mkdirSync(apps);
      for (const a of execFileSync(busybox, ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean)) symlinkSync(busybox, join(apps, a));
    }
    list.push({ name: 'busybox sh', sh: [busybox, 'sh'], path: `${apps}:${path}` });
  }
  return list;
}

/** A control-plane node: its manifest folder, etcd data dir, and a kubelet that runs etcd.yaml. */
class Node {
  readonly dir: string;
  readonly manifests: string;
  readonly data: string;
  readonly endpoint: string;
  private proc?: ChildProcess;
  private timer?: NodeJS.Timeout;
  /** A stopped kubelet: it starts and stops nothing. */
  paused = false;
  starts = 0;

  private constructor(readonly minor: EtcdMinor, client: number, private readonly peer: number) {
    this.dir = mkdtempSync(join(root, 'node-'));
    this.manifests = join(this.dir, 'etc/kubernetes/manifests');
    this.data = join(this.dir, 'var/lib/etcd');
    this.endpoint = `http://127.0.0.1:${client}`;
    mkdirSync(this.manifests, { recursive: true });
    mkdirSync(this.data, { recursive: true, mode: 0o700 });
    writeFileSync(join(this.manifests, 'etcd.yaml'), 'kind: Pod\nmetadata: {name: etcd}\n');
    writeFileSync(join(this.manifests, 'kube-apiserver.yaml'), 'kind: Pod\nmetadata: {name: kube-apiserver}\n');
  }

  static async make(minor: EtcdMinor): Promise<Node> {
    const n = new Node(minor, await freePort(), await freePort());
    n.timer = setInterval(() => n.sync(), 200);
    await n.waitAnswers();
    return n;
  }

  get peerUrl(): string {
    return `http://127.0.0.1:${this.peer}`;
  }

  private sync(): void {
    if (this.paused) return;
    const want = existsSync(join(this.manifests, 'etcd.yaml'));
    if (want && !this.proc) {
      this.starts++;
      // The flags of the manifest, which never change: with data in the dir, etcd ignores the initial ones.
      this.proc = spawn(etcdBinaries(this.minor).etcd, ['--name=node-1', `--data-dir=${this.data}`, `--listen-client-urls=${this.endpoint}`,
        `--advertise-client-urls=${this.endpoint}`, `--listen-peer-urls=${this.peerUrl}`, `--initial-advertise-peer-urls=${this.peerUrl}`,
        `--initial-cluster=node-1=${this.peerUrl}`, '--initial-cluster-token=kubeadm-old', '--initial-cluster-state=new'], { stdio: 'ignore' });
      const p = this.proc;
      p.once('exit', () => { if (this.proc === p) this.proc = undefined; });
    } else if (!want && this.proc) {
      this.proc.kill('SIGTERM');
    }
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  ctl(args: string[]): string {
    return execFileSync(etcdBinaries(this.minor).etcdctl, [`--endpoints=${this.endpoint}`, ...args], { encoding: 'utf8', env: { ...process.env, ETCDCTL_API: '3' }, stdio: ['ignore', 'pipe', 'pipe'] });
  }

  async waitAnswers(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        this.ctl(['endpoint', 'status', '--command-timeout=1s']);
        return;
      } catch {
        if (Date.now() > deadline) throw new Error(`etcd at ${this.endpoint} does not answer`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  keys(): string[] {
    return this.ctl(['get', '/k/', '--prefix', '--keys-only']).split('\n').filter(Boolean);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    const p = this.proc;
    if (p) {
      p.kill('SIGTERM');
      await new Promise((r) => p.once('exit', r));
    }
  }
}

/** Runs the agent; `onLine` sees each stderr line as it comes (to kill it at a step). */
async function runAgent(sh: Shell, o: AgentOptions, onLine?: (line: string, kill: () => void) => void): Promise<{ code: number | null; stderr: string }> {
  const [, , script, ...args] = agentArgv(o);
  const child = spawn(sh.sh[0]!, [...sh.sh.slice(1), '-c', script!, ...args], { env: { ...process.env, PATH: sh.path }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  let buf = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      onLine?.(line, () => child.kill('SIGKILL'));
    }
  });
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  return { code, stderr };
}

function options(node: Node, mode: AgentOptions['mode'], snapshot: string, stamp: string): AgentOptions {
  // The restore command as the plan builds it (plan.ts restoreArgvFor), into the agent's restore dir.
  const member = { name: 'node-1', peerUrl: node.peerUrl };
  const tool: RestoreTool = node.minor === '3.4' ? { binary: 'etcdctl' } : { binary: 'etcdutl', bumpRevision: 1_000_000 };
  return {
    mode, stamp, run: `${mode}-1`, dataDir: node.data, manifestDir: node.manifests, snapshot,
    asideDir: join(node.data, `member.pre-restore-${stamp}`), restoredAsideDir: join(node.data, `member.restored-${stamp}`),
    restoreArgv: restoreArgvFor(member as EtcdMember, {
      snapshotPath: snapshot, restoreDir: agentRestoreDir(node.data, stamp), initialCluster: `node-1=${node.peerUrl}`,
      token: `kubectl-etcd-${stamp}`, tool, skipHashCheck: false,
    }),
    endpoint: node.endpoint, tls: {}, stopTimeoutSeconds: 20, startTimeoutSeconds: 30,
  };
}

/** Writes /k/a, snapshots it into the restore's work dir (where the plugin puts it on the node), then writes /k/b. */
function seed(node: Node, stamp: string): string {
  node.ctl(['put', '/k/a', '1']);
  const snapshot = join(agentWorkDir(node.data, stamp), 'snapshot.db');
  mkdirSync(dirname(snapshot), { recursive: true });
  node.ctl(['snapshot', 'save', snapshot]);
  node.ctl(['put', '/k/b', '2']);
  return snapshot;
}

const outcomeOf = (node: Node, stamp: string) => parseAgentOutcome(readFileSync(join(agentWorkDir(node.data, stamp), 'outcome'), 'utf8'));
const manifestsIn = (node: Node) => readdirSync(node.manifests).sort();

// Every case under busybox sh on 3.4 (the shell of the images the agent runs in); the main case on
// 3.5 too (etcdutl, the revision bump), and under dash only when ALL_SHELLS=1: each case takes
// 5-20 s of real etcd, and the suite's time is kept under an hour.
const ALL_SHELLS = process.env['ALL_SHELLS'] === '1';
describe.each(['3.4', '3.5'] as EtcdMinor[])('the kubeadm node agent on etcd %s', (minor) => {
  for (const sh of shells(minor).filter((s) => ALL_SHELLS || s.name === 'busybox sh' || !which('busybox'))) {
    const every = minor === '3.4' && (sh.name === 'busybox sh' || !which('busybox'));
    it(`${sh.name}: restores the snapshot in place of the member's data (kept aside), manifests back; again: nothing to do; rollback: the old data back`, async () => {
      const node = await Node.make(minor);
      try {
        const snapshot = seed(node, 's1');
        const revBefore = Number(JSON.parse(node.ctl(['get', '/k/a', '-w', 'json'])).header.revision);

        const r = await runAgent(sh, options(node, 'restore', snapshot, 's1'));
        expect(r.code, r.stderr).toBe(0);
        expect(outcomeOf(node, 's1')).toEqual({ kind: 'restored', run: 'restore-1' });
        expect(manifestsIn(node)).toEqual(['etcd.yaml', 'kube-apiserver.yaml']);
        // Both manifests stay kept beside the folder, as they were, mode and all.
        const keep = join(node.manifests, '..', 'kubectl-etcd-restore-s1');
        expect(readdirSync(keep).sort()).toEqual(['etcd.yaml', 'kube-apiserver.yaml']);
        expect(readFileSync(join(keep, 'etcd.yaml'), 'utf8')).toBe(readFileSync(join(node.manifests, 'etcd.yaml'), 'utf8'));
        expect(node.keys()).toEqual(['/k/a']);
        expect(existsSync(join(node.data, 'member.pre-restore-s1', 'wal'))).toBe(true);
        const rev = Number(JSON.parse(node.ctl(['get', '/k/a', '-w', 'json'])).header.revision);
        expect(revBefore).toBe(3);
        if (minor === '3.5') expect(rev).toBeGreaterThanOrEqual(1_000_000);
        expect(r.stderr).toMatch(/moved .*member to .*member\.pre-restore-s1 \(kept\)/);

        // Run again (a plugin cut off after the agent finished): nothing stops.
        const starts = node.starts;
        const again = await runAgent(sh, options(node, 'restore', snapshot, 's1'));
        expect(again.code, again.stderr).toBe(0);
        expect(again.stderr).toMatch(/restored already/);
        expect(node.starts).toBe(starts);

        const back = await runAgent(sh, options(node, 'rollback', snapshot, 's1'));
        expect(back.code, back.stderr).toBe(0);
        expect(outcomeOf(node, 's1')).toEqual({ kind: 'rolled-back', run: 'rollback-1' });
        await node.waitAnswers();
        expect(node.keys()).toEqual(['/k/a', '/k/b']);
        expect(existsSync(join(node.data, 'member.restored-s1', 'wal'))).toBe(true);
        expect(manifestsIn(node)).toEqual(['etcd.yaml', 'kube-apiserver.yaml']);
      } finally {
        await node.close();
      }
    }, 120_000);

    if (every) it(`${sh.name}: killed once etcd stopped (restoring, or swapping), run again it finishes`, async () => {
      const node = await Node.make(minor);
      try {
        const snapshot = seed(node, 's2');
        const cut = await runAgent(sh, options(node, 'restore', snapshot, 's2'), (line, kill) => { if (/^etcd stopped$/.test(line)) kill(); });
        expect(cut.code).toBeNull();
        // The node as the kill left it (the kill lands during the restore or the swap): etcd
        // stopped, both manifests out, a member dir in place (the old one, or the restored one with the old kept).
        expect(manifestsIn(node)).toEqual([]);
        expect(existsSync(join(node.data, 'member', 'wal')) || existsSync(join(node.data, 'member.pre-restore-s2', 'wal'))).toBe(true);
        const r = await runAgent(sh, options(node, 'restore', snapshot, 's2'));
        expect(r.code, r.stderr).toBe(0);
        expect(node.keys()).toEqual(['/k/a']);
      } finally {
        await node.close();
      }
    }, 120_000);

    if (every) it(`${sh.name}: a node whose kubelet does not stop etcd: the manifests go back, its data untouched, the outcome says why`, async () => {
      const node = await Node.make(minor);
      try {
        const snapshot = seed(node, 's3');
        const pid = node.pid;
        node.paused = true;
        const r = await runAgent(sh, { ...options(node, 'restore', snapshot, 's3'), stopTimeoutSeconds: 3 });
        node.paused = false;
        expect(r.code).toBe(1);
        const outcome = outcomeOf(node, 's3');
        expect(outcome.kind).toBe('failed');
        expect(outcome.kind === 'failed' && outcome.why).toMatch(/^etcd on this node still answers 3 s after its manifest was moved out \(is its kubelet running\?\); the manifests are back, its data untouched$/);
        expect(manifestsIn(node)).toEqual(['etcd.yaml', 'kube-apiserver.yaml']);
        expect(node.pid).toBe(pid);
        expect(node.keys()).toEqual(['/k/a', '/k/b']);
        expect(existsSync(join(node.data, 'member.pre-restore-s3'))).toBe(false);
      } finally {
        await node.close();
      }
    }, 120_000);
  }
});
