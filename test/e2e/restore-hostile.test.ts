// A cluster that says no, all at once (issue 14): Bitnami's etcd (members run as uid 1001 with
// fsGroup, restricted-compliant) from a private registry behind a pull secret, in a namespace
// that enforces Pod Security "restricted" and has a ResourceQuota demanding requests and limits,
// on nodes tainted `dedicated=etcd:NoSchedule` (the StatefulSet tolerates it) whose
// kubernetes.io/hostname labels are not their names. First each thing a restore's utility pod
// used to lack is shown refused or left Pending by the cluster, one at a time; then a restore,
// an --in-place restore, and a restore killed after etcd stopped then resumed or rolled back all
// work there; last what no restore could get through is refused in preflight before any change:
// a quota with no room, a member's node cordoned or newly tainted, a template the cluster refuses.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { teardown, type SimCluster } from '../sim/harness.js';
import {
  BITNAMI_ACCESS as B, etcdctl, keysOn, kubectlEtcd, pruneSetAside, refusedBeforeChange, startKubectlEtcd, startRestoreCluster, waitClusterHealthy,
} from './restore-helpers.js';

const NS = B.namespace;
const A_KEYS = ['/test/a1', '/test/a2', '/test/a3'];
const QUOTA = {
  apiVersion: 'v1', kind: 'ResourceQuota', metadata: { name: 'compute', namespace: NS },
  // Room for the three members and three utility pods of the same size beside them.
  spec: { hard: { pods: '8', 'requests.cpu': '2', 'requests.memory': '2Gi', 'limits.cpu': '3', 'limits.memory': '3Gi' } },
};

type Pod = { metadata: Record<string, unknown>; spec: Record<string, unknown> & { containers: Array<Record<string, unknown>> } };

let cluster: SimCluster;
let work: string;
let state: string;
let snapshot: string;
/** The utility pod restore plans for etcd-0, from --dry-run -o json. */
let planned: Pod;

async function ok(args: string[], input?: string): Promise<string> {
  const r = await cluster.kubectl(args, input ? { input } : {});
  expect(r.code, `kubectl ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

/** Every member Ready and healthy, with exactly `keys`. */
async function expectMembers(keys: string[]): Promise<void> {
  await waitClusterHealthy(cluster, B);
  for (const pod of B.pods) expect(await keysOn(cluster, B, pod, '/test/'), pod).toEqual(keys);
  expect((await ok(['-n', NS, 'get', 'pods', '-l', 'app.kubernetes.io/managed-by=kubectl-etcd', '-o', 'name'])).trim()).toBe('');
}

beforeAll(async () => {
  ({ cluster, work, state } = await startRestoreCluster(['bitnami:privateImage=true,tolerateDedicated=true,resources=micro'], 'restore-hostile', { hostnameLabels: 'differ' }));
  for (const k of A_KEYS) await etcdctl(cluster, B, 'etcd-0', ['put', k, k]);
  snapshot = join(work, 'bitnami.db');
  const b = await kubectlEtcd(cluster, state, ['backup', '-n', NS, '-f', snapshot]);
  if (b.code !== 0) throw new Error(`backup failed: ${b.stderr}`);
  // The cluster turns hostile around the running members (taints with NoSchedule, Pod Security
  // and quotas judge new pods only).
  await ok(['taint', 'nodes', '--all', 'dedicated=etcd:NoSchedule']);
  await ok(['label', 'namespace', NS, 'pod-security.kubernetes.io/enforce=restricted']);
  await ok(['apply', '-f', '-'], JSON.stringify(QUOTA));
  const plan = await kubectlEtcd(cluster, state, ['restore', snapshot, '-n', NS, '--dry-run', '-o', 'json']);
  if (plan.code !== 0) throw new Error(`restore --dry-run failed: ${plan.stderr}`);
  planned = (JSON.parse(plan.stdout) as { members: Array<{ utilityPod: Pod }> }).members[0]!.utilityPod;
}, 600_000);

afterAll(() => teardown(cluster, work));

describe('the cluster refuses what a utility pod used to lack, each alone', () => {
  /** The planned pod with one thing changed, named apart so it never meets the restore's. */
  const variant = (change: (p: Pod) => void): Pod => {
    const p = JSON.parse(JSON.stringify(planned)) as Pod;
    p.metadata = { name: 'naive-utility', namespace: NS };
    change(p);
    return p;
  };
  /** Creates the pod, returns what keeps it from running (scheduling or pull), and deletes it. */
  const stuck = async (pod: Pod, until: RegExp): Promise<string> => {
    await ok(['create', '-f', '-'], JSON.stringify(pod));
    try {
      let seen = '';
      await expect.poll(async () => {
        const o = JSON.parse(await ok(['-n', NS, 'get', 'pod', 'naive-utility', '-o', 'json'])) as {
          status: { conditions?: Array<{ type: string; message?: string }>; containerStatuses?: Array<{ state?: { waiting?: { reason?: string; message?: string } } }> };
        };
        const sched = o.status.conditions?.find((c) => c.type === 'PodScheduled')?.message ?? '';
        const waiting = o.status.containerStatuses?.map((c) => `${c.state?.waiting?.reason ?? ''}: ${c.state?.waiting?.message ?? ''}`).join('\n') ?? '';
        seen = `${sched}\n${waiting}`;
        return until.test(seen);
      }, { timeout: 60_000, interval: 500 }).toBe(true);
      return seen;
    } finally {
      await ok(['-n', NS, 'delete', 'pod', 'naive-utility', '--grace-period=0', '--force', '--wait=true']);
    }
  };

  it('the pod restore plans now is admitted (server dry run)', async () => {
    await ok(['create', '--dry-run=server', '-f', '-'], JSON.stringify(variant(() => {})));
  });

  it('as root: Pod Security "restricted" refuses it', async () => {
    const r = await cluster.kubectl(['create', '--dry-run=server', '-f', '-'], { input: JSON.stringify(variant((p) => {
      delete p.spec['securityContext'];
      for (const c of p.spec.containers) c['securityContext'] = { runAsUser: 0, runAsGroup: 0 };
    })) });
    expect(r.stderr).toMatch(/is forbidden: violates PodSecurity "restricted:latest": .*runAsUser=0/);
  });

  it('without requests and limits: the quota refuses it', async () => {
    const r = await cluster.kubectl(['create', '--dry-run=server', '-f', '-'], { input: JSON.stringify(variant((p) => {
      for (const c of p.spec.containers) delete c['resources'];
    })) });
    expect(r.stderr).toMatch(/is forbidden: failed quota: compute: must specify limits\.cpu for: etcd-utility; limits\.memory for: etcd-utility; requests\.cpu for: etcd-utility; requests\.memory for: etcd-utility/);
  });

  it('pinned by the hostname label set to the node name: no node matches', async () => {
    const seen = await stuck(variant((p) => {
      delete p.spec['affinity'];
      p.spec['nodeSelector'] = { 'kubernetes.io/hostname': 'node-1' };
    }), /didn't match Pod's node affinity\/selector/);
    expect(seen).toMatch(/^0\/3 nodes are available: 3 node\(s\) didn't match Pod's node affinity\/selector\./);
  });

  it('without the member\'s tolerations: the dedicated taint keeps it off every node', async () => {
    const seen = await stuck(variant((p) => {
      p.spec['tolerations'] = (p.spec['tolerations'] as Array<{ key: string }>).filter((t) => t.key !== 'dedicated');
    }), /untolerated taint/);
    // Taints are filtered before node affinity (kube-scheduler's order), so every node says taint.
    expect(seen).toMatch(/^0\/3 nodes are available: 3 node\(s\) had untolerated taint \{dedicated: etcd\}\./);
  });

  it('without the member\'s pull secret: the private image is not pulled', async () => {
    const seen = await stuck(variant((p) => { delete p.spec['imagePullSecrets']; }), /ErrImagePull|ImagePullBackOff/);
    expect(seen).toMatch(/401 Unauthorized/);
  });
});

describe('kubectl etcd restore there', () => {
  it('restores every member: exactly the backed-up keys, the data the member\'s own', async () => {
    await etcdctl(cluster, B, 'etcd-0', ['put', '/test/b', 'written after the backup']);
    const r = await kubectlEtcd(cluster, state, ['restore', snapshot, '-n', NS, '--yes']);
    expect(r.code, r.stderr).toBe(0);
    await expectMembers(A_KEYS);
    for (const pod of B.pods) {
      const own = await ok(['-n', NS, 'exec', pod, '-c', 'etcd', '--', 'stat', '-c', '%u', `${B.dataDir}/member/snap/db`]);
      expect(own.trim(), pod).toBe('1001');
    }
  }, 420_000);

  it('--in-place restores every member', async () => {
    await pruneSetAside(cluster, B);
    await etcdctl(cluster, B, 'etcd-0', ['put', '/test/b', 'written after the backup']);
    const r = await kubectlEtcd(cluster, state, ['restore', snapshot, '-n', NS, '--in-place', '--yes', '--no-safety-backup']);
    expect(r.code, r.stderr).toBe(0);
    await expectMembers(A_KEYS);
  }, 420_000);

  it.each([
    ['--resume', A_KEYS],
    ['--abort', [...A_KEYS, '/test/b'].sort()],
  ])('killed after etcd stopped, %s ends with every member healthy', async (flag, keys) => {
    await pruneSetAside(cluster, B);
    await etcdctl(cluster, B, 'etcd-0', ['put', '/test/b', 'written after the backup']);
    const started = startKubectlEtcd(cluster, state, ['restore', snapshot, '-n', NS, '--yes', '--no-safety-backup']);
    await started.until(/==> copy the snapshot to /);
    started.child.kill('SIGKILL');
    expect((await started.done).code).toBe(137);
    const r = await kubectlEtcd(cluster, state, ['restore', '-n', NS, flag, '--yes']);
    expect(r.code, r.stderr).toBe(0);
    await expectMembers(keys);
  }, 420_000);

  it('a quota with no room for the utility pods: refused in preflight, before any change, in one line', async () => {
    await ok(['apply', '-f', '-'], JSON.stringify({ ...QUOTA, spec: { hard: { ...QUOTA.spec.hard, pods: '3' } } }));
    try {
      const line = await refusedBeforeChange(cluster, state, ['restore', snapshot, '-n', NS, '--yes', '--no-safety-backup']);
      expect(line).toMatch(/^error: the cluster would refuse utility pod "etcd-utility-0" for member "etcd-0": .*exceeded quota: compute, requested: pods=1, used: pods=3, limited: pods=3; make room in the ResourceQuota of namespace "etcd" .*nothing was changed/);
    } finally {
      await ok(['apply', '-f', '-'], JSON.stringify(QUOTA));
    }
  });

  it('someone else\'s pod holds a utility pod\'s name: refused in preflight, before any change, and left alone; one still terminating is waited for', async () => {
    // The name a restore needs, taken by a pod without its labels (a manual attempt's, say). The
    // naive way passes a dry-run create (AlreadyExists is no refusal), stops etcd, and then meets
    // the name taken when it creates the pod.
    const foreign = { ...JSON.parse(JSON.stringify(planned)) as Pod, metadata: { name: 'etcd-utility-0', namespace: NS, finalizers: ['example.com/hold'] } };
    const dry = await cluster.kubectl(['create', '--dry-run=server', '-f', '-'], { input: JSON.stringify(foreign) });
    expect(dry.code, dry.stderr).toBe(0);
    await ok(['create', '-f', '-'], JSON.stringify(foreign));
    const uid = (await ok(['-n', NS, 'get', 'pod', 'etcd-utility-0', '-o', 'jsonpath={.metadata.uid}'])).trim();
    const taken = await cluster.kubectl(['create', '--dry-run=server', '-f', '-'], { input: JSON.stringify(planned) });
    expect(taken.stderr).toMatch(/AlreadyExists|already exists/);
    try {
      const line = await refusedBeforeChange(cluster, state, ['restore', snapshot, '-n', NS, '--yes', '--no-safety-backup']);
      expect(line).toBe(`error: pod "etcd-utility-0" already exists in namespace "${NS}" and is not part of this restore (the restore needs that name for a utility pod); delete it (kubectl delete pod etcd-utility-0 -n ${NS}) and restore again; nothing was changed`);
      expect((await ok(['-n', NS, 'get', 'pod', 'etcd-utility-0', '-o', 'jsonpath={.metadata.uid}'])).trim()).toBe(uid);

      // Terminating (held by its finalizer here): preflight waits for it to go, then plans.
      await ok(['-n', NS, 'delete', 'pod', 'etcd-utility-0', '--wait=false']);
      const plan = startKubectlEtcd(cluster, state, ['restore', snapshot, '-n', NS, '--dry-run']);
      let ended = false;
      void plan.done.then(() => { ended = true; });
      await new Promise((res) => setTimeout(res, 3000));
      expect(ended).toBe(false);
      await ok(['-n', NS, 'patch', 'pod', 'etcd-utility-0', '--type=merge', '-p', '{"metadata":{"finalizers":null}}']);
      const r = await plan.done;
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('etcd-utility-0');
      expect(r.stderr).toContain('dry run: nothing was changed');
    } finally {
      await cluster.kubectl(['-n', NS, 'patch', 'pod', 'etcd-utility-0', '--type=merge', '-p', '{"metadata":{"finalizers":null}}']);
      await cluster.kubectl(['-n', NS, 'delete', 'pod', 'etcd-utility-0', '--ignore-not-found', '--wait=true']);
    }
  }, 300_000);

  it('a member\'s node cordoned, or tainted after the member was scheduled: a deleted member never comes back there (the naive way); restore refuses in preflight, before any change', async () => {
    const node = (await ok(['-n', NS, 'get', 'pod', 'etcd-1', '-o', 'jsonpath={.spec.nodeName}'])).trim();
    const keys = await keysOn(cluster, B, 'etcd-0', '/test/');
    const flags = ['restore', snapshot, '-n', NS, '--yes', '--no-safety-backup'];
    await ok(['cordon', node]);
    try {
      // What a restore that did not ask would meet once it stopped etcd: the member's local volume holds it to a node it may not go to.
      await ok(['-n', NS, 'delete', 'pod', 'etcd-1', '--wait=true']);
      await expect.poll(async () => (await ok(['-n', NS, 'get', 'pod', 'etcd-1', '-o', 'jsonpath={.status.conditions[?(@.type=="PodScheduled")].message}'])), { timeout: 30_000, interval: 500 })
        .toMatch(/^0\/3 nodes are available: .*1 node\(s\) were unschedulable/);
      const line = await refusedBeforeChange(cluster, state, flags);
      expect(line).toBe(`error: statefulset "etcd" could not start member "etcd-1" again after the restore stops it: node "${node}" is cordoned, which its pods do not tolerate, and the member's data is bound to that node; uncordon it (kubectl uncordon ${node}) for the restore, then restore again; nothing was changed`);
    } finally {
      await ok(['uncordon', node]);
    }
    await waitClusterHealthy(cluster, B);
    // NoSchedule does not evict the running member; its utility pod would stay Pending.
    await ok(['taint', 'node', node, 'maintenance=disk:NoSchedule']);
    try {
      const line = await refusedBeforeChange(cluster, state, flags);
      expect(line).toMatch(new RegExp(`^error: node "${node}" of member "etcd-1" has taint maintenance=disk:NoSchedule, which the member's pod does not tolerate \\(it came after the member was scheduled\\): .*; remove the taint \\(kubectl taint node ${node} maintenance=disk:NoSchedule-\\) for the restore, .*nothing was changed$`));
    } finally {
      await ok(['taint', 'node', node, 'maintenance=disk:NoSchedule-']);
    }
    await expectMembers(keys);
  }, 300_000);

  it('members admitted before a rule their StatefulSet breaks: a deleted one never comes back (the naive way); restore refuses in preflight, before any change', async () => {
    // The template gains a hostPort (forbidden by baseline, so by restricted) under OnDelete: the
    // running members stay, as members admitted before a namespace was labelled do.
    const patch = (ops: unknown[]) => ok(['-n', NS, 'patch', 'statefulset', 'etcd', '--type=json', '-p', JSON.stringify(ops)]);
    const keys = await keysOn(cluster, B, 'etcd-0', '/test/');
    await patch([
      { op: 'replace', path: '/spec/updateStrategy', value: { type: 'OnDelete' } },
      { op: 'add', path: '/spec/template/spec/containers/0/ports/0/hostPort', value: 2379 },
    ]);
    try {
      const line = await refusedBeforeChange(cluster, state, ['restore', snapshot, '-n', NS, '--yes', '--no-safety-backup']);
      expect(line).toMatch(/^error: statefulset "etcd" could not start its members again after the restore stops them: the cluster would refuse its pod "etcd-0": pods "etcd-0" is forbidden: violates PodSecurity "restricted:latest": hostPort \(container "etcd" uses hostPort 2379\); the running members were admitted before that rule; .*nothing was changed$/);
      // What a restore that did not ask would meet once it stopped etcd: the controller cannot create the member again.
      await ok(['-n', NS, 'delete', 'pod', 'etcd-2', '--wait=true']);
      await expect.poll(async () => (await ok(['-n', NS, 'get', 'events', '--field-selector', 'reason=FailedCreate', '-o', 'jsonpath={.items[*].message}'])), { timeout: 30_000, interval: 500 })
        .toMatch(/create Pod etcd-2 in StatefulSet etcd failed error: pods "etcd-2" is forbidden: violates PodSecurity "restricted:latest": hostPort/);
      expect((await cluster.kubectl(['-n', NS, 'get', 'pod', 'etcd-2'])).code).not.toBe(0);
    } finally {
      await patch([{ op: 'remove', path: '/spec/template/spec/containers/0/ports/0/hostPort' }]);
      await waitClusterHealthy(cluster, B);
      await patch([{ op: 'replace', path: '/spec/updateStrategy', value: { type: 'RollingUpdate' } }]);
    }
    await expectMembers(keys);
  }, 300_000);
});
