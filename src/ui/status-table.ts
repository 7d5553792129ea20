import type { MemberStatus } from '../etcd/status.js';
import { formatBytes } from './bytes.js';
import { renderTable } from './table.js';

/** The `kubectl etcd status` table: one row per member, errors in the last column. */
export function renderStatusTable(rows: MemberStatus[]): string {
  const dash = (v: unknown) => (v === undefined || v === null || v === '' ? '-' : String(v));
  return renderTable(
    ['pod', 'node', 'member id', 'version', 'db size', 'in use', 'leader', 'raft term', 'raft index', 'revision', 'alarms', 'health', 'error'],
    rows.map((r) => [
      r.pod,
      dash(r.node),
      dash(r.memberId),
      dash(r.version),
      r.dbSize === undefined ? '-' : formatBytes(r.dbSize),
      r.dbSizeInUse === undefined ? '-' : formatBytes(r.dbSizeInUse),
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
