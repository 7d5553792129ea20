import type { Command } from 'commander';

/** Registers `kubectl etcd inspect` (not yet implemented). */
export function register(_program: Command): void {}
