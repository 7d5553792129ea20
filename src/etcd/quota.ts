/**
 * etcd's backend quota (`--quota-backend-bytes`, or ETCD_QUOTA_BACKEND_BYTES), as etcd reads it
 * (server/etcdserver/quota.go, NewBackendQuota): 0 or unset means the default of 2 GiB, a negative
 * value turns the quota off, anything else is the limit in bytes. A write is refused, and the
 * NOSPACE alarm raised, once the backend's size (the db file, free pages included: compaction alone
 * does not lower it, defragmentation does) plus the request would pass the quota.
 */
import type { EtcdMember } from './topology.js';

/** etcd's DefaultQuotaBytes. */
export const DEFAULT_QUOTA_BYTES = 2 * 1024 * 1024 * 1024;

/** The share of the quota at which `status --check` calls a member's database nearly full. */
export const NEARLY_FULL = 0.9;

/**
 * A member's quota: `set` (the pod spec sets it), `default` (etcd's 2 GiB), `disabled` (negative),
 * or `unknown` (etcd reads a config file, or the value is not a number).
 */
export interface Quota {
  bytes?: number;
  source: 'set' | 'default' | 'disabled' | 'unknown';
}

/**
 * Reads the quota setting as etcd parses it: a Go int64 flag (strconv.ParseInt with base 0: `0x`,
 * `0o`, `0b` prefixes, a leading 0 for octal, `_` between digits). `unresolved`: the setting may come
 * from somewhere discovery cannot read (a ConfigMap or Secret key, envFrom), so it is not known.
 */
export function quotaOf(setting: string | undefined, configFile?: string, unresolved = false): Quota {
  if (configFile) return { source: 'unknown' };
  if (setting === undefined || setting.trim() === '') return unresolved ? { source: 'unknown' } : { bytes: DEFAULT_QUOTA_BYTES, source: 'default' };
  const n = parseGoInt(setting.trim());
  if (n === undefined) return { source: 'unknown' };
  if (n === 0) return { bytes: DEFAULT_QUOTA_BYTES, source: 'default' };
  if (n < 0) return { source: 'disabled' };
  return { bytes: n, source: 'set' };
}

/** strconv.ParseInt(s, 0, 64) for the values a quota takes; undefined when Go would refuse it. */
export function parseGoInt(text: string): number | undefined {
  const m = /^([+-]?)(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|0[0-7_]*|[1-9][0-9_]*)$/.exec(text);
  if (!m) return undefined;
  const body = m[2]!;
  if (/__|_$/.test(body) || /^0[xXoObB]?_?$/.test(body) && body.length > 1 && !/^0[0-7]/.test(body)) return undefined;
  const digits = body.replace(/_/g, '');
  let value: bigint;
  if (/^0[xXoObB]/.test(digits)) value = BigInt(digits.toLowerCase());
  else if (digits.length > 1 && digits.startsWith('0')) value = BigInt('0o' + digits.slice(1));
  else value = BigInt(digits);
  const n = Number(m[1] === '-' ? -value : value);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** The member's quota (discovery read it from the pod spec; etcd's default when it could not). */
export function memberQuota(member: Pick<EtcdMember, 'quota'>): Quota {
  return member.quota ?? { bytes: DEFAULT_QUOTA_BYTES, source: 'default' };
}

/** The share of the quota a database of dbSize bytes fills, when both are known. */
export function quotaShare(dbSize: number | undefined, quota: Quota): number | undefined {
  return dbSize === undefined || quota.bytes === undefined ? undefined : dbSize / quota.bytes;
}
