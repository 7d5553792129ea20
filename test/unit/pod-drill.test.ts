// The drill pod of `verify --restore --in-cluster`: what it is made of (pure), and how the image is
// probed (a small fake exec), and its script under dash with real etcd. End to end in test/e2e/schedule.test.ts.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { computeKvHash, hashRulesOf } from '../../src/etcd/snapshot/kvhash.js';
import type { EtcdMember } from '../../src/etcd/topology.js';
import type { CommandResult } from '../../src/kube/exec.js';
import { askMembers, drillOutcome, drillPodManifest, drillPodSpec, drillScript } from '../../src/verify/pod-drill.js';
import { startEtcd } from '../helpers/etcd.js';
import { etcdBinaries } from '../sim/etcd-versions.js';

const member: EtcdMember = {
  pod: 'etcd-0', namespace: 'uc1', container: 'etcd', node: 'node-1', ordinal: 0, name: 'etcd-0',
  endpoint: 'https://127.0.0.1:2379', clientPort: 2379, peerUrl: 'https://etcd-0.etcd:2380', dataDir: '/var/lib/etcd',
  tls: {}, clientTlsEnabled: true, image: 'registry.example/etcd:3.5.16', runAsUser: 1001,
  podFacts: { imagePullSecrets: [{ name: 'pull' }], securityContext: { runAsNonRoot: true, allowPrivilegeEscalation: false }, resources: { limits: { memory: '1Gi' } } },
};

/** An exec that answers as an image with `shell` (and these programs missing) or without one. */
function exec(shell: boolean, missing: string[] = [], runs = true) {
  const calls: string[][] = [];
  const run = async (_t: unknown, argv: string[]): Promise<CommandResult> => {
    calls.push(argv);
    if (!runs) throw new Error('container not found ("etcd")');
    if (argv[0] === 'sh') return shell ? { exitCode: 0, stdout: missing.map((m) => `missing:${m}\n`).join(''), stderr: '' } : { exitCode: 126, stdout: '', stderr: 'exec: "sh": executable file not found in $PATH' };
    if (argv[0] === 'etcd') return { exitCode: 0, stdout: 'etcd Version: 3.5.16\n', stderr: '' };
    return { exitCode: 127, stdout: '', stderr: 'not found' };
  };
  return { run, calls };
}

describe('drill pod', () => {
  it('an image with a shell: one container of it, as the members\' user, no token, no service links, an emptyDir only, ending within the hour', async () => {
    const spec = await drillPodSpec(exec(true).run, member);
    expect(spec.shellImage).toBeUndefined();
    const pod = drillPodManifest(spec, 'kubectl-etcd-drill-abc123');
    expect(pod.metadata).toMatchObject({ name: 'kubectl-etcd-drill-abc123', namespace: 'uc1', labels: { 'kubectl-etcd/drill': 'true', 'app.kubernetes.io/managed-by': 'kubectl-etcd' } });
    expect(pod.spec).toMatchObject({ restartPolicy: 'Never', automountServiceAccountToken: false, enableServiceLinks: false, activeDeadlineSeconds: 3600, imagePullSecrets: [{ name: 'pull' }] });
    expect(pod.spec!.shareProcessNamespace).toBeUndefined();
    expect(pod.spec!.containers).toHaveLength(1);
    expect(pod.spec!.containers[0]).toMatchObject({ name: 'drill', image: member.image, securityContext: { runAsNonRoot: true, allowPrivilegeEscalation: false, runAsUser: 1001 }, resources: { limits: { memory: '1Gi' } } });
    expect(pod.spec!.volumes!.every((v) => v.emptyDir !== undefined)).toBe(true);
    expect(pod.spec!.containers[0]!.ports).toBeUndefined();
  });

  it('an image without a shell: the shell image beside it, one process namespace, both as root (to reach the etcd image\'s root through /proc)', async () => {
    const spec = await drillPodSpec(exec(false).run, member, 'registry.example/busybox:1');
    expect(spec.shellImage).toBe('registry.example/busybox:1');
    const pod = drillPodManifest(spec, 'kubectl-etcd-drill-abc123');
    expect(pod.spec!.shareProcessNamespace).toBe(true);
    expect(pod.spec!.containers.map((c) => [c.name, c.image, c.securityContext?.runAsUser])).toEqual([['drill', 'registry.example/busybox:1', 0], ['etcd-tools', member.image, 0]]);
    expect(pod.spec!.containers[1]!.command).toContain('--name=kubectl-etcd-tools');
  });

  it('refuses an image with a shell that lacks a tool, and a member that runs nothing, naming the way out', async () => {
    await expect(drillPodSpec(exec(true, ['sed']).run, member)).rejects.toThrow(/^image "registry\.example\/etcd:3\.5\.16" of pod "etcd-0" lacks sed, which the drill in a pod needs$/);
    await expect(drillPodSpec(exec(true, [], false).run, member)).rejects.toThrow(/^cannot run a command in pod "etcd-0" \(container "etcd"\): container not found/);
  });
});

/** The busybox binary (scripts/setup.sh installs busybox-static), or a failure saying so. */
function busybox(): string {
  const r = spawnSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' });
  const bin = r.stdout.trim();
  if (!bin) throw new Error('busybox is missing: apt-get install busybox-static (scripts/setup.sh does)');
  return bin;
}

let applets: string | undefined;
/** A dir of busybox's applets as links to it, as a busybox image's /bin is. */
function busyboxApplets(): string {
  if (applets) return applets;
  const bin = busybox();
  const dir = mkdtempSync(join(tmpdir(), 'busybox-applets-'));
  for (const applet of execFileSync(bin, ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean)) symlinkSync(bin, join(dir, applet));
  return (applets = dir);
}

// The drill's script itself, under dash and busybox sh with real etcd (3.4: etcdctl restores; 3.5: etcdutl), as
// the pod of an image with a shell (or the busybox beside a distroless one) runs it; the outcome judged as verify judges it.
describe('the drill pod\'s script, against real etcd', () => {
  for (const minor of ['3.4', '3.5'] as const) {
    it(`etcd ${minor}: a good snapshot passes with what etcd serves; one etcd refuses is a failed drill with its reason`, async () => {
      const bins = etcdBinaries(minor);
      const work = mkdtempSync(join(tmpdir(), 'pod-drill-'));
      const etcd = await startEtcd({ minor });
      try {
        for (let i = 0; i < 20; i++) await etcd.ctl(['put', `/registry/k${i}`, `v${i}`]);
        await etcd.ctl(['del', '/registry/k0']);
        await etcd.ctl(['compact', '10']);
        await etcd.ctl(['put', '/registry/k1', 'again']);
        const snapshot = join(work, 'snapshot.db');
        await etcd.ctl(['snapshot', 'save', snapshot]);
        const version = minor === '3.4' ? '3.4.23' : /etcd Version:\s*(\S+)/.exec(execFileSync(bins.etcd, ['--version'], { encoding: 'utf8' }))![1]!;
        const expected = await computeKvHash(snapshot, hashRulesOf(version));
        const where = { at: 'now', where: 'pod' as const, pod: 'p', namespace: 'ns', image: 'i', etcdVersion: version };
        // dash (a Debian-based etcd image's sh), and busybox sh with busybox's applets first on
        // PATH (the shell image of a distroless member's drill pod).
        for (const sh of [{ argv: ['dash'], path: `${dirname(bins.etcd)}:/usr/bin:/bin` }, { argv: [busybox(), 'sh'], path: `${dirname(bins.etcd)}:${busyboxApplets()}:/usr/bin:/bin` }]) {
          const runScript = (dir: string) => {
            const r = spawnSync(sh.argv[0]!, [...sh.argv.slice(1), '-c', drillScript(''), 'sh', dir, '0', String(expected.revision)], { encoding: 'utf8', env: { PATH: sh.path }, timeout: 120_000 });
            return { exitCode: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
          };
          // A fresh dir per run, as the pod's emptyDir is.
          const fresh = mkdtempSync(join(tmpdir(), 'pod-drill-good-'));
          writeFileSync(join(fresh, 'snapshot.db'), readFileSync(snapshot));
          const good = drillOutcome(runScript(fresh), where, expected);
          rmSync(fresh, { recursive: true, force: true });
          expect(good, sh.argv.join(' ')).toMatchObject({ outcome: 'passed', restoredWith: `${minor === '3.4' ? 'etcdctl' : 'etcdutl'} ${version}`, served: { revision: expected.revision, keys: 19, hash: expected.hash, compactRevision: 10 } });

          // A file etcd's restore refuses (its trailer no longer matches: one byte changed).
          const bad = mkdtempSync(join(tmpdir(), 'pod-drill-bad-'));
          try {
            const data = readFileSync(snapshot);
            data[5000] ^= 0xff;
            writeFileSync(join(bad, 'snapshot.db'), data);
            const failed = drillOutcome(runScript(bad), where, expected);
            expect(failed.outcome, sh.argv.join(' ')).toBe('failed');
            expect(failed.reason).toMatch(/^etcd(ctl|utl) snapshot restore refused the snapshot: .*(sha256|hash)/i);
          } finally {
            rmSync(bad, { recursive: true, force: true });
          }
        }
      } finally {
        await etcd.destroy();
        rmSync(work, { recursive: true, force: true });
      }
    }, 120_000);
  }
});

describe('drill pod, after review', () => {
  it('runs on a member\'s node with its tolerations, and without the members\' ephemeral-storage (its limit would count the emptyDir)', async () => {
    const m: EtcdMember = { ...member, podFacts: { ...member.podFacts, tolerations: [{ key: 'dedicated', operator: 'Exists' }], resources: { requests: { 'ephemeral-storage': '1Gi', cpu: '1' }, limits: { 'ephemeral-storage': '2Gi' } } } };
    const pod = drillPodManifest(await drillPodSpec(exec(true).run, m), 'p');
    expect(JSON.stringify(pod.spec!.affinity)).toContain('"values":["node-1"]');
    expect(pod.spec!.tolerations).toEqual([{ key: 'dedicated', operator: 'Exists' }]);
    expect(pod.spec!.containers[0]!.resources).toEqual({ requests: { cpu: '1' } });
  });

  it('a killed restore tool or etcd, or tools not reached, is an error (nothing recorded), not a failed drill', () => {
    const expected = { hash: 1, compactRevision: -1, revision: 5, liveKeys: 3, authEnabled: false };
    const where = { at: 'now', where: 'pod' as const, pod: 'p', namespace: 'ns', image: 'i', etcdVersion: '3.5.16' };
    expect(() => drillOutcome({ exitCode: 94, stdout: '== util etcdutl\n== killed 137\n', stderr: '' }, where, expected)).toThrow(/a process was killed \(exit code 137: out of memory\?\)/);
    expect(() => drillOutcome({ exitCode: 94, stdout: '== util etcdctl\n== killed 96\nno etcd of container etcd-tools runs in this pod\n', stderr: '' }, where, expected)).toThrow(/tools were not reached \(exit code 96\)/);
    expect(drillOutcome({ exitCode: 3, stdout: '== util etcdutl\n== exited 2\npanic: failed to Unmarshal lease proto item\n', stderr: '' }, where, expected)).toMatchObject({ outcome: 'failed', reason: 'etcd exited with code 2 on the restored data: panic: failed to Unmarshal lease proto item' });
  });

  it('asks the members healthy first, passes over one whose pod runs nothing, and says when none can be asked', async () => {
    const calls: string[] = [];
    const run = async (t: { pod: string }, argv: string[]): Promise<CommandResult> => {
      calls.push(t.pod);
      if (t.pod === 'etcd-1') throw new Error('container not found');
      return exec(true).run(t, argv);
    };
    const down = { ...member, pod: 'etcd-1', name: 'etcd-1' };
    const up = { ...member, pod: 'etcd-2', name: 'etcd-2' };
    const got = await askMembers(run as never, [{ member: up, healthy: false }, { member: down, healthy: true, version: '3.5.16' }]);
    expect([...new Set(calls)]).toEqual(['etcd-1', 'etcd-2']);
    expect(got.version).toBeUndefined();
    await expect(askMembers(run as never, [])).rejects.toThrow(/has no members to ask/);
  });
});
