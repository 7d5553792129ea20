/**
 * Bundles the plugin into one CommonJS file for a Node single-executable application (Node 20's
 * SEA runs a CommonJS main whose `require` reaches only built-in modules, so every dependency
 * must be inside the bundle). Files a dependency reads at run time are embedded as well:
 * etcd3 loads its gRPC definitions from `${__dirname}/../proto/rpc.proto` when it is first
 * required, a path that does not exist beside a single executable, so the bundle carries them
 * as a protobufjs JSON descriptor loaded with @grpc/proto-loader's fromJSON instead.
 */
import { createRequire } from 'node:module';
import fs from 'node:fs/promises';
import path from 'node:path';
import { build, type Plugin } from 'esbuild';

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

/** Writes the single-file CommonJS bundle of src/cli/main.ts to outFile. */
export async function bundlePlugin(repoRoot: string, outFile: string): Promise<void> {
  await build({
    stdin: {
      contents: "import { run } from './src/cli/main.ts';\nvoid run(process.argv);\n",
      resolveDir: repoRoot,
      sourcefile: 'sea-main.ts',
      loader: 'ts',
    },
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    outfile: outFile,
    plugins: [embedEtcd3Protos(repoRoot), optionalAddonsAbsent],
    legalComments: 'eof',
    logLevel: 'warning',
  });
}
