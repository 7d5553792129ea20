// A Logger that drops everything, for tests that do not look at the log.
import type { Logger } from '../../src/ui/log.js';

/** A Logger that writes nothing. */
export function silentLogger(): Logger {
  return { info: () => {}, warn: () => {}, debug: () => {} };
}
