// The simulator's image table: which host programs a container of each image gets.
// Differs from a real runtime: nothing is pulled; an image is a list of host binaries placed
// (bind-mounted read-only) at their paths inside an otherwise empty root. The tag matters where it
// does in real registries: an etcd image's tag names its etcd version (3.4 runs Debian's 3.4.23,
// 3.5 the 3.5 binaries scripts/setup.sh unpacks, see etcd-versions.ts; any other version, such as
// 3.6, cannot be pulled), and bitnami/etcd's tag picks its start scripts. A tag that names no
// version (or a digest alone) gets the default, 3.4. Shared
// libraries come from the host's /usr/lib/x86_64-linux-gnu (read-only) so
// dynamic binaries run; `sh` is the host's dash (or bash where the real image has bash).
// Private images: every image of the table is also served, marked `private`, under the registry
// PRIVATE_REGISTRY (`registry.private.example/bitnami/etcd:TAG` is docker.io/bitnami/etcd:TAG).
// Pulling one needs credentials for its registry (the kubelet finds them in the pod's
// imagePullSecrets, kubelet/pullsecrets.ts); without them the pull fails as containerd reports a
// 401 from a registry (containerd remotes/docker/resolver.go: `pulling from host HOST failed with
// status code [manifests TAG]: 401 Unauthorized`; for docker.io, Docker Hub's `pull access denied,
// repository does not exist or may require authorization: server message: insufficient_scope:
// authorization failed`); docs: concepts/containers/images#using-a-private-registry.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DEFAULT_ETCD_MINOR, etcdBinaries, isEtcdMinor, tagMinor, type EtcdMinor } from './etcd-versions.js';

/** What a container of an image gets: files (path in image → host file), defaults, user. */
export interface ImageSpec {
  /** Normalized repository this spec matched, e.g. docker.io/library/busybox. */
  repository: string;
  /** Path inside the image → file on the host (bind-mounted read-only). */
  files: Record<string, string>;
  /** Default ENTRYPOINT and CMD of the image. */
  entrypoint: string[];
  cmd: string[];
  /** Default user of the image. */
  uid: number;
  gid: number;
  /** Default environment (PATH at least). */
  env: Record<string, string>;
  /** Default working directory. */
  workingDir: string;
  /** Whether the image has a shell at /bin/sh. */
  shell: boolean;
  /** Extra empty directories the image has (e.g. bitnami's data root). */
  dirs: string[];
  /** When set, only tags it matches get this spec (else any tag of the repository). */
  tags?: RegExp;
  /** An etcd image: its tag's version picks the etcd binaries (etcdVersionOf). */
  etcd?: boolean;
  /** A private image: pulling it needs credentials for its registry. */
  private?: boolean;
}

/** The registry whose images are private: each is the table's image of the same path elsewhere. */
export const PRIVATE_REGISTRY = 'registry.private.example';

/** The private copy of an image: `docker.io/bitnami/etcd:T` → `registry.private.example/bitnami/etcd:T`. */
export function privateImageOf(image: string): string {
  const repo = imageRepository(image);
  return `${PRIVATE_REGISTRY}/${repo.slice(repo.indexOf('/') + 1)}${referenceSuffix(image)}`;
}

/** The `:TAG`, `@DIGEST` or both ending a reference ('' for neither). */
function referenceSuffix(image: string): string {
  const tag = imageTag(image);
  const digest = /@sha256:[0-9a-f]+$/i.exec(image.trim())?.[0] ?? '';
  return `${tag !== undefined ? `:${tag}` : ''}${digest}`;
}

/** The registry host of an image reference (docker.io when it names none). */
export function imageRegistry(image: string): string {
  return imageRepository(image).split('/')[0]!;
}

const STD_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The coreutils-like tools a "full" image (busybox, alpine, the vendor etcd images) offers in /bin. */
const COREUTILS = [
  'cat', 'cp', 'mv', 'rm', 'ls', 'mkdir', 'rmdir', 'echo', 'sleep', 'sha256sum', 'md5sum', 'du', 'df',
  'chmod', 'chown', 'chgrp', 'ln', 'head', 'tail', 'wc', 'touch', 'stat', 'env', 'id', 'date', 'test',
  'true', 'false', 'sort', 'uniq', 'tr', 'cut', 'dd', 'sync', 'readlink', 'realpath', 'basename',
  'dirname', 'printf', 'tee', 'whoami', 'uname', 'mktemp', 'seq', 'yes', 'kill', 'ps', 'grep', 'sed',
  'find', 'xargs', 'gzip', 'hostname', 'timeout', 'nproc', 'od',
];

function hostTools(names: string[], dir = '/bin'): Record<string, string> {
  return Object.fromEntries(names.map((n) => [`${dir}/${n}`, `/usr/bin/${n}`]));
}

/** The etcd binaries of a minor at their paths in an image (etcdutl only from 3.5, as upstream ships it). */
function etcdFiles(minor: EtcdMinor, dir = '/usr/local/bin'): Record<string, string> {
  const b = etcdBinaries(minor);
  return { [`${dir}/etcd`]: b.etcd, [`${dir}/etcdctl`]: b.etcdctl, ...(b.etcdutl ? { [`${dir}/etcdutl`]: b.etcdutl } : {}) };
}
const DASH = { '/bin/sh': '/usr/bin/dash' };
// busybox and alpine images are one busybox binary whose applets are links to it (busybox's
// applet dispatch reads argv[0]): here Debian's static busybox (package busybox-static, 1.35),
// so their `sh` is busybox ash and their tools are busybox applets with busybox's options, not
// dash and GNU coreutils (https://hub.docker.com/_/busybox; alpine's /bin is busybox too:
// https://wiki.alpinelinux.org/wiki/BusyBox).
export const BUSYBOX_BINARY = '/usr/bin/busybox';
let applets: string[] | undefined;
/** Every applet of the busybox binary (`busybox --list`), at least `names` (a machine without busybox fails the pull, naming it). */
function busyboxApplets(names: string[]): Record<string, string> {
  if (!applets) {
    const r = spawnSync(BUSYBOX_BINARY, ['--list'], { encoding: 'utf8' });
    applets = r.status === 0 ? r.stdout.split('\n').filter((a) => /^[a-z0-9_.[-]+$/i.test(a) && a !== '[' && a !== '[[') : [];
  }
  return Object.fromEntries([...new Set(['busybox', ...names, ...applets])].map((n) => [`/bin/${n}`, BUSYBOX_BINARY]));
}
const BASH_AS_SH = { '/bin/sh': '/usr/bin/bash', '/bin/bash': '/usr/bin/bash' };
const TAR = { '/bin/tar': '/usr/bin/tar' };

function spec(repository: string, s: Partial<ImageSpec> & Pick<ImageSpec, 'files'>): ImageSpec {
  return {
    repository, entrypoint: [], cmd: [], uid: 0, gid: 0, env: { PATH: STD_PATH }, workingDir: '/',
    shell: '/bin/sh' in s.files, dirs: [], ...s,
  };
}

const STANDIN_DIR = fileURLToPath(new URL('./images/', import.meta.url));

/** The table for one etcd minor, keyed by normalized repository (any tag or digest matches, unless a spec names its tags). */
function imageTable(minor: EtcdMinor = DEFAULT_ETCD_MINOR): ImageSpec[] {
  const ETCD_BINS = etcdFiles(minor);
  const fullEtcd = { ...ETCD_BINS, ...DASH, ...TAR, ...hostTools(COREUTILS) };
  // The Bitnami image starts through its scripts: stand-ins in images/bitnami-etcd/ of the legacy
  // generation (3.4 debian-11, see libetcd.sh there), in images/bitnami-etcd-debian-12/ of the
  // current one (3.5 and 3.6 debian-12 tags).
  const bitnamiWith = (dir: string) => {
    const scripts = Object.fromEntries(
      [['libetcd.sh', '/opt/bitnami/scripts/libetcd.sh'], ...['entrypoint.sh', 'setup.sh', 'run.sh', 'prestop.sh'].map((f) => [f, `/opt/bitnami/scripts/etcd/${f}`])]
        .map(([file, inImage]) => [inImage!, `${STANDIN_DIR}${dir}/${file}`]),
    );
    return {
      files: {
        ...etcdFiles(minor, '/opt/bitnami/etcd/bin'),
        ...BASH_AS_SH, ...TAR, ...hostTools(COREUTILS), ...scripts,
      },
      entrypoint: ['/opt/bitnami/scripts/etcd/entrypoint.sh'], cmd: ['/opt/bitnami/scripts/etcd/run.sh'], uid: 1001, gid: 0,
      env: { PATH: `/opt/bitnami/etcd/bin:${STD_PATH}`, ETCDCTL_API: '3', BITNAMI_APP_NAME: 'etcd' },
      workingDir: '/opt/bitnami/etcd', dirs: ['/bitnami/etcd', '/opt/bitnami/etcd/conf'], etcd: true,
    };
  };
  const distroless = { files: { ...ETCD_BINS }, cmd: ['/usr/local/bin/etcd'], shell: false, etcd: true };
  // The stand-in of images/kube-apiserver.mjs (it serves no API).
  const apiserver = {
    files: { '/usr/local/bin/kube-apiserver': `${STANDIN_DIR}kube-apiserver.mjs`, '/usr/local/bin/node': process.execPath },
    entrypoint: ['/usr/local/bin/kube-apiserver'], shell: false,
  };
  return [
    spec('gcr.io/gke-on-prem-release/etcd', { files: fullEtcd, cmd: ['/usr/local/bin/etcd'], etcd: true }),
    spec('gcr.io/gke-on-prem-release/etcd-util', { files: fullEtcd, cmd: ['/bin/sh'], etcd: true }),
    spec('docker.io/bitnami/etcd', { ...bitnamiWith('bitnami-etcd-debian-12'), tags: /-debian-12(-r\d+)?$/ }),
    spec('docker.io/bitnami/etcd', bitnamiWith('bitnami-etcd')),
    spec('registry.k8s.io/etcd', {
      files: { ...ETCD_BINS, ...BASH_AS_SH, '/bin/cp': '/usr/bin/cp' }, cmd: ['/usr/local/bin/etcd'], etcd: true,
    }),
    spec('k8s.gcr.io/etcd', {
      files: { ...ETCD_BINS, ...BASH_AS_SH, '/bin/cp': '/usr/bin/cp' }, cmd: ['/usr/local/bin/etcd'], etcd: true,
    }),
    spec('gcr.io/etcd-development/etcd', distroless),
    spec('quay.io/coreos/etcd', distroless),
    spec('docker.io/library/busybox', { files: busyboxApplets(['sh', 'tar', 'chroot', ...COREUTILS]), cmd: ['sh'] }),
    spec('docker.io/library/alpine', { files: busyboxApplets(['sh', 'tar', 'chroot', ...COREUTILS]), cmd: ['/bin/sh'] }),
    spec('gcr.io/gke-on-prem-release/kube-apiserver', apiserver),
    // kubeadm's (fixtures/kubeadm.ts): its manifest runs `kube-apiserver`, found on PATH.
    spec('registry.k8s.io/kube-apiserver', apiserver),
  ];
}

/** Normalizes an image reference to its repository: no tag, no digest, docker.io/library defaults. */
export function imageRepository(image: string): string {
  let ref = image.trim().replace(/@sha256:[0-9a-f]+$/i, '');
  const lastSlash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  if (colon > lastSlash) ref = ref.slice(0, colon);
  const first = ref.split('/')[0];
  const hasRegistry = ref.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (hasRegistry) return ref;
  return ref.includes('/') ? `docker.io/${ref}` : `docker.io/library/${ref}`;
}

/** Looks an image up in the table (as if credentials for every registry were at hand); undefined means the simulator cannot "pull" it. */
export function resolveImage(image: string): ImageSpec | undefined {
  const r = pullImage(image, () => true);
  return 'spec' in r ? r.spec : undefined;
}

/** The table with every image also served privately under PRIVATE_REGISTRY. */
function withPrivateCopies(table: ImageSpec[]): ImageSpec[] {
  const copies = table.map((s) => ({ ...s, repository: `${PRIVATE_REGISTRY}/${s.repository.slice(s.repository.indexOf('/') + 1)}`, private: true }));
  return [...table, ...copies];
}

/** Why a pull of a private image without credentials fails, as containerd reports the registry's answer. */
function unauthorized(image: string, repo: string, tag: string | undefined): string {
  const ref = `${repo}${referenceSuffix(image)}`; // containerd names the normalized reference
  const host = repo.split('/')[0];
  const cause = host === 'docker.io'
    ? 'pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed'
    : `pulling from host ${host} failed with status code [manifests ${tag ?? 'latest'}]: 401 Unauthorized`;
  return `rpc error: code = Unknown desc = failed to pull and unpack image "${ref}": failed to resolve reference "${ref}": ${cause}`;
}

/**
 * "Pulls" an image: its spec, or why it cannot be pulled, worded as containerd words a missing
 * reference (`failed to resolve reference … not found`) or a refused one (a private image whose
 * registry `hasCredentials` says no to), so events read like a real node's. `retry` is set when a
 * later pull may succeed (credentials may appear).
 */
export function pullImage(image: string, hasCredentials: (repository: string) => boolean = () => false): { spec: ImageSpec } | { why: string; retry?: boolean } {
  const repo = imageRepository(image);
  const tag = imageTag(image);
  const matches = (table: ImageSpec[]) => withPrivateCopies(table).find((s) => s.repository === repo && (!s.tags || (tag !== undefined && s.tags.test(tag))));
  const notFound = `rpc error: code = NotFound desc = failed to pull and unpack image "${image}": failed to resolve reference "${image}": ${image}: not found`;
  const any = matches(imageTable());
  if (any?.private && !hasCredentials(repo)) return { why: unauthorized(image, repo, tag), retry: true };
  if (!any) return { why: `${notFound} (not in the simulator's image table, test/sim/images.ts)` };
  if (!any.etcd) return { spec: any };
  const named = tagMinor(tag);
  const minor = named ?? DEFAULT_ETCD_MINOR;
  if (!isEtcdMinor(minor)) return { why: `${notFound} (the simulator has no etcd ${named} binaries; it runs 3.4 and 3.5)` };
  const spec = matches(imageTable(minor))!;
  const missing = Object.values(spec.files).find((f) => !existsSync(f));
  if (missing) return { why: `${notFound} (${missing} is missing on this machine: run npm run setup)` };
  return { spec };
}

/** The tag of an image reference, if it has one (a digest is not a tag). */
export function imageTag(image: string): string | undefined {
  const ref = image.trim().replace(/@sha256:[0-9a-f]+$/i, '');
  const colon = ref.lastIndexOf(':');
  return colon > ref.lastIndexOf('/') ? ref.slice(colon + 1) : undefined;
}

/** Every repository the simulator knows, for error messages. */
export function knownRepositories(): string[] {
  return [...new Set(imageTable().map((s) => s.repository))];
}
