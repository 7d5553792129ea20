// How the simulator's processes are started: the controller-manager, the kubelet and the `sim` CLI
// as the tests run it (harness.ts) run from an esbuild bundle of their own sources (the same code),
// everything else through tsx. Loading them through tsx (each of their
// modules, and client-node's thousand) takes seconds on a loaded 2-core machine, and every
// `sim up` waits for both components; a bundle loads in a fraction of that.
// A bundle is built by `sim up` once per change of the simulator's sources (or of the installed
// packages) into node_modules/.cache/sim-bundles/; SIM_NO_BUNDLE=1, or any failure to build, runs tsx.
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** Entry files (relative to the repository root) run from a bundle. */
const BUNDLED: ReadonlySet<string> = new Set(['test/sim/controllers/main.ts', 'test/sim/kubelet/main.ts', 'test/sim/cli.ts']);

/** The bundle's name for an entry: `kubelet-main`, `cli`. */
function bundleName(entry: string): string {
  return entry.replace(/^test\/sim\//, '').replace(/\.ts$/, '').replace(/\//g, '-');
}

/** Every file under dir, recursively. */
function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
}

/** Keys already computed in this process (a test asks for one at every `sim` call). */
const keys = new Map<string, string>();

/**
 * Changes with any source file of the simulator, of the plugin's src/ (fixtures use its discovery
 * code) and with the installed packages. Computed once per process.
 */
function sourceKey(root: string): string {
  const known = keys.get(root);
  if (known) return known;
  const h = createHash('sha256');
  for (const f of [...walk(join(root, 'test/sim')), ...walk(join(root, 'src')), join(root, 'package-lock.json')].sort()) {
    if (!existsSync(f)) continue;
    const st = statSync(f);
    h.update(`${f}\0${st.size}\0${st.mtimeMs}\n`);
  }
  const key = h.digest('hex').slice(0, 16);
  keys.set(root, key);
  return key;
}

/** Where the bundle of entry for the current sources is (built or not). */
function bundlePath(root: string, entry: string, key: string): string {
  return join(root, 'node_modules/.cache/sim-bundles', `${bundleName(entry)}-${key}.mjs`);
}

/** Builds (unless already built) the bundle of entry for the sources of key. */
async function build(root: string, entry: string, key: string): Promise<void> {
  const out = bundlePath(root, entry, key);
  if (existsSync(out)) return;
  const outDir = dirname(out);
  mkdirSync(outDir, { recursive: true });
  const esbuild = createRequire(import.meta.url)('esbuild') as typeof import('esbuild');
  const tmp = `${out}.${process.pid}.tmp`;
  await esbuild.build({
    entryPoints: [join(root, entry)], outfile: tmp, bundle: true, platform: 'node', format: 'esm', target: 'node20',
    logLevel: 'silent', external: ['bufferutil', 'utf-8-validate'],
    // Packages written for CommonJS call require(): give the ES module bundle one.
    banner: { js: "import { createRequire as __simCreateRequire } from 'node:module'; const require = __simCreateRequire(import.meta.url);" },
    plugins: [{
      // Each module keeps its own import.meta.url (files it reads beside itself: images/, scripts/).
      name: 'own-import-meta-url',
      setup(b) {
        // (Not this file, whose text names import.meta.url in strings; its own use resolves packages, from anywhere in the repository.)
        b.onLoad({ filter: /[/\\]test[/\\]sim[/\\].*\.ts$/ }, (args) => (/[/\\]test[/\\]sim[/\\]bundle\.ts$/.test(args.path) ? undefined : {
          contents: readFileSync(args.path, 'utf8').replace(/\bimport\.meta\.url\b/g, JSON.stringify(pathToFileURL(args.path).href)),
          loader: 'ts',
        }));
      },
    }],
  });
  renameSync(tmp, out);
  // Bundles of older sources of this entry are of no more use (once no start can still be about to run one).
  const name = bundleName(entry);
  for (const f of readdirSync(outDir)) {
    const file = join(outDir, f);
    if (f.startsWith(`${name}-`) && file !== out && Date.now() - statSync(file).mtimeMs > 3_600_000) rmSync(file, { force: true });
  }
}

/** Builds the bundles the current sources lack (`sim up` awaits it before it starts the components); never fails. */
export async function prepareBundles(root: string): Promise<void> {
  if (process.env['SIM_NO_BUNDLE']) return;
  try {
    const key = sourceKey(root);
    await Promise.all([...BUNDLED].map((entry) => build(root, entry, key)));
  } catch {
    // a bundle is only a faster way to load the same sources: without one, tsx runs them
  }
}

/** The node arguments that run the simulator entry file (relative to root): its bundle when built for the current sources, else tsx. */
export function nodeArgsFor(root: string, entry: string): string[] {
  if (BUNDLED.has(entry) && !process.env['SIM_NO_BUNDLE']) {
    const bundle = bundlePath(root, entry, sourceKey(root));
    if (existsSync(bundle)) return [bundle];
  }
  return ['--import', 'tsx', join(root, entry)];
}
