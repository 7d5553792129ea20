/**
 * The second half of `npm run build`: the bundle bin/kubectl-etcd runs, in dist/bundle/. It is the
 * esbuild bundle the single executable ships (bundle.ts: a main chunk and two chunks loaded when a
 * command first needs them), run by node: one file to load instead of the thousands of modules the
 * Kubernetes client and gRPC are made of, which cost every cluster command 0.2-0.45 s more. tsc's output
 * in dist/ stays what the type-checked code compiles to; bin/kubectl-etcd runs it instead when tsc
 * wrote dist/ after this bundle.
 */
import { mkdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { bundlePlugin } from './bundle.js';

const root = path.resolve(import.meta.dirname, '..');
const out = path.join(root, 'dist', 'bundle');
// Built beside and swapped in whole: a command started meanwhile never loads half a bundle.
const tmp = `${out}.${process.pid}.tmp`;
rmSync(tmp, { recursive: true, force: true });
mkdirSync(tmp, { recursive: true });
await bundlePlugin(root, path.join(tmp, 'kubectl-etcd.cjs'));
rmSync(out, { recursive: true, force: true });
renameSync(tmp, out);
