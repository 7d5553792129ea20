/**
 * The etcd a drill runs on this machine: `etcd` found on PATH (or given with --etcd), and the
 * restore tool beside it (etcdutl for 3.5+, else etcdctl's `snapshot restore`), so the member is
 * started by the same release that restored its data.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { PluginError } from '../errors.js';

/** The binaries of one etcd release on this machine. */
export interface LocalEtcdTools {
  etcd: string;
  /** The restore tool: etcdutl (3.5+) or etcdctl (3.4, `ETCDCTL_API=3 etcdctl snapshot restore`). */
  restore: { kind: 'etcdutl' | 'etcdctl'; path: string };
  /** `etcd --version`'s release, e.g. "3.5.16". */
  version: string;
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** The first executable `name` on PATH. */
export function onPath(name: string, path = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (dir && executable(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/** Finds etcd (explicit path, else PATH) and the restore tool of the same directory, else of PATH; undefined when there is no etcd. */
export async function findLocalEtcd(explicit?: string): Promise<LocalEtcdTools | undefined> {
  const etcd = explicit ?? onPath('etcd');
  if (!etcd) return undefined;
  if (!executable(etcd)) throw new PluginError(`--etcd "${etcd}" is not an executable file`, 'pass the path of an etcd binary');
  const dir = dirname(etcd);
  const beside = (name: string) => (executable(join(dir, name)) ? join(dir, name) : undefined);
  const version = await etcdVersion(etcd);
  const etcdutl = beside('etcdutl') ?? (version.startsWith('3.4.') ? undefined : onPath('etcdutl'));
  const etcdctl = beside('etcdctl') ?? onPath('etcdctl');
  const restore = etcdutl ? { kind: 'etcdutl' as const, path: etcdutl } : etcdctl ? { kind: 'etcdctl' as const, path: etcdctl } : undefined;
  if (!restore) throw new PluginError(`found ${etcd} (etcd ${version}) but neither etcdutl nor etcdctl beside it or on PATH`, 'install the etcd client tools of the same release (Debian: etcd-client), or pass --etcd');
  return { etcd, restore, version };
}

/** Reads the release from `etcd --version` ("etcd Version: 3.4.23"). */
async function etcdVersion(etcd: string): Promise<string> {
  const out = await new Promise<string>((resolve, reject) => {
    execFile(etcd, ['--version'], { timeout: 10_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
  }).catch((err: Error) => {
    throw new PluginError(`cannot run "${etcd} --version": ${err.message.split('\n')[0]}`, 'pass a working etcd with --etcd');
  });
  const m = /etcd Version:\s*(\S+)/.exec(out);
  if (!m) throw new PluginError(`"${etcd} --version" did not print an etcd version`, 'pass an etcd binary with --etcd');
  return m[1];
}
