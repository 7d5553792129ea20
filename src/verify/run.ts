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
import type { DrillReport } from './drill.js';
import { addDrillToRecord, type RecordPlace } from './record.js';

/** Inputs of verifySnapshot; the snapshot is a local plaintext file (downloaded or decrypted already). */
export interface VerifyOptions {
  snapshot: string;
  /** The name the user gave (a path, an .age file or an s3:// URL). */
  displayPath: string;
  /** Set to run the drill there (on this machine, or in a pod of the cluster). */
  drill?: DrillPlace;
  /** Where the backup's record is, to add the drill to. */
  record?: RecordPlace;
  output?: OutputFormat;
  log(line: string): void;
  warn(line: string): void;
}

/** What a drill is given. */
export interface DrillInput {
  snapshot: string;
  /** A raw bbolt file (no sha256 trailer) needs `--skip-hash-check`. */
  skipHashCheck: boolean;
  /** What inspect read offline, hashed by the rules of the drill's etcd release. */
  expected: KvHash;
  log(line: string): void;
}

/**
 * Where a drill runs. `open` makes it ready (a pod is created, and deleted once `use` returns) and
 * says the release of its etcd; `version`, when known before, lets the offline hash be computed once.
 */
export interface DrillPlace {
  version?: string;
  open<T>(use: (drill: { version: string; run(input: DrillInput): Promise<DrillReport> }) => Promise<T>): Promise<T>;
}

/** The hash rules of current releases: the offline hash's first pass when the drill's release is not known yet. */
const CURRENT_RULES = '3.5.16';

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
    // Refused before the drill starts anything (a pod, a member).
    const firstRules = hashRulesOf(opts.drill.version ?? CURRENT_RULES);
    const first: KvHash = await computeKvHash(opts.snapshot, firstRules);
    if (first.authEnabled) {
      throw new PluginError(`snapshot "${opts.displayPath}" has etcd authentication enabled: the drill's member would answer only to a user of it`, 'check it with `kubectl etcd verify` (no --restore), or drill it by hand with etcdctl --user');
    }
    report.drill = await opts.drill.open(async (drill) => {
      const rules = hashRulesOf(drill.version);
      const expected = JSON.stringify(rules) === JSON.stringify(firstRules) ? first : await computeKvHash(opts.snapshot, rules);
      return drill.run({ snapshot: opts.snapshot, skipHashCheck: facts.trailer === 'absent', expected, log: opts.log });
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
    const how = d.where === 'pod'
      ? `restored with ${d.restoredWith}, started etcd ${d.etcdVersion} on the loopback of pod ${d.namespace}/${d.pod} (image ${d.image}, deleted since)`
      : `restored with ${d.restoredWith}, started etcd ${d.etcdVersion} on a private unix socket`;
    if (d.outcome === 'passed') {
      const served = d.served!.revision > e.revision ? ` (it has written up to revision ${d.served!.revision} since)` : '';
      const answered = d.startedInMs !== undefined ? ` it answered in ${(d.startedInMs / 1000).toFixed(1)} s and` : ' it';
      rows.push(['drill', `passed: ${how};${answered} serves the same revision, keys, compaction and KV hash${served}`]);
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
