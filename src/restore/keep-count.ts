import { UsageError } from '../errors.js';

// `restore --prune-kept --keep N`'s flag, a module of its own so the command line reads it without
// loading the prune code (prune.ts).

/** How many kept copies a prune leaves when --keep is not given. */
export const DEFAULT_KEEP = 1;

/** Reads --keep: a whole number of kept copies, 0 or more. */
export function parseKeepCount(value: string): number {
  if (!/^\d+$/.test(value.trim())) throw new UsageError(`--keep "${value}" is not a whole number`, 'pass how many of the newest kept copies to leave on each volume, e.g. --keep 1');
  return Number(value.trim());
}
