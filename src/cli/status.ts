import type { Command } from 'commander';

/** Registers `kubectl etcd status` (not yet implemented). */
export function register(_program: Command): void {}
