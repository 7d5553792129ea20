// The sim's protobuf decoding of a batch/v1 Job (test/sim/apiserver/protobuf-job.ts), against the
// bodies real kubectl 1.32 sends for `kubectl create job NAME --from=cronjob/CJ`: a stub API server
// on 127.0.0.1 (plain HTTP) answers discovery and the GET of the CronJob, and records the POST,
// which kubectl sends as application/vnd.kubernetes.protobuf with no JSON fallback. The decoded
// JSON must equal what kubectl would have sent as JSON: a literal for a backup CronJob, and
// `kubectl create job --dry-run=client -o json` (Go's encoding/json of the same object) for a
// template that sets every field the tables know. A field number the tables do not know, at any
// depth, is refused, naming it, and the HTTP layer answers 415 with that reason.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseBody } from '../sim/apiserver/httpio.js';
import { protobufToJson } from '../sim/apiserver/protobuf.js';
import { ApiError } from '../sim/apiserver/status.js';

const NS = 'kube-etcd';
const UID = '6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b';

/** A backup CronJob as a real 1.32 API server returns it (with its defaults filled in). */
const BACKUP_CRONJOB = {
  apiVersion: 'batch/v1', kind: 'CronJob',
  metadata: { name: 'etcd-backup', namespace: NS, uid: UID, resourceVersion: '4242', generation: 1, creationTimestamp: '2025-06-01T02:00:00Z', labels: { app: 'etcd-backup' } },
  spec: {
    schedule: '0 3 * * *', concurrencyPolicy: 'Forbid', suspend: false, successfulJobsHistoryLimit: 3, failedJobsHistoryLimit: 1,
    jobTemplate: {
      metadata: {
        creationTimestamp: null,
        labels: { app: 'etcd-backup', 'app.kubernetes.io/component': 'backup' },
        annotations: { 'backup.example.com/target': 's3://backups/etcd' },
      },
      spec: {
        parallelism: 1, completions: 1, activeDeadlineSeconds: 3600, backoffLimit: 0, ttlSecondsAfterFinished: 86400,
        completionMode: 'NonIndexed', suspend: false, manualSelector: false, podReplacementPolicy: 'TerminatingOrFailed',
        template: {
          metadata: { creationTimestamp: null, labels: { app: 'etcd-backup' }, annotations: { 'kubectl.kubernetes.io/default-container': 'backup' } },
          spec: {
            volumes: [
              { name: 'backups', persistentVolumeClaim: { claimName: 'etcd-backups' } },
              { name: 'etcd-client-tls', secret: { secretName: 'etcd-client-tls', items: [{ key: 'tls.crt', path: 'client.crt' }, { key: 'tls.key', path: 'client.key', mode: 256 }], defaultMode: 288 } },
            ],
            initContainers: [{
              name: 'log-shipper', image: 'busybox:1.36', command: ['sh', '-c', 'tail -F /backups/backup.log'],
              resources: { limits: { memory: '32Mi' } }, restartPolicy: 'Always',
              volumeMounts: [{ name: 'backups', readOnly: true, mountPath: '/backups' }],
              terminationMessagePath: '/dev/termination-log', terminationMessagePolicy: 'File', imagePullPolicy: 'IfNotPresent',
            }],
            containers: [{
              name: 'backup', image: 'registry.example.com/kubectl-etcd:0.1.0', args: ['backup', '-n', NS, '--to', 's3://backups/etcd', '--keep', '7'],
              env: [
                { name: 'AWS_REGION', value: 'eu-west-1' },
                { name: 'AWS_SECRET_ACCESS_KEY', valueFrom: { secretKeyRef: { name: 's3-credentials', key: 'secret-key' } } },
                { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } } },
              ],
              resources: { limits: { cpu: '1', memory: '512Mi' }, requests: { cpu: '100m', memory: '128Mi' } },
              volumeMounts: [{ name: 'backups', mountPath: '/backups' }, { name: 'etcd-client-tls', readOnly: true, mountPath: '/etc/etcd/pki', subPath: 'client' }],
              terminationMessagePath: '/dev/termination-log', terminationMessagePolicy: 'File', imagePullPolicy: 'IfNotPresent',
              securityContext: { capabilities: { drop: ['ALL'] }, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false },
            }],
            restartPolicy: 'Never', terminationGracePeriodSeconds: 30, activeDeadlineSeconds: 3000, dnsPolicy: 'ClusterFirst',
            nodeSelector: { 'kubernetes.io/os': 'linux' }, serviceAccountName: 'etcd-backup', serviceAccount: 'etcd-backup',
            automountServiceAccountToken: false,
            securityContext: { runAsUser: 65532, runAsGroup: 65532, runAsNonRoot: true, fsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } },
            imagePullSecrets: [{ name: 'registry' }], schedulerName: 'default-scheduler',
            tolerations: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' }],
            priorityClassName: 'system-cluster-critical',
          },
        },
      },
    },
  },
  status: { lastScheduleTime: '2025-06-02T03:00:00Z' },
};

/** What kubectl 1.32 sends for `kubectl create job manual-1 --from=cronjob/etcd-backup -n kube-etcd`, as JSON. */
const EXPECTED_JOB = {
  kind: 'Job', apiVersion: 'batch/v1',
  metadata: {
    name: 'manual-1', namespace: NS, creationTimestamp: null,
    labels: { app: 'etcd-backup', 'app.kubernetes.io/component': 'backup' },
    annotations: { 'cronjob.kubernetes.io/instantiate': 'manual', 'backup.example.com/target': 's3://backups/etcd' },
    ownerReferences: [{ apiVersion: 'batch/v1', kind: 'CronJob', name: 'etcd-backup', uid: UID, controller: true }], // no blockOwnerDeletion
  },
  spec: BACKUP_CRONJOB.spec.jobTemplate.spec,
  status: {},
};

/** A template that sets every field the tables know, zero pointers and negative numbers included. */
const KITCHEN_SINK_CRONJOB = {
  apiVersion: 'batch/v1', kind: 'CronJob',
  metadata: { name: 'kitchen-sink', namespace: NS, uid: 'u-1', resourceVersion: '7' },
  spec: {
    schedule: '*/5 * * * *',
    jobTemplate: {
      metadata: { labels: { a: 'b', c: 'd' }, annotations: { x: 'y' } },
      spec: {
        parallelism: 2, completions: 4, activeDeadlineSeconds: 0, backoffLimit: 3, backoffLimitPerIndex: 1, maxFailedIndexes: 2,
        ttlSecondsAfterFinished: 0, completionMode: 'Indexed', suspend: true, manualSelector: true, podReplacementPolicy: 'Failed',
        managedBy: 'example.com/ctl',
        selector: { matchLabels: { a: 'b' }, matchExpressions: [{ key: 'c', operator: 'In', values: ['d', 'e'] }, { key: 'f', operator: 'Exists' }] },
        podFailurePolicy: { rules: [
          { action: 'FailJob', onExitCodes: { operator: 'In', values: [1, 2, -3] } },
          { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }, { type: 'X' }] },
          { action: 'Count', onExitCodes: { containerName: 'main', operator: 'NotIn', values: [0] } },
          { action: 'FailJob', onExitCodes: { operator: 'In' } },
        ] },
        successPolicy: { rules: [{ succeededIndexes: '0-2', succeededCount: 2 }, { succeededCount: 0 }] },
        template: {
          metadata: {
            name: 'tpl', generateName: 'g-', namespace: NS, labels: { a: 'b' }, annotations: { k: '' }, finalizers: ['f1', 'f2'],
            selfLink: '/x', uid: 'u-9', resourceVersion: '9', generation: 3, creationTimestamp: '2025-01-02T03:04:05Z',
            deletionTimestamp: '1969-12-31T23:59:59Z', deletionGracePeriodSeconds: 0,
            ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'cm', uid: 'u-2', controller: false, blockOwnerDeletion: true }],
          },
          spec: {
            restartPolicy: 'Never', terminationGracePeriodSeconds: 0, activeDeadlineSeconds: 100, dnsPolicy: 'None', nodeSelector: { disk: 'ssd' },
            serviceAccountName: 'sa', serviceAccount: 'sa', automountServiceAccountToken: true, nodeName: 'node-1', hostNetwork: true,
            hostPID: true, hostIPC: true, shareProcessNamespace: false, hostname: 'h', subdomain: 's', schedulerName: 'sched',
            priorityClassName: 'pc', priority: -5, runtimeClassName: 'rc', enableServiceLinks: false, preemptionPolicy: 'Never',
            setHostnameAsFQDN: false, hostUsers: false, os: { name: 'linux' },
            hostAliases: [{ ip: '10.0.0.1', hostnames: ['a', 'b'] }, { ip: '10.0.0.2' }],
            imagePullSecrets: [{ name: 'reg' }, {}],
            tolerations: [{ key: 'k', operator: 'Equal', value: 'v', effect: 'NoExecute', tolerationSeconds: 0 }, { operator: 'Exists' }],
            securityContext: {
              seLinuxOptions: { user: 'u', role: 'r', type: 't', level: 'l' }, runAsUser: 0, runAsGroup: 0, runAsNonRoot: false,
              supplementalGroups: [5, 6, 0], supplementalGroupsPolicy: 'Strict', fsGroup: 0,
              sysctls: [{ name: 'net.x', value: '1' }, { name: 'net.y', value: '' }], fsGroupChangePolicy: 'OnRootMismatch',
              seccompProfile: { type: 'Localhost', localhostProfile: 'p.json' }, appArmorProfile: { type: 'RuntimeDefault' },
              seLinuxChangePolicy: 'Recursive',
            },
            affinity: {
              nodeAffinity: {
                requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [
                  { matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }], matchFields: [{ key: 'metadata.name', operator: 'NotIn', values: ['n'] }] },
                  {},
                ] },
                preferredDuringSchedulingIgnoredDuringExecution: [
                  { weight: 10, preference: { matchExpressions: [{ key: 'k', operator: 'Exists' }] } }, { weight: 0, preference: {} },
                ],
              },
              podAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{
                labelSelector: { matchLabels: { a: 'b' } }, namespaces: ['n1'], topologyKey: 'kubernetes.io/hostname', namespaceSelector: {},
                matchLabelKeys: ['x'], mismatchLabelKeys: ['y'],
              }] },
              podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 50, podAffinityTerm: { topologyKey: 'zone' } }] },
            },
            volumes: [
              { name: 'hp', hostPath: { path: '/var/lib', type: 'Directory' } }, { name: 'hp2', hostPath: { path: '/x' } },
              { name: 'ed', emptyDir: {} }, { name: 'ed2', emptyDir: { medium: 'Memory', sizeLimit: '1Gi' } },
              { name: 'sec', secret: { secretName: 's', items: [{ key: 'a', path: 'b', mode: 256 }, { key: 'c', path: 'd' }], defaultMode: 420, optional: false } },
              { name: 'sec2', secret: {} },
              { name: 'pvc', persistentVolumeClaim: { claimName: 'c', readOnly: true } },
              { name: 'dapi', downwardAPI: { items: [
                { path: 'labels', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.labels' } },
                { path: 'cpu', resourceFieldRef: { containerName: 'main', resource: 'limits.cpu', divisor: '1m' }, mode: 292 },
                { path: 'mem', resourceFieldRef: { resource: 'limits.memory' } },
              ], defaultMode: 420 } },
              { name: 'cm', configMap: { name: 'cfg', items: [{ key: 'k', path: 'p' }], defaultMode: 511, optional: true } }, { name: 'cm2', configMap: {} },
              { name: 'proj', projected: { sources: [
                { secret: { name: 's', items: [{ key: 'a', path: 'b' }], optional: true } },
                { downwardAPI: { items: [{ path: 'n', fieldRef: { fieldPath: 'metadata.name' } }] } },
                { configMap: { name: 'c' } },
                { serviceAccountToken: { audience: 'aud', expirationSeconds: 3600, path: 'token' } }, { serviceAccountToken: { path: 't2' } },
              ], defaultMode: 420 } },
              { name: 'proj2', projected: {} },
            ],
            initContainers: [{ name: 'init', image: 'busybox', restartPolicy: 'Always', stdin: true, stdinOnce: true, tty: true }],
            containers: [
              {
                name: 'main', image: 'img:1', command: ['sh', '-c'], args: ['echo hi', ''], workingDir: '/w',
                ports: [{ name: 'http', hostPort: 8080, containerPort: 80, protocol: 'TCP', hostIP: '0.0.0.0' }, { containerPort: 0 }],
                envFrom: [{ prefix: 'P_', configMapRef: { name: 'cm', optional: true } }, { secretRef: { name: 'sec' } }, {}],
                env: [
                  { name: 'A', value: '1' }, { name: 'B' }, { name: 'C', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
                  { name: 'D', valueFrom: { resourceFieldRef: { resource: 'requests.cpu', divisor: '0.5' } } },
                  { name: 'E', valueFrom: { configMapKeyRef: { name: 'cm', key: 'k', optional: false } } },
                  { name: 'F', valueFrom: { secretKeyRef: { key: 'k' } } },
                ],
                resources: {
                  limits: { cpu: '2', memory: '1.5Gi', 'nvidia.com/gpu': '1' }, requests: { cpu: '0.5', 'ephemeral-storage': '1e3' },
                  claims: [{ name: 'gpu', request: 'r' }, { name: 'g2' }],
                },
                volumeMounts: [
                  { name: 'sec', readOnly: true, recursiveReadOnly: 'IfPossible', mountPath: '/s', subPath: 'x', mountPropagation: 'None' },
                  { name: 'ed', mountPath: '/e', subPathExpr: '$(POD)' },
                ],
                terminationMessagePath: '/tmp/t', terminationMessagePolicy: 'FallbackToLogsOnError', imagePullPolicy: 'Always',
                securityContext: {
                  capabilities: { add: ['NET_ADMIN'], drop: ['ALL'] }, privileged: false, seLinuxOptions: { level: 's0' }, runAsUser: 1000,
                  runAsGroup: 3000, runAsNonRoot: true, readOnlyRootFilesystem: false, allowPrivilegeEscalation: false, procMount: 'Default',
                  seccompProfile: { type: 'RuntimeDefault' }, appArmorProfile: { type: 'Localhost', localhostProfile: 'prof' },
                },
              },
              { name: 'second', securityContext: {} },
            ],
          },
        },
      },
    },
  },
  status: {},
};

/** Empty lists where Go's JSON has null (no omitempty), and a template with nothing in it. */
const BARE_CRONJOB = {
  apiVersion: 'batch/v1', kind: 'CronJob',
  metadata: { name: 'bare', namespace: NS, uid: 'u-3' },
  spec: { schedule: '@daily', jobTemplate: { spec: { podFailurePolicy: {}, successPolicy: {} } } },
};

const CRONJOBS: Record<string, unknown> = { 'etcd-backup': BACKUP_CRONJOB, 'kitchen-sink': KITCHEN_SINK_CRONJOB, bare: BARE_CRONJOB };

interface Post { body: Buffer; contentType: string; userAgent: string }

const RESOURCES = {
  v1: [{ name: 'namespaces', singularName: 'namespace', namespaced: false, kind: 'Namespace', verbs: ['get', 'list'] }],
  'batch/v1': [
    { name: 'cronjobs', singularName: 'cronjob', namespaced: true, kind: 'CronJob', verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'], shortNames: ['cj'] },
    { name: 'jobs', singularName: 'job', namespaced: true, kind: 'Job', verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'] },
  ],
};

/**
 * Just enough of an API server for kubectl create job --from: /version (1.32, so that the
 * google-cloud-sdk kubectl dispatcher runs kubectl 1.32), legacy discovery, the CronJobs above, and
 * Job creation answered through the simulator's own body parsing (parseBody: 201 with the decoded
 * Job, or its 415). Every POST body is recorded.
 */
function stubServer(posts: Post[]): Server {
  return createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const send = (code: number, obj: unknown) => {
        res.writeHead(code, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(obj));
      };
      const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
      const gv = { groupVersion: 'batch/v1', version: 'v1' };
      if (path === '/version') return send(200, { major: '1', minor: '32', gitVersion: 'v1.32.0', platform: 'linux/amd64' });
      if (path === '/api') return send(200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '127.0.0.1' }] });
      if (path === '/apis') return send(200, { kind: 'APIGroupList', apiVersion: 'v1', groups: [{ name: 'batch', versions: [gv], preferredVersion: gv }] });
      if (path === '/api/v1') return send(200, { kind: 'APIResourceList', groupVersion: 'v1', resources: RESOURCES.v1 });
      if (path === '/apis/batch/v1') return send(200, { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: 'batch/v1', resources: RESOURCES['batch/v1'] });
      const cronJob = /^\/apis\/batch\/v1\/namespaces\/([^/]+)\/cronjobs\/([^/]+)$/.exec(path);
      if (req.method === 'GET' && cronJob && cronJob[1] === NS && CRONJOBS[cronJob[2]!]) return send(200, CRONJOBS[cronJob[2]!]);
      if (req.method === 'POST' && path === `/apis/batch/v1/namespaces/${NS}/jobs`) {
        const body = Buffer.concat(chunks);
        const contentType = req.headers['content-type'] ?? '';
        posts.push({ body, contentType, userAgent: req.headers['user-agent'] ?? '' });
        try {
          const job = parseBody(body, contentType) as { metadata: Record<string, unknown> };
          return send(201, { ...job, metadata: { ...job.metadata, uid: 'created', resourceVersion: '1' } });
        } catch (err) {
          const e = err instanceof ApiError ? err : new ApiError(500, 'InternalError', String(err));
          return send(e.code, e.toStatus());
        }
      }
      send(404, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404, message: `${req.method} ${path} not found` });
    });
  });
}

// --- protobuf re-encoding, to add a field to a nested message of a captured body ---

function uvarint(n: number): Buffer {
  const out: number[] = [];
  for (; n > 0x7f; n = Math.floor(n / 128)) out.push((n % 128) | 0x80);
  out.push(n);
  return Buffer.from(out);
}

function readUvarint(buf: Buffer, pos: number): [number, number] {
  let n = 0;
  for (let mul = 1; ; mul *= 128) {
    const b = buf[pos++]!;
    n += (b & 0x7f) * mul;
    if (!(b & 0x80)) return [n, pos];
  }
}

/** A protobuf field: its key (number, wire type) and its varint or length-delimited value. */
function field(num: number, value: number | Buffer): Buffer {
  if (typeof value === 'number') return Buffer.concat([uvarint(num * 8), uvarint(value)]);
  return Buffer.concat([uvarint(num * 8 + 2), uvarint(value.length), value]);
}

/** A step into a nested message: a field number (its first occurrence) or [number, index] (its index-th). */
type Step = number | [number, number];

/** msg with extra appended inside the message reached through path, lengths re-encoded. */
function withField(msg: Buffer, path: Step[], extra: Buffer): Buffer {
  if (!path.length) return Buffer.concat([msg, extra]);
  const [num, index] = typeof path[0] === 'number' ? [path[0], 0] : path[0]!;
  const parts: Buffer[] = [];
  let seen = 0;
  let found = false;
  for (let pos = 0; pos < msg.length;) {
    const start = pos;
    const [key, p1] = readUvarint(msg, pos);
    if (key % 8 === 0) {
      pos = readUvarint(msg, p1)[1];
      parts.push(msg.subarray(start, pos));
      continue;
    }
    if (key % 8 !== 2) throw new Error(`wire type ${key % 8} in a k8s message`);
    const [len, p2] = readUvarint(msg, p1);
    pos = p2 + len;
    if (Math.floor(key / 8) === num && seen++ === index) {
      found = true;
      parts.push(field(num, withField(msg.subarray(p2, pos), path.slice(1), extra)));
    } else {
      parts.push(msg.subarray(start, pos));
    }
  }
  if (!found) throw new Error(`no field ${num} #${index} to follow`);
  return Buffer.concat(parts);
}

/** The body with extra added to the Job message reached through path (from the Job: 2 spec, 6 template, 2 pod spec...). */
function withJobField(body: Buffer, path: Step[], extra: Buffer): Buffer {
  return Buffer.concat([body.subarray(0, 4), withField(body.subarray(4), [2, ...path], extra)]); // k8s\0, then runtime.Unknown.raw (2)
}

describe('sim protobuf: the batch/v1 Job real kubectl 1.32 sends for create job --from=cronjob', () => {
  const posts: Post[] = [];
  let server: Server;
  let dir: string;
  let kubeconfig: string;

  function kubectl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile('kubectl', ['--kubeconfig', kubeconfig, ...args], { env: { ...process.env, HOME: dir, KUBECONFIG: kubeconfig }, timeout: 60_000 },
        (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
    });
  }

  /** Runs `kubectl create job NAME --from=cronjob/CJ -n NS` and returns the POST it sent and kubectl's output. */
  async function createJob(cronJob: string, name: string, extra: string[] = []): Promise<{ post: Post; stdout: string }> {
    const before = posts.length;
    const r = await kubectl(['create', 'job', name, `--from=cronjob/${cronJob}`, '-n', NS, ...extra]);
    if (r.code !== 0) throw new Error(`kubectl create job failed (exit ${r.code}): ${r.stderr.trim()}`);
    return { post: posts[before]!, stdout: r.stdout };
  }

  beforeAll(async () => {
    const version = await new Promise<string>((resolve) => execFile('kubectl', ['version', '--client'], (err, out) => resolve(err ? '' : out)));
    if (!version) throw new Error('kubectl is not installed; install kubectl 1.32 (google-cloud-sdk kubectl packages)');
    dir = mkdtempSync(join(tmpdir(), 'sim-protobuf-job-'));
    server = stubServer(posts);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, [
      'apiVersion: v1', 'kind: Config', 'current-context: stub',
      'clusters:', '- name: stub', '  cluster:', `    server: http://127.0.0.1:${port}`,
      'contexts:', '- name: stub', '  context: {cluster: stub, user: stub, namespace: default}',
      'users:', '- name: stub', '  user: {}', '',
    ].join('\n'));
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('decodes the body into the JSON kubectl would have sent, and the simulator creates the Job from it', async () => {
    const { post, stdout } = await createJob('etcd-backup', 'manual-1');
    expect(post.userAgent).toMatch(/^kubectl\/v1\.32\./);
    expect(post.contentType).toBe('application/vnd.kubernetes.protobuf');
    expect(post.body.subarray(0, 4)).toEqual(Buffer.from('k8s\0', 'latin1'));
    expect(protobufToJson(post.body)).toStrictEqual(EXPECTED_JOB);
    expect(parseBody(post.body, post.contentType)).toStrictEqual(EXPECTED_JOB);
    expect(stdout.trim()).toBe('job.batch/manual-1 created'); // the stub answered 201 from parseBody
  });

  it('matches `kubectl create job --dry-run=client -o json` field for field, with every field the tables know set', async () => {
    for (const cronJob of ['etcd-backup', 'kitchen-sink', 'bare']) {
      const { post } = await createJob(cronJob, 'manual-2');
      const printed = await kubectl(['create', 'job', 'manual-2', `--from=cronjob/${cronJob}`, '-n', NS, '--dry-run=client', '-o', 'json']);
      expect(printed.code, printed.stderr).toBe(0);
      expect(protobufToJson(post.body), cronJob).toStrictEqual(JSON.parse(printed.stdout));
    }
  });

  it('refuses a field number the tables do not know, at any depth, naming the message and the number', async () => {
    const { post } = await createJob('etcd-backup', 'manual-3');
    const cases: Array<[Step[], Buffer, string]> = [
      [[2, 6, 2], field(99, 1), 'unsupported protobuf field 99 in PodSpec'],
      [[2, 6, 2, 2], field(10, Buffer.alloc(0)), 'unsupported protobuf field 10 in Container'], // a livenessProbe
      [[2, 6, 2, 1, 2], field(29, Buffer.alloc(0)), 'unsupported protobuf field 29 in VolumeSource'], // an ephemeral volume
      [[1], field(17, Buffer.alloc(0)), 'unsupported protobuf field 17 in ObjectMeta'], // managedFields
      [[2, 6, 2, 2, [7, 1], 3, 4], field(9, 1), 'unsupported protobuf field 9 in SecretKeySelector'], // env[1].valueFrom.secretKeyRef
      [[], field(4, 1), 'unsupported protobuf field 4 in Job'],
    ];
    for (const [path, extra, message] of cases) {
      expect(() => protobufToJson(withJobField(post.body, path, extra))).toThrow(message);
    }
    // The re-encoding itself is sound: a known field added the same way decodes.
    const shared = protobufToJson(withJobField(post.body, [2, 6, 2], field(27, 1))) as typeof EXPECTED_JOB;
    expect(shared.spec.template.spec).toStrictEqual({ ...EXPECTED_JOB.spec.template.spec, shareProcessNamespace: true });
    // The HTTP layer answers 415 and says why.
    let refused: unknown;
    try { parseBody(withJobField(post.body, [2, 6, 2], field(99, 1)), 'application/vnd.kubernetes.protobuf'); } catch (err) { refused = err; }
    expect(refused).toBeInstanceOf(ApiError);
    expect((refused as ApiError).code).toBe(415);
    expect((refused as ApiError).message).toMatch(/^the body of the request was in an unknown format .*: unsupported protobuf field 99 in PodSpec$/);
  });
});
