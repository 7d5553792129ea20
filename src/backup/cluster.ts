/**
 * Adapters from the kube seam (src/kube) to the narrow interfaces backup declares (transports,
 * TLS, the exec probe). The CLI builds these once per command and hands them to the core; restore
 * uses kubeBackupDeps for its safety backup.
 */
import { nodeAddressesOf } from '../etcd/kubeadm-layout.js';
import { ForbiddenError } from '../errors.js';
import type { PodPortForwarder } from '../etcd/client.js';
import { memberContainer } from '../etcd/topology.js';
import type { KubeContext } from '../kube/client.js';
import { copyFileOutOfPod, streamCommandOut } from '../kube/copy.js';
import { readOrUndefined } from '../kube/errors.js';
import { ExecFailedError, containerCommand } from '../kube/exec.js';
import { portForward } from '../kube/portforward.js';
import { readBoltFacts } from '../etcd/snapshot/facts.js';
import { execStatusProbe } from '../etcd/status.js';
import type { Logger } from '../ui/log.js';
import { createProgress } from '../ui/progress.js';
import { VERSION } from '../version.js';
import { execTransport, type ContainerCopyOut, type ContainerStreamOut } from './exec-transport.js';
import type { BackupDeps, ExecCapabilityProbe } from './run.js';
import { streamTransport } from './stream-transport.js';
import { tlsResolver, type LocalTlsFiles, type SecretDataReader } from './tls.js';

/** Streams a file out of a container through tar. */
export function containerCopyOut(kube: KubeContext): ContainerCopyOut {
  return (t, destination, onProgress, signal) =>
    copyFileOutOfPod(kube, { namespace: t.namespace, pod: t.pod, container: t.container, path: t.path, destination, onProgress, signal, sha256: false }); // the digester hashes them
}

/** Streams a command's stdout out of a container into a destination left open. */
export function containerStreamOut(kube: KubeContext): ContainerStreamOut {
  return (t, command, destination, onBytes, signal) =>
    streamCommandOut(kube, { namespace: t.namespace, pod: t.pod, container: t.container, command, destination, onChunk: (c) => onBytes(c.length), signal });
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

/** Secrets read through the kube seam; one that does not exist has no data. */
function kubeSecretData(kube: KubeContext): SecretDataReader {
  return async (namespace, name) => {
    try {
      const secret = await readOrUndefined(() => kube.core.readNamespacedSecret({ name, namespace }), `get secret "${name}" in namespace "${namespace}"`);
      return secret && (secret.data ?? {});
    } catch (err) {
      if (err instanceof ForbiddenError) throw new ForbiddenError(err.message, 'ask for get secrets, or pass --cacert, --cert and --key');
      throw err;
    }
  };
}

/** Everything runBackup needs, over the live cluster, for a command run by a person (process streams, real clock). */
export function kubeBackupDeps(kube: KubeContext, tls: LocalTlsFiles, log: Logger): BackupDeps {
  return {
    transports: {
      exec: execTransport({ run: containerCommand(kube), copyOut: containerCopyOut(kube), streamOut: containerStreamOut(kube) }),
      stream: streamTransport({ forward: podPortForwarder(kube), resolveTls: tlsResolver({ secretData: kubeSecretData(kube), run: containerCommand(kube) }, tls) }),
    },
    canExec: execCapability(kube),
    probe: execStatusProbe(containerCommand(kube)),
    // the bbolt walk alone: verifyWrittenFile hashes the file and checks its trailer beside it
    readSummary: async (path) => {
      const facts = await readBoltFacts(path);
      if (facts.problems.length > 0 || !facts.status) throw new Error(facts.problems[0] ?? 'the bbolt walk gave no status');
      return { revision: facts.status.revision, totalKeys: facts.status.totalKey, hash: facts.status.hash };
    },
    stdout: process.stdout,
    signals: process,
    progress: (label) => createProgress({ stream: process.stderr, label, env: process.env }),
    log,
    now: () => new Date(),
    pluginVersion: VERSION,
    nodeAddresses: async (node) => nodeAddressesOf(await kube.core.readNode({ name: node })),
  };
}
