/**
 * Node single-executable applications (Node 20: `node --experimental-sea-config`, then postject):
 * the bundle becomes a blob that is injected into a copy of the Node runtime binary.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const require = createRequire(import.meta.url);

/** The fuse Node looks for to know a blob was injected (from Node's SEA documentation). */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

type Inject = (file: string, resource: string, data: Buffer, options: { sentinelFuse: string; machoSegmentName?: string }) => Promise<void>;

/**
 * Writes the SEA blob for a CommonJS bundle using `node` (which must be the same Node version as
 * the runtimes it is injected into; the blob is platform-independent without a code cache). With
 * `codeCache`, the blob carries V8's code cache of the main script, made by `node`: then it is for
 * executables built from that very binary only (--random-seed keeps its bytes the same on every
 * build, so the archives' sha256 stay reproducible).
 */
export async function makeSeaBlob(node: string, bundle: string, blob: string, assets: Record<string, string> = {}, codeCache = false): Promise<void> {
  // Paths relative to the blob's directory: the blob records the main script's path, and an
  // absolute one would make the archives' sha256 depend on where the repository is checked out.
  const cwd = path.dirname(blob);
  const config = path.join(cwd, 'sea-config.json');
  const settings = {
    main: path.relative(cwd, bundle), output: path.basename(blob), disableExperimentalSEAWarning: true, useSnapshot: false, useCodeCache: codeCache,
    assets: Object.fromEntries(Object.entries(assets).map(([key, file]) => [key, path.relative(cwd, file)])),
  };
  await fs.writeFile(config, JSON.stringify(settings, null, 2));
  await execFileAsync(node, ['--random-seed=1', '--experimental-sea-config', config], { cwd, maxBuffer: 1 << 20 });
}

/** Injects the blob into a copy of the Node runtime (already at `exe`); Mach-O needs the NODE_SEA segment. */
export async function injectSeaBlob(exe: string, blob: string, os: 'linux' | 'darwin' | 'windows'): Promise<void> {
  const inject = (require('postject') as { inject: Inject }).inject;
  await inject(exe, 'NODE_SEA_BLOB', await fs.readFile(blob), {
    sentinelFuse: SEA_FUSE,
    ...(os === 'darwin' ? { machoSegmentName: 'NODE_SEA' } : {}),
  });
}
