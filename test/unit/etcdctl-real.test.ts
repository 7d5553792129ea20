/**
 * The argv builders and discovery against real etcd 3.4 processes: pod specs whose etcd command
 * line is run for real on loopback, read back by discovery, driven by the built etcdctl argv.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { confirmMembers, parseMemberList, readMember } from '../../src/etcd/discovery/index.js';
import {
  endpointHealth, endpointStatus, etcdctlSnapshotRestore, initialClusterOf, memberList, snapshotSave, targetOf,
  type EtcdCommand,
} from '../../src/etcd/etcdctl.js';
import type { EtcdMember, EtcdTopology } from '../../src/etcd/topology.js';
import { ensureCA, issueCert } from '../sim/pki.js';

const run = promisify(execFile);

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function exec(cmd: EtcdCommand): Promise<string> {
  const [file, ...args] = cmd.argv;
  const { stdout } = await run(file!, args, { env: { ...process.env, ...cmd.env } });
  return stdout;
}

async function requireEtcd(): Promise<void> {
  for (const [bin, args] of [['etcd', ['--version']], ['etcdctl', ['version']]] as const) {
    await run(bin, [...args]).catch(() => {
      throw new Error(`${bin} is not installed; run apt-get install -y etcd-server etcd-client`);
    });
  }
}

async function waitHealthy(member: EtcdMember): Promise<void> {
  for (let i = 0; i < 150; i++) {
    if (await exec(endpointHealth(targetOf(member))).then(() => true, () => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`etcd member "${member.name}" did not become healthy`);
}

interface Cluster { pods: V1Pod[]; members: EtcdMember[]; procs: ChildProcess[] }

/** Pod specs for a loopback cluster, in the anthos style (flags, $(POD_NAME) from the downward API). */
function podSpecs(dir: string, names: string[], ports: Array<{ client: number; peer: number }>, state: 'new' | 'existing', dataDirs: string[]): V1Pod[] {
  const cluster = names.map((n, i) => `${n}=https://127.0.0.1:${ports[i]!.peer}`).join(',');
  return names.map((name, i) => ({
    metadata: { name, namespace: 'real' },
    spec: {
      containers: [{
        name: 'etcd',
        image: 'gcr.io/gke-on-prem-release/etcd:v3.4.23-0-gke.1',
        env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
        command: [
          'etcd', '--name=$(POD_NAME)', '--data-dir', dataDirs[i]!,
          `--listen-client-urls=https://127.0.0.1:${ports[i]!.client}`, `--advertise-client-urls=https://127.0.0.1:${ports[i]!.client}`,
          `--listen-peer-urls=https://127.0.0.1:${ports[i]!.peer}`, `--initial-advertise-peer-urls=https://127.0.0.1:${ports[i]!.peer}`,
          `--initial-cluster=${cluster}`, '--initial-cluster-token=real-test', `--initial-cluster-state=${state}`,
          `--cert-file=${dir}/etcd.crt`, `--key-file=${dir}/etcd.key`, `--trusted-ca-file=${dir}/ca.crt`, '--client-cert-auth',
          `--peer-cert-file=${dir}/etcd.crt`, `--peer-key-file=${dir}/etcd.key`, `--peer-trusted-ca-file=${dir}/ca.crt`, '--peer-client-cert-auth=true',
        ],
      }],
    },
  }));
}

/** Starts each pod's etcd command line for real (Kubernetes $(VAR) expansion done by hand, as the kubelet would). */
async function start(pods: V1Pod[]): Promise<Cluster> {
  const procs = pods.map((p) => {
    const argv = p.spec!.containers[0]!.command!.map((a) => a.replace('$(POD_NAME)', p.metadata!.name!));
    return spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
  });
  const members = pods.map((p) => readMember(p)!);
  await Promise.all(members.map(waitHealthy));
  return { pods, members, procs };
}

async function stop(c: Cluster | undefined): Promise<void> {
  await Promise.all((c?.procs ?? []).map((p) => new Promise<void>((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) return resolve();
    p.once('exit', () => resolve());
    p.kill('SIGTERM');
  })));
}

describe('etcdctl builders against a real etcd cluster', () => {
  let dir = '';
  let original: Cluster | undefined;
  let restored: Cluster | undefined;
  const names = ['m0', 'm1', 'm2'];

  beforeAll(async () => {
    await requireEtcd();
    dir = mkdtempSync(join(tmpdir(), 'etcdctl-real-'));
    ensureCA(dir, 'ca');
    issueCert(dir, 'ca', 'etcd', { commonName: 'etcd', dnsNames: ['localhost'], ips: ['127.0.0.1'], usage: 'both' });
    const ports = await Promise.all(names.map(async () => ({ client: await freePort(), peer: await freePort() })));
    original = await start(podSpecs(dir, names, ports, 'new', names.map((n) => join(dir, `${n}.data`))));
  }, 60_000);

  afterAll(async () => {
    await stop(original);
    await stop(restored);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('discovery reads what etcd really runs with: endpoints answer with the discovered TLS files', async () => {
    const health = JSON.parse(await exec(endpointHealth(targetOf(original!.members[0]!), { cluster: true }))) as Array<{ endpoint: string; health: boolean }>;
    expect(health.map((h) => h.health)).toEqual([true, true, true]);
    const status = JSON.parse(await exec(endpointStatus(targetOf(original!.members[1]!)))) as Array<{ Endpoint: string }>;
    expect(status[0]!.Endpoint).toBe(original!.members[1]!.endpoint);
  });

  it('member list parses with exact IDs and confirms the discovered topology', async () => {
    const live = parseMemberList(await exec(memberList(targetOf(original!.members[0]!))));
    const simple = await exec({ ...memberList(targetOf(original!.members[0]!)), argv: memberList(targetOf(original!.members[0]!)).argv.slice(0, -2).concat('-w', 'simple') });
    const hexIds = simple.trim().split('\n').map((l) => l.split(',')[0]!.trim());
    expect(live.map((m) => m.id).sort()).toEqual(hexIds.sort());
    const topology: EtcdTopology = { namespace: 'real', workload: { kind: 'Pods', name: 'real' }, members: original!.members, image: '' };
    const confirmed = confirmMembers(topology, live);
    expect(confirmed.outcomes.map((o) => o.kind)).toEqual(['confirmed', 'confirmed', 'confirmed']);
    expect(confirmed.topology.members.map((m) => m.memberId).sort()).toEqual(hexIds.sort());
  });

  it('snapshot save, status and restore give back the data in a new cluster with the same members', async () => {
    const target = targetOf(original!.members[0]!);
    await exec({ argv: ['etcdctl', ...target.endpoints.map((e) => `--endpoints=${e}`), `--cacert=${target.tls!.caFile}`, `--cert=${target.tls!.certFile}`, `--key=${target.tls!.keyFile}`, 'put', '/registry/k1', 'before-backup'], env: {} });
    const file = join(dir, 'snap.db');
    await exec(snapshotSave(target, file));
    expect(statSync(file).size).toBeGreaterThan(0);
    const facts = JSON.parse(await exec({ argv: ['etcdctl', 'snapshot', 'status', file, '-w', 'json'], env: {} })) as { revision: number; totalKey: number };
    expect(facts.totalKey).toBeGreaterThan(0);

    await stop(original);
    const ports = await Promise.all(names.map(async () => ({ client: await freePort(), peer: await freePort() })));
    const specs = podSpecs(dir, names, ports, 'new', names.map((n) => join(dir, `${n}.restored`)));
    const planned = specs.map((p) => readMember(p)!);
    for (const m of planned) {
      await exec(etcdctlSnapshotRestore({
        snapshot: file, name: m.name, initialCluster: initialClusterOf(planned), initialClusterToken: m.initialClusterToken!,
        initialAdvertisePeerUrls: m.peerUrl, dataDir: m.dataDir,
      }));
    }
    restored = await start(specs);
    const t = targetOf(restored.members[2]!);
    const got = await exec({ argv: ['etcdctl', `--endpoints=${t.endpoints[0]}`, `--cacert=${t.tls!.caFile}`, `--cert=${t.tls!.certFile}`, `--key=${t.tls!.keyFile}`, 'get', '/registry/k1', '--print-value-only'], env: {} });
    expect(got.trim()).toBe('before-backup');
    const live = parseMemberList(await exec(memberList(t)));
    expect(confirmMembers({ namespace: 'real', workload: { kind: 'Pods', name: 'real' }, members: restored.members, image: '' }, live).ok).toBe(true);
  }, 60_000);
});
