// Shared by the backup and status e2e files: run the built plugin through `kubectl etcd`, talk to
// each fixture's etcd with real etcdctl inside its pod, and judge a snapshot the way a user would
// (real `etcdctl snapshot status`, a real `etcdctl snapshot restore` started as a throwaway etcd).
import { DEFAULT_ETCD_MINOR, etcdRelease, type EtcdMinor } from '../sim/etcd-versions.js';
import { withFixtureOption } from '../sim/fixtures/index.js';
import { execFile, spawn } from 'node:child_process';
import { createReadStream, openSync, closeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { delimiter, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'vitest';
import { etcdctlSnapshotStatus, requireBinary, snapshotTool, startEtcd } from '../helpers/etcd.js';
import { ok, type CommandResult, type SimCluster } from '../sim/harness.js';
import { distStale } from './plugin-build.js';

const execFileP = promisify(execFile);

/** The repository root (bin/ holds the kubectl-etcd plugin launcher). */
export const REPO = resolve(import.meta.dirname, '../..');

/** One etcd workload the tests back up: where it lives and how etcdctl reaches it from inside its pod. */
export interface EtcdTarget {
  fixture: string;
  namespace: string;
  pod: string;
  container: string;
  /** etcdctl connection flags as seen inside the container. */
  conn: string[];
  /** The etcd minor the fixture runs (3.4 unless it says etcd=3.5): judged with that minor's tools. */
  etcd?: EtcdMinor;
  /** The transport `backup` should pick by itself (exec when the image has sh and tar). */
  transport: 'exec' | 'stream';
}

const anthosCerts = '/etcd.local.config/certificates';
const kubeadmPki = '/etc/kubernetes/pki/etcd';

/** The fixtures of test/sim as the runbooks describe them. */
export const TARGETS = {
  anthos: {
    fixture: 'anthos', namespace: 'uc1', pod: 'kube-etcd-0', container: 'kube-etcd', transport: 'exec',
    conn: ['--endpoints=https://127.0.0.1:2379', `--cacert=${anthosCerts}/etcdCA.crt`, `--cert=${anthosCerts}/etcd.crt`, `--key=${anthosCerts}/etcd.key`],
  },
  single: {
    fixture: 'single', namespace: 'uc1', pod: 'kube-etcd-0', container: 'kube-etcd', transport: 'exec',
    conn: ['--endpoints=https://127.0.0.1:2379', `--cacert=${anthosCerts}/etcdCA.crt`, `--cert=${anthosCerts}/etcd.crt`, `--key=${anthosCerts}/etcd.key`],
  },
  bitnami: {
    fixture: 'bitnami', namespace: 'etcd', pod: 'etcd-0', container: 'etcd', transport: 'exec',
    conn: ['--endpoints=http://127.0.0.1:2379'],
  },
  kubeadm: {
    // registry.k8s.io/etcd has a shell but no tar: the stream transport.
    fixture: 'kubeadm', namespace: 'kube-system', pod: 'etcd-node-1', container: 'etcd', transport: 'stream',
    conn: ['--endpoints=https://127.0.0.1:2379', `--cacert=${kubeadmPki}/ca.crt`, `--cert=${kubeadmPki}/healthcheck-client.crt`, `--key=${kubeadmPki}/healthcheck-client.key`],
  },
  distroless: {
    fixture: 'distroless image', namespace: 'distroless', pod: 'etcd-0', container: 'etcd', transport: 'stream',
    conn: ['--endpoints=https://127.0.0.1:2379', '--cacert=/etc/etcd/tls/etcdCA.crt', '--cert=/etc/etcd/tls/etcd.crt', '--key=/etc/etcd/tls/etcd.key'],
  },
} satisfies Record<string, EtcdTarget>;

/** A target's fixture on another etcd minor (`bitnami` → `bitnami:etcd=3.5`), judged with that minor's tools. */
export function onEtcd(t: EtcdTarget, etcd: EtcdMinor): EtcdTarget {
  return { ...t, fixture: withFixtureOption(t.fixture, 'etcd', etcd), etcd };
}

/**
 * How the distroless members get their TLS files (/etc/etcd/tls/etcdCA.crt, etcd.crt, etcd.key):
 * `volume`, Secret `etcd-tls` mounted at /etc/etcd/tls, each key a file of its own name; `subPath`,
 * file by file (a mount per file, subPath) from two Secrets whose keys are named otherwise: the CA
 * is key `ca.crt` of `etcd-ca`, the client pair keys `tls.crt` and `tls.key` of the kubernetes.io/tls
 * Secret `etcd-tls`, which the volume's items rename to `client.crt` and `client.key`. So no key is
 * named like the file etcd reads, and the mount paths are files, not a folder.
 */
export type DistrolessCertMount = 'volume' | 'subPath';

/** The Secrets a distroless StatefulSet mounts, made of the PEM files (base64) of Secret `kube-etcd-certs` of the anthos fixtures. */
export function distrolessSecrets(o: { namespace: string; certMount?: DistrolessCertMount }, certs: Record<string, string>): object[] {
  const secret = (name: string, data: Record<string, string>, type = 'Opaque') => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: o.namespace }, type, data });
  if (o.certMount !== 'subPath') return [secret('etcd-tls', certs)];
  return [
    secret('etcd-ca', { 'ca.crt': certs['etcdCA.crt']! }),
    secret('etcd-tls', { 'tls.crt': certs['etcd.crt']!, 'tls.key': certs['etcd.key']! }, 'kubernetes.io/tls'),
  ];
}

/** The volume mounts and volumes of the TLS files, as DistrolessCertMount says. */
function distrolessCertVolumes(certMount: DistrolessCertMount): { mounts: string; volumes: string } {
  if (certMount === 'volume') {
    return {
      mounts: '        - {name: tls, mountPath: /etc/etcd/tls, readOnly: true}\n',
      volumes: '      - name: tls\n        secret: {secretName: etcd-tls, defaultMode: 0400}\n',
    };
  }
  return {
    mounts: [
      '        - {name: ca, mountPath: /etc/etcd/tls/etcdCA.crt, subPath: ca.crt, readOnly: true}',
      '        - {name: tls, mountPath: /etc/etcd/tls/etcd.crt, subPath: client.crt, readOnly: true}',
      '        - {name: tls, mountPath: /etc/etcd/tls/etcd.key, subPath: client.key, readOnly: true}',
      '',
    ].join('\n'),
    volumes: [
      '      - name: ca',
      '        secret: {secretName: etcd-ca, defaultMode: 0400}',
      '      - name: tls',
      '        secret:',
      '          secretName: etcd-tls',
      '          defaultMode: 0400',
      '          items: [{key: tls.crt, path: client.crt}, {key: tls.key, path: client.key}]',
      '',
    ].join('\n'),
  };
}

/**
 * An etcd StatefulSet on the upstream distroless image (no shell, no tar; etcd and etcdctl only),
 * client TLS from Secrets mounted as `certMount` says (default `volume`; create them first, see
 * distrolessSecrets).
 */
export function distrolessManifest(o: { namespace: string; replicas: number; storage: string; token: string; createNamespace: boolean; etcd?: EtcdMinor; certMount?: DistrolessCertMount }): string {
  const certs = distrolessCertVolumes(o.certMount ?? 'volume');
  // Several members start together (Parallel): a member is Ready only once the cluster has quorum.
  return `
${o.createNamespace ? `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${o.namespace}}\n---\n` : ''}apiVersion: v1
kind: Service
metadata: {name: etcd, namespace: ${o.namespace}}
spec:
  clusterIP: None
  # Members find each other before they are Ready (DNS lists not-ready pods only when published).
  publishNotReadyAddresses: true
  selector: {app: etcd}
  ports: [{name: client, port: 2379}, {name: peer, port: 2380}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: etcd, namespace: ${o.namespace}}
spec:
  replicas: ${o.replicas}
  serviceName: etcd
${o.replicas > 1 ? '  podManagementPolicy: Parallel\n' : ''}  selector: {matchLabels: {app: etcd}}
  template:
    metadata: {labels: {app: etcd}}
    spec:
      containers:
      - name: etcd
        image: gcr.io/etcd-development/etcd:v${etcdRelease(o.etcd ?? DEFAULT_ETCD_MINOR)}
        command:
        - /usr/local/bin/etcd
        - --name=$(POD_NAME)
        - --data-dir=/var/run/etcd/default.etcd
        - --listen-client-urls=https://0.0.0.0:2379
        - --advertise-client-urls=https://$(POD_NAME).etcd:2379
        - --listen-peer-urls=http://0.0.0.0:2380
        - --initial-advertise-peer-urls=http://$(POD_NAME).etcd:2380
        - --initial-cluster=${Array.from({ length: o.replicas }, (_, i) => `etcd-${i}=http://etcd-${i}.etcd:2380`).join(',')}
        - --initial-cluster-token=${o.token}
        - --client-cert-auth=true
        - --trusted-ca-file=/etc/etcd/tls/etcdCA.crt
        - --cert-file=/etc/etcd/tls/etcd.crt
        - --key-file=/etc/etcd/tls/etcd.key
        env:
        - name: POD_NAME
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
        readinessProbe:
          exec:
            command: [etcdctl, --endpoints=https://127.0.0.1:2379, --cacert=/etc/etcd/tls/etcdCA.crt, --cert=/etc/etcd/tls/etcd.crt, --key=/etc/etcd/tls/etcd.key, endpoint, health]
          periodSeconds: 2
          timeoutSeconds: 10
        volumeMounts:
        - {name: data, mountPath: /var/run/etcd}
${certs.mounts}      volumes:
${certs.volumes}  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: ${o.storage}}}
`;
}

/** The backup tests' single distroless member in namespace `distroless`. */
export const DISTROLESS_MANIFEST = distrolessManifest({ namespace: 'distroless', replicas: 1, storage: '256Mi', token: 'distroless-1', createNamespace: true });

/** Starts the distroless StatefulSet in a cluster that runs the anthos fixture (it borrows that fixture's etcd certificate). */
export async function startDistroless(cluster: SimCluster): Promise<void> {
  const secret = JSON.parse(ok(await cluster.kubectl(['-n', 'uc1', 'get', 'secret', 'kube-etcd-certs', '-o', 'json']))) as { data: Record<string, string> };
  ok(await cluster.kubectl(['apply', '-f', '-'], { input: DISTROLESS_MANIFEST.split('---')[0] }));
  ok(await cluster.kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: distrolessSecrets({ namespace: 'distroless' }, secret.data) }) }));
  ok(await cluster.kubectl(['apply', '-f', '-'], { input: DISTROLESS_MANIFEST }));
  for (let i = 0; ; i++) {
    const r = await cluster.kubectl(['-n', 'distroless', 'wait', '--for=condition=Ready', 'pod/etcd-0', '--timeout=120s'], { timeoutMs: 150_000 });
    if (r.code === 0) return;
    // the pod may not exist yet right after the StatefulSet was created
    if (i >= 30) throw new Error(`distroless etcd did not become ready: ${r.stderr.trim()}`);
    await new Promise((done) => setTimeout(done, 1000));
  }
}

/** Throws when a command failed, with its stderr; returns stdout (the harness's own check). */
export { ok };

/** Checks the prerequisites and builds dist/ so that bin/kubectl-etcd runs the current code. */
export async function buildPlugin(): Promise<void> {
  await requireBinary('kubectl', 'kubectl');
  await requireBinary('etcdctl', 'etcd-client');
  await requireBinary('etcd', 'etcd-server');
  if (!distStale(REPO)) return;
  const started = Date.now();
  // tsc emits even when some other file has type errors; what matters here is a fresh dist/.
  await execFileP('npm', ['run', 'build'], { cwd: REPO }).catch(() => undefined);
  const built = await stat(join(REPO, 'dist/cli/backup.js')).catch(() => undefined);
  if (!built || built.mtimeMs < started - 1000) throw new Error('npm run build did not produce dist/cli/backup.js; run it and read its errors');
}

/** Options of one `kubectl etcd` run. */
export interface PluginRunOptions {
  kubeconfig?: string;
  /** Send stdout into this file (opened 0600) instead of capturing it. */
  stdoutFile?: string;
  /** Give the plugin a stdout pipe whose reader is gone before it writes (`kubectl etcd … | true`). */
  closedStdout?: boolean;
  cwd?: string;
  timeoutMs?: number;
}

/** Runs `kubectl etcd ARGS` through real kubectl plugin discovery (bin/ on PATH). */
export function kubectlEtcd(cluster: SimCluster, args: string[], opts: PluginRunOptions = {}): Promise<CommandResult> {
  const env = { ...process.env, PATH: `${join(REPO, 'bin')}${delimiter}${process.env.PATH}`, KUBECONFIG: opts.kubeconfig ?? cluster.kubeconfig };
  const outFd = opts.stdoutFile ? openSync(opts.stdoutFile, 'w', 0o600) : undefined;
  return new Promise((done, fail) => {
    const child = spawn('kubectl', ['etcd', ...args], { env, cwd: opts.cwd ?? REPO, stdio: ['ignore', outFd ?? 'pipe', 'pipe'] });
    if (outFd !== undefined) closeSync(outFd);
    if (opts.closedStdout) child.stdout!.destroy();
    let stdout = '';
    let stderr = '';
    if (!opts.closedStdout) child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 180_000);
    child.on('error', fail);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code: code ?? -1, stdout, stderr });
    });
  });
}

/** Runs etcdctl inside the target's container (real kubectl exec); returns stdout. */
export async function etcdctlInPod(cluster: SimCluster, t: EtcdTarget, args: string[]): Promise<string> {
  const r = await cluster.kubectl(['-n', t.namespace, 'exec', t.pod, '-c', t.container, '--', 'etcdctl', ...t.conn, ...args], { timeoutMs: 60_000 });
  return ok(r);
}

/** Writes keys with `etcdctl put` (no stdin: `kubectl exec -i` once hung against the simulator); returns them. */
export async function writeKeys(cluster: SimCluster, t: EtcdTarget, prefix: string, n: number): Promise<Record<string, string>> {
  const keys: Record<string, string> = {};
  for (let i = 0; i < n; i++) keys[`${prefix}k${i}`] = `v${i}-${Date.now()}`;
  for (const [k, v] of Object.entries(keys)) await etcdctlInPod(cluster, t, ['put', k, v]);
  return keys;
}

/** The live cluster's revision and number of keys, at its head or at a given revision. */
export async function liveCounts(cluster: SimCluster, t: EtcdTarget, rev?: number): Promise<{ revision: number; count: number }> {
  const out = await etcdctlInPod(cluster, t, ['get', '', '--from-key', '--keys-only', '--limit=1', '-w', 'json', ...(rev ? [`--rev=${rev}`] : [])]);
  const r = JSON.parse(out) as { header: { revision: number }; count?: number };
  return { revision: r.header.revision, count: r.count ?? 0 };
}

/** sha256 of a file, streamed. */
export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * What a user checks after a backup taken between `before` and `after`: real etcdctl accepts the
 * file; its revision is one the live cluster went through in that window; restored with real
 * `etcdctl snapshot restore` and started as a throwaway etcd on 127.0.0.1, it holds exactly as
 * many keys as the live cluster had at that revision, and every key written before the backup.
 */
export async function expectSnapshotOfLiveCluster(
  cluster: SimCluster,
  t: EtcdTarget,
  file: string,
  work: string,
  window: { before: number; after: number },
  written: Record<string, string>,
): Promise<void> {
  const status = await etcdctlSnapshotStatus(file, t.etcd);
  expect(status.revision).toBeGreaterThanOrEqual(window.before);
  expect(status.revision).toBeLessThanOrEqual(window.after);
  const live = await liveCounts(cluster, t, status.revision);
  const dataDir = join(work, `restored-${t.namespace}-${Date.now()}`);
  await execFileP(...snapshotTool(t.etcd ?? '3.4', ['restore', file, '--data-dir', dataDir]), { env: { ...process.env, ETCDCTL_API: '3' } });
  const etcd = await startEtcd({ dataDir, minor: t.etcd });
  try {
    const restored = JSON.parse(await etcd.ctl(['get', '', '--from-key', '--keys-only', '--limit=1', '-w', 'json'])) as { header: { revision: number }; count?: number };
    expect(restored.header.revision).toBe(status.revision);
    expect(restored.count ?? 0).toBe(live.count);
    const prefix = Object.keys(written)[0]!.replace(/k0$/, '');
    const got = JSON.parse(await etcd.ctl(['get', prefix, '--prefix', '-w', 'json'])) as { kvs?: Array<{ key: string; value: string }> };
    const decoded = Object.fromEntries((got.kvs ?? []).map((kv) => [Buffer.from(kv.key, 'base64').toString(), Buffer.from(kv.value, 'base64').toString()]));
    expect(decoded).toEqual(written);
  } finally {
    await etcd.destroy();
  }
}

/**
 * `kubectl etcd inspect FILE -o json` must report what the snapshot's own etcd minor reports:
 * `etcdctl snapshot status -w json` (3.4) or `etcdutl snapshot status -w json` (3.5).
 */
export async function expectInspectAgreesWithEtcdctl(cluster: SimCluster, file: string, minor: EtcdMinor = '3.4'): Promise<void> {
  const r = await kubectlEtcd(cluster, ['inspect', file, '-o', 'json']);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const record = JSON.parse(r.stdout) as { outcome: string; trailer: string; status: unknown };
  expect(record).toMatchObject({ outcome: 'valid', trailer: 'valid' });
  expect(record.status).toEqual(await etcdctlSnapshotStatus(file, minor));
}
