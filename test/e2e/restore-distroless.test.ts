// `kubectl etcd restore` on a distroless etcd image (no shell, no cp, no tar): a 3-member
// StatefulSet of gcr.io/etcd-development/etcd with PVC-backed data and TLS. The utility pods get
// busybox for copy and swap, and the etcd image itself beside it (container etcd-tools) for
// `etcdctl snapshot restore`, so the restore tool is the cluster's own version. On both etcd
// minors: 3.4 (etcdctl snapshot restore) and 3.5 (etcdutl, revision bumped). The 3.4 members mount
// their TLS Secret as a folder; the 3.5 members mount each TLS file by subPath from Secret keys
// named otherwise (items rename them), which the stream transport of the backups (the one taken
// before, and the restore's safety backup) must resolve as the kubelet does.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ETCD_MINORS, etcdRelease, type EtcdMinor } from '../sim/etcd-versions.js';
import { ok, teardown, type SimCluster } from '../sim/harness.js';
import {
  auditMark, auditSince, etcdctl, keysOn, kubectlEtcd, memberRevision, mutations, startKubectlEtcd, startRestoreCluster, type EtcdAccess,
} from './restore-helpers.js';
import { distrolessManifest, distrolessSecrets, type DistrolessCertMount } from './backup-support.js';
import { restoreCommand } from '../../src/restore/manifests.js';

const NS = 'distroless-r';
/** The etcd image of the members and the restore tool it offers, per etcd minor (set by each describe's beforeAll). */
let IMAGE = '';
let TOOL: 'etcdctl' | 'etcdutl' = 'etcdctl';
const CERTS = '/etc/etcd/tls';
const DATA_DIR = '/var/run/etcd/default.etcd';
const PODS = ['etcd-0', 'etcd-1', 'etcd-2'];

/** How each minor's members mount their TLS files (backup-support.ts DistrolessCertMount). */
const CERT_MOUNT: Record<EtcdMinor, DistrolessCertMount> = { '3.4': 'volume', '3.5': 'subPath' };

/** Three distroless members on PVCs with room for several restores' WAL (the backup tests' manifest, grown). */
const manifest = (etcd: EtcdMinor) => distrolessManifest({ namespace: NS, replicas: 3, storage: '512Mi', token: 'distroless-r', createNamespace: false, etcd, certMount: CERT_MOUNT[etcd] });

/** etcdctl by argv in the distroless members (the image has etcdctl, nothing else). */
const ACCESS: EtcdAccess = {
  namespace: NS, container: 'etcd', pods: PODS,
  etcdctl: ['etcdctl', '--endpoints=https://127.0.0.1:2379', `--cacert=${CERTS}/etcdCA.crt`, `--cert=${CERTS}/etcd.crt`, `--key=${CERTS}/etcd.key`],
  dataDir: DATA_DIR, volumeDir: '/var/run/etcd',
};

let cluster: SimCluster;
let work: string;
let state: string;
let snapshot: string;

async function waitReady(timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await cluster.kubectl(['-n', NS, 'wait', '--for=condition=Ready', ...PODS.map((p) => `pod/${p}`), '--timeout=60s'], { timeoutMs: 90_000 });
    if (r.code === 0) return;
    // right after the StatefulSet is created its pods may not exist yet
    if (Date.now() > deadline) throw new Error(`distroless etcd did not become ready: ${r.stderr.trim()}`);
    await new Promise((done) => setTimeout(done, 1000));
  }
}

/** Waits (as an operator would) until the cluster reports healthy, then writes: a write needs quorum. */
async function put(keys: Record<string, string>): Promise<void> {
  const deadline = Date.now() + 90_000;
  for (;;) {
    // `endpoint health` on each member's own endpoint (the certificates do not name etcd-N.etcd, so no --cluster)
    const rs = await Promise.all(PODS.map((p) => cluster.kubectl(['-n', NS, 'exec', p, '-c', 'etcd', '--', ...ACCESS.etcdctl, 'endpoint', 'health'])));
    const r = rs.find((x) => x.code !== 0) ?? rs[0]!;
    if (r.code === 0) break;
    if (Date.now() > deadline) throw new Error(`etcd in ${NS} did not become healthy within 90 s: ${r.stderr.trim().split('\n').pop()}`);
    await new Promise((done) => setTimeout(done, 1000));
  }
  for (const [k, v] of Object.entries(keys)) await etcdctl(cluster, ACCESS, 'etcd-0', ['put', k, v]);
}

async function everyMemberHas(expected: string[]): Promise<void> {
  for (const pod of PODS) expect(await keysOn(cluster, ACCESS, pod, '/test/'), pod).toEqual(expected);
}

async function utilityPodsLeft(): Promise<string> {
  return ok(await cluster.kubectl(['-n', NS, 'get', 'pods', '-l', 'app.kubernetes.io/managed-by=kubectl-etcd', '-o', 'name'])).trim();
}

/** Starts a restore and SIGKILLs the plugin once the restore tool runs in the etcd-tools containers. */
async function killedMidRestore(): Promise<void> {
  const started = startKubectlEtcd(cluster, state, ['restore', snapshot, '-n', NS, '--yes', '--no-safety-backup']);
  await started.until(new RegExp(`==> ${TOOL} snapshot restore`));
  started.child.kill('SIGKILL');
  await started.done;
}

/** The directory on the node that backs a member's PVC (a local PersistentVolume), as the PV names it. */
async function volumeDir(pod: string): Promise<string> {
  const pv = ok(await cluster.kubectl(['-n', NS, 'get', 'pvc', `data-${pod}`, '-o', 'jsonpath={.spec.volumeName}'])).trim();
  return ok(await cluster.kubectl(['get', 'pv', pv, '-o', 'jsonpath={.spec.local.path}'])).trim();
}

describe.each(ETCD_MINORS)('etcd %s', (minor) => {
  beforeAll(async () => {
    // The `single` fixture brings the etcd certificates the distroless members reuse.
    IMAGE = `gcr.io/etcd-development/etcd:v${etcdRelease(minor)}`;
    TOOL = minor === '3.4' ? 'etcdctl' : 'etcdutl';
    ({ cluster, work, state } = await startRestoreCluster(['single'], `restore-distroless-${minor}`));
    snapshot = join(work, 'a.db');
    const secret = JSON.parse(ok(await cluster.kubectl(['-n', 'uc1', 'get', 'secret', 'kube-etcd-certs', '-o', 'json']))) as { data: Record<string, string> };
    ok(await cluster.kubectl(['create', 'namespace', NS]));
    const secrets = distrolessSecrets({ namespace: NS, certMount: CERT_MOUNT[minor] }, secret.data);
    ok(await cluster.kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: secrets }) }));
    ok(await cluster.kubectl(['apply', '-f', '-'], { input: manifest(minor) }));
    await waitReady(240_000);

    // Keys A, a backup by stream (no shell for --via exec), then keys B and one of A deleted.
    for (const k of ['a1', 'a2', 'a3']) await etcdctl(cluster, ACCESS, 'etcd-0', ['put', `/test/${k}`, k]);
    const b = await kubectlEtcd(cluster, state, ['backup', '-n', NS, '--via', 'stream', '-f', snapshot]);
    expect(b.code, b.stderr).toBe(0);
    for (const k of ['b1', 'b2']) await etcdctl(cluster, ACCESS, 'etcd-1', ['put', `/test/${k}`, k]);
    await etcdctl(cluster, ACCESS, 'etcd-2', ['del', '/test/a1']);
    expect(await keysOn(cluster, ACCESS, 'etcd-0', '/test/')).toEqual(['/test/a2', '/test/a3', '/test/b1', '/test/b2']);
  }, 600_000);

  afterAll(() => teardown(cluster, work));

  if (CERT_MOUNT[minor] === 'subPath') {
    describe('TLS files mounted one by one (subPath) from Secret keys that items rename', () => {
      it('the naive reads fail: no Secret key is named like a file etcd reads, and the image has no cat', async () => {
        for (const [name, keys] of [['etcd-ca', ['ca.crt']], ['etcd-tls', ['tls.crt', 'tls.key']]] as const) {
          const data = (JSON.parse(ok(await cluster.kubectl(['-n', NS, 'get', 'secret', name, '-o', 'json']))) as { data: Record<string, string> }).data;
          expect(Object.keys(data).sort(), name).toEqual(keys);
        }
        const byName = await cluster.kubectl(['-n', NS, 'get', 'secret', 'etcd-tls', '-o', 'jsonpath={.data.etcd\\.crt}']);
        expect(byName.code, byName.stderr).toBe(0);
        expect(byName.stdout).toBe('');
        const cat = await cluster.kubectl(['-n', NS, 'exec', 'etcd-0', '-c', 'etcd', '--', 'cat', `${CERTS}/etcd.crt`]);
        expect(cat.code).not.toBe(0);
        expect(cat.stderr).toMatch(/executable file not found/);
      }, 60_000);

      it('status sees every member healthy; backup --via stream reads each file from its Secret key and verifies the snapshot', async () => {
        const status = await kubectlEtcd(cluster, state, ['status', '-n', NS, '-o', 'json']);
        expect(status.code, status.stderr).toBe(0);
        const members = (JSON.parse(status.stdout) as { members: Array<{ pod: string; healthy: boolean }> }).members;
        expect(members.map((m) => [m.pod, m.healthy])).toEqual(PODS.map((p) => [p, true]));
        const file = join(work, 'subpath.db');
        const b = await kubectlEtcd(cluster, state, ['backup', '-n', NS, '--via', 'stream', '-f', file, '-o', 'json']);
        expect(b.stderr).toBe('');
        expect(b.code).toBe(0);
        expect(JSON.parse(b.stdout)).toMatchObject({ transport: 'stream', verified: { size: true, sha256Trailer: true, bbolt: true } });
        const inspect = await kubectlEtcd(cluster, state, ['inspect', file, '-o', 'json']);
        expect(inspect.code, inspect.stderr).toBe(0);
        expect(JSON.parse(inspect.stdout)).toMatchObject({ outcome: 'valid', trailer: 'valid' });
      }, 120_000);
    });
  }

  describe('kubectl etcd restore on a distroless etcd image', () => {
    it('--dry-run -o yaml plans utility pods of busybox beside the etcd image (container etcd-tools), and changes nothing', async () => {
      const mark = auditMark(cluster);
      const r = await kubectlEtcd(cluster, state, ['restore', snapshot, '-n', NS, '--dry-run', '-o', 'yaml']);
      expect(r.code, r.stderr).toBe(0);
      expect(mutations(auditSince(cluster, mark), 'admin')).toEqual([]);
      const plan = parse(r.stdout) as {
        tool: { binary: string };
        warnings: string[];
        utilityImages: { shellImage: string; toolsImage: string; toolContainer: string };
        members: Array<{ name: string; restoreCommand: string[]; utilityPod: { spec: { containers: Array<{ name: string; image: string; command: string[] }> } } }>;
      };
      expect(plan.tool.binary).toBe(TOOL);
      expect(plan.utilityImages).toEqual({ shellImage: 'docker.io/library/busybox:1.36', toolsImage: IMAGE, toolContainer: 'etcd-tools' });
      expect(plan.members.map((m) => m.name)).toEqual(PODS);
      for (const m of plan.members) {
        const containers = m.utilityPod.spec.containers.map((c) => [c.name, c.image, c.command[0]]);
        expect(containers, m.name).toEqual([['etcd-utility', 'docker.io/library/busybox:1.36', '/bin/sh'], ['etcd-tools', IMAGE, 'etcd']]);
        expect(m.restoreCommand.slice(0, 3)).toEqual([TOOL, 'snapshot', 'restore']);
      }
      expect(plan.warnings.some((w) => /^image "docker\.io\/library\/busybox:1\.36" is not running anywhere to probe/.test(w)), plan.warnings.join('\n')).toBe(true);
      // --utility-image replaces busybox as the shell image; the restore tool still comes from the etcd image.
      const alpine = await kubectlEtcd(cluster, state, ['restore', snapshot, '-n', NS, '--dry-run', '-o', 'yaml', '--utility-image', 'docker.io/library/alpine:3.20']);
      expect(alpine.code, alpine.stderr).toBe(0);
      expect((parse(alpine.stdout) as typeof plan).utilityImages).toEqual({ shellImage: 'docker.io/library/alpine:3.20', toolsImage: IMAGE, toolContainer: 'etcd-tools' });
    }, 120_000);

    it("the naive utility pod (the same two containers without shareProcessNamespace) cannot reach the etcd image's tool: its shell sees only its own processes; the planned one runs it", async () => {
      const r = await kubectlEtcd(cluster, state, ['restore', snapshot, '-n', NS, '--dry-run', '-o', 'yaml']);
      expect(r.code, r.stderr).toBe(0);
      type Spec = { shareProcessNamespace?: boolean; volumes: Array<{ name: string; emptyDir?: unknown }>; containers: Array<{ name: string; volumeMounts?: Array<{ name: string }> }> };
      const planned = (parse(r.stdout) as { members: Array<{ utilityPod: { spec: Spec } }> }).members[0]!.utilityPod.spec;
      expect(planned.shareProcessNamespace).toBe(true);
      // The planned pod without the member's volume (a probe, not a restore), with and without the shared namespace.
      const scratch = new Set(planned.volumes.filter((v) => v.emptyDir).map((v) => v.name));
      const pod = (name: string, share: boolean) => ({
        apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: NS },
        spec: {
          ...planned, shareProcessNamespace: share, volumes: planned.volumes.filter((v) => scratch.has(v.name)),
          containers: planned.containers.map((c) => ({ ...c, volumeMounts: (c.volumeMounts ?? []).filter((m) => scratch.has(m.name)) })),
        },
      });
      ok(await cluster.kubectl(['create', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [pod('tools-naive', false), pod('tools-shared', true)] }) }));
      try {
        ok(await cluster.kubectl(['-n', NS, 'wait', '--for=condition=Ready', 'pod/tools-naive', 'pod/tools-shared', '--timeout=60s'], { timeoutMs: 90_000 }));
        const run = (name: string) => cluster.kubectl(['-n', NS, 'exec', name, '-c', 'etcd-utility', '--', ...restoreCommand('/tmp/probe', [TOOL, 'version'], true)]);
        const naive = await run('tools-naive');
        expect(naive.code).toBe(96);
        // kubectl's own log lines go first: client-go logs "Unknown stream id 1, discarding message"
        // when the server's first frame beats its stream set-up (tools/remotecommand/websocket.go), a
        // race of kubectl's, not of the pod's; the script's stderr is what this test is about.
        expect(naive.stderr.replace(/^[IWEF]\d{4} \d{2}:\d{2}:\d{2}\.\d+\s+\d+ [\w.-]+:\d+\] .*\n/gm, ''), naive.stderr)
          .toMatch(/^no etcd of container etcd-tools runs in this pod; it must share the pod's process namespace \(shareProcessNamespace: true\)\n/);
        const shared = await run('tools-shared');
        expect(shared.code, shared.stderr).toBe(0);
        expect(shared.stdout).toMatch(new RegExp(`^${TOOL} version: ${IMAGE.replace(/^.*:v?/, '').replace(/\./g, '\\.')}\n`));
      } finally {
        await cluster.kubectl(['-n', NS, 'delete', 'pod', 'tools-naive', 'tools-shared', '--grace-period=1', '--wait=true'], { timeoutMs: 90_000 });
      }
    }, 180_000);

    it('brings back exactly the backed-up keys on every member, healthy, old data kept on every volume, no utility pod left', async () => {
      const r = await kubectlEtcd(cluster, state, ['restore', snapshot, '-n', NS, '--yes']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^restored ${NS}/etcd .* on 3 member\\(s\\) .*verified$`, 'm'));
      // taken by stream (no shell in the members), with the client certificate read from the Secrets
      expect(r.stderr).toMatch(/safety backup: \S+\.db$/m);
      expect(r.stderr).toContain(`utility pods: image "docker.io/library/busybox:1.36"`);
      expect(r.stderr).toMatch(new RegExp(`beside the etcd image "${IMAGE.replace(/[.]/g, '\\.')}" \\(container etcd-tools: ${TOOL}`));
      for (const pod of PODS) {
        expect(await keysOn(cluster, ACCESS, pod, '/test/'), pod).toEqual(['/test/a1', '/test/a2', '/test/a3']);
        expect(await etcdctl(cluster, ACCESS, pod, ['endpoint', 'health', '-w', 'json']), pod).toMatch(/"health":true/);
        // No shell in the member to list its data dir: read the volume where the PV keeps it on the node.
        const volume = await volumeDir(pod);
        // The old data is kept on the volume, outside the data dir (a start script may wipe what is in it).
        expect(readdirSync(volume).filter((f) => /^member\.pre-restore-\d{8}T\d{6}Z$/.test(f)), pod).toHaveLength(1);
        expect(readdirSync(join(volume, 'default.etcd')), pod).toEqual(['member']);
        // the snapshot copy and the restore dir lived beside default.etcd; both are gone
        expect(readdirSync(volume).filter((f) => f.startsWith('kubectl-etcd')), pod).toEqual([]);
      }
      await expect.poll(async () => new Set((await Promise.all(PODS.map((p) => memberRevision(cluster, ACCESS, p)))).map((s) => s.revision)).size, { timeout: 30_000 }).toBe(1);
      expect((await Promise.all(PODS.map((p) => memberRevision(cluster, ACCESS, p)))).filter((s) => s.leader)).toHaveLength(1);
      expect(await utilityPodsLeft()).toBe('');
    }, 600_000);

    it('after SIGKILL while the restore tool runs: --abort puts the pre-restore data back on every member', async () => {
      await put({ '/test/c1': 'after-restore' });
      await killedMidRestore();
      const abort = await kubectlEtcd(cluster, state, ['restore', '-n', NS, '--abort']);
      expect(abort.code, abort.stderr).toBe(0);
      await put({});
      await everyMemberHas(['/test/a1', '/test/a2', '/test/a3', '/test/c1']);
      expect(await utilityPodsLeft()).toBe('');
    }, 600_000);

    it('after SIGKILL while the restore tool runs: --resume rebuilds the two-container pods from the journal and reaches the verified end', async () => {
      await killedMidRestore();
      const resumed = await kubectlEtcd(cluster, state, ['restore', '-n', NS, '--resume']);
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(resumed.stdout).toMatch(/verified$/m);
      await everyMemberHas(['/test/a1', '/test/a2', '/test/a3']);
      expect(await utilityPodsLeft()).toBe('');
    }, 600_000);
  });
});
