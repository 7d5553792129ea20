/**
 * A member's client TLS material for the stream transport: local files given with --cacert,
 * --cert and --key; else each file from the Secret key the kubelet puts at its path
 * (member.secretFiles, read from the pod spec: mount path, subPath, items); else the file read
 * through a shell in the member's container (hostPath certificates, kubeadm).
 */
import { readFile } from 'node:fs/promises';
import { PluginError } from '../errors.js';
import type { EtcdTlsMaterial } from '../etcd/client.js';
import { memberContainer, type EtcdMember, type SecretKeyRef } from '../etcd/topology.js';
import { ExecFailedError, type ContainerCommand } from '../kube/exec.js';
import type { TlsResolver } from './stream-transport.js';

/** Local PEM files given with --cacert/--cert/--key. */
export interface LocalTlsFiles {
  cacert?: string;
  cert?: string;
  key?: string;
}

/** A Secret's data (base64 values by key), or undefined when the Secret does not exist. */
export type SecretDataReader = (namespace: string, name: string) => Promise<Record<string, string> | undefined>;

/** Where the certificate files are read from when no local files are given. */
export interface TlsSources {
  secretData: SecretDataReader;
  /** Runs the shell that reads a file no Secret holds. */
  run: ContainerCommand;
}

/** Finds a member's client TLS material (see the module comment); each Secret is read once per member. */
export function tlsResolver(sources: TlsSources, local: LocalTlsFiles): TlsResolver {
  return async (member) => {
    if (local.cacert) {
      return {
        ca: await readLocal(local.cacert),
        cert: local.cert ? await readLocal(local.cert) : undefined,
        key: local.key ? await readLocal(local.key) : undefined,
      };
    }
    if (!member.tls.caFile) return undefined;
    const secrets = new Map<string, Promise<Record<string, string> | undefined>>();
    const secret = (name: string) => {
      if (!secrets.has(name)) secrets.set(name, sources.secretData(member.namespace, name));
      return secrets.get(name)!;
    };
    const read = async (file: string | undefined): Promise<Buffer | undefined> => {
      if (!file) return undefined;
      const refs = member.secretFiles?.[file] ?? [];
      for (const ref of refs) {
        const value = (await secret(ref.secretName))?.[ref.key];
        if (value !== undefined) return Buffer.from(value, 'base64');
      }
      return readThroughShell(sources.run, member, file, refs);
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

/** Reads a file in the member's container through its shell; one line naming why when it cannot. */
async function readThroughShell(run: ContainerCommand, member: EtcdMember, file: string, refs: SecretKeyRef[]): Promise<Buffer> {
  const fail = (why: string) =>
    new PluginError(`cannot read "${file}" from pod "${member.pod}": ${why}`, 'pass --cacert, --cert and --key (copies of the client certificate files)');
  // Shell builtins only: images such as registry.k8s.io/etcd have sh but no cat.
  const script = 'while IFS= read -r l || [ -n "$l" ]; do printf "%s\\n" "$l"; done < "$1"';
  let r;
  try {
    r = await run(memberContainer(member), ['sh', '-c', script, 'sh', file]);
  } catch (err) {
    if (!(err instanceof ExecFailedError && err.missingExecutable)) throw err;
    const secrets = refs.length
      ? refs.map((ref) => `secret "${ref.secretName}" has no key "${ref.key}"`).join(', ')
      : 'no Secret volume puts it in the container';
    throw fail(`${secrets}, and the image has no shell to read it with`);
  }
  if (r.exitCode !== 0) throw fail(r.stderr.trim().split('\n')[0] || `exit ${r.exitCode}`);
  return Buffer.from(r.stdout, 'utf8');
}
