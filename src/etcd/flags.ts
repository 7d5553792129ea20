/**
 * etcd's command-line flags and their ETCD_* environment twins, read the way etcd reads them:
 * Go `flag` syntax (`--a=b`, `-a=b`, `--a b`, booleans without a value, last one wins), and an
 * env var ETCD_A_B used only when the flag --a-b is absent.
 */

/** etcd flags that take no separate value (`--client-cert-auth` means true). */
export const ETCD_BOOLEAN_FLAGS: ReadonlySet<string> = new Set([
  'client-cert-auth', 'peer-client-cert-auth', 'auto-tls', 'peer-auto-tls', 'strict-reconfig-check',
  'pre-vote', 'enable-v2', 'enable-pprof', 'initial-election-tick-advance', 'experimental-initial-corrupt-check',
  'experimental-enable-lease-checkpoint', 'experimental-peer-skip-client-san-verification', 'force-new-cluster',
  'debug', 'version', 'help', 'enable-grpc-gateway', 'experimental-enable-distributed-tracing',
]);

/** Parsed flags: every value given for each flag name, in order. */
export type EtcdFlags = Map<string, string[]>;

/** Parses etcd's arguments (without the program name) as Go's flag package does. */
export function parseEtcdFlags(args: string[]): EtcdFlags {
  const flags: EtcdFlags = new Map();
  const add = (name: string, value: string): void => {
    flags.set(name, [...(flags.get(name) ?? []), value]);
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') break;
    const m = /^--?([A-Za-z0-9][A-Za-z0-9_.-]*)(?:=([\s\S]*))?$/.exec(arg);
    if (!m) continue;
    const name = m[1]!;
    if (m[2] !== undefined) add(name, m[2]);
    else if (ETCD_BOOLEAN_FLAGS.has(name)) add(name, 'true');
    else if (i + 1 < args.length) add(name, args[++i]!);
    else add(name, '');
  }
  return flags;
}

/** The environment variable etcd reads for a flag: data-dir → ETCD_DATA_DIR. */
export function etcdEnvName(flag: string): string {
  return 'ETCD_' + flag.toUpperCase().replace(/-/g, '_');
}

/** Effective value of one etcd setting: the last flag value, else its ETCD_* env var, else undefined. */
export function etcdSetting(flags: EtcdFlags, env: ReadonlyMap<string, string>, flag: string): string | undefined {
  const values = flags.get(flag);
  if (values?.length) return values[values.length - 1];
  return env.get(etcdEnvName(flag));
}

/** Whether a boolean setting is on (`--client-cert-auth`, `=true`, ETCD_CLIENT_CERT_AUTH=true). */
export function etcdBoolSetting(flags: EtcdFlags, env: ReadonlyMap<string, string>, flag: string): boolean {
  const v = etcdSetting(flags, env, flag);
  return v !== undefined && ['true', '1', 't', 'TRUE', 'True', 'T'].includes(v);
}

/** Splits a comma-separated URL list as etcd does (empty items dropped). */
export function splitUrls(value: string | undefined): string[] {
  return (value ?? '').split(',').map((s) => s.trim()).filter(Boolean);
}
