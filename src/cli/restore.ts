import type { Command } from 'commander';

/** Registers `kubectl etcd restore` (not yet implemented). */
export function register(_program: Command): void {}
