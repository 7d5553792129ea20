/**
 * Adapters from the kube seam (src/kube) to the narrow interfaces backup declares (transports,
 * TLS, the exec probe). The CLI builds these once per command and hands them to the core; restore
 * uses kubeBackupDeps for its safety backup.
 */
import { readFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { ForbiddenError, PluginError } from '../errors.js';
import type { EtcdTlsMaterial, PodPortForwarder } from '../etcd/client.js';
import { memberContainer, type EtcdMember } from '../etcd/topology.js';
import type { KubeContext } from '../kube/client.js';
import { copyFileOutOfPod } from '../kube/copy.js';
import { apiError } from '../kube/errors.js';
import { ExecFailedError, containerCommand, type ContainerCommand } from '../kube/exec.js';
import { portForward } from '../kube/portforward.js';
import { readSnapshotFacts } from '../etcd/snapshot/facts.js';
import { execStatusProbe } from '../etcd/status.js';
import type { Logger } from '../ui/log.js';
import { createProgress } from '../ui/progress.js';
import { VERSION } from '../version.js';
import { execTransport, type ContainerCopyOut } from './exec-transport.js';
import type { BackupDeps, ExecCapabilityProbe } from './run.js';
import { streamTransport, type TlsResolver } from './stream-transport.js';

/** Streams a file out of a container through tar. */
export function containerCopyOut(kube: KubeContext): ContainerCopyOut {
  return (t, destination, onProgress, signal) =>
    copyFileOutOfPod(kube, { namespace: t.namespace, pod: t.pod, container: t.container, path: t.path, destination, onProgress, signal, sha256: false }); // the digester hashes them
}

/** Port-forwards to a pod port. */
export function podPortForwarder(kube: KubeContext): PodPortForwarder {
  return (namespace, pod, port) => portForward(kube, { namespace, pod, port });
}

/** true when the member's container has sh and tar (a harmless exec); a missing permission is an error. */
export function execCapability(kube: KubeContext): ExecCapabilityProbe {
  const run = containerCommand(kube);
  return async (m) => {
    try {
      const r = await run(memberContainer(m), [
        'sh',
        '-c',
        'command -v tar >/dev/null 2>&1 && command -v etcdctl >/dev/null 2>&1 && echo kubectl-etcd-exec-ok',
      ]);
      return r.exitCode === 0 && r.stdout.includes('kubectl-etcd-exec-ok');
    } catch (err) {
      if (err instanceof ExecFailedError) return false;
      throw err;
    }
  };
}

/** Local PEM files given with --cacert/--cert/--key. */
export interface LocalTlsFiles {
  cacert?: string;
  cert?: string;
  key?: string;
}

/**
 * Finds a member's client TLS material: local files when given, else each file from the Secret
 * behind its cert mount, else read through a shell in the container (hostPath certs, kubeadm).
 */
export function tlsResolver(kube: KubeContext, local: LocalTlsFiles): TlsResolver {
  const run = containerCommand(kube);
  return async (member) => {
    if (local.cacert) {
      return {
        ca: await readLocal(local.cacert),
        cert: local.cert ? await readLocal(local.cert) : undefined,
        key: local.key ? await readLocal(local.key) : undefined,
      };
    }
    if (!member.tls.caFile) return undefined;
    const secret = await secretData(kube, member);
    const read = async (file: string | undefined): Promise<Buffer | undefined> => {
      if (!file) return undefined;
      const fromSecret = secret && secretFile(member, secret, file);
      if (fromSecret) return fromSecret;
      return readThroughShell(run, member, file);
    };
    const material: EtcdTlsMaterial = { ca: (await read(member.tls.caFile))!, cert: await read(member.tls.certFile), key: await read(member.tls.keyFile) };
    return material;
  };
}

async function readLocal(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new PluginError(`cannot read "${path}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'check --cacert, --cert and --key');
  }
}

async function secretData(kube: KubeContext, member: EtcdMember): Promise<Record<string, string> | undefined> {
  const src = member.certSource;
  if (src?.kind !== 'secret') return undefined;
  try {
    const s = await kube.core.readNamespacedSecret({ name: src.secretName, namespace: member.namespace });
    return s.data ?? {};
  } catch (err) {
    const e = apiError(err, `get secret "${src.secretName}" in namespace "${member.namespace}"`);
    if (e instanceof ForbiddenError) throw new ForbiddenError(e.message, 'ask for get secrets, or pass --cacert, --cert and --key');
    throw e;
  }
}

function secretFile(member: EtcdMember, data: Record<string, string>, file: string): Buffer | undefined {
  const src = member.certSource;
  if (src?.kind !== 'secret') return undefined;
  const mount = src.mountPath.replace(/\/+$/, '');
  if (!file.startsWith(`${mount}/`)) return undefined;
  const value = data[file.slice(mount.length + 1)] ?? data[posix.basename(file)];
  return value === undefined ? undefined : Buffer.from(value, 'base64');
}

async function readThroughShell(run: ContainerCommand, member: EtcdMember, file: string): Promise<Buffer> {
  const fail = (why: string) =>
    new PluginError(`cannot read "${file}" from pod "${member.pod}" (${why})`, 'pass --cacert, --cert and --key');
  // Shell builtins only: images such as registry.k8s.io/etcd have sh but no cat.
  const script = 'while IFS= read -r l || [ -n "$l" ]; do printf "%s\\n" "$l"; done < "$1"';
  let r;
  try {
    r = await run(memberContainer(member), ['sh', '-c', script, 'sh', file]);
  } catch (err) {
    if (err instanceof ForbiddenError) throw err;
    throw fail('the image has no shell');
  }
  if (r.exitCode !== 0) throw fail(r.stderr.trim().split('\n')[0] || `exit ${r.exitCode}`);
  return Buffer.from(r.stdout, 'utf8');
}

/** Everything runBackup needs, over the live cluster, for a command run by a person (process streams, real clock). */
export function kubeBackupDeps(kube: KubeContext, tls: LocalTlsFiles, log: Logger): BackupDeps {
  return {
    transports: {
      exec: execTransport({ run: containerCommand(kube), copyOut: containerCopyOut(kube) }),
      stream: streamTransport({ forward: podPortForwarder(kube), resolveTls: tlsResolver(kube, tls) }),
    },
    canExec: execCapability(kube),
    probe: execStatusProbe(containerCommand(kube)),
    readSummary: async (path) => {
      const facts = await readSnapshotFacts(path);
      if (facts.outcome !== 'valid' || !facts.status) throw new Error(facts.problems[0] ?? `snapshot is ${facts.outcome}`);
      return { revision: facts.status.revision, totalKeys: facts.status.totalKey, hash: facts.status.hash };
    },
    stdout: process.stdout,
    signals: process,
    progress: (label) => createProgress({ stream: process.stderr, label, env: process.env }),
    log,
    now: () => new Date(),
    pluginVersion: VERSION,
  };
}
