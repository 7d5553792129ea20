/**
 * `kubectl etcd verify`: the integrity check inspect makes (sha256 trailer, bbolt structure,
 * every revision's KeyValue), then with --restore a restore drill (drill.ts) whose outcome is
 * printed and added to the backup's record. Exit 3 when either fails.
 */
import { readSnapshotFacts, type SnapshotFacts } from '../etcd/snapshot/facts.js';
import { computeKvHash, hashRulesOf, type KvHash } from '../etcd/snapshot/kvhash.js';
import { describeIntegrity } from '../etcd/snapshot/render.js';
import { PluginError, VerificationError } from '../errors.js';
import { formatRecord, type OutputFormat } from '../ui/format.js';
import type { DrillReport, LocalDrillOptions } from './drill.js';
import type { LocalEtcdTools } from './local-etcd.js';
import { addDrillToRecord, type RecordPlace } from './record.js';

/** Inputs of verifySnapshot; the snapshot is a local plaintext file (downloaded or decrypted already). */
export interface VerifyOptions {
  snapshot: string;
  /** The name the user gave (a path, an .age file or an s3:// URL). */
  displayPath: string;
  /** Set to run the drill with these tools. */
  drill?: { tools: LocalEtcdTools; stateDir: string };
  /** Where the backup's record is, to add the drill to. */
  record?: RecordPlace;
  output?: OutputFormat;
  log(line: string): void;
  warn(line: string): void;
  /** The drill runner (the CLI passes runLocalDrill). */
  runDrill(opts: LocalDrillOptions): Promise<DrillReport>;
}

/** What verify prints with -o json|yaml. */
export interface VerifyReport {
  snapshot: string;
  integrity: { outcome: SnapshotFacts['outcome']; trailer: SnapshotFacts['trailer']; sha256?: string; problems: string[] };
  revision?: number;
  drill?: DrillReport;
  /** Where the drill was recorded. */
  recorded?: string;
}

/** Verifies, writes the report, and throws VerificationError (exit 3) after it when a check failed. */
export async function verifySnapshot(opts: VerifyOptions, out: { write(s: string): unknown }): Promise<VerifyReport> {
  const facts = await readSnapshotFacts(opts.snapshot);
  const report: VerifyReport = {
    snapshot: opts.displayPath,
    integrity: { outcome: facts.outcome, trailer: facts.trailer, ...(facts.sha256 ? { sha256: facts.sha256 } : {}), problems: facts.problems },
    ...(facts.status ? { revision: facts.status.revision } : {}),
  };
  if (facts.outcome === 'valid' && opts.drill) {
    const expected: KvHash = await computeKvHash(opts.snapshot, hashRulesOf(opts.drill.tools.version));
    if (expected.authEnabled) {
      throw new PluginError(`snapshot "${opts.displayPath}" has etcd authentication enabled: the drill's member would answer only to a user of it`, 'check it with `kubectl etcd verify` (no --restore), or drill it by hand with etcdctl --user');
    }
    report.drill = await opts.runDrill({
      snapshot: opts.snapshot,
      skipHashCheck: facts.trailer === 'absent',
      stateDir: opts.drill.stateDir,
      tools: opts.drill.tools,
      expected,
      log: opts.log,
    });
    // A record that cannot be written (a read-only directory, read-only credentials) loses the
    // record, never the drill's outcome or its exit code.
    if (opts.record) {
      try {
        const where = await addDrillToRecord(opts.record, report.drill);
        if (where) report.recorded = where;
        else opts.warn(`${opts.displayPath} has no record beside it (${opts.record.name}): the drill is not recorded`);
      } catch (err) {
        opts.warn(`the drill is not recorded: ${(err as Error).message}`);
      }
    }
  }
  out.write(opts.output ? await formatRecord(report, opts.output) : renderReport(report, facts));
  if (facts.outcome !== 'valid') {
    throw new VerificationError(`snapshot "${opts.displayPath}" ${facts.outcome === 'corrupt' ? `is corrupt: ${facts.problems[0]}` : 'does not match its sha256 trailer'}`, 're-take the backup; the file is damaged');
  }
  if (report.drill?.outcome === 'failed') {
    throw new VerificationError(`the restore drill of snapshot "${opts.displayPath}" failed: ${report.drill.reason}`, 'this backup would not restore: take a new one, and keep this one to investigate');
  }
  return report;
}

function renderReport(r: VerifyReport, facts: SnapshotFacts): string {
  const rows: [string, string][] = [['snapshot', r.snapshot], ['integrity', describeIntegrity(facts)]];
  const d = r.drill;
  if (d) {
    const e = d.expected;
    rows.push(['revision', `${e.revision}${e.compactRevision > 0 ? ` (compacted at ${e.compactRevision})` : ''}`], ['keys', String(e.liveKeys)], ['kv hash', String(e.hash)]);
    const how = `restored with ${d.restoredWith}, started etcd ${d.etcdVersion} on a private unix socket`;
    if (d.outcome === 'passed') {
      const served = d.served!.revision > e.revision ? ` (it has written up to revision ${d.served!.revision} since)` : '';
      rows.push(['drill', `passed: ${how}; it answered in ${((d.startedInMs ?? 0) / 1000).toFixed(1)} s and serves the same revision, keys, compaction and KV hash${served}`]);
    } else {
      rows.push(['drill', `FAILED: ${d.reason}`]);
    }
    rows.push(['verified at', d.at]);
    if (r.recorded) rows.push(['recorded', r.recorded]);
  } else if (r.revision !== undefined) {
    rows.push(['revision', String(r.revision)]);
  }
  return rows.map(([k, v]) => `${k.toUpperCase().padEnd(12)}${v}`).join('\n') + '\n';
}
