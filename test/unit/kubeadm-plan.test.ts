// The kubeadm restore plan (src/restore/kubeadm/plan.ts), built from what discovery reads of the
// kubeadm fixture's mirror pods: per node the member's own name and node-IP peer URL, its paths,
// the agent as a static pod that names no API object, and the installer pinned to the node.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { discoverTopology } from '../../src/etcd/discovery/index.js';
import { kubeadmLayoutWarnings } from '../../src/etcd/kubeadm-layout.js';
import { agentArgv, agentRestoreDir, parseAgentOutcome } from '../../src/restore/kubeadm/agent.js';
import { fileJournalStore } from '../../src/restore/journal.js';
import { buildKubeadmPlan, hostDataDir, type KubeadmPlanInput } from '../../src/restore/kubeadm/plan.js';
import { kubeadmPreflight } from '../../src/restore/kubeadm/start.js';
import { KUBEADM_OPTIONS, kubeadmManifests } from '../sim/fixtures/kubeadm.js';
import { fixtureLister } from '../sim/fixtures/pods.js';

const snapshot = { path: '/tmp/s.db', size: 4096, sha256: 'a'.repeat(64), revision: 42, totalKey: 10, hasTrailer: true, liveKeys: 7, etcdVersion: '3.5' };

async function planInput(extra: Partial<KubeadmPlanInput> = {}): Promise<KubeadmPlanInput> {
  const topology = await discoverTopology(fixtureLister(kubeadmManifests({ ...KUBEADM_OPTIONS, etcd: '3.5' })), { namespace: 'kube-system' });
  return { topology, snapshot, tool: { binary: 'etcdutl', bumpRevision: 1_000_000_000 }, shellImage: 'docker.io/library/busybox:1.36', stamp: '20261207T060000Z', safetyBackup: true, ...extra };
}

/** Every key named in an object, at any depth. */
function keysIn(o: unknown, out = new Set<string>()): Set<string> {
  if (Array.isArray(o)) o.forEach((x) => keysIn(x, out));
  else if (o && typeof o === 'object') for (const [k, v] of Object.entries(o)) { out.add(k); keysIn(v, out); }
  return out;
}

describe('the kubeadm restore plan', () => {
  it('one node per static etcd pod, each restoring with its own name and node-IP peer URL into the agent\'s dir, with a fresh token', async () => {
    const plan = buildKubeadmPlan(await planInput());
    expect(plan.nodes.map((n) => [n.node, n.member.name, n.member.peerUrl])).toEqual([
      ['node-1', 'node-1', 'https://10.88.255.254:2380'],
      ['node-2', 'node-2', 'https://10.88.255.253:2380'],
      ['node-3', 'node-3', 'https://10.88.255.252:2380'],
    ]);
    expect(plan.initialCluster).toBe('node-1=https://10.88.255.254:2380,node-2=https://10.88.255.253:2380,node-3=https://10.88.255.252:2380');
    expect(plan.initialClusterToken).toMatch(/-restore-20261207T060000Z$/);
    const n2 = plan.nodes[1]!;
    expect(n2.agent.restoreArgv).toEqual([
      'etcdutl', 'snapshot', 'restore', '/var/lib/etcd/kubectl-etcd-restore-20261207T060000Z/snapshot.db',
      '--name=node-2', `--initial-cluster=${plan.initialCluster}`, `--initial-cluster-token=${plan.initialClusterToken}`,
      '--initial-advertise-peer-urls=https://10.88.255.253:2380', `--data-dir=${agentRestoreDir('/var/lib/etcd', '20261207T060000Z')}`,
      '--bump-revision=1000000000', '--mark-compacted',
    ]);
    expect(n2.asideDir).toBe('/var/lib/etcd/member.pre-restore-20261207T060000Z');
    expect(n2.keepDir).toBe('/etc/kubernetes/kubectl-etcd-restore-20261207T060000Z');
    expect(n2.agent.tls.certFile).toMatch(/^\/etc\/kubernetes\/pki\/etcd\//);
    expect(plan.warnings).toEqual([]);
  });

  it('the agent is a static pod: host network, the node\'s /etc/kubernetes and data dir at the etcd pod\'s paths, and no API object named', async () => {
    const plan = buildKubeadmPlan(await planInput());
    for (const n of plan.nodes) {
      const spec = n.agentPod.spec;
      expect(spec['hostNetwork']).toBe(true);
      // A static pod may not name a ServiceAccount, Secret, ConfigMap, claim or pull secret (the kubelet refuses it).
      const keys = keysIn(spec);
      for (const k of ['serviceAccountName', 'imagePullSecrets', 'secret', 'configMap', 'persistentVolumeClaim', 'projected', 'nodeName']) expect(keys.has(k), k).toBe(false);
      const agent = spec.containers[0]!;
      expect(agent['command']).toEqual(agentArgv(n.agent));
      expect(agent['imagePullPolicy']).toBe('IfNotPresent');
      const mounts = (agent['volumeMounts'] as Array<{ mountPath: string }>).map((m) => m.mountPath);
      const seen = (p: string) => mounts.some((m) => p === m || p.startsWith(`${m}/`));
      for (const p of [n.dataDir, n.manifestDir, n.keepDir, n.snapshotPath, n.member.tls.caFile!, n.member.tls.certFile!, n.member.tls.keyFile!]) expect(seen(p), p).toBe(true);
      // The etcd image's tools, copied by an init container of that image.
      expect((spec['initContainers'] as Array<{ image: string }>)[0]!.image).toBe('registry.k8s.io/etcd:3.5.16-0');
    }
  });

  it('the installer is an API pod pinned to its node, tolerating every taint, pulling the same images', async () => {
    const plan = buildKubeadmPlan(await planInput());
    for (const n of plan.nodes) {
      const spec = n.installerPod.spec;
      expect(spec['nodeName']).toBe(n.node);
      expect(spec['tolerations']).toEqual([{ operator: 'Exists' }]);
      expect(n.installerPod.metadata.name).toBe(`kubectl-etcd-install-20261207t060000z-${n.node}`);
      expect(spec.containers[0]!['image']).toBe(n.agentPod.spec.containers[0]!['image']);
      expect(spec['initContainers']).toEqual(n.agentPod.spec['initContainers']);
      expect(spec['volumes']).toEqual(n.agentPod.spec['volumes']);
    }
  });

  it('without a revision bump (etcdctl, etcd 3.4) the plan warns to restart what caches the API; the safety backup is a step only when taken', async () => {
    const plan = buildKubeadmPlan(await planInput({ tool: { binary: 'etcdctl' }, safetyBackup: false }));
    expect(plan.nodes[0]!.agent.restoreArgv.slice(0, 3)).toEqual(['etcdctl', 'snapshot', 'restore']);
    expect(plan.warnings.join('\n')).toMatch(/not bumped.*restart the scheduler, controller-manager and kubelets/);
    expect(plan.steps.join('\n')).not.toMatch(/safety backup/);
  });

  it('hostDataDir: the node path of the data dir only for a hostPath volume without subPath that holds it', () => {
    const m = { dataDir: '/var/lib/etcd/data', dataVolume: { kind: 'hostPath' as const, volumeName: 'd', hostPath: '/mnt/etcd/', mountPath: '/var/lib/etcd' } };
    expect(hostDataDir(m as never)).toBe('/mnt/etcd/data');
    expect(hostDataDir({ ...m, dataVolume: { ...m.dataVolume, subPath: 'x' } } as never)).toBeUndefined();
    expect(hostDataDir({ ...m, dataDir: '/data' } as never)).toBeUndefined();
    expect(hostDataDir({ ...m, dataVolume: { kind: 'emptyDir', volumeName: 'd', mountPath: '/var/lib/etcd' } } as never)).toBeUndefined();
  });
});

describe('the kubeadm restore preflight', () => {
  const facts = { ...snapshot, etcdVersion: '3.5.16' } as Parameters<typeof kubeadmPreflight>[1];
  /** A cluster whose members answer as kubeadm's etcd image does (sh, cp, etcdutl with the bump), nodes Ready at the fixture's IPs. */
  function deps(over: { addresses?: Record<string, string[]>; ready?: boolean; cp?: boolean } = {}) {
    const ips: Record<string, string[]> = { 'node-1': ['10.88.255.254'], 'node-2': ['10.88.255.253'], 'node-3': ['10.88.255.252'], ...over.addresses };
    return {
      readNode: async (node: string) => ({ ready: over.ready ?? true, reason: 'KubeletNotReady', taints: [], addresses: ips[node] }),
      run: async (_c: unknown, argv: string[]) => {
        const cmd = argv.join(' ');
        if (cmd === 'etcdutl version') return { exitCode: 0, stdout: 'etcdutl version: 3.5.16', stderr: '' };
        if (cmd.startsWith('etcdutl snapshot restore --help')) return { exitCode: 0, stdout: '--bump-revision', stderr: '' };
        if (cmd.includes('command -v cp')) return { exitCode: over.cp === false ? 1 : 0, stdout: '/bin/cp', stderr: '' };
        return { exitCode: 127, stdout: '', stderr: 'not found' };
      },
    } as Parameters<typeof kubeadmPreflight>[3];
  }

  it('passes the fixture as kubeadm lays it out: etcdutl with the revision bump', async () => {
    const { topology } = await planInput();
    const r = await kubeadmPreflight(topology, facts, { force: false }, deps());
    expect(r.tool).toEqual({ binary: 'etcdutl', bumpRevision: expect.any(Number) });
    expect(r.warnings).toEqual([]);
  });

  it('refuses a member whose peer URL is not on its node\'s address, a node not Ready, and an etcd image without cp, each in one line with a hint', async () => {
    const { topology } = await planInput();
    const moved = kubeadmPreflight(topology, facts, { force: false }, deps({ addresses: { 'node-2': ['10.88.255.99'] } }));
    await expect(moved).rejects.toThrow(/^member "node-2" advertises peer URL https:\/\/10\.88\.255\.253:2380, but its node "node-2" has address 10\.88\.255\.99$/);
    await expect(moved).rejects.toMatchObject({ hint: expect.stringMatching(/etcd\.yaml.*several interfaces.*or pass --force if you are sure$/) });
    // --force goes on past it (a node with several interfaces), saying so.
    const forced = await kubeadmPreflight(topology, facts, { force: true }, deps({ addresses: { 'node-2': ['10.88.255.99'] } }));
    expect(forced.warnings).toEqual(['member "node-2" advertises peer URL https://10.88.255.253:2380, but its node "node-2" has address 10.88.255.99 (going on because of --force)']);
    await expect(kubeadmPreflight(topology, facts, { force: false }, deps({ ready: false }))).rejects.toThrow(/^node "node-1" of member "node-1" is not Ready \(KubeletNotReady\): its agent could not run there$/);
    await expect(kubeadmPreflight(topology, facts, { force: false }, deps({ cp: false }))).rejects.toThrow(/has no sh and cp to hand its tools to the restore agent/);
  });

  it('refuses data outside a hostPath and certificates the agent would not see', async () => {
    const { topology } = await planInput();
    const m = topology.members[1]!;
    const t1 = structuredClone(topology);
    t1.members[1]!.dataVolume = { kind: 'emptyDir', volumeName: 'd', mountPath: m.dataDir };
    await expect(kubeadmPreflight(t1, facts, { force: false }, deps())).rejects.toThrow(/^member "node-2" keeps its data in \/var\/lib\/etcd, which is not a hostPath volume of its static pod$/);
    const t2 = structuredClone(topology);
    t2.members[2]!.tls = { ...m.tls, keyFile: '/srv/etcd/server.key' };
    await expect(kubeadmPreflight(t2, facts, { force: false }, deps())).rejects.toThrow(/certificate files outside \/etc\/kubernetes and its data dir \(\/srv\/etcd\/server\.key\)/);
  });
});

describe('the backup\'s kubeadm layout warnings', () => {
  it('name a member whose peer URL is off its node\'s IPs and one with certificates outside, each saying a restore would refuse it; a node that cannot be read is not judged', async () => {
    const { topology } = await planInput();
    const ips: Record<string, string[]> = { 'node-1': ['10.88.255.254'], 'node-2': ['10.88.255.99', '203.0.113.9'], 'node-3': ['10.88.255.252'] };
    const fixtureIPs: Record<string, string[]> = { 'node-1': ['10.88.255.254'], 'node-2': ['10.88.255.253'], 'node-3': ['10.88.255.252'] };
    expect(await kubeadmLayoutWarnings(topology.members, async (n) => fixtureIPs[n])).toEqual([]);
    const t = structuredClone(topology);
    t.members[2]!.tls = { ...t.members[2]!.tls, keyFile: '/srv/etcd/server.key' };
    expect(await kubeadmLayoutWarnings(t.members, async (n) => ips[n])).toEqual([
      'member "node-2" advertises peer URL https://10.88.255.253:2380, but its node "node-2" has addresses 10.88.255.99, 203.0.113.9: `kubectl etcd restore` would refuse this member (without --force); check --initial-advertise-peer-urls in node-2\'s /etc/kubernetes/manifests/etcd.yaml against the node (kubectl get node node-2 -o wide); a node with several interfaces may advertise on one its Node does not list',
      'member "node-3" names certificate files outside /etc/kubernetes and its data dir (/srv/etcd/server.key): `kubectl etcd restore` would refuse this member; keep them under /etc/kubernetes/pki/etcd, as kubeadm does',
    ]);
    expect(await kubeadmLayoutWarnings(topology.members, async () => { throw new Error('forbidden'); })).toEqual([]);
  });
});

describe('kubeadm installer pod names', () => {
  it('nodes whose long names differ only at the end get pods of different names, each at most 63 characters', async () => {
    const input = await planInput();
    const long = (x: string) => `k8s-production-europe-west-1-control-plane-${x}`;
    input.topology.members.forEach((m, i) => { m.node = long(String.fromCharCode(97 + i)); });
    const names = buildKubeadmPlan(input).nodes.map((n) => n.installerPod.metadata.name);
    expect(new Set(names).size).toBe(3);
    for (const n of names) expect(n.length).toBeLessThanOrEqual(63);
    expect(names[0]).toMatch(/^kubectl-etcd-install-20261207t060000z-k8s-production-.*-[0-9a-f]{8}$/);
  });
});

describe('kubeadm agent outcomes and journal', () => {
  it('an outcome names the run that wrote it; a first line alone is an outcome without a run', () => {
    expect(parseAgentOutcome('restored\nrun restore-2\n')).toEqual({ kind: 'restored', run: 'restore-2' });
    expect(parseAgentOutcome('failed: etcdutl snapshot restore failed (exit 1: no space)\nrun restore-1\n')).toEqual({ kind: 'failed', why: 'etcdutl snapshot restore failed (exit 1: no space)', run: 'restore-1' });
    expect(parseAgentOutcome('rolled-back\n')).toEqual({ kind: 'rolled-back' });
    expect(parseAgentOutcome('')).toEqual({ kind: 'none' });
  });

  it('a kubeadm journal is version 5: written as 4 (as an older plugin would read it) it is refused, not read as a StatefulSet\'s', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kubeadm-journal-'));
    const plan = buildKubeadmPlan(await planInput());
    const state = { version: 5, stamp: plan.stamp, namespace: 'kube-system', workload: 'kubeadm-etcd', snapshot: {}, etcdReplicas: 3, quiesce: [], pdbs: [], done: [], phase: 'running', plan, startedAt: '', updatedAt: '' };
    writeFileSync(join(dir, 'j.json'), JSON.stringify(state));
    expect((await fileJournalStore(join(dir, 'j.json')).load())?.plan).toMatchObject({ kind: 'kubeadm' });
    writeFileSync(join(dir, 'j.json'), JSON.stringify({ ...state, version: 4 }));
    await expect(fileJournalStore(join(dir, 'j.json')).load()).rejects.toThrow(/is not a kubectl-etcd journal of version 5/);
  });
});
