/**
 * Bundles the plugin for a Node single-executable application (Node 20's SEA runs a CommonJS main
 * whose `require` reaches only built-in modules, so every dependency must be inside the bundle),
 * in two chunks: the main one holds the command line (what `--help`, usage errors and `inspect`
 * need), and every module the source loads with a dynamic `import()` (the Kubernetes client, gRPC,
 * etcd3: 93% of the code) goes into a second chunk, an asset of the executable that is compiled
 * only when a command first needs it — V8 parses all of one script before it runs any of it, so
 * the whole bundle in one chunk costs every start about 70 ms. The object-storage modules
 * (src/storage/, with the AWS SDK) are a third chunk of their own, compiled only by a command
 * given an s3:// location: in the lazy chunk they cost every cluster command's start. Modules of src/ that the chunks
 * use exist once, in the main chunk (the lazy one gets them from a registry the main chunk
 * fills): one PluginError class, one logger. Files a dependency reads at run time are embedded as well:
 * etcd3 loads its gRPC definitions from `${__dirname}/../proto/rpc.proto` when it is first
 * required, a path that does not exist beside a single executable, so the bundle carries them
 * as a protobufjs JSON descriptor loaded with @grpc/proto-loader's fromJSON instead.
 */
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { build, type Plugin } from 'esbuild';
import { RUNTIME_V8_FLAGS } from '../src/cli/heap.js';
import { LAZY_CODE_CACHE_STATE_KEY } from '../src/version.js';

const require = createRequire(import.meta.url);

/** The call in etcd3/lib/connection-pool.js that reads the .proto files from disk. */
const ETCD3_PROTO_LOAD = '(0, proto_loader_1.loadSync)(`${__dirname}/../proto/rpc.proto`,';

/** etcd3's rpc.proto (with kv.proto and auth.proto it imports) as a protobufjs JSON descriptor. */
export function etcd3ProtoJson(repoRoot: string): string {
  const etcd3Dir = path.dirname(require.resolve('etcd3/package.json', { paths: [repoRoot] }));
  // protobufjs is @grpc/proto-loader's own dependency: resolve it from there so both agree.
  const loaderRequire = createRequire(require.resolve('@grpc/proto-loader', { paths: [etcd3Dir] }));
  const protobuf = loaderRequire('protobufjs') as typeof import('protobufjs');
  // keepCase must match the options etcd3 passes to loadSync: field names are fixed at parse time.
  const root = new protobuf.Root().loadSync(path.join(etcd3Dir, 'proto', 'rpc.proto'), { keepCase: true });
  return JSON.stringify(root.toJSON());
}

/** esbuild plugin: swaps etcd3's file-based proto loading for the embedded descriptor. */
function embedEtcd3Protos(repoRoot: string): Plugin {
  return {
    name: 'embed-etcd3-protos',
    setup(b) {
      b.onLoad({ filter: /[\\/]etcd3[\\/]lib[\\/]connection-pool\.js$/ }, async (args) => {
        const source = await fs.readFile(args.path, 'utf8');
        if (!source.includes(ETCD3_PROTO_LOAD)) {
          throw new Error(`${args.path} no longer loads rpc.proto the way krew/bundle.ts expects; update ETCD3_PROTO_LOAD`);
        }
        const contents = source.replace(ETCD3_PROTO_LOAD, `(0, proto_loader_1.fromJSON)(${etcd3ProtoJson(repoRoot)},`);
        return { contents, loader: 'js' };
      });
    },
  };
}

/**
 * Optional packages dependencies try inside try/catch and do without (ws: the native add-ons
 * bufferutil and utf-8-validate; node-fetch: encoding; debug: supports-color). Left as plain
 * require calls, the SEA's builtin-only require would print a warning on every run; bundled as
 * modules that throw, each fallback is taken quietly.
 */
const optionalAddonsAbsent: Plugin = {
  name: 'optional-addons-absent',
  setup(b) {
    b.onResolve({ filter: /^(bufferutil|utf-8-validate|encoding|supports-color)$/ }, (args) => ({ path: args.path, namespace: 'absent-addon' }));
    b.onLoad({ filter: /.*/, namespace: 'absent-addon' }, (args) => ({
      contents: `throw new Error(${JSON.stringify(`${args.path} is not part of the single executable`)});`,
      loader: 'js',
    }));
  },
};

/** The name of the lazy chunk: a SEA asset of that key, or a file of that name beside the main chunk outside a SEA. */
const LAZY_CHUNK = 'kubectl-etcd-lazy.cjs';
/** The name of the object-storage chunk (src/storage/ and the AWS SDK), kept as the lazy one is. */
const STORAGE_CHUNK = 'kubectl-etcd-storage.cjs';
/** The dynamic-import targets that go into the object-storage chunk. */
const STORAGE_PREFIX = 'src/storage/';
/**
 * The SEA asset holding V8's code cache of a chunk (writeLazyCodeCache): `<chunk>.cache`. With it
 * V8 skips parsing and compiling the chunk, and the functions its start-up ran.
 */
function codeCacheAsset(chunk: string): string {
  return chunk.replace(/\.cjs$/, '.cache');
}
/** Set (to a function taking the compiled vm.Script and its chunk's name) only while writeLazyCodeCache loads the main chunk: no command runs. */
const BUILD_KEY = 'kubectl-etcd.build-code-cache';
/** Global symbols by which the two chunks find each other's modules. */
const LAZY_KEY = 'kubectl-etcd.lazy';
const SHARED_KEY = 'kubectl-etcd.shared';

/** A module's key in the registries: its path from the repository root, with forward slashes. */
function moduleKey(repoRoot: string, file: string): string {
  return path.relative(repoRoot, file).split(path.sep).join('/');
}

/**
 * esbuild plugin for the main chunk: a dynamic `import()` in src/ becomes a module that asks the
 * lazy chunk for its target (collected in `targets`, by key → absolute path).
 */
function deferDynamicImports(repoRoot: string, targets: Map<string, string>): Plugin {
  const src = path.join(repoRoot, 'src') + path.sep;
  return {
    name: 'defer-dynamic-imports',
    setup(b) {
      b.onResolve({ filter: /.*/ }, async (args) => {
        if (args.kind !== 'dynamic-import' || !args.importer.startsWith(src) || args.pluginData === 'inner') return undefined;
        const r = await b.resolve(args.path, { resolveDir: args.resolveDir, kind: args.kind, importer: args.importer, pluginData: 'inner' });
        if (r.errors.length) return { errors: r.errors };
        // A built-in module (node:v8) stays Node's own, loaded where it is asked for, by require: a
        // single executable has no import() of its own ("A dynamic import callback was not specified").
        if (r.external) return { path: r.path, namespace: 'builtin-on-use' };
        const key = moduleKey(repoRoot, r.path);
        targets.set(key, r.path);
        return { path: key, namespace: 'lazy-chunk' };
      });
      b.onLoad({ filter: /.*/, namespace: 'builtin-on-use' }, (args) => ({ contents: `module.exports = require(${JSON.stringify(args.path)});`, loader: 'js' }));
      b.onLoad({ filter: /.*/, namespace: 'lazy-chunk' }, (args) => ({
        contents: `module.exports = globalThis[Symbol.for(${JSON.stringify(LAZY_KEY)})](${JSON.stringify(args.path)});`,
        loader: 'js',
      }));
    },
  };
}

/** esbuild plugin for the lazy chunk: a module of src/ the main chunk holds is taken from it. */
function sharedFromMain(repoRoot: string, inMain: Set<string>): Plugin {
  return {
    name: 'shared-from-main',
    setup(b) {
      b.onResolve({ filter: /.*/ }, async (args) => {
        if (args.kind === 'entry-point' || args.pluginData === 'inner') return undefined;
        const r = await b.resolve(args.path, { resolveDir: args.resolveDir, kind: args.kind, importer: args.importer, pluginData: 'inner' });
        if (r.errors.length || r.external) return undefined;
        const key = moduleKey(repoRoot, r.path);
        return inMain.has(key) ? { path: key, namespace: 'main-chunk' } : undefined;
      });
      b.onLoad({ filter: /.*/, namespace: 'main-chunk' }, (args) => ({
        contents: `module.exports = globalThis[Symbol.for(${JSON.stringify(SHARED_KEY)})][${JSON.stringify(args.path)}];`,
        loader: 'js',
      }));
    },
  };
}

// What the main chunk runs first: a chunk is compiled on the first call for one of its modules,
// from the SEA's asset (or the file beside this one when the bundle runs under plain node), with
// this chunk's require (built-in modules only, inside a SEA), and V8's code cache of it when the
// SEA has one (V8 rejects a cache it cannot use, and then compiles as without one).
function lazyLoader(storageKeys: string[]): string {
  return `
const chunks = {};
const storageKeys = new Set(${JSON.stringify(storageKeys)});
const cacheOf = ${JSON.stringify(Object.fromEntries([LAZY_CHUNK, STORAGE_CHUNK].map((c) => [c, codeCacheAsset(c)])))};
globalThis[Symbol.for(${JSON.stringify(LAZY_KEY)})] = (key) => {
  const name = storageKeys.has(key) ? ${JSON.stringify(STORAGE_CHUNK)} : ${JSON.stringify(LAZY_CHUNK)};
  if (!chunks[name]) {
    const sea = require('node:sea');
    const inSea = sea.isSea();
    const code = inSea ? sea.getAsset(name, 'utf8') : require('node:fs').readFileSync(require('node:path').join(__dirname, name), 'utf8');
    let cachedData;
    if (inSea) {
      try { cachedData = Buffer.from(sea.getAsset(cacheOf[name])); } catch { /* an executable without a code cache */ }
    }
    const script = new (require('node:vm').Script)('(function (exports, require, module, __filename, __dirname) {' + code + '\\n})', { filename: name, cachedData });
    const module = { exports: {} };
    script.runInThisContext()(module.exports, require, module, name, __dirname);
    chunks[name] = module.exports.lazyModules;
    if (name === ${JSON.stringify(LAZY_CHUNK)}) globalThis[Symbol.for(${JSON.stringify(LAZY_CODE_CACHE_STATE_KEY)})] = cachedData === undefined ? 'none' : script.cachedDataRejected ? 'rejected by V8' : 'accepted';
    globalThis[Symbol.for(${JSON.stringify(BUILD_KEY)})]?.(script, name);
  }
  return chunks[name][key];
};
`;
}

// Minified (names kept: error text and class names read the same): the lazy chunk's source is
// 2.6 MB instead of 7.3, and V8 keeps a script's source in memory; a 70 MiB backup by stream
// peaked 15 MiB lower (farm-bench, 9 pairs: 128 vs 143 MiB) and took as long (1.03x wall).
const COMMON = { bundle: true, platform: 'node', target: 'node20', format: 'cjs', legalComments: 'eof', logLevel: 'warning', minify: true, keepNames: true } as const;

/** A chunk loaded on first use, as bundlePlugin wrote it. */
export interface LazyChunk {
  /** Its SEA asset name (LAZY_CHUNK or STORAGE_CHUNK). */
  name: string;
  file: string;
}

/**
 * Writes the main chunk (src/cli/main.ts) to outFile and the lazy and object-storage chunks
 * beside it; returns them.
 */
export async function bundlePlugin(repoRoot: string, outFile: string): Promise<LazyChunk[]> {
  const targets = new Map<string, string>();
  const entry = (registry: string, storageKeys: string[]) => ({
    contents: `import { run } from './src/cli/main.ts';\n${registry}${lazyLoader(storageKeys)}if (!globalThis[Symbol.for(${JSON.stringify(BUILD_KEY)})]) void run(process.argv);\n`,
    resolveDir: repoRoot,
    sourcefile: 'sea-main.ts',
    loader: 'ts' as const,
  });
  // Once to learn which modules of src/ the main chunk holds and which it loads later (metafile
  // keys are relative to absWorkingDir), then again to publish them.
  const first = await build({ ...COMMON, absWorkingDir: repoRoot, stdin: entry('', []), write: false, outfile: outFile, metafile: true, plugins: [optionalAddonsAbsent, deferDynamicImports(repoRoot, targets), embedEtcd3Protos(repoRoot)] });
  const inMain = Object.keys(first.metafile.inputs).filter((f) => f.startsWith('src/')).sort();
  const registry = inMain.map((f, i) => `import * as shared${i} from './${f}';\n`).join('')
    + `globalThis[Symbol.for(${JSON.stringify(SHARED_KEY)})] = {${inMain.map((f, i) => `${JSON.stringify(f)}: shared${i}`).join(', ')}};\n`;
  const keys = [...targets.keys()].sort();
  const storageKeys = keys.filter((k) => k.startsWith(STORAGE_PREFIX));
  await build({ ...COMMON, absWorkingDir: repoRoot, stdin: entry(registry, storageKeys), outfile: outFile, plugins: [optionalAddonsAbsent, deferDynamicImports(repoRoot, new Map()), embedEtcd3Protos(repoRoot)] });

  const chunk = async (name: string, chunkKeys: string[]) => {
    const file = path.join(path.dirname(outFile), name);
    const result = await build({
      ...COMMON,
      absWorkingDir: repoRoot,
      stdin: {
        contents: chunkKeys.map((k, i) => `import * as lazy${i} from './${k}';\n`).join('') + `export const lazyModules = {${chunkKeys.map((k, i) => `${JSON.stringify(k)}: lazy${i}`).join(', ')}};\n`,
        resolveDir: repoRoot,
        sourcefile: `sea-${name}.ts`,
        loader: 'ts',
      },
      outfile: file,
      metafile: true,
      plugins: [optionalAddonsAbsent, sharedFromMain(repoRoot, new Set(inMain)), embedEtcd3Protos(repoRoot)],
    });
    return { name, file, inputs: Object.keys(result.metafile.inputs) };
  };
  const lazy = await chunk(LAZY_CHUNK, keys.filter((k) => !k.startsWith(STORAGE_PREFIX)));
  const storage = await chunk(STORAGE_CHUNK, storageKeys);
  // A module of src/ in both later chunks would exist twice (two classes of one error, two states);
  // the AWS SDK in the lazy chunk would cost every cluster command's start again.
  const twice = storage.inputs.filter((f) => f.startsWith('src/') && lazy.inputs.includes(f));
  if (twice.length) throw new Error(`${twice.join(', ')} would be in both ${LAZY_CHUNK} and ${STORAGE_CHUNK}: import it statically from the main chunk's modules, or from src/storage/ only`);
  const sdk = lazy.inputs.find((f) => f.includes('node_modules/@aws-sdk/'));
  if (sdk) throw new Error(`${sdk} is in ${LAZY_CHUNK}: a module outside src/storage/ imports the AWS SDK; import it only from src/storage/ (loaded with import())`);
  return [lazy, storage].map(({ name, file }) => ({ name, file }));
}

/**
 * Writes V8's code cache of each chunk beside the main chunk (`bundle`) into `outDir`, made by
 * `node`, which must be the very Node.js binary the executable is built from (V8 accepts a cache
 * only from its own version and flags): it loads the main chunk without running a command, loads
 * each chunk as the executable does (so the cache holds the functions its start-up runs too),
 * and writes the caches; returns them by asset name. --random-seed makes the bytes the same on
 * every build (the archives' sha256 stay reproducible); V8 accepts the cache without that flag.
 */
export async function writeLazyCodeCache(node: string, bundle: string, outDir: string): Promise<Record<string, string>> {
  const caches = Object.fromEntries([LAZY_CHUNK, STORAGE_CHUNK].map((c) => [codeCacheAsset(c), path.join(outDir, codeCacheAsset(c))]));
  const script = [
    // the flags the plugin sets when it runs (V8 rejects a cache made under other flags)
    `require('node:v8').setFlagsFromString(${JSON.stringify(RUNTIME_V8_FLAGS)});`,
    `const caches = ${JSON.stringify(Object.fromEntries([LAZY_CHUNK, STORAGE_CHUNK].map((c) => [c, caches[codeCacheAsset(c)]])))};`,
    `globalThis[Symbol.for(${JSON.stringify(BUILD_KEY)})] = (s, name) => require('node:fs').writeFileSync(caches[name], s.createCachedData());`,
    `require(${JSON.stringify(bundle)});`,
    `globalThis[Symbol.for(${JSON.stringify(LAZY_KEY)})]('');`,
    `globalThis[Symbol.for(${JSON.stringify(LAZY_KEY)})](${JSON.stringify(`${STORAGE_PREFIX}s3.ts`)});`,
  ].join('\n');
  try {
    await promisify(execFile)(node, ['--random-seed=1', '-e', script], { maxBuffer: 1 << 20 });
  } catch (err) {
    throw new Error(`writing the code caches of the lazy chunks failed: ${(err as { stderr?: string }).stderr || (err as Error).message}`);
  }
  return caches;
}
