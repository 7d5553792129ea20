import { Option, type Command } from 'commander';
// Light on purpose: this module is loaded for every command, --help included. What connects to a
// cluster (and so loads @kubernetes/client-node) lives in kubecontext.ts, imported on use.
import type { KubeFlags } from '../kube/config.js';

/** Adds kubectl's global flags (--kubeconfig, --context, -n, ...) to the program. */
export function addKubeFlags(program: Command): void {
  program
    .option('--kubeconfig <file>', 'path to the kubeconfig file to use')
    .option('--context <name>', 'the name of the kubeconfig context to use')
    .option('--cluster <name>', 'the name of the kubeconfig cluster to use')
    .option('--user <name>', 'the name of the kubeconfig user to use')
    .option('-n, --namespace <namespace>', 'the namespace scope for this request')
    .option('--request-timeout <duration>', 'time to wait for a single API request (e.g. 30s, 1m; 0 = no timeout)', '0')
    .option('--insecure-skip-tls-verify', 'do not verify the server certificate (insecure)')
    .option('--certificate-authority <file>', 'path to a CA certificate file for the server')
    .option('--token <token>', 'bearer token for authentication to the API server')
    .option('-s, --server <url>', 'the address and port of the Kubernetes API server')
    .addOption(new Option('-v, --v <level>', 'log level verbosity (to stderr)').default('0'));
}

/** kubectl's global flags as commander parses them (camel-cased). */
export interface GlobalKubeOptions extends KubeFlags {
  v?: string;
}

/** Picks kubectl's connection flags out of the parsed global options. */
export function kubeFlagsOf(opts: GlobalKubeOptions): KubeFlags {
  return {
    kubeconfig: opts.kubeconfig,
    context: opts.context,
    cluster: opts.cluster,
    user: opts.user,
    namespace: opts.namespace,
    requestTimeout: opts.requestTimeout,
    insecureSkipTlsVerify: opts.insecureSkipTlsVerify,
    certificateAuthority: opts.certificateAuthority,
    token: opts.token,
    server: opts.server,
  };
}

/** The -v level as a number (0 when absent or not a number). */
export function verbosityOf(opts: GlobalKubeOptions): number {
  // kubectl users write -v=6; commander hands a short flag's "=6" over with the "=".
  const n = Number(String(opts.v ?? 0).replace(/^=/, ''));
  return Number.isFinite(n) ? n : 0;
}
