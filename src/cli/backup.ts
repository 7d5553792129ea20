import type { Command } from 'commander';

/** Registers `kubectl etcd backup` (not yet implemented). */
export function register(_program: Command): void {}
