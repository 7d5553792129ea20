// `npm run build`, unless dist/ is already built from the current sources. Every e2e file runs the
// plugin through bin/kubectl-etcd (the bundle in dist/bundle/) and builds it first; `npm test` has
// built it already, and a build takes seconds of tsc on a 2-core machine, so a file builds only
// when a source is newer than what was emitted from it (or a compiler setting changed since).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { run, type CommandResult } from '../sim/harness.js';

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? tsFiles(p) : e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/**
 * True when some src/ file has no emitted .js in dist/ at least as new as it and as the compiler
 * settings, or the bundle bin/kubectl-etcd runs (dist/bundle/, krew/dev-bundle.ts) is missing or
 * older than a source or the bundler.
 */
export function distStale(repo: string): boolean {
  const settings = Math.max(...['package.json', 'tsconfig.json', 'tsconfig.build.json'].map((f) => statSync(join(repo, f)).mtimeMs));
  const bundle = join(repo, 'dist', 'bundle', 'kubectl-etcd.cjs');
  if (!existsSync(bundle)) return true;
  const bundled = statSync(bundle).mtimeMs;
  if (bundled < settings || ['krew/bundle.ts', 'krew/dev-bundle.ts'].some((f) => bundled < statSync(join(repo, f)).mtimeMs)) return true;
  for (const src of tsFiles(join(repo, 'src'))) {
    const out = join(repo, 'dist', relative(join(repo, 'src'), src)).replace(/\.ts$/, '.js');
    if (!existsSync(out)) return true;
    const emitted = statSync(out).mtimeMs;
    const changed = statSync(src).mtimeMs;
    if (emitted < changed || emitted < settings || bundled < changed) return true;
  }
  return false;
}

/** Runs `npm run build` (in the repository the simulator runs from) when dist/ of repo is stale; undefined when it was fresh already. */
export async function buildIfStale(repo: string): Promise<CommandResult | undefined> {
  if (!distStale(repo)) return undefined;
  return run('npm', ['run', 'build'], { timeoutMs: 300_000 });
}
