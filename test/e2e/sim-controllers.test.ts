// The simulator's controller-manager seen through real kubectl: scheduling, PVC provisioning and
// binding, StatefulSet ordinals / scale / recreate / rolling restart, Deployment scaling, and
// garbage collection, CronJobs. The cluster comes from `sim up` (test/sim/harness.ts); pods become Ready
// through the real kubelet. Only while test/sim/kubelet/main.ts has not landed, a stand-in in
// this file registers Ready nodes and patches pod status (see `standInKubelet`); it is used
// for nothing else and goes away with the first kubelet commit.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../sim/apiserver/procs.js';
import { requireCommand, startCluster, waitFor as harnessWaitFor, type SimCluster } from '../sim/harness.js';

const REAL_KUBELET = existsSync(join(REPO_ROOT, 'test/sim/kubelet/main.ts'));

const sts = (name: string, replicas: number): string => `
apiVersion: v1
kind: Service
metadata: {name: ${name}}
spec:
  clusterIP: None
  selector: {app: ${name}}
  ports: [{port: 80, name: web}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: ${name}}
spec:
  serviceName: ${name}
  replicas: ${replicas}
  selector: {matchLabels: {app: ${name}}}
  template:
    metadata: {labels: {app: ${name}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: busybox
        command: [sh, -c, "echo started > /data/started; exec sleep 3600"]
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 64Mi}}
`;

const deployment = (name: string, replicas: number): string => `
apiVersion: apps/v1
kind: Deployment
metadata: {name: ${name}}
spec:
  replicas: ${replicas}
  selector: {matchLabels: {app: ${name}}}
  template:
    metadata: {labels: {app: ${name}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers: [{name: main, image: busybox, command: [sleep, "3600"]}]
`;

interface Obj {
  metadata: { name: string; uid: string; labels?: Record<string, string>; deletionTimestamp?: string };
  spec: any;
  status?: any;
}

/** A bare pod that mounts a claim. */
const claimPod = (name: string, claim: string) => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name },
  spec: {
    terminationGracePeriodSeconds: 1, restartPolicy: 'Never',
    containers: [{ name: 'main', image: 'busybox', command: ['sleep', '3600'], volumeMounts: [{ name: 'd', mountPath: '/d' }] }],
    volumes: [{ name: 'd', persistentVolumeClaim: { claimName: claim } }],
  },
});

let cluster: SimCluster;
let stopStandIn: (() => Promise<void>) | undefined;

async function kubectl(args: string[], input?: string): Promise<string> {
  const r = await cluster.kubectl(args, { input, timeoutMs: 180_000 });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

async function getJson<T = Obj>(args: string[]): Promise<T> {
  return JSON.parse(await kubectl(['get', ...args, '-o', 'json'])) as T;
}

async function items(args: string[]): Promise<Obj[]> {
  return (await getJson<{ items: Obj[] }>(args)).items;
}

/** The harness's waitFor, with this file's longer default (120 s) and 500 ms polls. */
function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  return harnessWaitFor(what, check, timeoutMs, 500);
}

const podNames = async (app: string): Promise<string[]> =>
  (await items(['pods', '-l', `app=${app}`])).map((p) => p.metadata.name).sort();

/**
 * Stand-in for the kubelet, used only while test/sim/kubelet/main.ts is missing: registers the
 * cluster's nodes as Ready and marks bound pods Running+Ready, finishing graceful deletions.
 */
async function standInKubelet(): Promise<() => Promise<void>> {
  const nodes = ['node-1', 'node-2', 'node-3'].map((n) => ({
    apiVersion: 'v1', kind: 'Node',
    metadata: { name: n, labels: { 'kubernetes.io/hostname': n } },
    status: { conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady' }] },
  }));
  await kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: nodes }));
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      for (const p of await items(['pods', '-A']).catch(() => [] as Obj[])) {
        const ns = (p.metadata as { namespace?: string }).namespace ?? 'default';
        if (p.metadata.deletionTimestamp) {
          await cluster.kubectl(['delete', 'pod', '-n', ns, p.metadata.name, '--grace-period=0', '--force']);
        } else if (p.spec.nodeName && p.status?.phase !== 'Running') {
          const status = { status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] } };
          await cluster.kubectl(['patch', 'pod', '-n', ns, p.metadata.name, '--subresource=status', '--type=merge', '-p', JSON.stringify(status)]);
        }
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  })();
  return async () => {
    stopped = true;
    await loop;
  };
}

describe('simulator controller-manager through real kubectl', () => {
  beforeAll(async () => {
    requireCommand('kubectl', 'install kubectl 1.32 (see README)');
    cluster = await startCluster();
    if (!REAL_KUBELET) stopStandIn = await standInKubelet();
  });

  afterAll(async () => {
    await stopStandIn?.();
    await cluster?.down();
  });

  it('creates a StatefulSet\'s pods and claims in order, each claim bound to a PV on its pod\'s node', async () => {
    await kubectl(['apply', '-f', '-'], sts('web', 3));
    await kubectl(['rollout', 'status', 'statefulset/web', '--timeout=150s']);

    const pods = await items(['pods', '-l', 'app=web']);
    expect(pods.map((p) => p.metadata.name).sort()).toEqual(['web-0', 'web-1', 'web-2']);
    const claims = await items(['pvc']);
    expect(claims.map((c) => c.metadata.name).sort()).toEqual(['data-web-0', 'data-web-1', 'data-web-2']);
    for (const pod of pods) {
      const ordinal = pod.metadata.name.split('-')[1];
      expect(pod.metadata.labels?.['statefulset.kubernetes.io/pod-name']).toBe(pod.metadata.name);
      expect(pod.spec.hostname).toBe(pod.metadata.name);
      expect(pod.spec.subdomain).toBe('web');
      const claim = claims.find((c) => c.metadata.name === `data-web-${ordinal}`)!;
      expect(claim.status.phase).toBe('Bound');
      expect(claim.metadata.labels).toEqual({ app: 'web' });
      const pv = await getJson(['pv', claim.spec.volumeName]);
      expect(pv.metadata.name).toBe(`pvc-${claim.metadata.uid}`);
      expect(pv.status.phase).toBe('Bound');
      expect(pv.spec.capacity.storage).toBe('64Mi');
      expect(pv.spec.storageClassName).toBe('standard');
      expect(pv.spec.claimRef.name).toBe(claim.metadata.name);
      expect(pv.spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0]).toEqual({
        key: 'kubernetes.io/hostname', operator: 'In', values: [pod.spec.nodeName],
      });
      expect(pv.spec.local.path).toBe(join(cluster.dir, 'nodes', pod.spec.nodeName, 'volumes', pv.metadata.name));
    }
    // spread: three pods on three different nodes
    expect(new Set(pods.map((p) => p.spec.nodeName)).size).toBe(3);
    const sc = await getJson(['storageclass', 'standard']);
    expect(sc).toMatchObject({ provisioner: 'sim.local/local', volumeBindingMode: 'WaitForFirstConsumer' });
    const events = await kubectl(['get', 'events', '-o', 'jsonpath={range .items[*]}{.reason}{"\\n"}{end}']);
    expect(events).toContain('Scheduled');
    expect(events).toContain('ProvisioningSucceeded');
    expect(events).toContain('SuccessfulCreate');
  });

  it('recreates a deleted pod on the same node with the same claim', async () => {
    const before = await getJson(['pod', 'web-1']);
    await kubectl(['delete', 'pod', 'web-1', '--wait=true', '--timeout=120s']);
    const after = await waitFor('web-1 to come back Ready', async () => {
      const p = await getJson(['pod', 'web-1']).catch(() => undefined);
      const ready = p?.status?.conditions?.some((c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'True');
      return p && p.metadata.uid !== before.metadata.uid && ready ? p : undefined;
    });
    expect(after.spec.nodeName).toBe(before.spec.nodeName);
    const claimOf = (p: Obj): string => p.spec.volumes.find((v: { name: string }) => v.name === 'data').persistentVolumeClaim.claimName;
    expect(claimOf(after)).toBe('data-web-1');
    expect(claimOf(before)).toBe('data-web-1');
  });

  it('scales down from the highest ordinal, one at a time, keeping the claims', async () => {
    const seen: string[][] = [];
    await kubectl(['scale', 'statefulset/web', '--replicas=1']);
    await waitFor('only web-0 left', async () => {
      const names = await podNames('web');
      seen.push(names);
      return names.length === 1 ? names : undefined;
    });
    expect(await podNames('web')).toEqual(['web-0']);
    // web-1 never went before web-2
    expect(seen.filter((s) => s.includes('web-2') && !s.includes('web-1'))).toEqual([]);
    const claims = (await items(['pvc'])).map((c) => c.metadata.name).sort();
    expect(claims).toEqual(['data-web-0', 'data-web-1', 'data-web-2']);

    await kubectl(['scale', 'statefulset/web', '--replicas=3']);
    await kubectl(['rollout', 'status', 'statefulset/web', '--timeout=150s']);
    expect(await podNames('web')).toEqual(['web-0', 'web-1', 'web-2']);
  });

  it('rolling restart recreates every pod and `kubectl rollout status` (1.32 and 1.30) finishes', async () => {
    const before = new Map((await items(['pods', '-l', 'app=web'])).map((p) => [p.metadata.name, p.metadata.uid]));
    await kubectl(['rollout', 'restart', 'statefulset/web']);
    await kubectl(['rollout', 'status', 'statefulset/web', '--timeout=240s']);
    const old = await cluster.kubectl(['rollout', 'status', 'statefulset/web', '--timeout=60s'], { bin: '/usr/lib/google-cloud-sdk/bin/kubectl.1.30' });
    expect(old.code).toBe(0);
    const set = await getJson(['statefulset', 'web']);
    expect(set.status.currentRevision).toBe(set.status.updateRevision);
    expect(set.status.readyReplicas).toBe(3);
    expect(set.status.updatedReplicas).toBe(3);
    expect(set.status.observedGeneration).toBe((set.metadata as { generation?: number }).generation);
    const after = await items(['pods', '-l', 'app=web']);
    expect(after.map((p) => p.metadata.name).sort()).toEqual(['web-0', 'web-1', 'web-2']);
    for (const p of after) {
      expect(p.metadata.uid).not.toBe(before.get(p.metadata.name));
      expect(p.metadata.labels?.['controller-revision-hash']).toBe(set.status.updateRevision);
    }
    const revisions = await items(['controllerrevisions']);
    expect(revisions.map((r) => r.metadata.name)).toContain(set.status.updateRevision);
  });

  it('scales a Deployment to 0 and back', async () => {
    await kubectl(['apply', '-f', '-'], deployment('api', 2));
    await kubectl(['rollout', 'status', 'deployment/api', '--timeout=150s']);
    expect((await podNames('api')).length).toBe(2);
    const rs = await items(['replicasets', '-l', 'app=api']);
    expect(rs).toHaveLength(1);
    expect((await podNames('api')).every((n) => n.startsWith(`${rs[0].metadata.name}-`))).toBe(true);

    await kubectl(['scale', 'deployment/api', '--replicas=0']);
    await waitFor('no api pods', async () => ((await podNames('api')).length === 0 ? true : undefined));
    await kubectl(['scale', 'deployment/api', '--replicas=2']);
    await kubectl(['rollout', 'status', 'deployment/api', '--timeout=150s']);
    const d = await getJson(['deployment', 'api']);
    expect(d.status).toMatchObject({ replicas: 2, readyReplicas: 2, availableReplicas: 2, updatedReplicas: 2 });
    const progressing = d.status.conditions.find((c: { type: string }) => c.type === 'Progressing');
    expect(progressing.reason).toBe('NewReplicaSetAvailable');
  });

  it('keeps a pod that fits no node Pending with a FailedScheduling event, and places it once a node fits', async () => {
    await kubectl(['cordon', 'node-2']);
    const pod = {
      apiVersion: 'v1', kind: 'Pod', metadata: { name: 'pinned' },
      spec: {
        nodeSelector: { 'kubernetes.io/hostname': 'node-2' },
        terminationGracePeriodSeconds: 1,
        containers: [{ name: 'main', image: 'busybox', command: ['sleep', '3600'] }],
      },
    };
    await kubectl(['apply', '-f', '-'], JSON.stringify(pod));
    const cond = await waitFor('PodScheduled=False', async () => {
      const p = await getJson(['pod', 'pinned']);
      return p.status?.conditions?.find((c: { type: string; status: string }) => c.type === 'PodScheduled' && c.status === 'False');
    });
    expect(cond.reason).toBe('Unschedulable');
    expect(cond.message).toContain('0/3 nodes are available');
    expect((await getJson(['pod', 'pinned'])).spec.nodeName).toBeUndefined();
    const events = await kubectl(['get', 'events', '--field-selector', 'involvedObject.name=pinned', '-o', 'jsonpath={.items[*].reason}']);
    expect(events).toContain('FailedScheduling');

    await kubectl(['uncordon', 'node-2']);
    await kubectl(['wait', 'pod/pinned', '--for=condition=Ready', '--timeout=120s']);
    expect((await getJson(['pod', 'pinned'])).spec.nodeName).toBe('node-2');
  });

  it('garbage-collects the pods of a deleted StatefulSet and keeps its claims', async () => {
    await kubectl(['delete', 'statefulset', 'web', '--wait=true']);
    await waitFor('web pods gone', async () => ((await podNames('web')).length === 0 ? true : undefined));
    const claims = (await items(['pvc'])).map((c) => c.metadata.name).sort();
    expect(claims).toEqual(['data-web-0', 'data-web-1', 'data-web-2']);
    expect(await items(['controllerrevisions', '-l', 'app=web'])).toEqual([]);
  });

  it('garbage-collects a pod owned by a ConfigMap within seconds of the ConfigMap\'s deletion, as the watch-driven real GC does (a periodic pass took up to a minute)', async () => {
    await kubectl(['create', 'configmap', 'owner-cm']);
    const uid = (await getJson(['configmap', 'owner-cm'])).metadata.uid as string;
    await kubectl(['apply', '-f', '-'], JSON.stringify({
      apiVersion: 'v1', kind: 'Pod',
      metadata: { name: 'owned-by-cm', ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner-cm', uid }] },
      spec: { containers: [{ name: 'c', image: 'docker.io/library/busybox:1.36', command: ['sleep', '3600'] }], terminationGracePeriodSeconds: 0 },
    }));
    // Running first: the GC has seen the pod, and its owner alive.
    await kubectl(['wait', 'pod/owned-by-cm', '--for=condition=Ready', '--timeout=60s']);
    await kubectl(['delete', 'configmap', 'owner-cm']);
    // kube-controller-manager's garbagecollector acts on the owner's delete event (graph_builder.go).
    await waitFor('the pod owned by the deleted ConfigMap to go', async () => ((await items(['pods', '--field-selector', 'metadata.name=owned-by-cm'])).length === 0 ? true : undefined), 10_000);
  });

  it('deletes a provisioned PV and destroys its storage once its claim is deleted (reclaim policy Delete)', async () => {
    const claim = await getJson(['pvc', 'data-web-2']);
    const pv = await getJson(['pv', claim.spec.volumeName]);
    const path: string = pv.spec.local.path;
    expect(existsSync(`${path}.img`)).toBe(true);
    expect(pv.metadata).toMatchObject({ finalizers: ['kubernetes.io/pv-protection'] });
    await kubectl(['delete', 'pvc', 'data-web-2', '--wait=true']);
    await waitFor('the PV to go', async () => {
      const r = await cluster.kubectl(['get', 'pv', claim.spec.volumeName]);
      return r.code !== 0 && /NotFound/.test(r.stderr) ? true : undefined;
    });
    expect(existsSync(`${path}.img`)).toBe(false);
    expect(existsSync(path)).toBe(false);
  });

  it('keeps a claim that a pod uses Terminating (pvc-protection) until the pod is gone', async () => {
    const claim = await getJson(['pvc', 'data-web-1']);
    expect(claim.metadata).toMatchObject({ finalizers: ['kubernetes.io/pvc-protection'] });
    await kubectl(['apply', '-f', '-'], JSON.stringify(claimPod('holder', 'data-web-1')));
    await waitFor('holder to run', async () => ((await getJson(['pod', 'holder'])).status?.phase === 'Running' ? true : undefined));
    await kubectl(['delete', 'pvc', 'data-web-1', '--wait=false']);
    await new Promise((r) => setTimeout(r, 2000));
    const terminating = await getJson(['pvc', 'data-web-1']);
    expect(terminating.metadata.uid).toBe(claim.metadata.uid);
    expect(terminating.metadata.deletionTimestamp).toBeDefined();
    // A new pod on a claim being deleted never starts (the kubelet refuses it).
    await kubectl(['apply', '-f', '-'], JSON.stringify(claimPod('late', 'data-web-1')));
    await new Promise((r) => setTimeout(r, 3000));
    expect((await getJson(['pod', 'late'])).status?.phase).not.toBe('Running');
    await kubectl(['delete', 'pod', 'holder', 'late', '--wait=true']);
    await waitFor('the claim to go', async () => {
      const r = await cluster.kubectl(['get', 'pvc', 'data-web-1']);
      return r.code !== 0 && /NotFound/.test(r.stderr) ? true : undefined;
    });
  });

  it('whenScaled: Delete deletes the claims of the pods a scale-down removes; set to Retain first, it keeps them', async () => {
    const manifest = sts('ret', 3).replace('  serviceName: ret\n', '  serviceName: ret\n  podManagementPolicy: Parallel\n  persistentVolumeClaimRetentionPolicy: {whenScaled: Delete, whenDeleted: Retain}\n');
    await kubectl(['apply', '-f', '-'], manifest);
    await waitFor('3 ret pods ready', async () => ((await items(['pods', '-l', 'app=ret'])).filter((p) => p.status?.conditions?.some((c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'True')).length === 3 ? true : undefined));
    const uids = Object.fromEntries((await items(['pvc'])).filter((c) => c.metadata.name.startsWith('data-ret-')).map((c) => [c.metadata.name, c.metadata.uid]));
    await kubectl(['scale', 'statefulset', 'ret', '--replicas=2']);
    await waitFor('data-ret-2 to go', async () => (!(await items(['pvc'])).some((c) => c.metadata.name === 'data-ret-2') ? true : undefined));
    await kubectl(['patch', 'statefulset', 'ret', '--type=merge', '-p', '{"spec":{"persistentVolumeClaimRetentionPolicy":{"whenScaled":"Retain"}}}']);
    await waitFor('the policy to be observed', async () => {
      const s2 = await getJson(['statefulset', 'ret']);
      return (s2.status?.observedGeneration ?? 0) >= (s2.metadata as { generation?: number }).generation! ? true : undefined;
    });
    await kubectl(['scale', 'statefulset', 'ret', '--replicas=0']);
    await waitFor('ret pods gone', async () => ((await podNames('ret')).length === 0 ? true : undefined));
    await new Promise((r) => setTimeout(r, 3000));
    const left = Object.fromEntries((await items(['pvc'])).filter((c) => c.metadata.name.startsWith('data-ret-')).map((c) => [c.metadata.name, c.metadata.uid]));
    expect(left).toEqual({ 'data-ret-0': uids['data-ret-0'], 'data-ret-1': uids['data-ret-1'] });
  });
  it('runs a CronJob: a missed time starts a Job from its template, named by its minute; finished Jobs beyond the history limits go, manual ones included; a bad schedule is refused', async () => {
    const cronJob = (name: string, schedule: string, extra = '') => `
apiVersion: batch/v1
kind: CronJob
metadata: {name: ${name}}
spec:
  schedule: "${schedule}"${extra}
  successfulJobsHistoryLimit: 1
  jobTemplate:
    metadata: {labels: {app: ${name}}, annotations: {note: from-template}}
    spec:
      backoffLimit: 0
      template:
        spec:
          restartPolicy: Never
          terminationGracePeriodSeconds: 1
          containers: [{name: main, image: busybox, command: [sh, -c, "exit 0"]}]
`;
    // The API server validates the schedule with robfig/cron's parser, the zone and the name's length.
    const refused = async (name: string, schedule: string, extra = '') => (await cluster.kubectl(['apply', '-f', '-'], { input: cronJob(name, schedule, extra) })).stderr;
    expect(await refused('bad', '61 * * * *')).toContain('spec.schedule: Invalid value: "61 * * * *": end of range (61) above maximum (59): 61');
    expect(await refused('bad', 'TZ=UTC 0 * * * *')).toContain('cannot use TZ or CRON_TZ in schedule, use timeZone field instead');
    expect(await refused('bad', '0 * * * *', '\n  timeZone: Mars/Olympus')).toContain('spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus');
    expect(await refused('a'.repeat(53), '0 * * * *')).toContain('must be no more than 52 characters');

    // Yearly, so that no time falls due by itself during the test.
    await kubectl(['apply', '-f', '-'], cronJob('tick', '0 0 1 1 *'));
    const cj = await getJson(['cronjob', 'tick']);
    expect(cj.spec).toMatchObject({ concurrencyPolicy: 'Allow', suspend: false, successfulJobsHistoryLimit: 1, failedJobsHistoryLimit: 1 });
    // As if the controller had been down since 2025: the most recent missed time runs at once, only it.
    await kubectl(['patch', 'cronjob', 'tick', '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { lastScheduleTime: '2025-01-01T00:00:00Z' } })]);
    const scheduled = `tick-${Date.parse('2026-01-01T00:00:00Z') / 60_000}`;
    const job = await waitFor(`job ${scheduled}`, async () => (await items(['jobs', '-l', 'app=tick'])).find((j) => j.metadata.name === scheduled));
    expect((job.metadata as { annotations?: Record<string, string> }).annotations).toEqual({ note: 'from-template', 'batch.kubernetes.io/cronjob-scheduled-timestamp': '2026-01-01T00:00:00Z' });
    expect((job.metadata as { ownerReferences?: unknown[] }).ownerReferences).toEqual([{ apiVersion: 'batch/v1', kind: 'CronJob', name: 'tick', uid: cj.metadata.uid, controller: true, blockOwnerDeletion: true }]);
    // The API server generated the selector and the template's labels.
    expect(job.spec.selector).toEqual({ matchLabels: { 'batch.kubernetes.io/controller-uid': job.metadata.uid } });
    expect(job.spec.template.metadata.labels).toEqual({ 'job-name': scheduled, 'batch.kubernetes.io/job-name': scheduled, 'controller-uid': job.metadata.uid, 'batch.kubernetes.io/controller-uid': job.metadata.uid });
    await waitFor('the CronJob to see it complete', async () => {
      const s = (await getJson(['cronjob', 'tick'])).status;
      return s?.lastSuccessfulTime && !s.active?.length ? s : undefined;
    });
    expect((await getJson(['cronjob', 'tick'])).status.lastScheduleTime).toBe('2026-01-01T00:00:00Z');

    // A Job made by hand for the CronJob counts toward its history: once it succeeds, the older
    // scheduled one is deleted, with its pods.
    const manual = (name: string, code: number) => JSON.stringify({
      apiVersion: 'batch/v1', kind: 'Job',
      metadata: { name, labels: { app: 'tick' }, annotations: { 'cronjob.kubernetes.io/instantiate': 'manual' }, ownerReferences: [{ apiVersion: 'batch/v1', kind: 'CronJob', name: 'tick', uid: cj.metadata.uid, controller: true }] },
      spec: { backoffLimit: 0, template: { spec: { restartPolicy: 'Never', terminationGracePeriodSeconds: 1, containers: [{ name: 'main', image: 'busybox', command: ['sh', '-c', `exit ${code}`] }] } } },
    });
    // kubectl 1.32 sends this Job as protobuf, which the API server decodes (apiserver/protobuf-job.ts).
    await kubectl(['create', 'job', 'tick-manual-ok', '--from=cronjob/tick']);
    const made = await getJson(['job', 'tick-manual-ok']);
    expect((made.metadata as { annotations?: Record<string, string> }).annotations).toEqual({ 'cronjob.kubernetes.io/instantiate': 'manual', note: 'from-template' });
    expect((made.metadata as { ownerReferences?: unknown[] }).ownerReferences).toEqual([{ apiVersion: 'batch/v1', kind: 'CronJob', name: 'tick', uid: cj.metadata.uid, controller: true }]);
    await waitFor(`${scheduled} to be deleted`, async () => ((await items(['jobs', '-l', 'app=tick'])).map((j) => j.metadata.name).join() === 'tick-manual-ok' ? true : undefined));
    await waitFor('its pods to go', async () => ((await items(['pods', '-l', `job-name=${scheduled}`])).length === 0 ? true : undefined));
    // Failed Jobs keep failedJobsHistoryLimit (1 by default): the older failure and its logs are gone.
    await kubectl(['create', '-f', '-'], manual('tick-fail-1', 3));
    await waitFor('tick-fail-1 to fail', async () => ((await getJson(['job', 'tick-fail-1'])).status?.conditions?.some((c: { type: string }) => c.type === 'Failed') ? true : undefined));
    await kubectl(['create', '-f', '-'], manual('tick-fail-2', 3));
    await waitFor('tick-fail-1 to be deleted', async () => ((await items(['jobs', '-l', 'app=tick'])).map((j) => j.metadata.name).sort().join() === 'tick-fail-2,tick-manual-ok' ? true : undefined));
    const events = (await items(['events', '--field-selector', 'involvedObject.name=tick'])).map((e) => `${(e as unknown as { reason: string }).reason} ${(e as unknown as { message: string }).message}`);
    expect(events).toEqual(expect.arrayContaining([
      `SuccessfulCreate Created job ${scheduled}`, `SawCompletedJob Saw completed job: ${scheduled}, condition: Complete`,
      `SuccessfulDelete Deleted job ${scheduled}`, 'SuccessfulDelete Deleted job tick-fail-1',
    ]));
  });
  it('refuses a pod whose ServiceAccount does not exist: a Job created before its account gets FailedCreate, and runs once the account exists', async () => {
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'nosa' }, spec: { serviceAccountName: 'backup', restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox', command: ['true'] }] } };
    const refused = await cluster.kubectl(['create', '-f', '-'], { input: JSON.stringify(pod) });
    expect(refused.stderr).toContain('pods "nosa" is forbidden: error looking up service account default/backup: serviceaccount "backup" not found');
    // A pod without one runs as "default", which every namespace has.
    const plain = await cluster.kubectl(['create', '-f', '-', '--dry-run=server', '-o', 'json'], { input: JSON.stringify({ ...pod, spec: { ...pod.spec, serviceAccountName: undefined } }) });
    expect(JSON.parse(plain.stdout).spec).toMatchObject({ serviceAccountName: 'default', serviceAccount: 'default' });
    // The naive order: the Job first, its account after.
    const job = { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'early' }, spec: { backoffLimit: 0, template: { spec: { ...pod.spec, terminationGracePeriodSeconds: 1 } } } };
    await kubectl(['create', '-f', '-'], JSON.stringify(job));
    const failed = await waitFor('FailedCreate', async () => (await items(['events', '--field-selector', 'involvedObject.name=early,reason=FailedCreate']))[0]);
    expect((failed as unknown as { message: string }).message).toBe('Error creating: pods "early-" is forbidden: error looking up service account default/backup: serviceaccount "backup" not found');
    expect(await items(['pods', '-l', 'job-name=early'])).toEqual([]);
    await kubectl(['create', 'serviceaccount', 'backup']);
    await waitFor('the Job to complete', async () => ((await getJson(['job', 'early'])).status?.succeeded === 1 ? true : undefined));
  });
});
