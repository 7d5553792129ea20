import type { Writable } from 'node:stream';
import type { EtcdMember } from '../etcd/topology.js';
import type { Logger } from '../ui/log.js';

/** How the snapshot leaves the pod. */
export type TransportKind = 'exec' | 'stream';

/** Per-call context handed to a transport. */
export interface TransportContext {
  signal: AbortSignal;
  /** Called with the size of each chunk written to the sink. */
  onBytes(bytes: number): void;
  /** Called once the total size is known. */
  onTotal(bytes: number): void;
  log: Logger;
  /** The member's current DB size, when known (used to pick a temp location). */
  dbSize?: number;
  /** Marks the start of a phase of the transport's work (`copy`, `cleanup`): where the time goes. */
  phase?(name: string): void;
}

/** What the source said about the snapshot it sent. */
export interface TransportResult {
  /** Total bytes the source announced (compared with what arrived). */
  expectedSize?: number;
}

/** Takes a snapshot of one member and writes its bytes into `sink` (ending it). */
export interface SnapshotTransport {
  readonly kind: TransportKind;
  /** true when the bytes leave the pod while the snapshot is made (one `save+copy` phase, not `save` then `copy`). */
  readonly overlaps: boolean;
  take(member: EtcdMember, sink: Writable, ctx: TransportContext): Promise<TransportResult>;
}
