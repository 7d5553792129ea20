/**
 * The simulator's process kubelet through real kubectl, on one shared `anthos` cluster plus a few
 * pods of our own in namespace `kt`: the published runbook's exact etcdctl line, a StatefulSet
 * member that comes back with its data, restarts (killed process, crash loop, liveness),
 * readiness, env and downward API, real PVC capacity (ENOSPC) and the fill-volume fault,
 * node NotReady, graceful termination, distroless exec, an API server restart, and `down`
 * leaving nothing behind.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFault } from '../sim/fault.js';
import { killContainer, setNodesReady } from '../sim/kubelet/fault.js';
import { vethName } from '../sim/kubelet/network.js';
import { ok, requireCommand, requireRoot, startCluster, waitFor as harnessWaitFor, type SimCluster } from '../sim/harness.js';

const CERTS = '/etcd.local.config/certificates';
const ETCDCTL = `ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert=${CERTS}/etcdCA.crt --cert=${CERTS}/etcd.crt --key=${CERTS}/etcd.key`;

const MANIFEST = `
apiVersion: v1
kind: Namespace
metadata: {name: kt}
---
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: kt}
stringData: {password: s3cr3t}
---
apiVersion: v1
kind: Pod
metadata:
  name: spec-pod
  namespace: kt
  labels: {app: spec, tier: db}
spec:
  terminationGracePeriodSeconds: 1
  securityContext: {runAsUser: 1234, fsGroup: 2345}
  initContainers:
  - name: init
    image: busybox:1.36
    command: [sh, -c, 'echo from-init > /work/init.txt']
    volumeMounts: [{name: work, mountPath: /work}]
  containers:
  - name: main
    image: busybox:1.36
    workingDir: /work
    env:
    - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
    - {name: PASSWORD, valueFrom: {secretKeyRef: {name: creds, key: password}}}
    - {name: GREETING, value: 'hello $(POD_NAME)'}
    command: [sh, -c]
    args:
    - >-
      printf '%s\\n' 'expanded=$(POD_NAME) escaped=$$(POD_NAME) missing=$(NOPE)';
      echo "greeting=$GREETING password=$PASSWORD ip=$POD_IP node=$NODE";
      echo "pwd=$(pwd) uid=$(id -u) groups=$(id -G) init=$(cat init.txt) initgroup=$(stat -c %g init.txt)";
      echo "name=$(cat /etc/podinfo/name)"; cat /etc/podinfo/labels; echo; echo done;
      exec sleep 3600
    volumeMounts:
    - {name: work, mountPath: /work}
    - {name: podinfo, mountPath: /etc/podinfo}
  volumes:
  - {name: work, emptyDir: {}}
  - name: podinfo
    downwardAPI:
      items:
      - {path: name, fieldRef: {fieldPath: metadata.name}}
      - {path: labels, fieldRef: {fieldPath: metadata.labels}}
---
apiVersion: v1
kind: Pod
metadata: {name: crasher, namespace: kt}
spec:
  terminationGracePeriodSeconds: 1
  containers: [{name: main, image: busybox:1.36, command: [sh, -c, 'echo crashing; exit 3']}]
---
apiVersion: v1
kind: Pod
metadata: {name: probed, namespace: kt}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox:1.36
    command: [sleep, '3600']
    readinessProbe: {exec: {command: [cat, /tmp/ready]}, periodSeconds: 1, failureThreshold: 1}
    livenessProbe: {exec: {command: [sh, -c, 'test ! -e /tmp/die']}, periodSeconds: 1, failureThreshold: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: talker, namespace: kt}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox:1.36
    # counts its instances in the emptyDir, which outlives container restarts
    command: [sh, -c, 'n=$(($(cat /state/n 2>/dev/null || echo 0) + 1)); echo $n > /state/n; echo "instance $n started"; echo "instance $n serving"; exec sleep 3600']
    volumeMounts: [{name: state, mountPath: /state}]
  - name: side
    image: busybox:1.36
    command: [sleep, '3600']
  volumes: [{name: state, emptyDir: {}}]
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: small, namespace: kt}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 16Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: filler, namespace: kt}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox:1.36
    command: [sleep, '3600']
    volumeMounts: [{name: data, mountPath: /data}]
  volumes: [{name: data, persistentVolumeClaim: {claimName: small}}]
---
apiVersion: v1
kind: Pod
metadata: {name: graceful, namespace: kt}
spec:
  nodeName: node-1
  terminationGracePeriodSeconds: 30
  containers:
  - name: main
    image: busybox:1.36
    command: [sh, -c, "trap 'echo got-TERM >> /grace/log; exit 0' TERM; echo started >> /grace/log; while :; do sleep 1; done"]
    volumeMounts: [{name: grace, mountPath: /grace}]
  volumes: [{name: grace, hostPath: {path: /grace, type: DirectoryOrCreate}}]
---
apiVersion: v1
kind: Pod
metadata: {name: hooked, namespace: kt}
spec:
  nodeName: node-1
  terminationGracePeriodSeconds: 30
  containers:
  - name: main
    image: busybox:1.36
    command: [sh, -c, "trap 'echo got-TERM >> /hooks/log; exit 0' TERM; while :; do sleep 1; done"]
    lifecycle:
      postStart: {exec: {command: [sh, -c, "echo post-start >> /hooks/log"]}}
      preStop: {exec: {command: [sh, -c, "echo pre-stop >> /hooks/log; sleep 1; echo pre-stop-done >> /hooks/log"]}}
    volumeMounts: [{name: hooks, mountPath: /hooks}]
  volumes: [{name: hooks, hostPath: {path: /hooks, type: DirectoryOrCreate}}]
---
apiVersion: v1
kind: Pod
metadata: {name: failhook, namespace: kt}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: main
    image: busybox:1.36
    command: [sh, -c, "while :; do sleep 1; done"]
    lifecycle:
      preStop: {exec: {command: [sh, -c, "echo no such member >&2; exit 1"]}}
---
apiVersion: v1
kind: Pod
metadata: {name: stubborn, namespace: kt}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: main
    image: busybox:1.36
    command: [sh, -c, "trap '' TERM; while :; do sleep 1; done"]
---
apiVersion: v1
kind: Pod
metadata: {name: distroless, namespace: kt}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: etcd
    image: gcr.io/etcd-development/etcd:v3.5.9
    command: [etcd, --data-dir=/tmp/data, --listen-client-urls=http://0.0.0.0:2379, --advertise-client-urls=http://127.0.0.1:2379]
    readinessProbe: {tcpSocket: {port: 2379}, periodSeconds: 1}
`;

let cluster: SimCluster;
let clusterId = '';
let downDone = false;

async function kubectl(args: string[], input?: string): Promise<string> {
  return ok(await cluster.kubectl(args, { input, timeoutMs: 180_000 }));
}

async function podJson(ns: string, name: string): Promise<any> {
  return JSON.parse(await kubectl(['-n', ns, 'get', 'pod', name, '-o', 'json']));
}

const readyOf = (pod: any): string | undefined => pod.status?.conditions?.find((c: any) => c.type === 'Ready')?.status;

/** The harness's waitFor, with this file's longer default (120 s) and 500 ms polls. */
function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  return harnessWaitFor(what, check, timeoutMs, 500);
}

const etcdIn = (pod: string, args: string) => cluster.kubectl(['-n', 'uc1', 'exec', pod, '-c', 'kube-etcd', '--', 'sh', '-c', `${ETCDCTL} ${args}`]);

beforeAll(async () => {
  requireRoot();
  requireCommand('kubectl', 'install kubectl 1.30 or newer');
  requireCommand('etcd', 'run apt-get install -y etcd-server etcd-client');
  requireCommand('mkfs.ext4', 'run apt-get install -y e2fsprogs');
  cluster = await startCluster({ fixtures: ['anthos'] });
  clusterId = JSON.parse(readFileSync(join(cluster.dir, 'sim.json'), 'utf8')).id;
  await kubectl(['apply', '-f', '-'], MANIFEST);
}, 400_000);

afterAll(async () => {
  if (cluster && !downDone) await cluster.down();
}, 180_000);

describe('the anthos runbook', () => {
  it("`kubectl -n uc1 exec kube-etcd-0 -- sh -c '… member list'` shows three started members", async () => {
    const out = await kubectl(['-n', 'uc1', 'exec', 'kube-etcd-0', '--', 'sh', '-c', `${ETCDCTL} member list`]);
    const rows = out.trim().split('\n');
    expect(rows.map((r) => r.split(', ')[1]).sort()).toEqual(['started', 'started', 'started']);
    expect(rows.map((r) => r.split(', ')[2]).sort()).toEqual(['kube-etcd-0', 'kube-etcd-1', 'kube-etcd-2']);
    expect(rows.map((r) => r.split(', ')[3]).sort()).toEqual([0, 1, 2].map((i) => `https://kube-etcd-${i}.kube-etcd:2380`));
  });

  it('each member has its hostname and finds its peers by headless-service name in /etc/hosts', async () => {
    const ip1 = await kubectl(['-n', 'uc1', 'get', 'pod', 'kube-etcd-1', '-o', 'jsonpath={.status.podIP}']);
    const out = await kubectl(['-n', 'uc1', 'exec', 'kube-etcd-0', '--', 'sh', '-c', 'hostname; cat /etc/hosts']);
    const [hostname, ...hosts] = out.trim().split('\n');
    expect(hostname).toBe('kube-etcd-0');
    const line = hosts.find((l) => l.split(/\s+/).includes('kube-etcd-1.kube-etcd.uc1.svc.cluster.local'));
    expect(line?.split(/\s+/)).toEqual(expect.arrayContaining([ip1, 'kube-etcd-1.kube-etcd']));
    // the pod network lives only in the simulator's namespaces, not on the host's interfaces
    expect(execFileSync('ip', ['-o', 'addr'], { encoding: 'utf8' })).not.toContain(` ${ip1}/`);
  });
});

describe('StatefulSet member', () => {
  it('deleting kube-etcd-1 brings it back on the same node with its data', async () => {
    const before = await podJson('uc1', 'kube-etcd-1');
    ok(await etcdIn('kube-etcd-0', 'put /kt/marker before-delete'));
    ok(await cluster.kubectl(['-n', 'uc1', 'exec', 'kube-etcd-1', '--', 'sh', '-c', 'echo on-the-pvc > /var/lib/etcd/marker.txt']));
    const memberId = ok(await etcdIn('kube-etcd-1', 'endpoint status -w json')).match(/"member_id":(\d+)/)?.[1];
    expect(memberId).toBeDefined();

    await kubectl(['-n', 'uc1', 'delete', 'pod', 'kube-etcd-1', '--wait=true']);
    const after = await waitFor('kube-etcd-1 recreated and Ready', async () => {
      const p = await podJson('uc1', 'kube-etcd-1');
      return p.metadata.uid !== before.metadata.uid && readyOf(p) === 'True' ? p : undefined;
    });
    expect(after.spec.nodeName).toBe(before.spec.nodeName);
    const marker = await kubectl(['-n', 'uc1', 'exec', 'kube-etcd-1', '--', 'cat', '/var/lib/etcd/marker.txt']);
    expect(marker).toBe('on-the-pvc\n');
    // a serializable read answers from this member's own data
    expect(ok(await etcdIn('kube-etcd-1', 'get /kt/marker --print-value-only --consistency=s'))).toBe('before-delete\n');
    expect(ok(await etcdIn('kube-etcd-1', 'endpoint status -w json')).match(/"member_id":(\d+)/)?.[1]).toBe(memberId);
  });
});

describe('restarts', () => {
  it('a killed container process is restarted (restartCount grows) and the member serves again', async () => {
    const before = await podJson('uc1', 'kube-etcd-2');
    const count = before.status.containerStatuses[0].restartCount as number;
    const r = await cluster.sim(['fault', 'kill-container', 'uc1/kube-etcd-2', 'kube-etcd']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/sent SIGKILL to container "kube-etcd" of pod "uc1\/kube-etcd-2"/);
    // Within the test's own timeout, so that a failure says what the pod and the kubelet did.
    const after = await waitFor('kube-etcd-2 restarted and Ready', async () => {
      const p = await podJson('uc1', 'kube-etcd-2');
      if (p.status.containerStatuses[0].restartCount > count && readyOf(p) === 'True') return p;
      const kubelet = (existsSync(join(cluster.dir, 'logs', 'kubelet.log')) ? readFileSync(join(cluster.dir, 'logs', 'kubelet.log'), 'utf8') : '').split('\n').filter((l) => l.includes('kube-etcd-2')).slice(-15).join('\n');
      throw new Error(`Ready ${readyOf(p)}, container status ${JSON.stringify(p.status.containerStatuses[0])}; kubelet log:\n${kubelet}`);
    }, 90_000);
    expect(after.metadata.uid).toBe(before.metadata.uid);
    expect(after.status.containerStatuses[0].lastState.terminated).toMatchObject({ exitCode: 137, reason: 'Error' });
    expect(JSON.parse(ok(await etcdIn('kube-etcd-2', 'endpoint health -w json')))).toMatchObject([{ endpoint: 'https://127.0.0.1:2379', health: true }]);
  });

  it('killContainer from code restarts a container too', async () => {
    // SIGKILL: the container's `sleep` is PID 1 of its namespace and has no SIGTERM handler, so a
    // SIGTERM would never reach it (pid_namespaces(7)).
    const k = await killContainer(cluster.dir, { namespace: 'kt', pod: 'filler', signal: 'SIGKILL' });
    expect(k.container).toBe('main');
    const s = await waitFor('filler restarted', async () => {
      const s = (await podJson('kt', 'filler')).status.containerStatuses[0];
      return s.restartCount >= 1 && s.state.running ? s : undefined;
    });
    expect(s.lastState.terminated).toMatchObject({ exitCode: 137, reason: 'Error' });
  });

  it('`kubectl logs --previous` serves the killed instance; a container that never restarted gives the not-found error', async () => {
    const logs = (args: string[]) => cluster.kubectl(['-n', 'kt', 'logs', 'talker', ...args], { timeoutMs: 180_000 });
    await waitFor('talker logging', async () => ((await kubectl(['-n', 'kt', 'logs', 'talker', '-c', 'main'])).endsWith('serving\n') ? true : undefined));
    for (const c of ['main', 'side']) {
      const none = await logs(['-c', c, '--previous']);
      expect(none.code).toBe(1);
      expect(none.stderr).toContain(`Error from server (BadRequest): previous terminated container "${c}" in pod "talker" not found`);
    }

    await killContainer(cluster.dir, { namespace: 'kt', pod: 'talker', container: 'main' });
    await waitFor('talker main restarted', async () => {
      const s = (await podJson('kt', 'talker')).status.containerStatuses.find((x: any) => x.name === 'main');
      return s.restartCount >= 1 && s.state.running ? s : undefined;
    });
    await waitFor('second instance logging', async () => ((await kubectl(['-n', 'kt', 'logs', 'talker', '-c', 'main'])) === 'instance 2 started\ninstance 2 serving\n' ? true : undefined));
    expect(ok(await logs(['-c', 'main', '--previous']))).toBe('instance 1 started\ninstance 1 serving\n');
    expect(ok(await logs(['-c', 'main', '--previous', '--tail=1']))).toBe('instance 1 serving\n');
    expect(ok(await logs(['-c', 'main', '-p', '--limit-bytes=10']))).toBe('instance 1');
    // -f on a terminated instance ends at once with what it wrote
    expect(ok(await logs(['-c', 'main', '--previous', '-f']))).toBe('instance 1 started\ninstance 1 serving\n');
    const side = await logs(['-c', 'side', '--previous']);
    expect([side.code, side.stderr]).toEqual([1, expect.stringContaining('previous terminated container "side" in pod "talker" not found')]);
  });

  it('a crashing container goes CrashLoopBackOff with its exit code in lastState', async () => {
    const status = await waitFor('crasher in CrashLoopBackOff', async () => {
      const out = await kubectl(['-n', 'kt', 'get', 'pod', 'crasher', '--no-headers']);
      return /CrashLoopBackOff/.test(out) ? out : undefined;
    });
    expect(status.split(/\s+/)[0]).toBe('crasher');
    const s = (await podJson('kt', 'crasher')).status.containerStatuses[0];
    expect(s.ready).toBe(false);
    expect(s.restartCount).toBeGreaterThanOrEqual(1);
    expect(s.lastState.terminated).toMatchObject({ exitCode: 3, reason: 'Error' });
    // the log of the last run (the next run may be starting, so wait for a complete one)
    await waitFor('crasher log', async () => ((await kubectl(['-n', 'kt', 'logs', 'crasher'])) === 'crashing\n' ? true : undefined));
    await waitFor('crasher previous log', async () => ((await kubectl(['-n', 'kt', 'logs', '--previous', 'crasher'])) === 'crashing\n' ? true : undefined));
  });

  it('a failing liveness probe restarts the container', async () => {
    await waitFor('probed running', async () => ((await podJson('kt', 'probed')).status.containerStatuses?.[0]?.state?.running ? true : undefined));
    await kubectl(['-n', 'kt', 'exec', 'probed', '--', 'touch', '/tmp/die']);
    const s = await waitFor('probed restarted', async () => {
      const st = (await podJson('kt', 'probed')).status.containerStatuses[0];
      return st.restartCount >= 1 && st.state.running ? st : undefined;
    });
    // a restarted container starts from a fresh root: /tmp/die is gone, so it stays alive
    expect(ok(await cluster.kubectl(['-n', 'kt', 'exec', 'probed', '--', 'sh', '-c', 'test -e /tmp/die || echo fresh']))).toBe('fresh\n');
    expect(s.lastState.terminated.exitCode).not.toBe(0);
  });
});

describe('probes and pod spec', () => {
  it('the readiness probe drives the Ready condition both ways', async () => {
    await waitFor('probed running', async () => ((await podJson('kt', 'probed')).status.containerStatuses?.[0]?.state?.running ? true : undefined));
    expect(readyOf(await podJson('kt', 'probed'))).toBe('False');
    await kubectl(['-n', 'kt', 'exec', 'probed', '--', 'touch', '/tmp/ready']);
    await kubectl(['-n', 'kt', 'wait', '--for=condition=Ready', 'pod/probed', '--timeout=60s']);
    expect(await kubectl(['-n', 'kt', 'get', 'pod', 'probed', '-o', 'jsonpath={.status.containerStatuses[0].ready}'])).toBe('true');
    await kubectl(['-n', 'kt', 'exec', 'probed', '--', 'rm', '/tmp/ready']);
    await kubectl(['-n', 'kt', 'wait', '--for=condition=Ready=false', 'pod/probed', '--timeout=60s']);
  });

  it('env with $(VAR) expansion, fieldRef, secretKeyRef, downward API, workingDir, runAsUser, fsGroup and an init container', async () => {
    const pod = await waitFor('spec-pod Ready', async () => {
      const p = await podJson('kt', 'spec-pod');
      return readyOf(p) === 'True' ? p : undefined;
    });
    const logs = await waitFor('spec-pod output', async () => {
      const out = await kubectl(['-n', 'kt', 'logs', 'spec-pod', '-c', 'main']);
      return out.includes('done\n') ? out : undefined;
    });
    expect(logs.split('\n')).toEqual([
      'expanded=spec-pod escaped=$(POD_NAME) missing=$(NOPE)',
      `greeting=hello spec-pod password=s3cr3t ip=${pod.status.podIP} node=${pod.spec.nodeName}`,
      'pwd=/work uid=1234 groups=0 2345 init=from-init initgroup=2345',
      'name=spec-pod',
      'app="spec"',
      'tier="db"',
      'done',
      '',
    ]);
    expect(pod.status.podIP).toMatch(/^10\.88\./);
    expect(pod.status.initContainerStatuses[0].state.terminated).toMatchObject({ exitCode: 0, reason: 'Completed' });
  });

  it('runAsNonRoot is verified against the image\'s user: a root image without runAsUser waits in CreateContainerConfigError; with one it runs', async () => {
    const overrides = (sc: Record<string, unknown>) => `--overrides=${JSON.stringify({ spec: { terminationGracePeriodSeconds: 1, securityContext: sc } })}`;
    await kubectl(['-n', 'kt', 'run', 'nonroot', '--image=busybox:1.36', overrides({ runAsNonRoot: true }), '--', 'sleep', '3600']);
    await kubectl(['-n', 'kt', 'run', 'nonroot-uid', '--image=busybox:1.36', overrides({ runAsNonRoot: true, runAsUser: 1000 }), '--', 'sleep', '3600']);
    const waiting = await waitFor('nonroot waiting', async () => (await podJson('kt', 'nonroot')).status.containerStatuses?.[0]?.state?.waiting);
    const uid = (await podJson('kt', 'nonroot')).metadata.uid;
    expect(waiting).toEqual({ reason: 'CreateContainerConfigError', message: `container has runAsNonRoot and image will run as root (pod: "nonroot_kt(${uid})", container: nonroot)` });
    await kubectl(['-n', 'kt', 'wait', 'pod/nonroot-uid', '--for=condition=Ready', '--timeout=60s']);
    expect((await kubectl(['-n', 'kt', 'exec', 'nonroot-uid', '--', 'id', '-u'])).trim()).toBe('1000');
    await kubectl(['-n', 'kt', 'delete', 'pod', 'nonroot', 'nonroot-uid', '--wait=false']);
  });

  it('a finished container\'s termination message: what it wrote to /dev/termination-log (any user may), or with FallbackToLogsOnError its log tail; a failure said only on stderr leaves none by default', async () => {
    const container = (name: string, script: string, policy?: string) => ({ name, image: 'busybox:1.36', command: ['sh', '-c', script], ...(policy ? { terminationMessagePolicy: policy } : {}) });
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'says', namespace: 'kt' }, spec: {
      restartPolicy: 'Never', terminationGracePeriodSeconds: 1, securityContext: { runAsUser: 1001 },
      containers: [
        container('written', 'echo "no member answered" > /dev/termination-log; echo noise >&2; exit 3'),
        container('fallback', 'seq 1 100 >&2; exit 2', 'FallbackToLogsOnError'),
        container('quiet', 'echo "only on stderr" >&2; exit 1'),
        container('ok', 'seq 1 5; exit 0', 'FallbackToLogsOnError'),
        // Over 4 KiB: the kubelet keeps its end.
        container('long', 'head -c 5000 /dev/zero | tr "\\0" x > /dev/termination-log; echo " the end" >> /dev/termination-log; exit 5'),
      ],
    } };
    await kubectl(['create', '-f', '-'], JSON.stringify(pod));
    const states = await waitFor('every container to end', async () => {
      const st = (await podJson('kt', 'says')).status.containerStatuses as Array<{ name: string; state: { terminated?: { exitCode: number; message?: string } } }> | undefined;
      return st?.length === 5 && st.every((c) => c.state.terminated) ? Object.fromEntries(st.map((c) => [c.name, c.state.terminated!])) : undefined;
    });
    expect(states.written).toMatchObject({ exitCode: 3, message: 'no member answered\n' });
    // The last 80 lines of the log: 21..100.
    expect(states.fallback).toMatchObject({ exitCode: 2 });
    expect(states.fallback!.message!.trim().split('\n')).toEqual(Array.from({ length: 80 }, (_, i) => String(i + 21)));
    expect(states.quiet).toMatchObject({ exitCode: 1 });
    expect(states.quiet!.message).toBeUndefined();
    expect(states.ok!.message).toBeUndefined();
    expect(states.long!.message).toHaveLength(4096);
    expect(states.long!.message!.endsWith('xxx the end\n')).toBe(true);
    await kubectl(['-n', 'kt', 'delete', 'pod', 'says', '--wait=false']);
  });

  it('a helper that never exits keeps a run-to-completion pod Running as a regular container; as a native sidecar (init, restartPolicy Always) it starts first, and is stopped once the main container is done: the pod Succeeds', async () => {
    const helper = { name: 'helper', image: 'busybox:1.36', command: ['sh', '-c', 'touch /shared/up; exec sleep 3600'], volumeMounts: [{ name: 'shared', mountPath: '/shared' }] };
    const main = { name: 'main', image: 'busybox:1.36', command: ['sh', '-c', 'test -f /shared/up || exit 4'], volumeMounts: [{ name: 'shared', mountPath: '/shared' }] };
    const pod = (name: string, spec: Record<string, unknown>) => JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'kt' },
      spec: { restartPolicy: 'Never', terminationGracePeriodSeconds: 1, volumes: [{ name: 'shared', emptyDir: {} }], ...spec } });
    // The naive way: the helper beside the main container (which may not even find it up yet: no order).
    await kubectl(['create', '-f', '-'], pod('beside', { containers: [{ ...main, command: ['true'] }, helper] }));
    await waitFor('main to end', async () => (await podJson('kt', 'beside')).status.containerStatuses?.find((c: { name: string }) => c.name === 'main')?.state?.terminated);
    await new Promise((r) => setTimeout(r, 2000));
    expect((await podJson('kt', 'beside')).status.phase).toBe('Running');
    // A native sidecar.
    await kubectl(['create', '-f', '-'], pod('sidecar', { initContainers: [{ ...helper, restartPolicy: 'Always' }], containers: [main] }));
    const done = await waitFor('the pod to end', async () => {
      const p = await podJson('kt', 'sidecar');
      return ['Succeeded', 'Failed'].includes(p.status.phase) ? p : undefined;
    });
    expect(done.status.phase).toBe('Succeeded');
    expect(done.status.containerStatuses[0].state.terminated.exitCode).toBe(0);
    // sleep as PID 1 ignores SIGTERM: killed at the end of the grace period; that does not fail the pod.
    await waitFor('the sidecar to be stopped', async () => (await podJson('kt', 'sidecar')).status.initContainerStatuses?.[0]?.state?.terminated);
    expect((await podJson('kt', 'sidecar')).status.phase).toBe('Succeeded');
    await kubectl(['-n', 'kt', 'delete', 'pod', 'beside', 'sidecar', '--wait=false']);
  });

  it("an exec right after Ready runs in the container's own root, with a private /tmp", async () => {
    await kubectl(['-n', 'kt', 'run', 'fresh', '--image=busybox:1.36', '--overrides={"spec":{"terminationGracePeriodSeconds":1}}', '--', 'sleep', '3600']);
    await kubectl(['-n', 'kt', 'wait', '--for=condition=Ready', 'pod/fresh', '--timeout=60s']);
    const marker = `kt-private-${clusterId}`;
    const out = await kubectl(['-n', 'kt', 'exec', 'fresh', '--', 'sh', '-c', `ls /; echo x > /tmp/${marker}; ls /tmp`]);
    expect(out.split('\n')).toEqual(['bin', 'dev', 'etc', 'lib', 'lib64', 'proc', 'root', 'run', 'sbin', 'tmp', 'usr', 'var', marker, '']);
    expect(existsSync(`/tmp/${marker}`)).toBe(false);
  });

  it("each container is PID 1 of a PID namespace of its own and sees no other container's processes; with shareProcessNamespace the pod shares one, and a container reads another's files at /proc/PID/root", async () => {
    const pod = (name: string, share: boolean) => ({
      apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'kt' },
      spec: {
        terminationGracePeriodSeconds: 1, ...(share ? { shareProcessNamespace: true } : {}),
        containers: [
          { name: 'a', image: 'busybox:1.36', command: ['sh', '-c', "trap 'exit 0' TERM; while :; do sleep 1 & wait $!; done"] },
          { name: 'b', image: 'busybox:1.36', command: ['sh', '-c', `echo only-in-b > /tmp/mark; exec sleep 3601`] },
        ],
      },
    });
    await kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [pod('pid-own', false), pod('pid-shared', true)] }));
    await kubectl(['-n', 'kt', 'wait', '--for=condition=Ready', 'pod/pid-own', 'pod/pid-shared', '--timeout=60s']);
    // What container a finds: PID 1's program, and b's sleep with the file b wrote in its private /tmp.
    const look = 'echo "pid1=$(tr "\\0" " " </proc/1/cmdline)"; for f in /proc/[0-9]*; do case "$(tr "\\0" " " <$f/cmdline 2>/dev/null)" in "sleep 3601 ") echo "b=$(cat $f/root/tmp/mark)";; esac; done; [ -e /tmp/mark ] || echo "no mark in a"';
    const own = await kubectl(['-n', 'kt', 'exec', 'pid-own', '-c', 'a', '--', 'sh', '-c', look]);
    expect(own).toBe(`pid1=sh -c trap 'exit 0' TERM; while :; do sleep 1 & wait $!; done \nno mark in a\n`);
    expect(await kubectl(['-n', 'kt', 'exec', 'pid-own', '-c', 'b', '--', 'sh', '-c', 'tr "\\0" " " </proc/1/cmdline'])).toBe('sleep 3601 ');
    const shared = await kubectl(['-n', 'kt', 'exec', 'pid-shared', '-c', 'a', '--', 'sh', '-c', look]);
    expect(shared).toMatch(/^pid1=\/bin\/bash -c while :; do sleep 86400 & wait; done \nb=only-in-b\nno mark in a\n$/);
    await kubectl(['-n', 'kt', 'delete', 'pod', 'pid-own', 'pid-shared', '--wait=false']);
  });

  it('exec of sh in a distroless image fails cleanly, its own binaries still run (Ready through a tcpSocket probe)', async () => {
    await kubectl(['-n', 'kt', 'wait', '--for=condition=Ready', 'pod/distroless', '--timeout=60s']);
    const sh = await cluster.kubectl(['-n', 'kt', 'exec', 'distroless', '--', 'sh', '-c', 'echo hi']);
    expect(sh.code).not.toBe(0);
    expect(sh.stdout).toBe('');
    expect(sh.stderr).toMatch(/exec: "sh": executable file not found in \$PATH/);
    expect(sh.stderr.trim().split('\n')).toHaveLength(1);
    const ls = await cluster.kubectl(['-n', 'kt', 'exec', 'distroless', '--', 'ls', '/']);
    expect(ls.code).not.toBe(0);
    expect(ok(await cluster.kubectl(['-n', 'kt', 'exec', 'distroless', '--', 'etcdctl', 'version']))).toMatch(/^etcdctl version: /);
  });
});

describe('images by tag', () => {
  // A runtime pulls the tag it is given (https://kubernetes.io/docs/concepts/containers/images/);
  // a tag the registry lacks is ErrImagePull then ImagePullBackOff, with a Failed event. The
  // simulator runs the etcd binaries the tag names (3.4 or 3.5, test/sim/etcd-versions.ts) and
  // has none for 3.6: that tag must fail to pull, never run 3.4 or 3.5 in its place.
  it('an etcd image runs the version its tag names; a 3.6 tag is ErrImagePull then ImagePullBackOff with a Failed event', async () => {
    const pod = (name: string, image: string) => `---
apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: kt}
spec:
  terminationGracePeriodSeconds: 0
  containers: [{name: etcd, image: ${image}, command: [etcd, --data-dir=/tmp/d, --listen-client-urls=http://127.0.0.1:2379, --advertise-client-urls=http://127.0.0.1:2379]}]
`;
    await kubectl(['apply', '-f', '-'], pod('etcd35', 'quay.io/coreos/etcd:v3.5.16') + pod('etcd34', 'registry.k8s.io/etcd:3.4.23-0') + pod('etcd36', 'gcr.io/etcd-development/etcd:v3.6.4'));
    await kubectl(['-n', 'kt', 'wait', '--for=condition=Ready', 'pod/etcd35', 'pod/etcd34', '--timeout=60s']);
    expect(await kubectl(['-n', 'kt', 'exec', 'etcd35', '--', 'etcd', '--version'])).toMatch(/^etcd Version: 3\.5\.16$/m);
    expect(await kubectl(['-n', 'kt', 'exec', 'etcd35', '--', 'etcdutl', 'version'])).toMatch(/^etcdutl version: 3\.5\.16$/m);
    expect(await kubectl(['-n', 'kt', 'exec', 'etcd34', '--', 'etcd', '--version'])).toMatch(/^etcd Version: 3\.4\.23$/m);
    const noEtcdutl = await cluster.kubectl(['-n', 'kt', 'exec', 'etcd34', '--', 'etcdutl', 'version']);
    expect(noEtcdutl.stderr).toMatch(/exec: "etcdutl": executable file not found in \$PATH/);
    const reasons = new Set<string>();
    await waitFor('etcd36 to back off', async () => {
      const p = JSON.parse(await kubectl(['-n', 'kt', 'get', 'pod', 'etcd36', '-o', 'json']));
      const reason = p.status?.containerStatuses?.[0]?.state?.waiting?.reason;
      if (reason) reasons.add(reason);
      return reason === 'ImagePullBackOff' ? true : undefined;
    });
    expect(reasons.has('ImagePullBackOff')).toBe(true);
    const events = await kubectl(['-n', 'kt', 'get', 'events', '--field-selector', 'involvedObject.name=etcd36', '-o', 'jsonpath={range .items[*]}{.reason}: {.message}{"\\n"}{end}']);
    expect(events).toMatch(/^Failed: Failed to pull image "gcr\.io\/etcd-development\/etcd:v3\.6\.4": .*not found/m);
    await kubectl(['-n', 'kt', 'delete', 'pod', 'etcd35', 'etcd34', 'etcd36', '--wait=false']);
  });
});

describe('busybox image', () => {
  // docker.io/library/busybox is one binary whose applets are links to it
  // (https://hub.docker.com/_/busybox): its sh is ash and its tools take busybox's options, not
  // GNU coreutils'. A script written against dash and coreutils (the naive way) can fail there.
  it('runs busybox ash and applets: a GNU-only option fails as it does in the real image', async () => {
    await kubectl(['-n', 'kt', 'wait', '--for=condition=Ready', 'pod/filler', '--timeout=60s']);
    const banner = await cluster.kubectl(['-n', 'kt', 'exec', 'filler', '--', 'sh', '-c', 'busybox | head -n 1; readlink -f /proc/$$/exe']);
    expect(banner.code, banner.stderr).toBe(0);
    expect(banner.stdout).toMatch(/^BusyBox v1\.\d+/);
    // GNU stat's --printf and GNU sort's --version-sort are not busybox's.
    const gnu = await cluster.kubectl(['-n', 'kt', 'exec', 'filler', '--', 'stat', '--printf=%s', '/bin/sh']);
    expect(gnu.code).not.toBe(0);
    expect(gnu.stderr).toMatch(/unrecognized option|invalid option/);
    const posix = await kubectl(['-n', 'kt', 'exec', 'filler', '--', 'stat', '-c', '%s', '/bin/sh']);
    expect(Number(posix.trim())).toBeGreaterThan(0);
  });
});

describe('volumes', () => {
  it("a claim's capacity is real: writing past it fails with ENOSPC", async () => {
    await kubectl(['-n', 'kt', 'wait', '--for=condition=Ready', 'pod/filler', '--timeout=60s']);
    const df = (await kubectl(['-n', 'kt', 'exec', 'filler', '--', 'df', '-k', '/data'])).trim().split('\n')[1]!.split(/\s+/);
    const sizeKiB = Number(df[1]);
    expect(sizeKiB).toBeGreaterThan(12 * 1024);
    expect(sizeKiB).toBeLessThanOrEqual(16 * 1024);
    // dd, not head: busybox's head reports a short write's ENOSPC as "I/O error" (its stdio loses errno).
    const big = await cluster.kubectl(['-n', 'kt', 'exec', 'filler', '--', 'dd', 'if=/dev/zero', 'of=/data/big', 'bs=65536', 'count=512']);
    expect(big.code).not.toBe(0);
    expect(big.stderr).toMatch(/No space left on device/);
    await kubectl(['-n', 'kt', 'exec', 'filler', '--', 'rm', '/data/big']);
    await kubectl(['-n', 'kt', 'exec', 'filler', '--', 'sh', '-c', 'head -c 4194304 /dev/zero > /data/fits']);
  });

  it('the fill-volume fault fills the volume and clear (from code) frees it again', async () => {
    const fill = await cluster.sim(['fault', 'fill-volume', 'kt/filler', '--leave', '0']);
    expect(fill.code, fill.stderr).toBe(0);
    const write = await cluster.kubectl(['-n', 'kt', 'exec', 'filler', '--', 'dd', 'if=/dev/zero', 'of=/data/more', 'bs=65536', 'count=1']);
    expect(write.code).not.toBe(0);
    expect(write.stderr).toMatch(/No space left on device/);
    expect(await runFault(cluster.dir, 'clear', [])).toMatch(/1 fill file\(s\) removed/);
    await kubectl(['-n', 'kt', 'exec', 'filler', '--', 'sh', '-c', 'head -c 65536 /dev/zero > /data/more']);
  });

  it('graceful termination: SIGTERM reaches the container; one that ignores it is killed after its grace period', async () => {
    await kubectl(['-n', 'kt', 'wait', '--for=condition=Ready', 'pod/graceful', 'pod/stubborn', '--timeout=60s']);
    const log = join(cluster.dir, 'nodes', 'node-1', 'hostpath', 'grace', 'log');
    await kubectl(['-n', 'kt', 'delete', 'pod', 'graceful', 'stubborn', '--wait=true']);
    expect(readFileSync(log, 'utf8')).toBe('started\ngot-TERM\n');
    const left = await cluster.kubectl(['-n', 'kt', 'get', 'pods', 'graceful', 'stubborn', '-o', 'name']);
    expect(left.stdout).toBe('');
  });
});

describe('lifecycle hooks', () => {
  it('postStart runs when the container starts; preStop runs before SIGTERM and finishes within the grace period', async () => {
    await kubectl(['-n', 'kt', 'wait', '--for=condition=Ready', 'pod/hooked', '--timeout=60s']);
    const log = join(cluster.dir, 'nodes', 'node-1', 'hostpath', 'hooks', 'log');
    expect(readFileSync(log, 'utf8')).toBe('post-start\n');
    await kubectl(['-n', 'kt', 'delete', 'pod', 'hooked', '--wait=true']);
    expect(readFileSync(log, 'utf8')).toBe('post-start\npre-stop\npre-stop-done\ngot-TERM\n');
  });

  it('a failing preStop hook is a FailedPreStopHook event, and the container is stopped all the same', async () => {
    await kubectl(['-n', 'kt', 'wait', '--for=condition=Ready', 'pod/failhook', '--timeout=60s']);
    await kubectl(['-n', 'kt', 'delete', 'pod', 'failhook', '--wait=true']);
    const events = await kubectl(['-n', 'kt', 'get', 'events', '--field-selector', 'involvedObject.name=failhook', '-o', 'jsonpath={range .items[*]}{.reason}: {.message}{"\\n"}{end}']);
    expect(events).toMatch(/^FailedPreStopHook: PreStopHook failed: .*exited with 1: no such member$/m);
  });
});

describe('pod network', () => {
  // A CNI DEL removes the pod's interface. Deleting only the namespace's name (`ip netns del`) leaves
  // the namespace, its eth0 and its address on the bridge for as long as any process still has it:
  // two MACs then answer for the address the next pod is given (network.ts).
  it("a deleted pod's interface leaves the bridge even while a process still holds its network namespace", async () => {
    await kubectl(['-n', 'kt', 'run', 'net-first', '--image=busybox:1.36', '--overrides={"spec":{"terminationGracePeriodSeconds":1}}', '--', 'sleep', '3600']);
    await kubectl(['-n', 'kt', 'wait', '--for=condition=Ready', 'pod/net-first', '--timeout=60s']);
    const netns = (JSON.parse(readFileSync(join(cluster.dir, 'runtime/pods/kt/net-first/pod.json'), 'utf8')) as { netns: string }).netns;
    const veth = vethName(netns.replace('/run/netns/', ''));
    const onBridge = () => execFileSync('ip', ['-n', `ks${clusterId}-br`, '-o', 'link', 'show'], { encoding: 'utf8' }).split('\n').some((l) => l.includes(` ${veth}@`));
    expect(onBridge()).toBe(true);
    const holder = spawn('nsenter', [`--net=${netns}`, '--', 'sleep', '120'], { stdio: 'ignore' });
    try {
      await kubectl(['-n', 'kt', 'delete', 'pod', 'net-first', '--wait=true']);
      await waitFor("the deleted pod's veth to leave the bridge", async () => !onBridge() || undefined, 15_000);
    } finally {
      holder.kill('SIGKILL');
    }
  });
});

describe('static pods', () => {
  // A kubelet runs every Pod file in its staticPodPath and publishes a mirror pod for it
  // (https://kubernetes.io/docs/tasks/configure-pod-container/static-pod/; kubelet config/file.go,
  // config/common.go, pod/mirror_client.go): here DIR/nodes/NODE/hostpath/etc/kubernetes/manifests.
  const manifests = () => join(cluster.dir, 'nodes', 'node-2', 'hostpath', 'etc', 'kubernetes', 'manifests');
  const file = (marker: string, extra = '') => `apiVersion: v1
kind: Pod
metadata: {name: static-web, namespace: kt, labels: {component: static-web}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: main, image: busybox:1.36, command: [sh, -c, 'echo ${marker}; exec sleep 3600']${extra}}
`;
  const mirror = async () => {
    const r = await cluster.kubectl(['-n', 'kt', 'get', 'pod', 'static-web-node-2', '-o', 'json']);
    return r.code === 0 ? JSON.parse(r.stdout) : undefined;
  };
  const running = (marker: string) => waitFor(`static-web-node-2 running "${marker}"`, async () => {
    const p = await mirror();
    if (p?.status?.phase !== 'Running' || p.metadata.deletionTimestamp) return undefined;
    const logs = await cluster.kubectl(['-n', 'kt', 'logs', 'static-web-node-2']);
    return logs.stdout.includes(marker) ? p : undefined;
  }, 30_000);

  it('a file runs as pod NAME-NODE with a mirror pod (config annotations, the Node as owner, no ServiceAccount); deleting the mirror through the API brings it back, the container untouched', async () => {
    writeFileSync(join(manifests(), 'static-web.yaml'), file('first'));
    const p = await running('first');
    const hash = p.metadata.annotations['kubernetes.io/config.hash'];
    expect(hash).toMatch(/^[0-9a-f]{32}$/);
    expect(p.metadata.annotations).toMatchObject({ 'kubernetes.io/config.mirror': hash, 'kubernetes.io/config.source': 'file' });
    const nodeUid = await kubectl(['get', 'node', 'node-2', '-o', 'jsonpath={.metadata.uid}']);
    expect(p.metadata.ownerReferences).toEqual([{ apiVersion: 'v1', kind: 'Node', name: 'node-2', uid: nodeUid, controller: true }]);
    expect(p.spec.nodeName).toBe('node-2');
    expect(p.spec.serviceAccountName).toBeUndefined();
    expect(p.spec.tolerations).toContainEqual({ operator: 'Exists', effect: 'NoExecute' });
    const container = p.status.containerStatuses[0].containerID;
    // The mirror annotation cannot be changed through the API, nor a mirror pod made naming a ServiceAccount.
    const annotate = await cluster.kubectl(['-n', 'kt', 'annotate', 'pod', 'static-web-node-2', '--overwrite', 'kubernetes.io/config.mirror=forged']);
    expect(annotate.code).not.toBe(0);
    expect(annotate.stderr).toMatch(/may not remove or update mirror pod annotation/);
    const forged = await cluster.kubectl(['create', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'Pod',
      metadata: { name: 'forged-mirror', namespace: 'kt', annotations: { 'kubernetes.io/config.mirror': 'x' } },
      spec: { nodeName: 'node-2', serviceAccountName: 'default', containers: [{ name: 'main', image: 'busybox:1.36' }] } }) });
    expect(forged.code).not.toBe(0);
    expect(forged.stderr).toMatch(/a mirror pod may not reference service accounts/);

    // The naive way to stop it: delete the pod. The API says deleted, and the kubelet makes the mirror again.
    await kubectl(['-n', 'kt', 'delete', 'pod', 'static-web-node-2', '--wait=true']);
    const back = await waitFor('the mirror pod back', async () => {
      const m = await mirror();
      return m && m.metadata.uid !== p.metadata.uid && m.status?.phase === 'Running' ? m : undefined;
    }, 30_000);
    expect(back.status.containerStatuses[0].containerID).toBe(container);
    expect(back.status.containerStatuses[0].restartCount).toBe(0);
    expect((await kubectl(['-n', 'kt', 'logs', 'static-web-node-2'])).trim()).toBe('first');
  });

  it('moving the file out stops the pod and deletes its mirror; back, it runs again; a changed file runs the new pod (new hash); a file naming a Secret is refused', async () => {
    const aside = join(cluster.dir, 'static-web.yaml.aside');
    renameSync(join(manifests(), 'static-web.yaml'), aside);
    await waitFor('the mirror pod gone', async () => ((await mirror()) ? undefined : true), 30_000);
    await waitFor('the static pod stopped', async () => (existsSync(join(cluster.dir, 'runtime', 'pods', 'kt', 'static-web-node-2')) ? undefined : true), 30_000);
    renameSync(aside, join(manifests(), 'static-web.yaml'));
    const again = await running('first');
    writeFileSync(join(manifests(), 'static-web.yaml'), file('second'));
    const changed = await running('second');
    expect(changed.metadata.annotations['kubernetes.io/config.hash']).not.toBe(again.metadata.annotations['kubernetes.io/config.hash']);
    expect((await kubectl(['-n', 'kt', 'logs', 'static-web-node-2'])).trim()).toBe('second');
    // A static pod may not refer to API objects: the file is skipped, nothing runs.
    writeFileSync(join(manifests(), 'static-secret.yaml'), file('secret', ', envFrom: [{secretRef: {name: creds}}]').replace('static-web', 'static-secret'));
    await new Promise((r) => setTimeout(r, 2000));
    expect((await cluster.kubectl(['-n', 'kt', 'get', 'pod', 'static-secret-node-2'])).code).not.toBe(0);
    rmSync(join(manifests(), 'static-secret.yaml'));
    rmSync(join(manifests(), 'static-web.yaml'));
    await waitFor('the mirror pod gone', async () => ((await mirror()) ? undefined : true), 30_000);
  });
});

describe('hostNetwork', () => {
  // A pod with hostNetwork shares its node's network namespace: its IP is the node's, its
  // hostname the node's name, and the node's other hostNetwork pods share its loopback
  // (https://kubernetes.io/docs/concepts/workloads/pods/#pod-networking). Here each node's
  // address is fixed on the pod bridge (test/sim/kubelet/network.ts).
  const hostPod = (name: string, script: string) => `apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: kt}
spec:
  nodeName: node-3
  hostNetwork: true
  terminationGracePeriodSeconds: 1
  containers: [{name: main, image: busybox:1.36, command: [sh, -c, '${script}']}]
`;
  it("a hostNetwork pod has its node's IP and name, shares the node's loopback with the node's other hostNetwork pods, and keeps the IP when made again; other pods reach it there", async () => {
    const nodeIP = await kubectl(['get', 'node', 'node-3', '-o', 'jsonpath={.status.addresses[?(@.type=="InternalIP")].address}']);
    expect(nodeIP).toMatch(/^10\.88\.255\.\d+$/);
    await kubectl(['apply', '-f', '-'], hostPod('host-a', 'echo from-a > /tmp/a; exec nc -ll -p 7301 -e cat /tmp/a'));
    await kubectl(['apply', '-f', '-'], hostPod('host-b', 'exec sleep 3600'));
    await kubectl(['-n', 'kt', 'wait', '--for=condition=Ready', 'pod/host-a', 'pod/host-b', '--timeout=60s']);
    const a = await podJson('kt', 'host-a');
    expect(a.status.podIP).toBe(nodeIP);
    expect(a.status.hostIP).toBe(nodeIP);
    expect((await kubectl(['-n', 'kt', 'exec', 'host-a', '--', 'hostname'])).trim()).toBe('node-3');
    // The same node's other hostNetwork pod reaches it on the loopback; a pod of the pod network at the node's IP.
    const viaLoopback = await waitFor('host-b to reach host-a on 127.0.0.1', async () => {
      const r = await cluster.kubectl(['-n', 'kt', 'exec', 'host-b', '--', 'sh', '-c', 'nc 127.0.0.1 7301 </dev/null']);
      return r.stdout.includes('from-a') ? r.stdout : undefined;
    }, 20_000);
    expect(viaLoopback).toContain('from-a');
    expect(await kubectl(['-n', 'kt', 'exec', 'filler', '--', 'sh', '-c', `nc ${nodeIP} 7301 </dev/null`])).toContain('from-a');
    // A pod of the pod network has its own loopback: host-a is not there.
    const own = await cluster.kubectl(['-n', 'kt', 'exec', 'filler', '--', 'sh', '-c', 'nc 127.0.0.1 7301 </dev/null']);
    expect(own.stdout).not.toContain('from-a');
    // Made again, it is at the same address.
    await kubectl(['-n', 'kt', 'delete', 'pod', 'host-a', '--wait=true']);
    await kubectl(['apply', '-f', '-'], hostPod('host-a', 'exec sleep 3600'));
    await kubectl(['-n', 'kt', 'wait', '--for=condition=Ready', 'pod/host-a', '--timeout=60s']);
    expect((await podJson('kt', 'host-a')).status.podIP).toBe(nodeIP);
    // Every pod's hostIP is its node's address.
    const filler = await podJson('kt', 'filler');
    expect(filler.status.hostIP).toBe(await kubectl(['get', 'node', filler.spec.nodeName, '-o', 'jsonpath={.status.addresses[?(@.type=="InternalIP")].address}']));
    await kubectl(['-n', 'kt', 'delete', 'pod', 'host-a', 'host-b', '--wait=false']);
  });
});

describe('nodes', () => {
  it('node-not-ready shows in `kubectl get nodes`, its pods keep running but turn not Ready; setNodesReady undoes it', async () => {
    const pod = await podJson('uc1', 'kube-etcd-0');
    const node = pod.spec.nodeName as string;
    expect(ok(await cluster.sim(['fault', 'node-not-ready', node]))).toContain(`nodes not ready: ${node}`);
    const row = (await kubectl(['get', 'nodes', node, '--no-headers'])).trim().split(/\s+/);
    expect(row.slice(0, 2)).toEqual([node, 'NotReady']);
    expect(await kubectl(['get', 'node', node, '-o', 'jsonpath={.spec.taints[*].key}'])).toBe('node.kubernetes.io/not-ready');
    // as the node lifecycle controller does, the node's pods are marked not Ready
    expect(readyOf(await podJson('uc1', 'kube-etcd-0'))).toBe('False');
    expect(await kubectl(['-n', 'uc1', 'exec', 'kube-etcd-0', '--', 'echo', 'still-running'])).toBe('still-running\n');
    await setNodesReady(cluster.dir, [node], true);
    expect((await kubectl(['get', 'nodes', node, '--no-headers'])).trim().split(/\s+/)[1]).toBe('Ready');
    expect(await kubectl(['get', 'node', node, '-o', 'jsonpath={.spec.taints}'])).toBe('');
    await kubectl(['-n', 'uc1', 'wait', '--for=condition=Ready', 'pod/kube-etcd-0', '--timeout=60s']);
  });
});

describe('apiserver restart', () => {
  it('restart-apiserver keeps pods running; kubectl, the kubelet and the controllers carry on with the new one', async () => {
    const before = await podJson('uc1', 'kube-etcd-0');
    const r = await cluster.sim(['fault', 'restart-apiserver']);
    expect(r.code, r.stderr).toBe(0);
    const after = await podJson('uc1', 'kube-etcd-0');
    expect(after.metadata.uid).toBe(before.metadata.uid);
    expect(after.status.containerStatuses[0].restartCount).toBe(before.status.containerStatuses[0].restartCount);
    expect(ok(await etcdIn('kube-etcd-0', 'get /kt/marker --print-value-only'))).toBe('before-delete\n');
    await kubectl(['-n', 'kt', 'run', 'after-restart', '--image=busybox:1.36', '--overrides={"spec":{"terminationGracePeriodSeconds":1}}', '--', 'sleep', '3600']);
    await kubectl(['-n', 'kt', 'wait', '--for=condition=Ready', 'pod/after-restart', '--timeout=90s']);
    await kubectl(['-n', 'uc1', 'scale', 'deployment', 'gke-master-etcd-maintenance', '--replicas=2']);
    await kubectl(['-n', 'uc1', 'rollout', 'status', 'deployment', 'gke-master-etcd-maintenance', '--timeout=90s']);
  });
});

describe('down', () => {
  it('leaves no process, mount, loop device or network namespace behind', async () => {
    const dir = cluster.dir;
    const link = (p: string) => { try { return readlinkSync(p); } catch { return ''; } };
    const netnsNames = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(`ks${clusterId}-`));
    expect(netnsNames.length).toBeGreaterThan(10);
    const netnsLinks = new Set(netnsNames.map((n) => `net:[${statSync(`/run/netns/${n}`).ino}]`));
    /** Whether a process belongs to this cluster: by command line, root, working dir or network namespace. */
    const ofCluster = (pid: string): boolean => {
      let cmd: string;
      try { cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8'); } catch { return false; }
      return cmd.includes(dir) || link(`/proc/${pid}/root`).startsWith(dir) || link(`/proc/${pid}/cwd`).startsWith(dir) ||
        netnsLinks.has(link(`/proc/${pid}/ns/net`));
    };
    // the check finds every running pod process and sandbox before down
    const podPids: string[] = [];
    const podsDir = join(dir, 'runtime', 'pods');
    for (const ns of readdirSync(podsDir)) {
      for (const pod of readdirSync(join(podsDir, ns))) {
        for (const f of readdirSync(join(podsDir, ns, pod)).filter((n) => n.endsWith('.json'))) {
          const info = JSON.parse(readFileSync(join(podsDir, ns, pod, f), 'utf8'));
          for (const pid of [info.pid, info.sandboxPid]) if (typeof pid === 'number') podPids.push(String(pid));
        }
      }
    }
    expect(podPids.length).toBeGreaterThan(10);
    expect(podPids.filter((pid) => !ofCluster(pid))).toEqual([]);

    downDone = true;
    await cluster.down();

    expect(readdirSync('/proc').filter((e) => /^\d+$/.test(e) && ofCluster(e))).toEqual([]);
    const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
    expect(mountinfo.filter((l) => l.includes(dir) || l.includes(`/run/netns/ks${clusterId}-`))).toEqual([]);
    expect(execFileSync('losetup', ['-a'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(dir))).toEqual([]);
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').filter((l) => l.startsWith(`ks${clusterId}-`))).toEqual([]);
    expect(existsSync(dir)).toBe(false);
  }, 180_000);
});
