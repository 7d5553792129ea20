import type { MemberStatus } from '../etcd/status.js';
import { formatBytes } from './bytes.js';
import { quotaShare } from '../etcd/quota.js';
import { renderTable } from './table.js';

/** The `kubectl etcd status` table: one row per member, errors in the last column. */
export function renderStatusTable(rows: MemberStatus[]): string {
  const dash = (v: unknown) => (v === undefined || v === null || v === '' ? '-' : String(v));
  return renderTable(
    ['pod', 'node', 'member id', 'version', 'db size', 'in use', 'quota', 'leader', 'raft term', 'raft index', 'revision', 'alarms', 'health', 'error'],
    rows.map((r) => [
      r.pod,
      dash(r.node),
      dash(r.memberId),
      dash(r.version),
      r.dbSize === undefined ? '-' : formatBytes(r.dbSize),
      r.dbSizeInUse === undefined ? '-' : formatBytes(r.dbSizeInUse),
      quotaCell(r),
      r.isLeader === undefined ? '-' : r.isLeader ? 'true' : 'false',
      dash(r.raftTerm),
      dash(r.raftIndex),
      dash(r.revision),
      r.alarms.length ? r.alarms.join(',') : '-',
      r.healthy ? 'healthy' : 'unhealthy',
      r.error ?? '',
    ]),
  );
}

/** The quota and the share of it the db file fills: `16.0 MiB (98%)`, `2.0 GiB default (1%)`, `none`, `-`. */
export function quotaCell(r: Pick<MemberStatus, 'quota' | 'dbSize'>): string {
  if (r.quota.source === 'disabled') return 'none';
  if (r.quota.bytes === undefined) return '-';
  const share = quotaShare(r.dbSize, r.quota);
  return `${formatBytes(r.quota.bytes)}${r.quota.source === 'default' ? ' default' : ''}${share === undefined ? '' : ` (${Math.floor(share * 100)}%)`}`;
}
