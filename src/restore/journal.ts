/**
 * The restore journal: what a restore has done and what it must put back. It is written before
 * each change (replica counts, PDB manifests) and after each step, to two places — a ConfigMap
 * in the etcd namespace and a local file — so `--resume` and `--abort` work after a crash of the
 * plugin, of the machine it ran on, or of the API server.
 */
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { PdbRecord, QuiesceTarget, RestorePlan } from './plan.js';

/** Name of the journal ConfigMap in the etcd namespace. */
export const JOURNAL_CONFIGMAP = 'kubectl-etcd-restore-journal';

/** Everything needed to resume or roll back a restore. */
export interface JournalState {
  version: 1;
  stamp: string;
  namespace: string;
  workload: string;
  snapshot: { path: string; sha256: string; revision: number; totalKey: number };
  /** etcd replicas before the restore. */
  etcdReplicas: number;
  quiesce: QuiesceTarget[];
  pdbs: PdbRecord[];
  /** Step ids, in plan order, that have completed. */
  done: string[];
  phase: 'running' | 'aborting';
  /** The whole plan, so --resume and --abort work even when the etcd pods are gone. */
  plan: RestorePlan;
  startedAt: string;
  updatedAt: string;
}

/** Somewhere a journal can be kept. */
export interface JournalStore {
  load(): Promise<JournalState | undefined>;
  save(state: JournalState): Promise<void>;
  remove(): Promise<void>;
  describe(): string;
}

/** The local copy: a JSON file written to a temporary name, fsynced and renamed; mode 0600. */
export function fileJournalStore(path: string): JournalStore {
  return {
    describe: () => path,
    async load() {
      try {
        return JSON.parse(await readFile(path, 'utf8')) as JournalState;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
      }
    },
    async save(state) {
      await mkdir(dirname(path), { recursive: true, mode: 0o700 });
      const tmp = `${path}.tmp`;
      const fh = await open(tmp, 'w', 0o600);
      try {
        await fh.writeFile(JSON.stringify(state, null, 2) + '\n');
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, path);
    },
    async remove() {
      await rm(path, { force: true });
    },
  };
}

/** The ConfigMap operations the cluster copy needs. */
export interface ConfigMapAccess {
  readConfigMap(namespace: string, name: string): Promise<Record<string, string> | undefined>;
  writeConfigMap(namespace: string, name: string, data: Record<string, string>, labels: Record<string, string>): Promise<void>;
  deleteConfigMap(namespace: string, name: string): Promise<void>;
}

/** The cluster copy: a ConfigMap beside etcd, so another machine can resume. */
export function configMapJournalStore(api: ConfigMapAccess, namespace: string): JournalStore {
  return {
    describe: () => `configmap "${JOURNAL_CONFIGMAP}" in namespace "${namespace}"`,
    async load() {
      const data = await api.readConfigMap(namespace, JOURNAL_CONFIGMAP);
      return data?.['journal.json'] ? (JSON.parse(data['journal.json']) as JournalState) : undefined;
    },
    async save(state) {
      await api.writeConfigMap(namespace, JOURNAL_CONFIGMAP, { 'journal.json': JSON.stringify(state, null, 2) }, {
        'app.kubernetes.io/managed-by': 'kubectl-etcd',
      });
    },
    async remove() {
      await api.deleteConfigMap(namespace, JOURNAL_CONFIGMAP);
    },
  };
}

/** Keeps both copies in step; reads prefer the copy with more progress. */
export class Journal {
  constructor(private readonly stores: JournalStore[], private readonly now: () => Date) {}

  /** The newest state found in any store, or undefined when no restore is in progress. */
  async load(): Promise<JournalState | undefined> {
    const states: JournalState[] = [];
    for (const store of this.stores) {
      const s = await store.load().catch(() => undefined);
      if (s) states.push(s);
    }
    return states.sort((a, b) => b.updatedAt.localeCompare(a.updatedAt))[0];
  }

  /** Writes the state everywhere; fails only if no store took it. */
  async save(state: JournalState): Promise<void> {
    state.updatedAt = this.now().toISOString();
    const errors: unknown[] = [];
    for (const store of this.stores) await store.save(state).catch((e) => errors.push(e));
    if (errors.length === this.stores.length) throw errors[0];
  }

  /** Marks a step done and saves. */
  async markDone(state: JournalState, stepId: string): Promise<void> {
    if (!state.done.includes(stepId)) state.done.push(stepId);
    await this.save(state);
  }

  /** Removes every copy (the restore finished or was rolled back). */
  async remove(): Promise<void> {
    for (const store of this.stores) await store.remove().catch(() => undefined);
  }

  /** Where the journal is kept, for messages. */
  describe(): string {
    return this.stores.map((s) => s.describe()).join(' and ');
  }
}
