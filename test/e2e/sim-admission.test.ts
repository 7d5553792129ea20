/**
 * Behaviours of real clusters that the naive way trips over, on one shared cluster through real
 * kubectl: 4 nodes whose hostname labels are not their names (`--hostname-labels=differ`), the
 * first 3 kubeadm control-plane nodes (`kubeadm:controlPlaneTaint=true`), and an etcd from a
 * private registry on the 4th (`single:privateImage=true`). Covered: ResourceQuota and LimitRange
 * admission of pods (also `--dry-run=server`); Pod Security Admission's warn and audit modes (the
 * Warning header kubectl prints, the audit annotation); private images and imagePullSecrets; node labels;
 * the control-plane taint; NoExecute eviction; ReadWriteOncePod claims.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok, requireCommand, requireRoot, startCluster, type SimCluster } from '../sim/harness.js';

let c: SimCluster;

beforeAll(async () => {
  requireRoot();
  requireCommand('kubectl', 'install kubectl 1.32');
  c = await startCluster({ fixtures: ['kubeadm:controlPlaneTaint=true', 'single:privateImage=true'], nodes: 4, hostnameLabels: 'differ' });
}, 300_000);

afterAll(async () => {
  await c?.down();
}, 120_000);

const kubectl = async (args: string[], input?: string): Promise<string> => ok(await c.kubectl(args, { input }));

/** A pod no node matches (it stays Pending and costs nothing), with the given container resources. */
function pendingPod(ns: string, name: string, resources?: object): string {
  return JSON.stringify({
    apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns },
    spec: { nodeSelector: { 'sim-test': 'nowhere' }, containers: [{ name: 'main', image: 'busybox:1.36', command: ['sleep', '3600'], ...(resources ? { resources } : {}) }] },
  });
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The namespace of the node label and taint cases. */
const LABELS_NS = 'node-labels';

/** A pod for the node the selector picks; tolerating the control-plane taint unless told. */
const pinned = (name: string, selector: Record<string, string>, tolerateControlPlane = true) => JSON.stringify({
  apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: LABELS_NS },
  spec: { terminationGracePeriodSeconds: 1, nodeSelector: selector, containers: [{ name: 'main', image: 'busybox:1.36', command: ['sleep', '3600'] }],
    ...(tolerateControlPlane ? { tolerations: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' }] } : {}) },
});
const unschedulable = async (name: string): Promise<{ reason: string; message: string }> => waitFor(`${name} FailedScheduling`, async () => {
  const pod = JSON.parse(await kubectl(['get', 'pod', name, '-n', LABELS_NS, '-o', 'json']));
  return pod.status?.conditions?.find((x: any) => x.type === 'PodScheduled' && x.status === 'False');
});


describe('pod validation', () => {
  it('a StatefulSet\'s template sent as a pod without its claim volumes (the naive member pod) is invalid, also on --dry-run=server', async () => {
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'no-claim', namespace: 'default' }, spec: { containers: [{ name: 'main', image: 'busybox:1.36', volumeMounts: [{ name: 'data', mountPath: '/data' }] }] } };
    const dry = await c.kubectl(['create', '--dry-run=server', '-f', '-'], { input: JSON.stringify(pod) });
    expect(dry.code).toBe(1);
    expect(dry.stderr).toContain('The Pod "no-claim" is invalid: spec.containers[0].volumeMounts[0].name: Not found: "data"');
    const withClaim = { ...pod, spec: { ...pod.spec, volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data-x-0' } }] } };
    expect((await c.kubectl(['create', '--dry-run=server', '-f', '-'], { input: JSON.stringify(withClaim) })).code).toBe(0);
  });
});

describe('ResourceQuota and LimitRange admission', () => {
  const ns = 'quota-compute';
  const QUOTA = `
apiVersion: v1
kind: ResourceQuota
metadata: {name: compute, namespace: ${ns}}
spec:
  hard: {requests.cpu: '1', requests.memory: 1Gi, limits.cpu: '2', limits.memory: 2Gi}
`;
  const REFUSAL = `pods "bare" is forbidden: failed quota: compute: must specify limits.cpu for: main; limits.memory for: main; requests.cpu for: main; requests.memory for: main`;

  beforeAll(async () => {
    await kubectl(['create', 'namespace', ns]);
    await kubectl(['apply', '-f', '-'], QUOTA);
  });

  it('refuses a pod without requests and limits (the naive way), also on --dry-run=server, and stores nothing', async () => {
    const created = await c.kubectl(['create', '-f', '-'], { input: pendingPod(ns, 'bare') });
    expect(created.code).toBe(1);
    expect(created.stderr).toContain(`Error from server (Forbidden): error when creating "STDIN": ${REFUSAL}`);
    const dry = await c.kubectl(['create', '--dry-run=server', '-f', '-'], { input: pendingPod(ns, 'bare') });
    expect(dry.code).toBe(1);
    expect(dry.stderr).toContain(REFUSAL);
    const got = await c.kubectl(['get', 'pod', 'bare', '-n', ns]);
    expect(got.stderr).toContain('pods "bare" not found');
  });

  it('admits a pod with requests and limits, and the quota status counts it', async () => {
    await kubectl(['create', '-f', '-'], pendingPod(ns, 'sized', { requests: { cpu: '250m', memory: '64Mi' }, limits: { cpu: '500m', memory: '128Mi' } }));
    const status = await waitFor('the quota to count the pod', async () => {
      const q = JSON.parse(await kubectl(['get', 'resourcequota', 'compute', '-n', ns, '-o', 'json']));
      return q.status?.used?.['requests.cpu'] === '250m' ? q.status : undefined;
    });
    expect(status).toEqual({
      hard: { 'requests.cpu': '1', 'requests.memory': '1Gi', 'limits.cpu': '2', 'limits.memory': '2Gi' },
      used: { 'limits.cpu': '500m', 'limits.memory': '128Mi', 'requests.cpu': '250m', 'requests.memory': '64Mi' },
    });
    expect(await kubectl(['get', 'quota', '-n', ns])).toMatch(/compute\s+\S+\s+requests\.cpu: 250m\/1, requests\.memory: 64Mi\/1Gi\s+limits\.cpu: 500m\/2, limits\.memory: 128Mi\/2Gi/);
  });

  it('refuses a pod whose requests would exceed the quota, with the exceeded wording', async () => {
    const r = await c.kubectl(['create', '-f', '-'], { input: pendingPod(ns, 'big', { limits: { cpu: '1', memory: '128Mi' } }) });
    expect(r.code).toBe(1);
    // limits only: API defaulting copies them to the requests, and 250m + 1 > 1
    expect(r.stderr).toContain('pods "big" is forbidden: exceeded quota: compute, requested: requests.cpu=1, used: requests.cpu=250m, limited: requests.cpu=1');
  });

  it('admits the bare pod once a LimitRange gives containers default requests and limits', async () => {
    await kubectl(['apply', '-f', '-'], `
apiVersion: v1
kind: LimitRange
metadata: {name: defaults, namespace: ${ns}}
spec:
  limits:
  - type: Container
    default: {cpu: 200m, memory: 128Mi}
    defaultRequest: {cpu: 100m, memory: 64Mi}
    max: {cpu: '1'}
`);
    await kubectl(['create', '-f', '-'], pendingPod(ns, 'bare'));
    const pod = JSON.parse(await kubectl(['get', 'pod', 'bare', '-n', ns, '-o', 'json']));
    expect(pod.spec.containers[0].resources).toEqual({ requests: { cpu: '100m', memory: '64Mi' }, limits: { cpu: '200m', memory: '128Mi' } });
    expect(pod.metadata.annotations['kubernetes.io/limit-ranger']).toBe('LimitRanger plugin set: cpu, memory request for container main; cpu, memory limit for container main');
  });

  it("refuses a container over the LimitRange's max", async () => {
    const r = await c.kubectl(['create', '--dry-run=server', '-f', '-'], { input: pendingPod(ns, 'greedy', { limits: { cpu: '2' } }) });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('pods "greedy" is forbidden: maximum cpu usage per Container is 1, but limit is 2');
  });

  it('refuses a pod past a full pods quota, and admits it once a pod is gone', async () => {
    const pns = 'quota-pods';
    await kubectl(['create', 'namespace', pns]);
    await kubectl(['apply', '-f', '-'], `{"apiVersion":"v1","kind":"ResourceQuota","metadata":{"name":"pods-max","namespace":"${pns}"},"spec":{"hard":{"pods":"1"}}}`);
    await kubectl(['create', '-f', '-'], pendingPod(pns, 'first'));
    const r = await c.kubectl(['create', '-f', '-'], { input: pendingPod(pns, 'second') });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('pods "second" is forbidden: exceeded quota: pods-max, requested: pods=1, used: pods=1, limited: pods=1');
    expect((await c.kubectl(['get', 'pod', 'second', '-n', pns])).code).toBe(1);
    await kubectl(['delete', 'pod', 'first', '-n', pns]);
    await kubectl(['create', '-f', '-'], pendingPod(pns, 'second'));
    const q = JSON.parse(await kubectl(['get', 'quota', 'pods-max', '-n', pns, '-o', 'json']));
    expect(q.status).toEqual({ hard: { pods: '1' }, used: { pods: '1' } });
  });
});

describe('Pod Security Admission: warn and audit', () => {
  /** What a container "main" that sets no securityContext breaks at restricted, as kube-apiserver words it. */
  const RESTRICTED = 'would violate PodSecurity "restricted:latest": '
    + 'allowPrivilegeEscalation != false (container "main" must set securityContext.allowPrivilegeEscalation=false), '
    + 'unrestricted capabilities (container "main" must set securityContext.capabilities.drop=["ALL"]), '
    + 'runAsNonRoot != true (pod or container "main" must set securityContext.runAsNonRoot=true), '
    + 'seccompProfile (pod or container "main" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")';
  const labelled = (name: string, labels: Record<string, string>) => kubectl(['apply', '-f', '-'], JSON.stringify({
    apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: Object.fromEntries(Object.entries(labels).map(([k, v]) => [`pod-security.kubernetes.io/${k}`, v])) },
  }));
  /** A workload of no replicas (nothing to run) whose template is pendingPod's. */
  const workload = (kind: 'Deployment' | 'StatefulSet', ns: string, name: string, image = 'busybox:1.36') => JSON.stringify({
    apiVersion: 'apps/v1', kind, metadata: { name, namespace: ns },
    spec: { replicas: 0, selector: { matchLabels: { app: name } }, ...(kind === 'StatefulSet' ? { serviceName: name } : {}),
      template: { metadata: { labels: { app: name } }, spec: JSON.parse(pendingPod(ns, name)).spec } },
  }).replace('busybox:1.36', image);
  const warnings = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('Warning: '));

  beforeAll(async () => {
    await labelled('psa-warn', { warn: 'restricted' });
    await labelled('psa-enforce', { enforce: 'restricted' });
    await labelled('psa-audit', { enforce: 'baseline', audit: 'restricted' });
  });

  it('warn=restricted: kubectl prints the Warning header of a violating pod and the pod is created, also on --dry-run=server', async () => {
    const dry = await c.kubectl(['create', '--dry-run=server', '-f', '-'], { input: pendingPod('psa-warn', 'loose') });
    expect(dry.code).toBe(0);
    expect(warnings(dry.stderr)).toEqual([`Warning: ${RESTRICTED}`]);
    expect((await c.kubectl(['get', 'pod', 'loose', '-n', 'psa-warn'])).code).toBe(1);
    const r = await c.kubectl(['create', '-f', '-'], { input: pendingPod('psa-warn', 'loose') });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(`Warning: ${RESTRICTED}\n`);
    expect(r.stdout).toBe('pod/loose created\n');
    expect(await kubectl(['get', 'pod', 'loose', '-n', 'psa-warn', '-o', 'name'])).toBe('pod/loose\n');
  });

  it('warn=restricted: a Deployment or StatefulSet whose template violates it gets the same warning on create and on update', async () => {
    const deploy = await c.kubectl(['create', '-f', '-'], { input: workload('Deployment', 'psa-warn', 'web') });
    expect(deploy.code).toBe(0);
    expect(warnings(deploy.stderr)).toEqual([`Warning: ${RESTRICTED}`]);
    expect(deploy.stdout).toBe('deployment.apps/web created\n');
    const sts = await c.kubectl(['apply', '-f', '-'], { input: workload('StatefulSet', 'psa-warn', 'db') });
    expect(sts.code).toBe(0);
    expect(warnings(sts.stderr)).toEqual([`Warning: ${RESTRICTED}`]);
    expect(sts.stdout).toBe('statefulset.apps/db created\n');
    const update = await c.kubectl(['apply', '-f', '-'], { input: workload('StatefulSet', 'psa-warn', 'db', 'busybox:1.37') });
    expect(update.code).toBe(0);
    expect(warnings(update.stderr)).toEqual([`Warning: ${RESTRICTED}`]);
    expect(update.stdout).toBe('statefulset.apps/db configured\n');
    // a scale is a subresource: PodSecurity does not look at it
    const scaled = await c.kubectl(['scale', 'statefulset', 'db', '-n', 'psa-warn', '--replicas=0']);
    expect(scaled.code).toBe(0);
    expect(warnings(scaled.stderr)).toEqual([]);
  });

  it('enforce=restricted alone: a violating Deployment is created without a refusal or a warning; its pod would be refused', async () => {
    const r = await c.kubectl(['create', '-f', '-'], { input: workload('Deployment', 'psa-enforce', 'web') });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('deployment.apps/web created\n');
    const pod = await c.kubectl(['create', '--dry-run=server', '-f', '-'], { input: pendingPod('psa-enforce', 'web-pod') });
    expect(pod.code).toBe(1);
    expect(pod.stderr).toContain(`pods "web-pod" is forbidden: ${RESTRICTED.replace('would violate', 'violates')}`);
  });

  it('audit=restricted: the audit line of the pod create carries the audit-violations and enforce-policy annotations; no warning', async () => {
    const r = await c.kubectl(['create', '-f', '-'], { input: pendingPod('psa-audit', 'audited') });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const lines = readFileSync(join(c.dir, 'audit.log'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const create = lines.filter((l) => l.verb === 'create' && l.resource === 'pods' && l.namespace === 'psa-audit');
    expect(create).toHaveLength(1);
    expect(create[0]).toMatchObject({ user: 'admin', code: 201 }); // a create's line has no name: its URL is the collection's
    expect(create[0].annotations).toEqual({
      'pod-security.kubernetes.io/enforce-policy': 'baseline:latest',
      'pod-security.kubernetes.io/audit-violations': RESTRICTED,
    });
  });
});

describe('private images', () => {
  const ns = 'private-images';
  /** A pod of image that sleeps, with the given pull Secrets. */
  const sleeper = (name: string, image: string, pullSecrets: string[] = []) => JSON.stringify({
    apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns },
    spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'util', image, command: ['sleep', '3600'] }],
      ...(pullSecrets.length ? { imagePullSecrets: pullSecrets.map((n) => ({ name: n })) } : {}) },
  });
  let etcdImage = '';

  beforeAll(async () => {
    await kubectl(['create', 'namespace', ns]);
    etcdImage = ok(await c.kubectl(['get', 'pod', 'kube-etcd-0', '-n', 'uc1', '-o', 'jsonpath={.spec.containers[0].image}']));
  });

  it('the fixture runs its members from the private registry with its pull Secret', async () => {
    expect(etcdImage).toBe('registry.private.example/gke-on-prem-release/etcd:v3.4.23-0-gke.1');
    const sts = JSON.parse(await kubectl(['get', 'statefulset', 'kube-etcd', '-n', 'uc1', '-o', 'json']));
    expect(sts.spec.template.spec.imagePullSecrets).toEqual([{ name: 'private-registry-creds' }]);
    expect(ok(await c.kubectl(['get', 'secret', 'private-registry-creds', '-n', 'uc1', '-o', 'jsonpath={.type}']))).toBe('kubernetes.io/dockerconfigjson');
    expect(ok(await c.kubectl(['get', 'pod', 'kube-etcd-0', '-n', 'uc1', '-o', 'jsonpath={.status.phase}']))).toBe('Running');
  });

  it("a utility pod of the member's image without pull Secrets (the naive way) never starts: ErrImagePull, ImagePullBackOff", async () => {
    // the etcd-util image of the same private registry, which has sleep
    const image = etcdImage.replace('/etcd:', '/etcd-util:');
    await kubectl(['create', '-f', '-'], sleeper('naive', image));
    const why = `failed to pull and unpack image "${image}": failed to resolve reference "${image}": pulling from host registry.private.example failed with status code [manifests v3.4.23-0-gke.1]: 401 Unauthorized`;
    const waiting = await waitFor('ErrImagePull', async () => {
      const w = JSON.parse(await kubectl(['get', 'pod', 'naive', '-n', ns, '-o', 'json'])).status?.containerStatuses?.[0]?.state?.waiting;
      return w?.reason === 'ErrImagePull' ? w : undefined;
    });
    expect(waiting.message).toBe(`rpc error: code = Unknown desc = ${why}`);
    await waitFor('ImagePullBackOff', async () => (await kubectl(['get', 'pod', 'naive', '-n', ns])).includes('ImagePullBackOff') || undefined);
    const events = await kubectl(['get', 'events', '-n', ns, '--field-selector', 'involvedObject.name=naive', '-o', 'jsonpath={range .items[*]}{.reason}: {.message}{"\\n"}{end}']);
    expect(events).toContain(`Failed: Failed to pull image "${image}": rpc error: code = Unknown desc = ${why}`);
  });

  it('the same pod with a docker-registry Secret for the registry runs', async () => {
    await kubectl(['create', 'secret', 'docker-registry', 'regcred', '-n', ns, '--docker-server=https://registry.private.example', '--docker-username=u', '--docker-password=p']);
    await kubectl(['create', '-f', '-'], sleeper('with-creds', etcdImage.replace('/etcd:', '/etcd-util:'), ['regcred']));
    await kubectl(['wait', '--for=condition=Ready', 'pod/with-creds', '-n', ns, '--timeout=20s']);
  });
});

describe('node labels', () => {
  const ns = LABELS_NS;
  beforeAll(async () => {
    await kubectl(['create', 'namespace', ns]);
  });

  it('every node has a zone, and a hostname label that is not its name', async () => {
    const nodes = JSON.parse(await kubectl(['get', 'nodes', '-o', 'json'])).items;
    expect(nodes.map((n: any) => [n.metadata.name, n.metadata.labels['kubernetes.io/hostname'], n.metadata.labels['topology.kubernetes.io/zone']])).toEqual([
      ['node-1', 'host-1.example.internal', 'zone-a'],
      ['node-2', 'host-2.example.internal', 'zone-b'],
      ['node-3', 'host-3.example.internal', 'zone-c'],
      ['node-4', 'host-4.example.internal', 'zone-a'],
    ]);
  });

  it('a nodeSelector on the hostname label with the node name (the naive way) stays Pending; the label value schedules', async () => {
    await kubectl(['create', '-f', '-'], pinned('by-name', { 'kubernetes.io/hostname': 'node-1' }));
    const cond = await unschedulable('by-name');
    expect(cond.reason).toBe('Unschedulable');
    expect(cond.message).toBe("0/4 nodes are available: 4 node(s) didn't match Pod's node affinity/selector. preemption: 0/4 nodes are available: 4 Preemption is not helpful for scheduling.");
    const events = await kubectl(['get', 'events', '-n', ns, '--field-selector', 'involvedObject.name=by-name,reason=FailedScheduling', '-o', 'jsonpath={.items[0].message}']);
    expect(events).toBe(cond.message);
    await kubectl(['create', '-f', '-'], pinned('by-label', { 'kubernetes.io/hostname': 'host-1.example.internal' }));
    await kubectl(['wait', '--for=condition=Ready', 'pod/by-label', '-n', ns, '--timeout=20s']);
    expect(ok(await c.kubectl(['get', 'pod', 'by-label', '-n', ns, '-o', 'jsonpath={.spec.nodeName}']))).toBe('node-1');
    expect(ok(await c.kubectl(['get', 'pod', 'by-name', '-n', ns, '-o', 'jsonpath={.spec.nodeName}']))).toBe('');
  });

  it("a local PV's node affinity names its node's hostname label value", async () => {
    const node = ok(await c.kubectl(['get', 'pod', 'kube-etcd-0', '-n', 'uc1', '-o', 'jsonpath={.spec.nodeName}']));
    const volume = ok(await c.kubectl(['get', 'pvc', 'data-kube-etcd-0', '-n', 'uc1', '-o', 'jsonpath={.spec.volumeName}']));
    const pv = JSON.parse(await kubectl(['get', 'pv', volume, '-o', 'json']));
    expect(pv.spec.nodeAffinity.required.nodeSelectorTerms).toEqual([
      { matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [node.replace('node-', 'host-') + '.example.internal'] }] },
    ]);
  });
});

describe('control-plane taint', () => {

  it('kubeadm control-plane nodes carry the role label and the NoSchedule taint', async () => {
    const nodes = JSON.parse(await kubectl(['get', 'nodes', '-o', 'json'])).items;
    expect(nodes.map((n: any) => [n.metadata.name, n.spec.taints ?? []])).toEqual([
      ['node-1', [{ key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' }]],
      ['node-2', [{ key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' }]],
      ['node-3', [{ key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' }]],
      ['node-4', []],
    ]);
    expect(await kubectl(['get', 'nodes'])).toMatch(/node-1\s+Ready\s+control-plane\s[\s\S]*node-4\s+Ready\s+<none>\s/);
    // the static etcd pods are bound by name and run there all the same
    expect(ok(await c.kubectl(['get', 'pod', 'etcd-node-1', '-n', 'kube-system', '-o', 'jsonpath={.status.phase}']))).toBe('Running');
  });

  it("a pod for a control-plane node's hostname without the toleration (the naive way) stays Pending", async () => {
    await kubectl(['create', '-f', '-'], pinned('untolerated', { 'kubernetes.io/hostname': 'host-1.example.internal' }, false));
    const cond = await unschedulable('untolerated');
    expect(cond.message).toBe("0/4 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 3 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }. preemption: 0/4 nodes are available: 4 Preemption is not helpful for scheduling.");
  });
});

describe('NoExecute eviction', () => {
  const EVICT = { key: 'sim-test/evict', operator: 'Exists', effect: 'NoExecute' };
  /** A pod on node-2 (a control-plane node whose kubeadm etcd tolerates every NoExecute taint). */
  const onNode2 = (name: string, extra: object[] = []) => JSON.stringify({
    apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: LABELS_NS },
    spec: { terminationGracePeriodSeconds: 1, nodeSelector: { 'kubernetes.io/hostname': 'host-2.example.internal' },
      tolerations: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' }, ...extra],
      containers: [{ name: 'main', image: 'busybox:1.36', command: ['sleep', '3600'] }] },
  });
  const exists = async (name: string) => (await c.kubectl(['get', 'pod', name, '-n', LABELS_NS, '-o', 'name'])).code === 0;

  afterAll(async () => {
    await c?.kubectl(['taint', 'nodes', 'node-2', 'sim-test/evict-']);
  });

  it('a NoExecute taint deletes a pod without the toleration at once, and one with tolerationSeconds when they run out', async () => {
    await kubectl(['create', '-f', '-'], onNode2('doomed'));
    await kubectl(['create', '-f', '-'], onNode2('lingering', [{ ...EVICT, tolerationSeconds: 3 }]));
    await kubectl(['create', '-f', '-'], onNode2('staying', [EVICT]));
    await kubectl(['wait', '--for=condition=Ready', 'pod/doomed', 'pod/lingering', 'pod/staying', '-n', LABELS_NS, '--timeout=30s']);
    const tainted = Date.now();
    await kubectl(['taint', 'nodes', 'node-2', 'sim-test/evict=now:NoExecute']);
    await kubectl(['wait', '--for=delete', 'pod/doomed', '-n', LABELS_NS, '--timeout=10s']);
    expect(await exists('lingering')).toBe(true);
    await kubectl(['wait', '--for=delete', 'pod/lingering', '-n', LABELS_NS, '--timeout=15s']);
    // the taint's timeAdded has second precision: 3 s after it is at least 2 s after `tainted`
    expect(Date.now() - tainted).toBeGreaterThanOrEqual(2000);
    expect(await exists('staying')).toBe(true);
    const events = await kubectl(['get', 'events', '-n', LABELS_NS, '--field-selector', 'reason=TaintManagerEviction', '-o', 'jsonpath={range .items[*]}{.message}{"\\n"}{end}']);
    expect(events).toContain(`Marking for deletion Pod ${LABELS_NS}/doomed`);
    expect(events).toContain(`Marking for deletion Pod ${LABELS_NS}/lingering`);
    expect(events).not.toContain('staying');
  });
});

describe('ReadWriteOncePod', () => {
  const claimUser = (name: string) => JSON.stringify({
    apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: LABELS_NS },
    spec: { terminationGracePeriodSeconds: 1,
      tolerations: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' }],
      containers: [{ name: 'main', image: 'busybox:1.36', command: ['sleep', '3600'], volumeMounts: [{ name: 'data', mountPath: '/data' }] }],
      volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'solo' } }] },
  });

  it('a second pod on a claim another pod uses (the naive way) stays Pending; it starts once the first is gone', async () => {
    await kubectl(['apply', '-f', '-'], JSON.stringify({
      apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'solo', namespace: LABELS_NS },
      spec: { accessModes: ['ReadWriteOncePod'], resources: { requests: { storage: '16Mi' } } },
    }));
    await kubectl(['create', '-f', '-'], claimUser('first-user'));
    await kubectl(['wait', '--for=condition=Ready', 'pod/first-user', '-n', LABELS_NS, '--timeout=30s']);
    await kubectl(['create', '-f', '-'], claimUser('second-user'));
    const cond = await unschedulable('second-user');
    expect(cond.message).toBe('0/4 nodes are available: 4 node has pod using PersistentVolumeClaim with the same name and ReadWriteOncePod access mode. ' +
      'preemption: 0/4 nodes are available: 4 No preemption victims found for incoming pod.');
    await kubectl(['delete', 'pod', 'first-user', '-n', LABELS_NS, '--wait=true']);
    await kubectl(['wait', '--for=condition=Ready', 'pod/second-user', '-n', LABELS_NS, '--timeout=30s']);
  });
});
