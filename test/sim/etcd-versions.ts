/**
 * The etcd versions the local test cluster runs, and where their binaries are on this machine.
 *
 * 3.4 is Debian bookworm's etcd (`apt-get install etcd-server etcd-client`: /usr/bin/etcd and
 * etcdctl, no etcdutl). 3.5 is Debian trixie's, fetched and unpacked by scripts/setup.sh into a
 * cache folder (etcd, etcdctl and etcdutl); its pinned version is read from that script so the
 * two never disagree. An image whose tag names another minor (3.6, 3.3) has no binaries here: the
 * kubelet reports ErrImagePull, as a runtime does for a tag it cannot pull.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The minors the cluster can run. */
export const ETCD_MINORS = ['3.4', '3.5'] as const;
export type EtcdMinor = (typeof ETCD_MINORS)[number];
/** The default minor of every fixture (so nothing moves unless a test asks for 3.5). */
export const DEFAULT_ETCD_MINOR: EtcdMinor = '3.4';

const SETUP = fileURLToPath(new URL('../../scripts/setup.sh', import.meta.url));

/** The Debian package version of 3.5 that scripts/setup.sh fetches (e.g. 3.5.16-4). */
export function etcd35PackageVersion(): string {
  const m = /^ETCD35_VERSION=(\S+)$/m.exec(readFileSync(SETUP, 'utf8'));
  if (!m) throw new Error(`scripts/setup.sh names no ETCD35_VERSION`);
  return m[1]!;
}

/** The folder holding the unpacked 3.5 packages. */
export function etcd35Root(): string {
  return `${process.env['KUBECTL_ETCD_SIM_CACHE'] ?? '/var/cache/kubectl-etcd-sim'}/etcd-${etcd35PackageVersion()}`;
}

/** The etcd release (x.y.z) each minor runs, as image tags should name it. */
export function etcdRelease(minor: EtcdMinor): string {
  return minor === '3.4' ? '3.4.23' : etcd35PackageVersion().replace(/-.*$/, '');
}

/** Host paths of a minor's binaries; etcdutl only from 3.5. */
export function etcdBinaries(minor: EtcdMinor): { etcd: string; etcdctl: string; etcdutl?: string } {
  if (minor === '3.4') return { etcd: '/usr/bin/etcd', etcdctl: '/usr/bin/etcdctl' };
  const bin = `${etcd35Root()}/usr/bin`;
  return { etcd: `${bin}/etcd`, etcdctl: `${bin}/etcdctl`, etcdutl: `${bin}/etcdutl` };
}

/**
 * The minor an etcd image's tag names: `3.5.16-0`, `v3.5.16`, `v3.5.16-0-gke.1`,
 * `3.5.16-debian-12-r0` → 3.5. A tag that names no version (or no tag, a digest) → undefined.
 */
export function tagMinor(tag: string | undefined): string | undefined {
  const m = tag ? /^v?(\d+\.\d+)\.\d+/.exec(tag) : null;
  return m ? m[1] : undefined;
}

/** Whether a minor is one the cluster runs. */
export function isEtcdMinor(minor: string | undefined): minor is EtcdMinor {
  return (ETCD_MINORS as readonly string[]).includes(minor ?? '');
}
