/**
 * Every fixture brought up in the local test cluster: real etcd members that formed one cluster,
 * checked with real kubectl exec and etcdctl inside the pods, the anthos runbook's exact commands,
 * and discovery + etcdctl builders run against the live pod objects.
 */
import type { V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { confirmMembers, discoverTopology, parseMemberList, type EtcdPodLister } from '../../src/etcd/discovery/index.js';
import { endpointHealth, memberList, targetOf } from '../../src/etcd/etcdctl.js';
import type { EtcdTopology } from '../../src/etcd/topology.js';
import { DEFAULT_ETCD_MINOR, ETCD_MINORS, etcdRelease } from '../sim/etcd-versions.js';
import { ok, requireCommand, requireRoot, startCluster, type SimCluster } from '../sim/harness.js';

const CERTS = '/etcd.local.config/certificates';

/** The cluster seen through real kubectl, as discovery's lister. */
function kubectlLister(c: SimCluster): EtcdPodLister {
  const getJson = async (args: string[]) => {
    const r = await c.kubectl([...args, '-o', 'json']);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${r.stderr.trim()}`);
    return JSON.parse(r.stdout);
  };
  return {
    listPods: async (ns, selector) => (await getJson(['-n', ns, 'get', 'pods', ...(selector ? ['-l', selector] : [])])).items as V1Pod[],
    getStatefulSet: async (ns, name) => {
      const r = await c.kubectl(['-n', ns, 'get', 'statefulset', name, '-o', 'json']);
      return r.code === 0 ? (JSON.parse(r.stdout) as V1StatefulSet) : undefined;
    },
    listStatefulSets: async (ns) => (await getJson(['-n', ns, 'get', 'statefulsets'])).items as V1StatefulSet[],
  };
}

/** The layouts; those of one `group` share a cluster (anthos and single both use namespace uc1). */
const layouts = [
  { group: 'many', fixture: 'anthos', namespace: 'uc1', members: ['kube-etcd-0', 'kube-etcd-1', 'kube-etcd-2'], pods: ['kube-etcd-0', 'kube-etcd-1', 'kube-etcd-2'], container: 'kube-etcd' },
  { group: 'many', fixture: 'bitnami', namespace: 'etcd', members: ['etcd-0', 'etcd-1', 'etcd-2'], pods: ['etcd-0', 'etcd-1', 'etcd-2'], container: 'etcd' },
  { group: 'many', fixture: 'kubeadm', namespace: 'kube-system', members: ['node-1', 'node-2', 'node-3'], pods: ['etcd-node-1', 'etcd-node-2', 'etcd-node-3'], container: 'etcd' },
  { group: 'single', fixture: 'single', namespace: 'uc1', members: ['kube-etcd-0'], pods: ['kube-etcd-0'], container: 'kube-etcd' },
];
/**
 * Every fixture on both etcd minors: the other minor as a user asks for it, `npm run sim -- up --dir D
 * --fixture NAME --etcd 3.5` (which names it as the fixture option `NAME:etcd=3.5`, fixtures/index.ts).
 */
const fixtures = ETCD_MINORS.flatMap((etcd) => layouts.map((l) => ({ ...l, etcd, layout: l.fixture, upEtcd: etcd === DEFAULT_ETCD_MINOR ? undefined : etcd })));

/**
 * One cluster per group and minor, up for the describes of that group (which run one after the
 * other): `npm run sim -- up` with several --fixture, as a user may start it. Fewer clusters to
 * start keep the suite short.
 */
const shared = new Map<string, { cluster: Promise<SimCluster>; users: number }>();
function clusterOf(f: (typeof fixtures)[number]): Promise<SimCluster> {
  const key = `${f.group}/${f.etcd}`;
  let entry = shared.get(key);
  if (!entry) {
    const group = layouts.filter((l) => l.group === f.group).map((l) => l.fixture);
    entry = { cluster: startCluster({ fixtures: group, ...(f.upEtcd ? { etcd: f.upEtcd } : {}) }), users: group.length };
    shared.set(key, entry);
  }
  return entry.cluster;
}
async function releaseCluster(f: (typeof fixtures)[number]): Promise<void> {
  const entry = shared.get(`${f.group}/${f.etcd}`);
  if (!entry || --entry.users > 0) return;
  await (await entry.cluster.catch(() => undefined))?.down();
}

describe.each(fixtures)('fixture $fixture on etcd $etcd', (f) => {
  let cluster: SimCluster;
  let topology: EtcdTopology;

  beforeAll(async () => {
    requireRoot();
    requireCommand('kubectl', 'install kubectl 1.30 or newer');
    requireCommand('etcd', 'run apt-get install -y etcd-server etcd-client');
    cluster = await clusterOf(f);
    topology = await discoverTopology(kubectlLister(cluster), { namespace: f.namespace });
  }, 400_000);

  afterAll(async () => {
    await releaseCluster(f);
  }, 120_000);

  const execIn = (pod: string, argv: string[]) => cluster.kubectl(['-n', f.namespace, 'exec', pod, '-c', f.container, '--', ...argv]);

  it('discovery finds every member from the live pod objects, with only -n', () => {
    expect(topology.members.map((m) => m.pod)).toEqual(f.pods);
    expect(topology.members.map((m) => m.name)).toEqual(f.members);
    expect(topology.members.every((m) => m.ready === true && m.node !== undefined && !m.notes)).toBe(true);
  });

  it('etcdctl member list inside the first member shows every member started, and they match discovery', async () => {
    const r = await execIn(f.pods[0]!, memberList(targetOf(topology.members[0]!)).argv);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const live = parseMemberList(r.stdout);
    expect(live.map((m) => m.name).sort()).toEqual([...f.members].sort());
    const confirmed = confirmMembers(topology, live);
    expect(confirmed.outcomes.filter((o) => o.kind !== 'confirmed')).toEqual([]);
  });

  it(`every member runs etcd ${f.etcd}, etcdutl only from 3.5 on`, async () => {
    for (const pod of f.pods) {
      expect(ok(await execIn(pod, ['etcd', '--version']))).toMatch(new RegExp(`^etcd Version: ${etcdRelease(f.etcd).replace(/\./g, '\\.')}$`, 'm'));
      const etcdutl = await execIn(pod, ['etcdutl', 'version']);
      expect(etcdutl.code === 0).toBe(f.etcd !== '3.4');
    }
  });

  it('endpoint health --cluster is healthy on every member', async () => {
    // --cluster asks the member list for client URLs; a member publishes its own through raft a
    // moment after it is Ready (seen on 3.5 for kubeadm), and is left out until then.
    let health: Array<{ health: boolean }> = [];
    for (let i = 0; i < 20 && health.length < f.members.length; i++) {
      if (i) await new Promise((r) => setTimeout(r, 500));
      const r = await execIn(f.pods[0]!, endpointHealth(targetOf(topology.members[0]!), { cluster: true }).argv);
      expect(r.code, r.stderr).toBe(0);
      health = JSON.parse(r.stdout) as Array<{ health: boolean }>;
    }
    expect(health.map((h) => h.health)).toEqual(f.members.map(() => true));
  });

  if (f.layout === 'anthos' || f.layout === 'single') {
    it("the runbook's exact backup shell command works in kube-etcd-0", async () => {
      const line = `ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert=${CERTS}/etcdCA.crt --cert=${CERTS}/etcd.crt --key=${CERTS}/etcd.key member list`;
      const r = await cluster.kubectl(['-n', 'uc1', 'exec', 'kube-etcd-0', '-c', 'kube-etcd', '--', 'sh', '-c', line]);
      expect(r.code, r.stderr).toBe(0);
      const rows = r.stdout.trim().split('\n');
      expect(rows).toHaveLength(f.members.length);
      expect(rows.every((row) => row.includes(', started, '))).toBe(true);
      const save = await cluster.kubectl(['-n', 'uc1', 'exec', 'kube-etcd-0', '-c', 'kube-etcd', '--', 'sh', '-c',
        `cd / && ${line.replace('member list', 'snapshot save /tmp/snapshot.db')} && ETCDCTL_API=3 etcdctl snapshot status /tmp/snapshot.db -w json && rm /tmp/snapshot.db`]);
      expect(save.code, save.stderr).toBe(0);
      expect(JSON.parse(save.stdout.trim().split('\n').pop()!)).toHaveProperty('totalKey');
    });

    it('kube-apiserver writes through the etcd, PVCs are bound, and the HA layout has its PDB', async () => {
      const keys = await execIn('kube-etcd-0', ['etcdctl', '--endpoints=https://127.0.0.1:2379', `--cacert=${CERTS}/etcdCA.crt`,
        `--cert=${CERTS}/etcd.crt`, `--key=${CERTS}/etcd.key`, 'get', '--prefix', '/registry/sim-heartbeat/', '--keys-only']);
      expect(keys.stdout.split('\n').filter(Boolean).map((k) => k.replace(/^.*\//, '')).sort()).toEqual(f.members.map((_, i) => `kube-apiserver-${i}`));
      const pvcs = JSON.parse((await cluster.kubectl(['-n', 'uc1', 'get', 'pvc', '-o', 'json'])).stdout) as { items: Array<{ metadata: { name: string }; status: { phase: string } }> };
      expect(pvcs.items.map((p) => `${p.metadata.name}:${p.status.phase}`).sort()).toEqual(f.members.map((m) => `data-${m}:Bound`));
      const pdb = await cluster.kubectl(['-n', 'uc1', 'get', 'pdb', 'kube-apiserver-pdb', '-o', 'jsonpath={.spec.minAvailable}']);
      if (f.layout === 'anthos') expect(pdb.stdout).toBe('2');
      else expect(pdb.code).not.toBe(0);
      const maint = await cluster.kubectl(['-n', 'uc1', 'get', 'deployment', 'gke-master-etcd-maintenance', '-o', 'jsonpath={.status.readyReplicas}']);
      expect(maint.stdout).toBe('1');
    });
  }

  if (f.layout === 'bitnami') {
    it('runs as uid 1001 and the data dir on the PVC belongs to it', async () => {
      const r = await execIn('etcd-1', ['sh', '-c', 'id -u; stat -c %u /bitnami/etcd/data; ls /bitnami/etcd/data']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.split('\n').slice(0, 3)).toEqual(['1001', '1001', 'member']);
    });
  }

  if (f.layout === 'kubeadm') {
    it('static pods from each node\'s manifests: mirror pods owned by their Node, on the node\'s network and IP, certs and data on the node; the image has no tar', async () => {
      expect(topology.members.map((m) => m.node)).toEqual(['node-1', 'node-2', 'node-3']);
      const r = await execIn('etcd-node-2', ['sh', '-c', 'echo /etc/kubernetes/pki/etcd/*; echo /var/lib/etcd/*']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('/etc/kubernetes/pki/etcd/healthcheck-client.crt');
      expect(r.stdout).toContain('/var/lib/etcd/member');
      expect(existsSync(join(cluster.dir, 'nodes/node-2/hostpath/var/lib/etcd/member/wal'))).toBe(true);
      expect(readdirSync(join(cluster.dir, 'nodes/node-2/hostpath/etc/kubernetes/manifests')).sort()).toEqual(['etcd.yaml', 'kube-apiserver.yaml']);
      const tar = await execIn('etcd-node-2', ['tar', '--version']);
      expect(tar.code).not.toBe(0);
      type P = { metadata: { name: string; annotations: Record<string, string>; ownerReferences: Array<{ kind: string; name: string }> }; spec: { nodeName: string; hostNetwork?: boolean }; status: { podIP: string; hostIP: string } };
      const pods = (JSON.parse(ok(await cluster.kubectl(['-n', 'kube-system', 'get', 'pods', '-o', 'json']))) as { items: P[] }).items;
      const nodes = JSON.parse(ok(await cluster.kubectl(['get', 'nodes', '-o', 'json']))) as { items: Array<{ metadata: { name: string }; status: { addresses: Array<{ type: string; address: string }> } }> };
      const ipOf = (n: string) => nodes.items.find((x) => x.metadata.name === n)!.status.addresses.find((a) => a.type === 'InternalIP')!.address;
      expect(pods.map((p) => p.metadata.name).sort()).toEqual(['etcd-node-1', 'etcd-node-2', 'etcd-node-3', 'kube-apiserver-node-1', 'kube-apiserver-node-2', 'kube-apiserver-node-3']);
      for (const p of pods) {
        expect(p.metadata.annotations['kubernetes.io/config.mirror']).toBeTruthy();
        expect(p.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: 'Node', name: p.spec.nodeName })]);
        expect(p.spec.hostNetwork).toBe(true);
        expect([p.status.podIP, p.status.hostIP]).toEqual([ipOf(p.spec.nodeName), ipOf(p.spec.nodeName)]);
      }
      // kubeadm's etcd names its node's IP in its peer URL (the member list says so too).
      const member = topology.members.find((m) => m.pod === 'etcd-node-2')!;
      expect(member.peerUrl).toBe(`https://${ipOf('node-2')}:2380`);
    });

    it('kube-apiserver of every node writes through its own node\'s etcd (https://127.0.0.1:2379)', async () => {
      const k = '/etc/kubernetes/pki/etcd';
      const keys = ok(await execIn('etcd-node-1', ['etcdctl', '--endpoints=https://127.0.0.1:2379', `--cacert=${k}/ca.crt`, `--cert=${k}/healthcheck-client.crt`, `--key=${k}/healthcheck-client.key`,
        'get', '--prefix', '/registry/sim-heartbeat/', '--keys-only']));
      expect(keys.split('\n').filter(Boolean).map((x) => x.replace(/^.*\//, '')).sort()).toEqual(['node-1', 'node-2', 'node-3']);
    });
  }
});
