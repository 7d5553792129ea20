import { writeFile } from 'node:fs/promises';
import type { TransportKind } from './transport.js';

/** What one backup produced: printed with -o json|yaml and written as the `<file>.json` sidecar. */
export interface BackupRecord {
  /** Absolute path of the snapshot, or "-" for stdout. */
  file: string;
  size: number;
  sha256: string;
  revision?: number;
  totalKeys?: number;
  hash?: number;
  etcdVersion?: string;
  clusterId?: string;
  memberId?: string;
  namespace: string;
  workload: string;
  sourcePod: string;
  sourceMember: string;
  transport: TransportKind;
  startedAt: string;
  time: string;
  pluginVersion: string;
  /** Which checks passed; with -f - the bbolt check cannot run. */
  verified: { size: boolean; sha256Trailer: boolean; bbolt: boolean };
}

/** Writes the sidecar `<snapshot>.json` (mode 0600). */
export async function writeSidecar(snapshotPath: string, record: BackupRecord): Promise<string> {
  const path = `${snapshotPath}.json`;
  await writeFile(path, JSON.stringify(record, null, 2) + '\n', { mode: 0o600 });
  return path;
}
