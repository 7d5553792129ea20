import { collectYoungWith } from '../memory.js';

/**
 * V8 flags the plugin sets once it runs. V8 accepts a code cache only when it was made under the
 * same flags, so krew/bundle.ts sets these too before it makes the lazy chunk's cache.
 */
export const RUNTIME_V8_FLAGS = '--semi-space-growth-factor=1';

/**
 * Keeps V8's young generation at its initial size. A backup moves its bytes through short-lived
 * buffers and stream objects, and V8 answers that allocation rate by doubling the young
 * generation's semi-spaces up to their 16 MiB limit: 30-40 MiB more resident memory. Held at its
 * initial 1 MiB, a 70 MiB backup peaked 34-38 MiB lower and took as long (farm-bench, 7 pairs:
 * 0.96x wall by stream, 1.05x by exec, within the spread). Set at run time on purpose: V8 raises
 * a growth factor below 2 given on the command line when it makes the heap, and reads the flag
 * again at each growth. Set before a command's action (main.ts), so `--help` does without it.
 * Should a V8 stop honouring it, the cost is memory, not behaviour. Also registers the minor
 * collection that age's legs run as they read (memory.ts).
 */
export async function keepYoungGenerationSmall(): Promise<void> {
  // node:v8 loaded here, not at the top: it costs every start of the command line ~2 ms.
  const { setFlagsFromString } = await import('node:v8');
  setFlagsFromString(RUNTIME_V8_FLAGS);
  collectYoungWith(await minorCollector(setFlagsFromString));
}

/**
 * V8's own minor collection (memory.ts says why age's legs want it), taken from a context made while
 * --expose-gc was on: V8 gives `gc` to the contexts it makes under that flag. The flag is turned
 * off again at once: V8 accepts a code cache only under the flags it was made with (the lazy
 * chunk's is checked after this). Undefined when V8 does not give it.
 */
async function minorCollector(setFlags: (flags: string) => void): Promise<(() => void) | undefined> {
  const { runInNewContext } = await import('node:vm');
  setFlags('--expose-gc');
  try {
    const gc: unknown = runInNewContext('typeof gc === "function" ? gc : undefined');
    if (typeof gc !== 'function') return undefined;
    return () => gc({ type: 'minor' });
  } finally {
    setFlags('--no-expose-gc');
  }
}
