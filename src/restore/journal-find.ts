/**
 * Where a workload's restore journal lives and how a restore finds one: the local file under the
 * state dir and the ConfigMap beside etcd (journal.ts keeps them in step).
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { PluginError } from '../errors.js';
import type { RestorePlan } from './plan.js';
import { Journal, configMapJournalStore, fileJournalStore, workloadsWithClusterJournal, type ConfigMapAccess } from './journal.js';

/**
 * The local journal file of one workload. `_` separates the namespace from the workload because
 * neither name can contain it: with `-`, uc1/b-etcd and uc1-b/etcd would share a file.
 */
export function journalFile(stateDir: string, namespace: string, workload: string): string {
  return join(stateDir, `restore-${namespace}_${workload}.json`);
}

/** Whether a file of the state dir is a restore journal (journalFile's name, or the temp file it is written through). */
export function isJournalFileName(name: string): boolean {
  return /^restore-.*\.json(\.tmp)?$/.test(name);
}

/** Where journals are kept: the state dir, the cluster's ConfigMaps, and the clock that stamps them. */
export interface JournalPlaces {
  stateDir: string;
  configMaps: ConfigMapAccess;
  now: () => Date;
}

/** The journal of one workload, in both places. */
export function openJournal<P = RestorePlan>(places: JournalPlaces, namespace: string, workload: string): Journal<P> {
  return new Journal<P>(
    [fileJournalStore<P>(journalFile(places.stateDir, namespace, workload)), configMapJournalStore<P>(places.configMaps, namespace, workload)],
    places.now,
  );
}

/** Workloads with a restore journal in the namespace: in the cluster or in the local state dir. */
export async function pendingWorkloads(places: JournalPlaces, namespace: string): Promise<string[]> {
  const inCluster = await workloadsWithClusterJournal(places.configMaps, namespace);
  const prefix = `restore-${namespace}_`;
  let files: string[] = [];
  try {
    files = await readdir(places.stateDir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') {
      throw new PluginError(`cannot read the state dir "${places.stateDir}" (${code ?? (err as Error).message})`, 'a restore journal may be in it: fix its permissions, or pass --state-dir');
    }
  }
  const local = files.filter((f) => f.startsWith(prefix) && f.endsWith('.json')).map((f) => f.slice(prefix.length, -'.json'.length));
  return [...new Set([...inCluster, ...local])].sort();
}

/** Refuses to start a restore while the workload has a journal (one in progress, or one not closed). */
export async function refuseIfJournal<P>(journal: Journal<P>): Promise<void> {
  const existing = await journal.load();
  if (existing?.phase === 'finished') {
    throw new PluginError(
      `the restore of ${existing.namespace}/${existing.workload} (stamp ${existing.stamp}) finished, but its journal is still in ${journal.describe()}`,
      'run `kubectl etcd restore --resume` to close it, then restore again',
    );
  }
  if (existing) {
    throw new PluginError(
      `a restore of ${existing.namespace}/${existing.workload} (stamp ${existing.stamp}, snapshot "${existing.snapshot.path}") is already in progress, recorded in ${journal.describe()}`,
      'run `kubectl etcd restore --resume` to finish it or `kubectl etcd restore --abort` to roll it back',
    );
  }
}
