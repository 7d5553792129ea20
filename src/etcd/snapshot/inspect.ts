import { VerificationError } from '../../errors.js';
import { formatRecord, type OutputFormat } from '../../ui/format.js';
import { readSnapshotFacts, type SnapshotFacts } from './facts.js';
import { NO_TRAILER_NOTE, renderFactsTable } from './render.js';

/** Options of `kubectl etcd inspect`. */
export interface InspectOptions {
  snapshot: string;
  /** The name to report when `snapshot` is a decrypted copy of an encrypted file. */
  displayPath?: string;
  byNamespace: boolean;
  /** Machine format, or undefined for the human table. */
  output?: OutputFormat;
}

/** Where inspect writes its report (stdout in the CLI, a buffer in tests). */
export interface OutputWriter {
  write(chunk: string): unknown;
}

/** The record printed by `-o json|yaml`. */
export type InspectRecord = SnapshotFacts & { notes: string[] };

/**
 * Reads the snapshot, writes the report to out, and throws VerificationError (exit 3) after
 * writing it when the file is corrupt or its sha256 trailer does not match.
 */
export async function inspectSnapshot(opts: InspectOptions, out: OutputWriter): Promise<SnapshotFacts> {
  const facts = await readSnapshotFacts(opts.snapshot);
  if (opts.displayPath) facts.path = opts.displayPath;
  if (opts.output) {
    const record: InspectRecord = { ...facts, notes: facts.trailer === 'absent' ? [NO_TRAILER_NOTE] : [] };
    if (record.objects && !opts.byNamespace) {
      const { byNamespace: _omitted, ...rest } = record.objects;
      record.objects = rest as typeof record.objects;
    }
    out.write(await formatRecord(record, opts.output));
  } else {
    out.write(renderFactsTable(facts, opts.byNamespace));
  }
  if (facts.outcome === 'corrupt') {
    throw new VerificationError(`snapshot "${facts.path}" is corrupt: ${facts.problems[0]}`, 're-take the backup; the file is damaged');
  }
  if (facts.outcome === 'trailer-mismatch') {
    throw new VerificationError(`snapshot "${facts.path}" does not match its sha256 trailer`, 're-take the backup; the file is damaged');
  }
  return facts;
}
