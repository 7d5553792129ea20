import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EtcdMember, EtcdTopology } from '../../src/etcd/topology.js';
import { buildRestorePlan, type PlanInput } from '../../src/restore/plan.js';
import { abortSteps } from '../../src/restore/steps.js';

function anthosMember(n: number, extra: Partial<EtcdMember> = {}): EtcdMember {
  return {
    pod: `kube-etcd-${n}`, namespace: 'uc1', container: 'kube-etcd', node: `node-${n + 1}`, ordinal: n,
    name: `kube-etcd-${n}`, endpoint: 'https://127.0.0.1:2379', clientPort: 2379,
    peerUrl: `https://kube-etcd-${n}.kube-etcd:2380`, dataDir: '/var/lib/etcd',
    tls: { caFile: '/etcd.local.config/certificates/etcdCA.crt', certFile: '/etcd.local.config/certificates/etcd.crt', keyFile: '/etcd.local.config/certificates/etcd.key' },
    clientTlsEnabled: true, initialClusterToken: 'etcd-cluster-1',
    dataVolume: { kind: 'pvc', volumeName: 'data', claimName: `data-kube-etcd-${n}`, mountPath: '/var/lib/etcd' },
    secretFiles: Object.fromEntries(['etcdCA.crt', 'etcd.crt', 'etcd.key'].map((k) => [`/etcd.local.config/certificates/${k}`, [{ secretName: 'kube-etcd-certs', key: k }]])),
    image: 'gcr.io/gke-on-prem-release/etcd:v3.4.23-0-gke.1',
    ...extra,
  };
}

function input(members: EtcdMember[], extra: Partial<PlanInput> = {}): PlanInput {
  const topology: EtcdTopology = {
    namespace: 'uc1', workload: { kind: 'StatefulSet', name: 'kube-etcd', replicas: members.length },
    members, initialClusterToken: 'etcd-cluster-1', image: members[0]!.image,
  };
  return {
    topology,
    snapshot: { path: 's.db', size: 100, sha256: 'ab', revision: 42, totalKey: 10, hasTrailer: true },
    quiesce: [
      { kind: 'StatefulSet', name: 'kube-apiserver', replicas: 3, reason: 'detected' },
      { kind: 'Deployment', name: 'gke-master-etcd-maintenance', replicas: 1, reason: 'detected' },
    ],
    pdbs: [{ name: 'kube-apiserver-pdb', manifest: {} }],
    utilityImage: topology.image,
    tool: { binary: 'etcdctl' },
    stamp: '20261125T183500Z',
    inPlace: false,
    ...extra,
  };
}

describe('buildRestorePlan', () => {
  const plan = buildRestorePlan(input([0, 1, 2].map((n) => anthosMember(n))));

  it('gives every member the runbook restore flags with its own name and peer URL', () => {
    const ic = 'kube-etcd-0=https://kube-etcd-0.kube-etcd:2380,kube-etcd-1=https://kube-etcd-1.kube-etcd:2380,kube-etcd-2=https://kube-etcd-2.kube-etcd:2380';
    expect(plan.initialCluster).toBe(ic);
    expect(plan.members[1]!.restoreArgv).toEqual([
      'etcdctl', 'snapshot', 'restore', '/var/lib/etcd/kubectl-etcd-20261125T183500Z.db',
      '--name=kube-etcd-1', `--initial-cluster=${ic}`, '--initial-cluster-token=etcd-cluster-1-restore-20261125T183500Z',
      '--initial-advertise-peer-urls=https://kube-etcd-1.kube-etcd:2380',
      '--data-dir=/var/lib/etcd/kubectl-etcd-restore-20261125T183500Z',
    ]);
  });

  it.each([0, 1, 2])('pins utility pod %i to its member node and PVC, without the cert secret', (n) => {
    const pod = plan.members[n]!.utilityPod;
    expect(pod.metadata.name).toBe(`etcd-utility-${n}`);
    // By the node's name (its hostname label need not be the name), as a DaemonSet's pods are.
    expect(pod.spec.nodeSelector).toBeUndefined();
    expect(pod.spec['affinity']).toEqual({ nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [`node-${n + 1}`] }] }] } } });
    expect(pod.spec.volumes).toContainEqual({ name: 'etcd-data', persistentVolumeClaim: { claimName: `data-kube-etcd-${n}` } });
    // Nothing in the utility pod talks to etcd: the member's client key stays out of it.
    expect(JSON.stringify(pod.spec.volumes)).not.toMatch(/kube-etcd-certs/);
    expect(pod.spec.tolerations).toHaveLength(3);
  });

  it('orders steps: journal, PDBs, quiesce, stop etcd, work, start etcd, verify, un-quiesce, PDBs back', () => {
    const ids = plan.steps.map((s) => s.id);
    const at = (id: string) => ids.indexOf(id);
    expect(at('journal')).toBe(0);
    expect(at('pdb-delete/kube-apiserver-pdb')).toBeLessThan(at('quiesce/StatefulSet/kube-apiserver'));
    expect(at('quiesce/Deployment/gke-master-etcd-maintenance')).toBeLessThan(at('etcd-stop'));
    // Utility pods start while etcd still runs: a pod that cannot start stops the restore before etcd is touched.
    expect(at('utility/kube-etcd-2')).toBeLessThan(at('etcd-stop'));
    expect(at('etcd-stop')).toBeLessThan(at('copy/kube-etcd-0'));
    expect(at('swap/kube-etcd-2')).toBeLessThan(at('etcd-start'));
    expect(at('verify')).toBeLessThan(at('unquiesce/StatefulSet/kube-apiserver'));
    expect(at('pdb-create/kube-apiserver-pdb')).toBe(ids.length - 2);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('warns that etcdctl restores do not bump the revision', () => {
    expect(plan.warnings.join(' ')).toMatch(/restart every kube-apiserver/);
  });

  it.each([
    ['no trailer adds --skip-hash-check', { snapshot: { path: 's', size: 1, sha256: '', revision: 1, totalKey: 1, hasTrailer: false } }, '--skip-hash-check'],
    ['etcdutl bumps the revision', { tool: { binary: 'etcdutl' as const, bumpRevision: 1000000000 } }, '--bump-revision=1000000000'],
  ])('%s', (_name, extra, flag) => {
    const p = buildRestorePlan(input([anthosMember(0)], extra as Partial<PlanInput>));
    expect(p.members[0]!.restoreArgv).toContain(flag);
  });

  it('an etcdutl older than 3.5.10 restores without --bump-revision and warns, naming why', () => {
    const p = buildRestorePlan(input([anthosMember(0)], { tool: { binary: 'etcdutl' } }));
    expect(p.members[0]!.restoreArgv.slice(0, 3)).toEqual(['etcdutl', 'snapshot', 'restore']);
    expect(p.members[0]!.restoreArgv.join(' ')).not.toMatch(/bump-revision|mark-compacted/);
    expect(p.warnings.join(' ')).toMatch(/^the etcdutl of the etcd image has no --bump-revision \(etcd < 3\.5\.10\): .*restart every kube-apiserver/);
  });

  it('an etcdutl with --bump-revision needs no warning about watch caches', () => {
    const p = buildRestorePlan(input([anthosMember(0)], { tool: { binary: 'etcdutl', bumpRevision: 1000000000 } }));
    expect(p.members[0]!.restoreArgv.slice(-2)).toEqual(['--bump-revision=1000000000', '--mark-compacted']);
    expect(p.warnings.join(' ')).not.toMatch(/restart every kube-apiserver/);
  });

  it('a root utility pod (distroless: the tool is reached by chroot) hands restored data to a non-root etcd user', () => {
    const p = buildRestorePlan(input([anthosMember(0, { runAsUser: 1001, fsGroup: 1001, dataDir: '/bitnami/etcd/data' })], { etcdToolsImage: 'gcr.io/etcd-development/etcd:v3.5.16' }));
    expect(p.members[0]!.utilityPod.spec.containers.map((c) => c['securityContext'])).toEqual([{ runAsUser: 0, runAsGroup: 0 }, { runAsUser: 0, runAsGroup: 0 }]);
    expect(p.members[0]!.chownArgv!.slice(-3)).toEqual(['/bitnami/etcd/data', '/bitnami/etcd/data/member.pre-restore-20261125T183500Z', '1001:1001']);
  });

  it('a non-root member gets a utility pod that runs as it, with its security contexts, tolerations, pull secrets, priority and resources; no chown', () => {
    const podSecurityContext = { runAsUser: 1001, runAsNonRoot: true, fsGroup: 1001, seccompProfile: { type: 'RuntimeDefault' } };
    const securityContext = { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, runAsNonRoot: true, runAsUser: 1001 };
    const tolerations = [{ key: 'dedicated', operator: 'Equal', value: 'etcd', effect: 'NoSchedule' }, { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 30 }];
    const resources = { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '1', memory: '512Mi' } };
    const m = anthosMember(0, {
      runAsUser: 1001, fsGroup: 1001, dataDir: '/bitnami/etcd/data',
      podFacts: { podSecurityContext, securityContext, tolerations, imagePullSecrets: [{ name: 'regcred' }], priorityClassName: 'etcd-critical', resources },
    });
    const p = buildRestorePlan(input([m]));
    const spec = p.members[0]!.utilityPod.spec;
    expect(spec['securityContext']).toEqual(podSecurityContext);
    expect(spec.containers[0]!['securityContext']).toEqual(securityContext);
    expect(spec.containers[0]!['resources']).toEqual(resources);
    expect(spec['imagePullSecrets']).toEqual([{ name: 'regcred' }]);
    expect(spec['priorityClassName']).toBe('etcd-critical');
    // The member's own, then ours it lacks (its not-ready NoExecute one stands).
    expect(spec['tolerations']).toEqual([
      ...tolerations,
      { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
      { key: 'node.kubernetes.io/unschedulable', operator: 'Exists', effect: 'NoSchedule' },
    ]);
    expect(p.members[0]!.chownArgv).toBeUndefined();
  });

  it('ReadWriteOncePod member claims: the utility pods (and Bitnami\'s start files) come after etcd stopped', () => {
    const rwop = (n: number) => anthosMember(n, { dataVolume: { kind: 'pvc', volumeName: 'data', claimName: `data-kube-etcd-${n}`, mountPath: '/var/lib/etcd', readWriteOncePod: true } });
    const ids = buildRestorePlan(input([rwop(0), rwop(1)])).steps.map((s) => s.id);
    expect(ids).toEqual(expect.arrayContaining(['etcd-stop', 'utility/kube-etcd-0', 'utility/kube-etcd-1', 'copy/kube-etcd-0']));
    expect(ids.indexOf('utility/kube-etcd-0')).toBeGreaterThan(ids.indexOf('etcd-stop'));
    expect(ids.indexOf('utility/kube-etcd-1')).toBeLessThan(ids.indexOf('copy/kube-etcd-0'));
    const plain = buildRestorePlan(input([anthosMember(0), anthosMember(1)])).steps.map((s) => s.id);
    expect(plain).toEqual(expect.arrayContaining(['etcd-stop', 'utility/kube-etcd-0']));
    expect(plain.indexOf('utility/kube-etcd-0')).toBeLessThan(plain.indexOf('etcd-stop'));
  });

  it('a root member gets a root utility pod that keeps its seccomp profile', () => {
    const m = anthosMember(0, { podFacts: { podSecurityContext: { seccompProfile: { type: 'RuntimeDefault' } }, securityContext: { capabilities: { drop: ['ALL'] } } } });
    const spec = buildRestorePlan(input([m])).members[0]!.utilityPod.spec;
    expect(spec['securityContext']).toEqual({ seccompProfile: { type: 'RuntimeDefault' } });
    expect(spec.containers[0]!['securityContext']).toEqual({ runAsUser: 0, runAsGroup: 0 });
  });
});

// The swap and rollback scripts run for real in sh against real directories: resume safety
// depends on them being idempotent and never deleting member data.
// subPath: etcd sees only a folder of its volume at the mount path; a utility pod mounting the
// volume root there would swap into <volume>/member while etcd reads <volume>/etcd/member.
describe('a member whose data volume is mounted with a subPath', () => {
  const member = anthosMember(0, { dataVolume: { kind: 'pvc', volumeName: 'data', claimName: 'data-kube-etcd-0', mountPath: '/var/lib/etcd', subPath: 'etcd' } });
  const m = buildRestorePlan(input([member])).members[0]!;

  it('the utility pod mounts the same folder of the volume at the same path, so every path of the plan lands beside the data etcd reads', () => {
    for (const c of m.utilityPod.spec.containers) {
      expect(c['volumeMounts']).toContainEqual({ name: 'etcd-data', mountPath: '/var/lib/etcd', subPath: 'etcd' });
    }
    expect(m.swapArgv.slice(-3)).toEqual(['/var/lib/etcd', '/var/lib/etcd/kubectl-etcd-restore-20261125T183500Z', '/var/lib/etcd/member.pre-restore-20261125T183500Z']);
  });

  it('a Bitnami member: the kept copy and its start files in the mounted folder, outside the data dir its scripts wipe', () => {
    const bitnami = anthosMember(0, {
      dataDir: '/bitnami/etcd/data', runAsUser: 1001, fsGroup: 1001,
      dataVolume: { kind: 'pvc', volumeName: 'data', claimName: 'data-etcd-0', mountPath: '/bitnami/etcd', subPath: 'etcd-0' },
      startScripts: { kind: 'bitnami', disasterRecovery: false },
    });
    const b = buildRestorePlan(input([bitnami])).members[0]!;
    expect(b.utilityPod.spec.containers[0]!['volumeMounts']).toEqual([{ name: 'etcd-data', mountPath: '/bitnami/etcd', subPath: 'etcd-0' }]);
    expect([b.asideDir, b.startFilesDir]).toEqual(['/bitnami/etcd/member.pre-restore-20261125T183500Z', '/bitnami/etcd/member.pre-restore-20261125T183500Z.start-files']);
    expect(b.startFiles).toContain('/bitnami/etcd/member_removal.log');
  });

  it('with a distroless etcd image both containers mount it so', () => {
    const d = buildRestorePlan(input([member], { etcdToolsImage: 'etcd:distroless' })).members[0]!;
    expect(d.utilityPod.spec.containers.map((c) => (c['volumeMounts'] as Array<{ subPath?: string }>)[0]!.subPath)).toEqual(['etcd', 'etcd']);
  });
});

describe('swap and rollback scripts', () => {
  const m = buildRestorePlan(input([anthosMember(0)])).members[0]!;
  function setup() {
    const root = mkdtempSync(join(tmpdir(), 'kubectl-etcd-swap-'));
    const rel = (p: string) => join(root, p);
    mkdirSync(rel('/var/lib/etcd/member/snap'), { recursive: true });
    writeFileSync(rel('/var/lib/etcd/member/snap/db'), 'old');
    mkdirSync(rel(m.restoreDir + '/member/snap'), { recursive: true });
    writeFileSync(rel(m.restoreDir + '/member/snap/db'), 'new');
    const run = (argv: string[]) => {
      const [cmd, ...args] = argv.map((a, i) => (i >= 4 && a.startsWith('/') ? rel(a) : a));
      execFileSync(cmd!, args);
    };
    return { rel, run };
  }

  it('swaps once and is a no-op when run again', () => {
    const { rel, run } = setup();
    run(m.swapArgv);
    run(m.swapArgv);
    expect(readFileSync(rel('/var/lib/etcd/member/snap/db'), 'utf8')).toBe('new');
    expect(readFileSync(rel(m.asideDir + '/snap/db'), 'utf8')).toBe('old');
    expect(existsSync(rel(m.restoreDir))).toBe(false);
  });

  it('rolls back to the old data and keeps the restored copy', () => {
    const { rel, run } = setup();
    run(m.swapArgv);
    run(m.rollbackArgv);
    run(m.rollbackArgv);
    expect(readFileSync(rel('/var/lib/etcd/member/snap/db'), 'utf8')).toBe('old');
    expect(readdirSync(rel('/var/lib/etcd')).sort()).toEqual(['member', 'member.restored-20261125T183500Z']);
  });

  it('never moves data into an existing directory (mv would nest it): the swap fails instead', () => {
    const { rel, run } = setup();
    mkdirSync(rel(m.asideDir), { recursive: true });
    expect(() => run(m.swapArgv)).toThrow(/exists already/);
    expect(readFileSync(rel('/var/lib/etcd/member/snap/db'), 'utf8')).toBe('old');
    expect(readFileSync(rel(m.restoreDir + '/member/snap/db'), 'utf8')).toBe('new');
  });

  it('hands the new data to the owner of the data set aside when the pod names no user', () => {
    const { rel, run } = setup();
    chownSync(rel('/var/lib/etcd/member'), 4321, 4322);
    run(m.swapArgv);
    run(m.chownArgv!);
    expect([statSync(rel('/var/lib/etcd/member/snap/db')).uid, statSync(rel('/var/lib/etcd/member/snap/db')).gid]).toEqual([4321, 4322]);
  });
});

describe('the steps of a one-member restore, in order (the kill-point e2e kills after each)', () => {
  const BEFORE = ['journal', 'pdb-delete/kube-apiserver-pdb', 'quiesce/StatefulSet/kube-apiserver', 'quiesce/Deployment/gke-master-etcd-maintenance'];
  const MEMBER = ['utility/kube-etcd-0', 'copy/kube-etcd-0', 'restore/kube-etcd-0', 'swap/kube-etcd-0'];
  const AFTER = ['wait-ready', 'verify', 'unquiesce/StatefulSet/kube-apiserver', 'unquiesce/Deployment/gke-master-etcd-maintenance', 'pdb-create/kube-apiserver-pdb', 'finish'];
  it.each([
    ['scaled', false, [...BEFORE, MEMBER[0]!, 'etcd-stop', ...MEMBER.slice(1), 'cleanup/kube-etcd-0', 'etcd-start', ...AFTER]],
    ['in place', true, [...BEFORE, ...MEMBER.slice(0, 3), 'restored', MEMBER[3]!, 'etcd-recreate', 'cleanup/kube-etcd-0', ...AFTER]],
  ])('%s', (_mode, inPlace, ids) => {
    expect(buildRestorePlan(input([anthosMember(0)], { inPlace })).steps.map((s) => s.id)).toEqual(ids);
  });

  it('every step is typed by its kind and names what it works on', () => {
    const steps = buildRestorePlan(input([anthosMember(0)])).steps;
    expect(steps.find((s) => s.id === 'quiesce/Deployment/gke-master-etcd-maintenance')).toMatchObject({ kind: 'quiesce', workload: { kind: 'Deployment', name: 'gke-master-etcd-maintenance' } });
    expect(steps.find((s) => s.id === 'swap/kube-etcd-0')).toMatchObject({ kind: 'swap', member: 'kube-etcd-0' });
    expect(steps.find((s) => s.id === 'pdb-create/kube-apiserver-pdb')).toMatchObject({ kind: 'pdb-create', pdb: 'kube-apiserver-pdb' });
  });
});

describe('abortSteps: a roll-back derived from the plan and the steps done', () => {
  const plan = buildRestorePlan(input([0, 1].map((n) => anthosMember(n))));
  it.each([
    ['nothing done: no member is visited, nothing to scale down', [], [
      'cleanup/kube-etcd-0', 'cleanup/kube-etcd-1', 'etcd-start', 'wait-ready', 'health',
      'unquiesce/StatefulSet/kube-apiserver', 'unquiesce/Deployment/gke-master-etcd-maintenance', 'pdb-create/kube-apiserver-pdb',
    ]],
    ['member 0 restored: etcd stops first, member 0 rolls back, member 1 only loses its pod', ['utility/kube-etcd-0', 'etcd-stop', 'copy/kube-etcd-0', 'restore/kube-etcd-0'], [
      'etcd-stop', 'rollback/kube-etcd-0', 'cleanup/kube-etcd-1', 'etcd-start', 'wait-ready', 'health',
      'unquiesce/StatefulSet/kube-apiserver', 'unquiesce/Deployment/gke-master-etcd-maintenance', 'pdb-create/kube-apiserver-pdb',
    ]],
  ])('%s', (_case, done, ids) => {
    expect(abortSteps(plan, done).map((s) => s.id)).toEqual(ids);
  });

  it('in place, a swapped member makes the roll-back delete the etcd pods at once, and nothing is scaled', () => {
    const p = buildRestorePlan(input([anthosMember(0)], { inPlace: true }));
    const ids = abortSteps(p, ['utility/kube-etcd-0', 'copy/kube-etcd-0', 'restore/kube-etcd-0']).map((s) => s.id);
    expect(ids.slice(0, 2)).toEqual(['rollback/kube-etcd-0', 'etcd-recreate']);
    expect(ids).not.toContain('etcd-stop');
    expect(ids).not.toContain('etcd-start');
  });

  it('un-quiesces without waiting (the health of etcd was checked before)', () => {
    expect(abortSteps(plan, []).filter((s) => s.kind === 'unquiesce').every((s) => s.kind === 'unquiesce' && !s.wait)).toBe(true);
  });
});

// Bitnami's scripts wipe the data dir /bitnami/etcd/data (legacy: its contents; debian-12: the
// dir) of a member they find removed (test/sim/images/bitnami-etcd*/): the kept data goes to the
// volume root, the files they act on (member_id, new_member_envs, member_removal.log) are kept
// aside before etcd stops, and a directory stands where preStop writes its removal log.
describe('a Bitnami member', () => {
  const bitnami = anthosMember(0, {
    dataDir: '/bitnami/etcd/data', runAsUser: 1001, fsGroup: 1001,
    dataVolume: { kind: 'pvc', volumeName: 'data', claimName: 'data-etcd-0', mountPath: '/bitnami/etcd' },
    startScripts: { kind: 'bitnami', disasterRecovery: false },
  });
  const plan = buildRestorePlan(input([bitnami]));
  const m = plan.members[0]!;

  it('keeps the old data on the volume root, outside the data dir the scripts wipe', () => {
    expect(m.asideDir).toBe('/bitnami/etcd/member.pre-restore-20261125T183500Z');
    expect(m.startFiles).toEqual(['/bitnami/etcd/data/member_id', '/bitnami/etcd/data/new_member_envs', '/bitnami/etcd/member_removal.log']);
  });

  it('keeps the start files aside after the utility pod starts and before etcd is stopped', () => {
    const ids = plan.steps.map((s) => s.id);
    expect(ids.indexOf('keep-start-files/kube-etcd-0')).toBeGreaterThan(ids.indexOf('utility/kube-etcd-0'));
    expect(ids.indexOf('keep-start-files/kube-etcd-0')).toBeLessThan(ids.indexOf('etcd-stop'));
    expect(plan.warnings.join(' ')).toMatch(/Bitnami's start scripts/);
  });

  it('the keep, swap and roll-back scripts lose nothing, keep the preStop hook from removing the member, and put everything back (real sh)', () => {
    const root = mkdtempSync(join(tmpdir(), 'kubectl-etcd-bitnami-'));
    const rel = (p: string) => join(root, p);
    mkdirSync(rel('/bitnami/etcd/data/member/snap'), { recursive: true });
    writeFileSync(rel('/bitnami/etcd/data/member/snap/db'), 'old');
    writeFileSync(rel('/bitnami/etcd/data/member_id'), 'abc123\n');
    writeFileSync(rel('/bitnami/etcd/member_removal.log'), 'from before\n');
    mkdirSync(rel(m.restoreDir + '/member/snap'), { recursive: true });
    writeFileSync(rel(m.restoreDir + '/member/snap/db'), 'new');
    const run = (argv: string[]) => {
      const [cmd, ...args] = argv.map((a, i) => (i >= 4 && a.startsWith('/') ? rel(a) : a));
      execFileSync(cmd!, args);
    };
    expect(m.removalLogGuard).toBe('/bitnami/etcd/member_removal.log');
    run(m.keepStartFilesArgv!);
    expect(existsSync(rel('/bitnami/etcd/data/member_id'))).toBe(false);
    // The hook's `etcdctl member remove … > member_removal.log` never runs: its output file is a directory.
    const hook = spawnSync('bash', ['-c', 'touch "$2" > "$1"', 'bash', rel('/bitnami/etcd/member_removal.log'), rel('/removed')]);
    expect(hook.status).not.toBe(0);
    expect(existsSync(rel('/removed'))).toBe(false);
    run(m.swapArgv);
    run(m.keepStartFilesArgv!);
    expect(readFileSync(rel('/bitnami/etcd/data/member/snap/db'), 'utf8')).toBe('new');
    expect(readdirSync(rel('/bitnami/etcd/data'))).toEqual(['member']);
    expect(readdirSync(rel('/bitnami/etcd/member_removal.log'))).toEqual([]);
    expect(readFileSync(rel(m.asideDir + '/snap/db'), 'utf8')).toBe('old');
    expect(readdirSync(rel(m.startFilesDir!)).sort()).toEqual(['member_id', 'member_removal.log']);
    run(m.rollbackArgv);
    run(m.rollbackArgv);
    expect(readFileSync(rel('/bitnami/etcd/data/member/snap/db'), 'utf8')).toBe('old');
    expect(readFileSync(rel('/bitnami/etcd/data/member_id'), 'utf8')).toBe('abc123\n');
    expect(readFileSync(rel('/bitnami/etcd/member_removal.log'), 'utf8')).toBe('from before\n');
    expect(existsSync(rel(m.startFilesDir!))).toBe(false);
  });
});
