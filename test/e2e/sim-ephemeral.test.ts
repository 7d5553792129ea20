/**
 * Ephemeral containers in the simulator, through real kubectl 1.32 on one plain cluster (no
 * fixture): the pods/ephemeralcontainers subresource in discovery, `kubectl debug` adding one that
 * shares the pod's network and UTS namespaces (and, with --target, its target's PID namespace),
 * `kubectl exec -c` and `kubectl logs -c` into them, one added with `kubectl replace --raw` that
 * mounts the pod's volume, the API's refusals with kube-apiserver's wording (422, 403 from Pod
 * Security Admission and RBAC), dryRun, never restarting one that exited, never starting one in a
 * pod that has ended, and stopping them with the pod.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok, requireCommand, requireRoot, startCluster, waitFor, type CommandResult, type SimCluster } from '../sim/harness.js';

const NS = 'eph';
const RNS = 'eph-restricted';

const MANIFEST = `
apiVersion: v1
kind: Namespace
metadata: {name: ${NS}}
---
apiVersion: v1
kind: Namespace
metadata:
  name: ${RNS}
  labels: {pod-security.kubernetes.io/enforce: restricted}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: ${NS}}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: main
    image: busybox:1.36
    command: [sh, -c, 'echo from-main > /data/hello.txt; exec sleep 86400']
    volumeMounts: [{name: data, mountPath: /data}]
  volumes: [{name: data, emptyDir: {}}]
---
apiVersion: v1
kind: Pod
metadata: {name: finished, namespace: ${NS}}
spec:
  restartPolicy: Never
  containers: [{name: main, image: busybox:1.36, command: ['true']}]
---
apiVersion: v1
kind: Pod
metadata: {name: app, namespace: ${RNS}}
spec:
  terminationGracePeriodSeconds: 1
  securityContext: {runAsNonRoot: true, runAsUser: 1000, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: main
    image: busybox:1.36
    command: [sleep, '86400']
    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
`;

let cluster: SimCluster;

const kc = (args: string[], input?: string): Promise<CommandResult> => cluster.kubectl(args, { input, timeoutMs: 60_000 });
const kubectl = async (args: string[], input?: string): Promise<string> => ok(await kc(args, input));

async function podJson(ns: string, name: string): Promise<any> {
  return JSON.parse(await kubectl(['-n', ns, 'get', 'pod', name, '-o', 'json']));
}

const ephStatus = (pod: any, name: string): any => (pod.status?.ephemeralContainerStatuses ?? []).find((s: any) => s.name === name);


async function ephemeralState(ns: string, pod: string, name: string, want: 'running' | 'terminated' | 'waiting'): Promise<any> {
  return waitFor(`${pod}/${name} ${want}`, async () => ephStatus(await podJson(ns, pod), name)?.state?.[want]);
}

/** PUT pods/NAME/ephemeralcontainers with the pod as `edit` leaves it (kubectl replace --raw). */
async function replaceEphemeral(ns: string, name: string, edit: (pod: any) => void, query = ''): Promise<CommandResult> {
  const pod = await podJson(ns, name);
  edit(pod);
  return kc(['replace', '--raw', `/api/v1/namespaces/${ns}/pods/${name}/ephemeralcontainers${query}`, '-f', '-'], JSON.stringify(pod));
}

interface AuditLine { verb: string; resource: string; subresource: string; namespace: string; name: string; code: number; user: string }

function auditLines(): AuditLine[] {
  return readFileSync(join(cluster.dir, 'audit.log'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as AuditLine);
}

/** The response codes of the ephemeralcontainers writes on a pod since `from` audit lines. */
function ephemeralCodes(from: number, name: string): number[] {
  return auditLines().slice(from).filter((l) => l.subresource === 'ephemeralcontainers' && l.name === name && l.verb !== 'get').map((l) => l.code);
}

/** Whether a process runs (a zombie does not). */
function pidAlive(pid: number): boolean {
  let stat: string;
  try { stat = readFileSync(`/proc/${pid}/stat`, 'utf8'); } catch { return false; }
  return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
}

beforeAll(async () => {
  requireRoot();
  requireCommand('kubectl', 'install kubectl 1.30 or newer');
  cluster = await startCluster();
  await kubectl(['apply', '-f', '-'], MANIFEST);
  await kubectl(['-n', NS, 'wait', '--for=condition=Ready', 'pod/web', '--timeout=90s']);
  await kubectl(['-n', RNS, 'wait', '--for=condition=Ready', 'pod/app', '--timeout=90s']);
  await kubectl(['-n', NS, 'wait', '--for=jsonpath={.status.phase}=Succeeded', 'pod/finished', '--timeout=90s']);
});

afterAll(async () => {
  await cluster?.down();
});

describe('ephemeral containers', () => {
  it('discovery lists pods/ephemeralcontainers (kind Pod; get, patch, update)', async () => {
    const list = JSON.parse(await kubectl(['get', '--raw', '/api/v1']));
    const sub = list.resources.find((r: any) => r.name === 'pods/ephemeralcontainers');
    expect(sub).toMatchObject({ kind: 'Pod', namespaced: true });
    expect([...sub.verbs].sort()).toEqual(['get', 'patch', 'update']);
  });

  it('kubectl debug adds one that runs in the pod\'s network and UTS namespaces, outside readiness', async () => {
    const r = await kc(['-n', NS, 'debug', 'web', '--image=busybox:1.36', '-c', 'dbg', '--', 'sleep', '3600']);
    expect(r.code, r.stderr).toBe(0);
    const pod = await podJson(NS, 'web');
    expect(pod.spec.ephemeralContainers).toEqual([expect.objectContaining({
      name: 'dbg', image: 'busybox:1.36', command: ['sleep', '3600'],
      imagePullPolicy: 'IfNotPresent', terminationMessagePath: '/dev/termination-log', terminationMessagePolicy: 'File',
    })]);
    await ephemeralState(NS, 'web', 'dbg', 'running');
    expect((await kubectl(['-n', NS, 'exec', 'web', '-c', 'dbg', '--', 'hostname'])).trim()).toBe('web');
    const after = await podJson(NS, 'web');
    const fib = await kubectl(['-n', NS, 'exec', 'web', '-c', 'dbg', '--', 'cat', '/proc/net/fib_trie']);
    expect(fib).toContain(`|-- ${after.status.podIP}\n`);
    // its own PID namespace: its process is PID 1 there
    expect(await kubectl(['-n', NS, 'exec', 'web', '-c', 'dbg', '--', 'cat', '/proc/1/cmdline'])).toBe('sleep\u00003600\u0000');
    const st = ephStatus(after, 'dbg');
    expect(st).toMatchObject({ name: 'dbg', image: 'busybox:1.36', imageID: expect.any(String), ready: false, restartCount: 0, lastState: {} });
    expect(st.state.running.startedAt).toMatch(/Z$/);
    expect(st).not.toHaveProperty('started');
    expect(after.status.containerStatuses[0]).toMatchObject({ name: 'main', ready: true, restartCount: 0 });
    expect(after.status.conditions.find((c: any) => c.type === 'Ready').status).toBe('True');
  });

  it('--target joins the target container\'s PID namespace', async () => {
    ok(await kc(['-n', NS, 'debug', 'web', '--image=busybox:1.36', '-c', 'tgt', '--target=main', '--', 'sleep', '3600']));
    await ephemeralState(NS, 'web', 'tgt', 'running');
    expect(await kubectl(['-n', NS, 'exec', 'web', '-c', 'tgt', '--', 'cat', '/proc/1/cmdline'])).toBe('sleep\u000086400\u0000');
  });

  it('one added by PUT (kubectl replace --raw) mounts the pod\'s volume; dryRun=All stores nothing; exec and logs -c reach it', async () => {
    const add = (pod: any) => {
      pod.spec.ephemeralContainers.push({
        name: 'vol', image: 'busybox:1.36',
        command: ['sh', '-c', 'cat /data/hello.txt; echo from-ephemeral > /data/back.txt; exec sleep 3600'],
        volumeMounts: [{ name: 'data', mountPath: '/data' }],
      });
    };
    const dry = await replaceEphemeral(NS, 'web', add, '?dryRun=All');
    expect(dry.code, dry.stderr).toBe(0);
    expect(JSON.parse(dry.stdout).spec.ephemeralContainers.map((c: any) => c.name)).toContain('vol');
    expect((await podJson(NS, 'web')).spec.ephemeralContainers.map((c: any) => c.name)).not.toContain('vol');
    const r = await replaceEphemeral(NS, 'web', add);
    expect(r.code, r.stderr).toBe(0);
    await ephemeralState(NS, 'web', 'vol', 'running');
    await waitFor('the ephemeral container\'s log', async () => ((await kubectl(['-n', NS, 'logs', 'web', '-c', 'vol'])).includes('from-main') ? true : undefined));
    expect((await kubectl(['-n', NS, 'exec', 'web', '-c', 'vol', '--', 'cat', '/data/hello.txt'])).trim()).toBe('from-main');
    expect((await kubectl(['-n', NS, 'exec', 'web', '-c', 'main', '--', 'cat', '/data/back.txt'])).trim()).toBe('from-ephemeral');
  });

  it('a JSON patch of the subresource adds one; whatever else the patch changes is ignored', async () => {
    const before = await podJson(NS, 'web');
    const r = await kc(['-n', NS, 'patch', 'pod', 'web', '--subresource=ephemeralcontainers', '--type=json', '-p', JSON.stringify([
      { op: 'add', path: '/spec/ephemeralContainers/-', value: { name: 'jp', image: 'busybox:1.36', command: ['sleep', '3600'] } },
      { op: 'add', path: '/metadata/labels', value: { sneaky: 'yes' } },
      { op: 'replace', path: '/spec/containers/0/image', value: 'busybox:1.37' },
      { op: 'replace', path: '/status/phase', value: 'Failed' },
    ])]);
    expect(r.code, r.stderr).toBe(0);
    const after = await podJson(NS, 'web');
    expect(after.spec.ephemeralContainers.map((c: any) => c.name)).toEqual(['dbg', 'tgt', 'vol', 'jp']);
    expect(after.metadata.labels).toEqual(before.metadata.labels);
    expect(after.spec.containers[0].image).toBe('busybox:1.36');
    expect(after.status.phase).toBe('Running');
    await ephemeralState(NS, 'web', 'jp', 'running');
  });

  it('refuses changing, removing, forbidden fields, duplicate names, unknown targets and subPath, 422 with the real wording', async () => {
    const from = auditLines().length;
    const changed = await replaceEphemeral(NS, 'web', (p) => { p.spec.ephemeralContainers[0].image = 'busybox:1.37'; });
    expect(changed.code).toBe(1);
    expect(changed.stderr).toContain('The Pod "web" is invalid: spec.ephemeralContainers: Forbidden: existing ephemeral containers "dbg" may not be changed');
    const removed = await replaceEphemeral(NS, 'web', (p) => { p.spec.ephemeralContainers.shift(); });
    expect(removed.stderr).toContain('The Pod "web" is invalid: spec.ephemeralContainers: Forbidden: existing ephemeral containers "dbg" may not be removed');
    const bad = await replaceEphemeral(NS, 'web', (p) => {
      p.spec.ephemeralContainers.push(
        { name: 'ported', image: 'busybox:1.36', ports: [{ containerPort: 80 }], restartPolicy: 'Always', readinessProbe: { exec: { command: ['true'] } } },
        { name: 'main', image: 'busybox:1.36' },
        { name: 'aimless', image: 'busybox:1.36', targetContainerName: 'nope' },
        { name: 'subpath', image: 'busybox:1.36', volumeMounts: [{ name: 'data', mountPath: '/d', subPath: 'x' }, { name: 'nosuch', mountPath: '/e' }] },
        { name: 'noimage' },
      );
    });
    expect(bad.code).toBe(1);
    for (const line of [
      '* spec.ephemeralContainers[4].ports: Forbidden: cannot be set for an Ephemeral Container',
      '* spec.ephemeralContainers[4].restartPolicy: Forbidden: cannot be set for an Ephemeral Container',
      '* spec.ephemeralContainers[4].readinessProbe: Forbidden: cannot be set for an Ephemeral Container',
      '* spec.ephemeralContainers[5].name: Duplicate value: "main"',
      '* spec.ephemeralContainers[6].targetContainerName: Not found: "nope"',
      '* spec.ephemeralContainers[7].volumeMounts[0].subPath: Forbidden: cannot be set for an Ephemeral Container',
      '* spec.ephemeralContainers[7].volumeMounts[1].name: Not found: "nosuch"',
      '* spec.ephemeralContainers[8].image: Required value',
    ]) expect(bad.stderr).toContain(line);
    // kubectl debug's own strategic merge patch gets the same answer
    const dup = await kc(['-n', NS, 'debug', 'web', '--image=busybox:1.36', '-c', 'main', '--', 'true']);
    expect(dup.stderr).toContain('spec.ephemeralContainers[4].name: Duplicate value: "main"');
    // a JSON merge patch of the subresource replaces the list, leaving the existing ones out
    const merge = await kc(['-n', NS, 'patch', 'pod', 'web', '--subresource=ephemeralcontainers', '--type=merge', '-p',
      '{"spec":{"ephemeralContainers":[{"name":"solo","image":"busybox:1.36"}]}}']);
    for (const name of ['dbg', 'tgt', 'vol', 'jp']) {
      expect(merge.stderr).toContain(`* spec.ephemeralContainers: Forbidden: existing ephemeral containers "${name}" may not be removed`);
    }
    expect(ephemeralCodes(from, 'web')).toEqual([422, 422, 422, 422, 422]);
    expect((await podJson(NS, 'web')).spec.ephemeralContainers.map((c: any) => c.name)).toEqual(['dbg', 'tgt', 'vol', 'jp']);
  });

  it('a plain pod update may not add one, and a pod may not be created with one', async () => {
    const patched = await kc(['-n', NS, 'patch', 'pod', 'web', '--type=json', '-p',
      '[{"op":"add","path":"/spec/ephemeralContainers/-","value":{"name":"sneaky","image":"busybox:1.36"}}]']);
    expect(patched.code).toBe(1);
    expect(patched.stderr).toContain('The Pod "web" is invalid: spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)');
    const smp = await kc(['-n', NS, 'patch', 'pod', 'web', '-p', '{"spec":{"ephemeralContainers":[{"name":"sneaky","image":"busybox:1.36"}]}}']);
    expect(smp.stderr).toContain('spec: Forbidden: pod updates may not change fields other than');
    // what a pod update may change still goes through
    ok(await kc(['-n', NS, 'label', 'pod', 'web', 'debugged=yes']));
    const created = await kc(['-n', NS, 'create', '-f', '-'], JSON.stringify({
      apiVersion: 'v1', kind: 'Pod', metadata: { name: 'born-with-one' },
      spec: { containers: [{ name: 'main', image: 'busybox:1.36' }], ephemeralContainers: [{ name: 'e', image: 'busybox:1.36' }] },
    }));
    expect(created.stderr).toContain('The Pod "born-with-one" is invalid: spec.ephemeralContainers: Forbidden: cannot be set on create');
  });

  it('the kubelet checks runAsNonRoot for it as for any container', async () => {
    // the restricted profile sets runAsNonRoot; busybox runs as root and web sets no runAsUser
    ok(await kc(['-n', NS, 'debug', 'web', '--image=busybox:1.36', '-c', 'nonroot', '--profile=restricted', '--', 'sleep', '3600']));
    const waiting = await waitFor('CreateContainerConfigError', async () => {
      const w = ephStatus(await podJson(NS, 'web'), 'nonroot')?.state?.waiting;
      return w?.reason === 'CreateContainerConfigError' ? w : undefined;
    });
    expect(waiting.message).toMatch(/^container has runAsNonRoot and image will run as root \(pod: "web_eph\([0-9a-f-]+\)", container: nonroot\)$/);
  });

  it('Pod Security Admission enforce=restricted refuses a root one (403) and accepts a compliant one', async () => {
    const from = auditLines().length;
    const root = await kc(['-n', RNS, 'debug', 'app', '--image=busybox:1.36', '-c', 'root', '--', 'sleep', '3600']);
    expect(root.code).toBe(1);
    expect(root.stderr).toContain('Error from server (Forbidden): pods "app" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "root" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "root" must set securityContext.capabilities.drop=["ALL"])');
    const asRoot = await replaceEphemeral(RNS, 'app', (p) => {
      p.spec.ephemeralContainers = [{ name: 'uid0', image: 'busybox:1.36', command: ['sleep', '3600'],
        securityContext: { runAsUser: 0, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } } }];
    });
    expect(asRoot.stderr).toContain('pods "app" is forbidden: violates PodSecurity "restricted:latest": runAsUser=0 (container "uid0" must not set runAsUser=0)');
    const good = await kc(['-n', RNS, 'debug', 'app', '--image=busybox:1.36', '-c', 'good', '--profile=restricted', '--', 'sleep', '3600']);
    expect(good.code, good.stderr).toBe(0);
    await ephemeralState(RNS, 'app', 'good', 'running');
    expect((await kubectl(['-n', RNS, 'exec', 'app', '-c', 'good', '--', 'id', '-u'])).trim()).toBe('1000');
    expect(ephemeralCodes(from, 'app')).toEqual([403, 403, 200]);
  });

  it('RBAC authorizes it as pods/ephemeralcontainers', async () => {
    const out = ok(await cluster.sim(['user', 'eve']));
    const kubeconfig = out.trim().split('\n').pop()!;
    await kubectl(['apply', '-f', '-'], `
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader, namespace: ${NS}}
rules:
- {apiGroups: [''], resources: [pods], verbs: [get, list, watch, patch, update]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: eve, namespace: ${NS}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}
subjects: [{kind: User, name: eve}]
`);
    const denied = await cluster.kubectl(['-n', NS, 'debug', 'web', '--image=busybox:1.36', '-c', 'eve', '--', 'true'], { kubeconfig });
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain(`pods "web" is forbidden: User "eve" cannot patch resource "pods/ephemeralcontainers" in API group "" in the namespace "${NS}"`);
    await kubectl(['-n', NS, 'patch', 'role', 'pod-reader', '--type=json', '-p',
      '[{"op":"add","path":"/rules/-","value":{"apiGroups":[""],"resources":["pods/ephemeralcontainers"],"verbs":["patch"]}}]']);
    ok(await cluster.kubectl(['-n', NS, 'debug', 'web', '--image=busybox:1.36', '-c', 'eve', '--', 'true'], { kubeconfig }));
  });

  it('one that exits is not restarted, whatever the pod\'s restartPolicy; exec into it then fails', async () => {
    ok(await kc(['-n', NS, 'debug', 'web', '--image=busybox:1.36', '-c', 'quick', '--', 'sh', '-c', 'echo bye; exit 3']));
    const term = await ephemeralState(NS, 'web', 'quick', 'terminated');
    expect(term).toMatchObject({ exitCode: 3, reason: 'Error' });
    expect(term.startedAt).toBeTruthy();
    expect(term.finishedAt).toBeTruthy();
    await new Promise((r) => setTimeout(r, 4000)); // a regular container would be back by now (back-off 1 s)
    const pod = await podJson(NS, 'web');
    expect(ephStatus(pod, 'quick')).toMatchObject({ restartCount: 0, ready: false, state: { terminated: { exitCode: 3 } } });
    // eve's `true` (the test before) has ended by now too; waited for, not assumed (a loaded machine starts containers late)
    expect(await ephemeralState(NS, 'web', 'eve', 'terminated')).toMatchObject({ exitCode: 0, reason: 'Completed' });
    expect(await kubectl(['-n', NS, 'logs', 'web', '-c', 'quick'])).toBe('bye\n');
    const exec = await kc(['-n', NS, 'exec', 'web', '-c', 'quick', '--', 'true']);
    expect(exec.code).not.toBe(0);
    expect(exec.stderr).toContain('container not found ("quick")');
    expect(pod.status.phase).toBe('Running');
    expect(pod.status.containerStatuses[0].restartCount).toBe(0);
  });

  it('a pod that has ended accepts one, but the kubelet never starts it', async () => {
    ok(await kc(['-n', NS, 'debug', 'finished', '--image=busybox:1.36', '-c', 'late', '--', 'sleep', '3600']));
    await new Promise((r) => setTimeout(r, 3000));
    const pod = await podJson(NS, 'finished');
    expect(pod.spec.ephemeralContainers.map((c: any) => c.name)).toEqual(['late']);
    expect(pod.status.phase).toBe('Succeeded');
    expect(pod.status.ephemeralContainerStatuses).toBeUndefined();
  });

  it('they are stopped with the pod when it is deleted', async () => {
    const runtime = (c: string) => JSON.parse(readFileSync(join(cluster.dir, 'runtime', 'pods', NS, 'web', `${c}.json`), 'utf8')) as { pid: number };
    const pids = ['dbg', 'tgt', 'vol', 'jp'].map((c) => runtime(c).pid);
    for (const pid of pids) expect(pidAlive(pid)).toBe(true);
    const started = Date.now();
    ok(await kc(['-n', NS, 'delete', 'pod', 'web', '--timeout=60s']));
    // `sleep` as PID 1 ignores SIGTERM: SIGKILL when the 2 s grace period ends
    expect(Date.now() - started).toBeLessThan(30_000);
    // gone, or a zombie not reaped yet (SIGKILL reached the wrapper that waits for it as well)
    for (const pid of pids) expect(pidAlive(pid), `pid ${pid}`).toBe(false);
  });
});
