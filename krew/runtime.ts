/**
 * The Node.js runtime binaries a release embeds, fetched with `npm pack` (which checks the
 * registry's integrity hash) into a cache directory that is never committed, and extracted
 * with a streaming tar reader.
 */
import { execFile } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';

const execFileAsync = promisify(execFile);

/** Returns the cached tarball of `pkg@version`, fetching it with `npm pack` when missing. */
export async function fetchRuntimePackage(pkg: string, version: string, cacheDir: string): Promise<string> {
  const tgz = path.join(cacheDir, `${pkg}-${version}.tgz`);
  if (await exists(tgz)) return tgz;
  await fs.mkdir(cacheDir, { recursive: true });
  await execFileAsync('npm', ['pack', `${pkg}@${version}`, '--pack-destination', cacheDir, '--silent'], { maxBuffer: 1 << 20 });
  if (!(await exists(tgz))) throw new Error(`npm pack ${pkg}@${version} did not write ${tgz}`);
  return tgz;
}

/** Streams one entry of a .tgz to dest with the given mode; throws when the entry is absent. */
export async function extractTarEntry(tgz: string, entry: string, dest: string, mode: number): Promise<void> {
  const extract = tar.extract();
  let found = false;
  const reading = pipeline(createReadStream(tgz), createGunzip(), extract);
  for await (const item of extract) {
    if (item.header.name === entry && !found) {
      found = true;
      await fs.mkdir(path.dirname(dest), { recursive: true });
      await pipeline(item, createWriteStream(dest, { mode }));
      await fs.chmod(dest, mode);
    } else {
      item.resume();
    }
  }
  await reading;
  if (!found) throw new Error(`"${entry}" not found in ${tgz}`);
}

/** Lists the entry names (and modes) of a .tar.gz without extracting it. */
export async function listTarGz(file: string): Promise<{ name: string; mode: number; size: number }[]> {
  const extract = tar.extract();
  const reading = pipeline(createReadStream(file), createGunzip(), extract);
  const out: { name: string; mode: number; size: number }[] = [];
  for await (const item of extract) {
    out.push({ name: item.header.name, mode: item.header.mode ?? 0, size: item.header.size ?? 0 });
    item.resume();
  }
  await reading;
  return out;
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(() => true, () => false);
}
