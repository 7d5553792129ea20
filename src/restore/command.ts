/**
 * `kubectl etcd restore`, read as Complete → Validate → Run: the CLI completes the options and the
 * collaborators (src/cli/restore.ts, deps.ts), `validateRestoreOptions` checks the options once,
 * and the run is a fresh restore (start.ts) or goes on with a journal's (continue.ts).
 */
import type { Readable, Writable } from 'node:stream';
import { UsageError } from '../errors.js';
import type { EtcdTopology } from '../etcd/topology.js';
import type { Logger } from '../ui/log.js';
import type { OutputFormat } from '../ui/format.js';
import type { PhaseClock } from '../ui/phases.js';
import type { ColdStartHold } from './cold-start.js';
import { continueRestore } from './continue.js';
import type { ConfigMapAccess } from './journal.js';
import type { RestorePlan } from './plan.js';
import type { PreflightDeps } from './preflight.js';
import type { UtilityPodManifest } from './manifests.js';
import { pruneKeptCopies } from './prune.js';
import type { NamespaceWorkloads, QuiesceRef } from './quiesce.js';
import type { RestoreCluster, RestorePodIO, RestoreVerifier } from './runner.js';
import { startRestore } from './start.js';

export { journalFile } from './journal-find.js';
export type { RestoreSnapshotFacts } from './snapshot.js';

/** What the user asked for. */
export interface RestoreOptions {
  snapshot?: string;
  namespace: string;
  statefulSet?: string;
  quiesce: QuiesceRef[];
  dryRun: boolean;
  yes: boolean;
  force: boolean;
  resume: boolean;
  abort: boolean;
  safetyBackup: boolean;
  utilityImage?: string;
  inPlace: boolean;
  output?: OutputFormat;
  /** --prune-kept: delete the old data earlier verified restores kept (prune.ts) instead of restoring. */
  pruneKept?: boolean;
  /** --keep: how many of the newest kept copies a prune leaves on each volume. */
  keep?: number;
  /** Where the local journal and safety backups live. */
  stateDir: string;
  /** `--identity` files, to read an age-encrypted snapshot. */
  identityFiles?: string[];
  /** The identities read from them, once the snapshot is known to be encrypted (never journaled or logged). */
  identities?: string[];
}

/** Everything the command talks to, built by the CLI. */
export interface RestoreDeps {
  /** allOrdinals: members whose pods are gone are read from the StatefulSet template (a fresh restore plans every member). */
  discover(namespace: string, statefulSet?: string, allOrdinals?: boolean): Promise<EtcdTopology>;
  /** The etcd image of the workload's pod template. */
  templateImage(topology: EtcdTopology): Promise<string>;
  /**
   * From one read of the StatefulSet (and its Service): the etcd image of its pod template, the
   * probes to hold while the members start when they could not all start with them, and a warning
   * when that could not be told.
   */
  /** From the StatefulSet: its etcd image, the cold-start hold, and a pod as its controller would create it (memberPod). */
  templateFacts(topology: EtcdTopology): Promise<{ image: string; hold?: ColdStartHold; warning?: string; memberPod?: UtilityPodManifest }>;
  listWorkloads(namespace: string): Promise<NamespaceWorkloads>;
  /** Fills in what the pods do not say: the node of a member whose pod is gone, and ReadWriteOncePod claims. */
  resolveNodes(topology: EtcdTopology): Promise<void>;
  preflight: PreflightDeps;
  configMaps: ConfigMapAccess;
  cluster(namespace: string): RestoreCluster;
  /**
   * once: its `run` tries each command once, never retried, and logs nothing (the kubeadm
   * restore's polls while the API server is away by design: the poll tries again, and says why);
   * its other methods retry as always.
   */
  pods(namespace: string, opts?: { once?: boolean }): RestorePodIO;
  verifier(plan: Pick<RestorePlan, 'snapshot'>): RestoreVerifier;
  /** A fresh stream of the snapshot's plaintext per call; `identities` decrypt an age file. */
  openSnapshot(path: string, identities?: string[]): () => Readable;
  /** Takes a safety backup into dir; returns the file, or undefined when the cluster does not answer. */
  /** `encrypt`: when the restored snapshot is encrypted, the safety backup is too, to the recipients of the identities given. */
  safetyBackup(topology: EtcdTopology, dir: string, encrypt?: { to: string[]; stateDir: string }): Promise<string | undefined>;
  /** Asks on a terminal; undefined when there is no terminal. */
  ask(question: string): Promise<string | undefined>;
  log: Logger;
  stdout: Writable;
  stderr: Writable;
  now: () => Date;
  /** Times the work before the first step (snapshot, discovery, preflight, safety backup …) for `-v` and the record. */
  phases?: PhaseClock;
}


/** Checks the options on their own, before anything is read; throws a UsageError. */
export function validateRestoreOptions(opts: RestoreOptions): void {
  if (opts.keep !== undefined && !opts.pruneKept) throw new UsageError('--keep works only with --prune-kept', 'run `kubectl etcd restore --prune-kept --keep N`');
  if (opts.pruneKept) {
    const other = opts.resume ? '--resume' : opts.abort ? '--abort' : opts.inPlace ? '--in-place' : undefined;
    if (other) throw new UsageError(`--prune-kept cannot be used with ${other}`, 'run them one after the other');
    if (opts.snapshot) throw new UsageError('--prune-kept takes no snapshot', 'run `kubectl etcd restore --prune-kept` without one');
    return;
  }
  if (opts.resume && opts.abort) throw new UsageError('--resume and --abort cannot be used together', 'pass one of them');
  if ((opts.resume || opts.abort) && (opts.inPlace || opts.utilityImage)) {
    const flag = opts.inPlace ? '--in-place' : '--utility-image';
    const mode = opts.resume ? '--resume' : '--abort';
    throw new UsageError(`${flag} cannot be changed for ${mode}: it goes on with the plan in the journal`, `run \`kubectl etcd restore ${mode}\` without it`);
  }
  if (!opts.resume && !opts.abort && !opts.snapshot) throw new UsageError('no snapshot given', 'pass the snapshot file: kubectl etcd restore SNAPSHOT');
}

/** Runs the command: validates, then a fresh restore, a resume / roll-back from the journal, or a prune of kept copies. */
export async function restoreCommand(opts: RestoreOptions, deps: RestoreDeps): Promise<void> {
  validateRestoreOptions(opts);
  if (opts.pruneKept) return pruneKeptCopies(opts, deps);
  if (opts.resume || opts.abort) return continueRestore(opts, deps);
  return startRestore(opts, deps);
}

