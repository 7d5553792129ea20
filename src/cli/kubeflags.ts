import type { Command } from 'commander';

/** Adds kubectl's global flags (--kubeconfig, --context, -n, ...) to the program. */
export function addKubeFlags(_program: Command): void {}
