import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * The plugin's state dir (journals, downloads, decrypted copies): KUBECTL_ETCD_STATE_DIR, or
 * ~/.kube/kubectl-etcd. A module of its own so the command line reads it without loading the
 * journal code.
 */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.KUBECTL_ETCD_STATE_DIR || join(homedir(), '.kube', 'kubectl-etcd');
}
