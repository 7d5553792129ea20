/**
 * The krew manifest (plugin.yaml): rendered from the archives a release built, and checked
 * against krew's published rules — those krew's own validation applies to every manifest
 * (apiVersion/kind, a safe name equal to the file name, a "v" semantic version, a non-empty
 * shortDescription, platforms with uri, sha256 and bin, selectors that never both match one
 * os/arch) and those the krew-index review adds (one short line of shortDescription, https
 * downloads, the bin and a LICENSE inside each archive, a Windows bin ending in .exe).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { parse, stringify } from 'yaml';
import { listTarGz } from './runtime.js';
import { listZip } from './archive.js';
import type { Platform } from './platforms.js';

export const KREW_API_VERSION = 'krew.googlecontainertools.github.com/v1alpha2';
export const PLUGIN_NAME = 'etcd';
export const SHORT_DESCRIPTION = 'Back up and restore etcd running in Kubernetes';

/** One built archive, as the manifest names it. */
export interface BuiltArchive {
  platform: Platform;
  uri: string;
  sha256: string;
  /** Names inside the archive (the bin first). */
  files: string[];
}

const DESCRIPTION = `Backs up, inspects and restores etcd clusters that run inside Kubernetes: an Anthos / GKE
on-prem user cluster's kube-etcd StatefulSet, a Helm (Bitnami-style) etcd, or kubeadm's static
etcd pods. It discovers endpoints, certificates, members, PVCs and nodes from the pod specs,
writes verified snapshots (sha256 trailer checked, files mode 0600), and restores every member
from one snapshot with a printed plan, --dry-run and a resumable journal. Day to day it shows each
member's quota and health (status --check for monitoring), compacts, defragments member by member
(the leader last), recovers from NOSPACE, and brings one failed or corrupt member back while the
others keep serving (member replace).

  kubectl etcd backup -n NAMESPACE -f snapshot.db
  kubectl etcd inspect snapshot.db
  kubectl etcd status -n NAMESPACE --check
  kubectl etcd restore snapshot.db -n NAMESPACE --dry-run
  kubectl etcd recover-space -n NAMESPACE
  kubectl etcd member replace POD -n NAMESPACE --dry-run
`;

/** The caveats krew prints after install: completion set-up and what is not signed. */
export function caveats(platforms: Platform[]): string {
  const lines = [
    'Shell completion (kubectl 1.26+): kubectl looks for kubectl_complete-etcd on PATH, and krew',
    'links only kubectl-etcd. Link the helper shipped in the archive next to it:',
    '  ln -s "$(dirname "$(readlink -f "$(command -v kubectl-etcd)")")/kubectl_complete-etcd" \\',
    '        "${KREW_ROOT:-$HOME/.krew}/bin/kubectl_complete-etcd"',
    '',
    'The executable embeds Node.js (LICENSE-node in the archive); nothing else needs installing.',
    'macOS on Apple silicon (darwin/arm64) has no build: the npm registry serves no Node.js 20 runtime for it.',
  ];
  for (const p of platforms) if (p.caveat) lines.push('', p.caveat);
  return lines.join('\n') + '\n';
}

/** Renders plugin.yaml for a version and its archives. */
export function renderManifest(version: string, homepage: string, archives: BuiltArchive[]): string {
  const doc = {
    apiVersion: KREW_API_VERSION,
    kind: 'Plugin',
    metadata: { name: PLUGIN_NAME },
    spec: {
      version: `v${version}`,
      homepage,
      shortDescription: SHORT_DESCRIPTION,
      description: DESCRIPTION,
      caveats: caveats(archives.map((a) => a.platform)),
      platforms: archives.map((a) => ({
        selector: { matchLabels: { os: a.platform.os, arch: a.platform.arch } },
        // The GitHub release of this version, where `npm run release` archives are published.
        uri: a.uri,
        sha256: a.sha256,
        files: a.files.map((f) => ({ from: f, to: '.' })),
        bin: a.platform.exe,
      })),
    },
  };
  const header = [
    '# krew manifest of kubectl-etcd, rendered by `npm run release` (krew/release.ts): each sha256 is',
    '# that of the archive the release built in release/, and each uri is the GitHub release where',
    '# those archives are published (set KUBECTL_ETCD_RELEASE_URL to publish elsewhere).',
  ];
  return header.join('\n') + '\n' + stringify(doc, { lineWidth: 0 });
}

/** The os/arch pairs krew checks selectors against (GOOS/GOARCH of the platforms krew ships for). */
export const KREW_PLATFORMS: [string, string][] = [
  ['darwin', 'amd64'], ['darwin', 'arm64'], ['linux', 'amd64'], ['linux', 'arm'], ['linux', 'arm64'],
  ['linux', 'ppc64le'], ['windows', 'amd64'], ['windows', 'arm64'],
];

interface Selector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

/** Whether a Kubernetes label selector matches a label set (matchLabels and matchExpressions). */
export function selectorMatches(selector: Selector | undefined, labels: Record<string, string>): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = e.key in labels;
    const inValues = has && (e.values ?? []).includes(labels[e.key]!);
    const ok = e.operator === 'In' ? inValues : e.operator === 'NotIn' ? !inValues : e.operator === 'Exists' ? has : e.operator === 'DoesNotExist' ? !has : false;
    if (!ok) return false;
  }
  return true;
}

/** Where the checker finds the archive a platform's uri points at (undefined: not available locally). */
export type ArchiveLocator = (uri: string) => string | undefined;

/** Checks a manifest; returns the problems found (empty when it passes). */
export async function validateManifest(text: string, fileName: string, locate: ArchiveLocator): Promise<string[]> {
  const problems: string[] = [];
  let doc: any;
  try {
    doc = parse(text);
  } catch (err) {
    return [`not YAML: ${(err as Error).message.split('\n')[0]}`];
  }
  const name = doc?.metadata?.name;
  if (doc?.apiVersion !== KREW_API_VERSION) problems.push(`apiVersion must be ${KREW_API_VERSION}`);
  if (doc?.kind !== 'Plugin') problems.push('kind must be Plugin');
  if (typeof name !== 'string' || !/^[a-z0-9]+([-_][a-z0-9]+)*$/.test(name)) problems.push(`metadata.name "${name}" is not a safe plugin name`);
  const base = fileName.replace(/^.*[\\/]/, '');
  if (base !== `${name}.yaml`) problems.push(`file name "${base}" must be "${name}.yaml"`);
  const spec = doc?.spec ?? {};
  if (typeof spec.version !== 'string' || !/^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/.test(spec.version)) {
    problems.push(`spec.version "${spec.version}" is not a semantic version with a "v" prefix`);
  }
  const short = spec.shortDescription;
  if (typeof short !== 'string' || short.trim() === '') problems.push('spec.shortDescription is empty');
  else if (short.includes('\n') || short.length > 50) problems.push('spec.shortDescription must be one line of at most 50 characters');
  if (spec.homepage !== undefined && !/^https:\/\//.test(spec.homepage)) problems.push('spec.homepage must be an https URL');
  const platforms: any[] = Array.isArray(spec.platforms) ? spec.platforms : [];
  if (platforms.length === 0) problems.push('spec.platforms is empty');
  for (const [os, arch] of KREW_PLATFORMS) {
    const matching = platforms.filter((p) => selectorMatches(p?.selector, { os, arch }));
    if (matching.length > 1) problems.push(`${matching.length} platforms match ${os}/${arch}; selectors must not overlap`);
  }
  for (const [i, p] of platforms.entries()) {
    const at = `spec.platforms[${i}]`;
    if (!p?.selector) problems.push(`${at}.selector is missing`);
    if (typeof p?.uri !== 'string' || !/^https:\/\//.test(p.uri)) problems.push(`${at}.uri must be an https URL`);
    if (typeof p?.sha256 !== 'string' || !/^[a-f0-9]{64}$/.test(p.sha256)) problems.push(`${at}.sha256 must be 64 lowercase hex digits`);
    if (typeof p?.bin !== 'string' || p.bin === '' || p.bin.includes('/') || p.bin.includes('..')) problems.push(`${at}.bin must name a file`);
    const windows = selectorMatches(p?.selector, { os: 'windows', arch: 'amd64' }) || selectorMatches(p?.selector, { os: 'windows', arch: 'arm64' });
    if (windows && typeof p?.bin === 'string' && !p.bin.endsWith('.exe')) problems.push(`${at}.bin must end in .exe for Windows`);
    const archive = typeof p?.uri === 'string' ? locate(p.uri) : undefined;
    if (!archive) {
      problems.push(`${at}: archive for ${p?.uri} not found`);
      continue;
    }
    const sha = await sha256File(archive);
    if (sha !== p.sha256) problems.push(`${at}.sha256 ${p.sha256} does not match the archive (${sha})`);
    const entries = (archive.endsWith('.zip') ? await listZip(archive) : await listTarGz(archive)).map((e) => e.name.replace(/^\.\//, ''));
    if (!entries.includes(p.bin)) problems.push(`${at}: bin "${p.bin}" is not in the archive`);
    if (!entries.some((e) => /^LICEN[CS]E(\.\w+)?$/i.test(e))) problems.push(`${at}: the archive has no LICENSE file`);
    for (const f of p.files ?? []) if (!entries.includes(f.from)) problems.push(`${at}.files: "${f.from}" is not in the archive`);
  }
  return problems;
}

/** sha256 of a file, streamed. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}
