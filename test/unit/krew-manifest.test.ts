import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { listZip, writeTarGz, writeZip } from '../../krew/archive.js';
import { renderManifest, selectorMatches, sha256File, validateManifest, type BuiltArchive } from '../../krew/manifest.js';
import { PLATFORMS, archiveName } from '../../krew/platforms.js';
import { listTarGz } from '../../krew/runtime.js';
import { VERSION } from '../../src/version.js';

// The manifest checker against archives made here (small stand-in executables, real tar.gz and
// zip files), each broken rule shown to be caught; then the committed plugin.yaml.
const repo = path.resolve(import.meta.dirname, '../..');
let dir: string;
let archives: (BuiltArchive & { path: string })[];
let good: string;
const locate = (uri: string) => archives.find((a) => a.uri === uri)?.path;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'krew-manifest-'));
  archives = [];
  for (const p of PLATFORMS) {
    await fs.mkdir(path.join(dir, p.id));
    const exe = path.join(dir, p.id, p.exe);
    await fs.writeFile(exe, `stand-in executable for ${p.id}\n`);
    const entries = [
      { name: p.exe, file: exe, mode: 0o755 },
      { name: 'LICENSE', file: path.join(repo, 'LICENSE'), mode: 0o644 },
    ];
    const out = path.join(dir, archiveName(VERSION, p));
    await (p.archive === 'zip' ? writeZip(out, entries) : writeTarGz(out, entries));
    archives.push({ platform: p, uri: `https://example.test/v${VERSION}/${path.basename(out)}`, sha256: await sha256File(out), files: entries.map((e) => e.name), path: out });
  }
  good = renderManifest(VERSION, 'https://example.test/kubectl-etcd', archives);
});
afterAll(() => fs.rm(dir, { recursive: true, force: true }));

/** The rendered manifest with one change applied to its parsed form. */
function mutate(change: (doc: any) => void): string {
  const doc = parse(good);
  change(doc);
  return stringify(doc);
}

describe('krew manifest rules', () => {
  it('passes for the rendered manifest of real archives', async () => {
    expect(await validateManifest(good, path.join(dir, 'etcd.yaml'), locate)).toEqual([]);
    const doc = parse(good);
    expect(doc.spec.platforms.map((p: any) => `${p.selector.matchLabels.os}/${p.selector.matchLabels.arch}`)).toEqual([
      'linux/amd64', 'linux/arm64', 'darwin/amd64', 'windows/amd64',
    ]);
    expect(doc.spec.caveats).toContain('darwin/arm64');
    expect(doc.spec.caveats).toContain('codesign');
  });

  it.each<[string, (doc: any) => void, RegExp]>([
    ['a wrong apiVersion', (d) => { d.apiVersion = 'krew.googlecontainertools.github.com/v1alpha1'; }, /apiVersion must be/],
    ['a version without "v"', (d) => { d.spec.version = VERSION; }, /not a semantic version with a "v" prefix/],
    ['a version that is not semver', (d) => { d.spec.version = 'v1.2'; }, /not a semantic version/],
    ['an empty shortDescription', (d) => { d.spec.shortDescription = ' '; }, /shortDescription is empty/],
    ['a two-line shortDescription', (d) => { d.spec.shortDescription = 'back up\netcd'; }, /one line/],
    ['overlapping selectors', (d) => { d.spec.platforms[1].selector = { matchExpressions: [{ key: 'os', operator: 'In', values: ['linux'] }] }; }, /2 platforms match linux\/amd64/],
    ['a sha256 in the wrong format', (d) => { d.spec.platforms[0].sha256 = 'ABC'; }, /sha256 must be 64 lowercase hex digits/],
    ['a sha256 of other bytes', (d) => { d.spec.platforms[0].sha256 = '0'.repeat(64); }, /does not match the archive/],
    ['a bin not in the archive', (d) => { d.spec.platforms[0].bin = 'kubectl-etc'; }, /bin "kubectl-etc" is not in the archive/],
    ['a Windows bin without .exe', (d) => { d.spec.platforms[3].bin = 'kubectl-etcd'; }, /must end in \.exe/],
    ['a plain http uri', (d) => { d.spec.platforms[0].uri = d.spec.platforms[0].uri.replace('https:', 'http:'); }, /uri must be an https URL/],
    ['no platforms', (d) => { d.spec.platforms = []; }, /platforms is empty/],
  ])('catches %s', async (_what, change, problem) => {
    const problems = await validateManifest(mutate(change), path.join(dir, 'etcd.yaml'), (uri) => locate(uri) ?? locate(uri.replace('http:', 'https:')));
    expect(problems.join('\n')).toMatch(problem);
  });

  it('catches a name that differs from the file name', async () => {
    expect((await validateManifest(good, path.join(dir, 'plugin.yaml'), locate)).join('\n')).toMatch(/file name "plugin.yaml" must be "etcd.yaml"/);
  });

  it('catches an archive without LICENSE', async () => {
    const p = PLATFORMS[0]!;
    const exe = path.join(dir, p.id, p.exe);
    const bare = path.join(dir, 'bare.tar.gz');
    await writeTarGz(bare, [{ name: p.exe, file: exe, mode: 0o755 }]);
    const text = mutate((d) => { d.spec.platforms[0].files = [{ from: p.exe, to: '.' }]; });
    const problems = await validateManifest(text, path.join(dir, 'etcd.yaml'), (uri) => (uri === archives[0]!.uri ? bare : locate(uri)));
    expect(problems.join('\n')).toMatch(/archive has no LICENSE file/);
  });

  it.each([
    [{ matchLabels: { os: 'linux' } }, { os: 'linux', arch: 'arm64' }, true],
    [{ matchLabels: { os: 'linux', arch: 'amd64' } }, { os: 'linux', arch: 'arm64' }, false],
    [{ matchExpressions: [{ key: 'arch', operator: 'NotIn', values: ['arm64'] }] }, { os: 'darwin', arch: 'amd64' }, true],
    [{ matchExpressions: [{ key: 'os', operator: 'DoesNotExist' }] }, { os: 'darwin', arch: 'amd64' }, false],
  ])('selector %o against %o → %s', (selector, labels, matches) => {
    expect(selectorMatches(selector, labels)).toBe(matches);
  });
});

describe('release archives', () => {
  it('tar.gz and zip keep names, modes and contents', async () => {
    const tgz = archives.find((a) => a.platform.archive === 'tar.gz')!;
    expect(await listTarGz(tgz.path)).toEqual([
      { name: 'kubectl-etcd', mode: 0o755, size: (await fs.stat(path.join(dir, tgz.platform.id, 'kubectl-etcd'))).size },
      { name: 'LICENSE', mode: 0o644, size: (await fs.stat(path.join(repo, 'LICENSE'))).size },
    ]);
    const zip = archives.find((a) => a.platform.archive === 'zip')!;
    expect((await listZip(zip.path)).map((e) => [e.name, e.mode])).toEqual([['kubectl-etcd.exe', 0o755], ['LICENSE', 0o644]]);
  });

  it('are byte-for-byte reproducible, so the committed sha256 can be rebuilt', async () => {
    const again = path.join(dir, 'again.zip');
    const zip = archives.find((a) => a.platform.archive === 'zip')!;
    await writeZip(again, [
      { name: 'kubectl-etcd.exe', file: path.join(dir, zip.platform.id, 'kubectl-etcd.exe'), mode: 0o755 },
      { name: 'LICENSE', file: path.join(repo, 'LICENSE'), mode: 0o644 },
    ]);
    expect(await sha256File(again)).toBe(zip.sha256);
  });
});

describe('the committed plugin.yaml', () => {
  it('is the rendered manifest of this version for every platform, with well-formed checksums', async () => {
    const text = await fs.readFile(path.join(repo, 'plugin.yaml'), 'utf8');
    const doc = parse(text);
    const pkg = JSON.parse(await fs.readFile(path.join(repo, 'package.json'), 'utf8'));
    expect(doc.spec.version).toBe(`v${pkg.version}`);
    expect(pkg.version).toBe(VERSION);
    // Re-render from the manifest's own uris and checksums: any hand edit shows up as a difference.
    const built: BuiltArchive[] = PLATFORMS.map((p, i) => ({
      platform: p,
      uri: doc.spec.platforms[i].uri,
      sha256: doc.spec.platforms[i].sha256,
      files: doc.spec.platforms[i].files.map((f: any) => f.from),
    }));
    expect(text).toBe(renderManifest(pkg.version, doc.spec.homepage, built));
    const problems = await validateManifest(text, path.join(dir, 'etcd.yaml'), () => undefined);
    // Without the archives only the "not found" lines may remain.
    expect(problems.filter((p) => !/archive for .* not found/.test(p))).toEqual([]);
    expect(doc.spec.platforms.map((p: any) => path.basename(p.uri))).toEqual(PLATFORMS.map((p) => archiveName(pkg.version, p)));
  });
});
