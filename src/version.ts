/** The plugin version; must equal package.json's (`npm run release` refuses to build otherwise, and a unit test checks it). */
export const VERSION = '0.1.0';

/**
 * The global symbol key under which the single executable's loader (krew/bundle.ts) records what
 * became of its lazy chunk's code cache ('none', 'accepted', 'rejected by V8'); -v 9 prints it.
 */
export const LAZY_CODE_CACHE_STATE_KEY = 'kubectl-etcd.lazy-code-cache';
