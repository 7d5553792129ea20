/**
 * The restore journal: what a restore has done and what it must put back. It is written before
 * each change (replica counts, PDB manifests) and after each step, to two places — a ConfigMap
 * in the etcd namespace and a local file — so `--resume` and `--abort` work after a crash of the
 * plugin, of the machine it ran on, or of the API server.
 */
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { PluginError } from '../errors.js';
import type { PdbRecord, QuiesceTarget, RestorePlan } from './plan.js';

/** Prefix of the journal ConfigMaps; one per etcd workload: `kubectl-etcd-restore-journal-<workload>`. */
export const JOURNAL_CONFIGMAP_PREFIX = 'kubectl-etcd-restore-journal-';

/** Label every journal ConfigMap carries (how `--resume` finds them). */
export const JOURNAL_LABELS = { 'app.kubernetes.io/managed-by': 'kubectl-etcd', 'kubectl-etcd/restore-journal': 'true' } as const;

/** Name of the journal ConfigMap of one workload. */
export function journalConfigMapName(workload: string): string {
  return `${JOURNAL_CONFIGMAP_PREFIX}${workload}`;
}

/** The journal format this version writes and reads. */
export const JOURNAL_VERSION = 4;
/** The format of a kubeadm restore's journal (its plan is a KubeadmRestorePlan): an older plugin refuses it instead of reading it as a StatefulSet's. */
export const KUBEADM_JOURNAL_VERSION = 5;

/** Everything needed to resume or roll back a restore. */
export interface JournalState<P = RestorePlan> {
  /** 2 since steps are typed (steps.ts), 3 since a restore has its own cluster token, 4 since utility pods inherit from their member (security context, tolerations, pinning by node name); older journals are refused with a hint. */
  version: typeof JOURNAL_VERSION | typeof KUBEADM_JOURNAL_VERSION;
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
  /** finished: verified and done, only the journal removal was interrupted. */
  phase: 'running' | 'aborting' | 'finished';
  /** The whole plan, so --resume and --abort work even when the etcd pods are gone. */
  plan: P;
  /** kubeadm: the number of the newest run of the agents (each run writes a new static pod file, so the kubelet starts it again). */
  attempt?: number;
  /** kubeadm: each node's current agent run (`restore-N`, `rollback-N`): an outcome of another run is not this one's. */
  runs?: Record<string, string>;
  startedAt: string;
  updatedAt: string;
}

/** Somewhere a journal can be kept. */
export interface JournalStore<P = RestorePlan> {
  /** The local file (under the user's own state dir) or the cluster's ConfigMap. */
  readonly where?: 'local' | 'cluster';
  /** The state, undefined when there is none; throws when it cannot tell (unreadable, corrupt). */
  load(): Promise<JournalState<P> | undefined>;
  save(state: JournalState<P>): Promise<void>;
  remove(): Promise<void>;
  describe(): string;
}

/** The local copy: a JSON file written to a temporary name, fsynced and renamed; mode 0600. */
export function fileJournalStore<P = RestorePlan>(path: string): JournalStore<P> {
  return {
    where: 'local',
    describe: () => `"${path}"`,
    async load() {
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') return undefined;
        throw new PluginError(`cannot read the restore journal "${path}" (${code ?? (err as Error).message})`, 'a restore may be in progress: fix the file\'s permissions and run again');
      }
      return parseJournal<P>(text, `"${path}"`);
    },
    async save(state) {
      await mkdir(dirname(path), { recursive: true, mode: 0o700 });
      // Never follow a link or reuse a file someone else left at the temporary name: remove it and
      // create ours exclusively.
      const tmp = `${path}.tmp`;
      await rm(tmp, { force: true });
      const fh = await open(tmp, 'wx', 0o600);
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
  /** Names of the ConfigMaps with these labels (a label selector string). */
  listConfigMaps(namespace: string, labelSelector: string): Promise<string[]>;
  readConfigMap(namespace: string, name: string): Promise<Record<string, string> | undefined>;
  writeConfigMap(namespace: string, name: string, data: Record<string, string>, labels: Record<string, string>): Promise<void>;
  deleteConfigMap(namespace: string, name: string): Promise<void>;
}

/** Parses a journal; a copy that is not a journal is an error, never "no restore in progress". */
function parseJournal<P>(text: string, where: string): JournalState<P> {
  let state: JournalState<P>;
  try {
    state = JSON.parse(text) as JournalState<P>;
  } catch {
    throw new PluginError(`the restore journal ${where} is not valid JSON`, 'a restore may be in progress: check the file against the cluster, and move it aside only once no restore is running');
  }
  const version = (state as { version?: unknown } | null)?.version;
  if (version === 1 || version === 2 || version === 3) {
    throw new PluginError(`the restore journal ${where} was written by an older kubectl-etcd (journal version ${version})`, 'finish it with that version (`kubectl etcd restore --resume` or `--abort`), then restore again with this one');
  }
  const kubeadm = (state as { plan?: { kind?: unknown } } | null)?.plan?.kind === 'kubeadm';
  if (!state || typeof state !== 'object' || version !== (kubeadm ? KUBEADM_JOURNAL_VERSION : JOURNAL_VERSION) || !state.plan || !Array.isArray(state.done)) {
    throw new PluginError(`the restore journal ${where} is not a kubectl-etcd journal of version ${kubeadm ? KUBEADM_JOURNAL_VERSION : JOURNAL_VERSION}`, 'a restore may be in progress: check it, and move it aside only once no restore is running');
  }
  return state;
}

/** The cluster copy: a ConfigMap per workload beside etcd, so another machine can resume. */
export function configMapJournalStore<P = RestorePlan>(api: ConfigMapAccess, namespace: string, workload: string): JournalStore<P> {
  const name = journalConfigMapName(workload);
  const where = `configmap "${name}" in namespace "${namespace}"`;
  return {
    where: 'cluster',
    describe: () => where,
    async load() {
      let data: Record<string, string> | undefined;
      try {
        data = await api.readConfigMap(namespace, name);
      } catch (err) {
        throw new PluginError(
          `cannot read the restore journal in ${where}: ${(err as Error).message.split('\n')[0]}`,
          `a restore may be in progress: fix access (kubectl auth can-i get configmaps -n ${namespace}) or the connection and run again`,
        );
      }
      if (!data) return undefined;
      if (!data['journal.json']) throw new PluginError(`${where} has no journal.json`, `check it; delete it only once no restore of "${workload}" is running`);
      const state = parseJournal<P>(data['journal.json'], `in ${where}`);
      if (state.workload !== workload || state.namespace !== namespace) {
        throw new PluginError(`the restore journal in ${where} is for ${state.namespace}/${state.workload}`, 'someone changed it; check it, and delete it only once no restore is running');
      }
      return state;
    },
    async save(state) {
      await api.writeConfigMap(namespace, name, { 'journal.json': JSON.stringify(state, null, 2) }, { ...JOURNAL_LABELS });
    },
    async remove() {
      await api.deleteConfigMap(namespace, name);
    },
  };
}

/** Workloads with a journal ConfigMap in the namespace; throws when they cannot be listed. */
export async function workloadsWithClusterJournal(api: ConfigMapAccess, namespace: string): Promise<string[]> {
  const selector = Object.entries(JOURNAL_LABELS).map(([k, v]) => `${k}=${v}`).join(',');
  let names: string[];
  try {
    names = await api.listConfigMaps(namespace, selector);
  } catch (err) {
    throw new PluginError(
      `cannot list restore journals (configmaps "${JOURNAL_CONFIGMAP_PREFIX}*") in namespace "${namespace}": ${(err as Error).message.split('\n')[0]}`,
      `a restore may be in progress: fix access (kubectl auth can-i list configmaps -n ${namespace}) or the connection and run again`,
    );
  }
  return names.filter((n) => n.startsWith(JOURNAL_CONFIGMAP_PREFIX)).map((n) => n.slice(JOURNAL_CONFIGMAP_PREFIX.length)).sort();
}

/** Keeps both copies in step; reads prefer the copy with more progress. */
export class Journal<P = RestorePlan> {
  /** The save in progress: saves run one at a time (members' steps finish together, and two writers of one file or ConfigMap would race). */
  private last: Promise<unknown> = Promise.resolve();

  constructor(private readonly stores: Array<JournalStore<P>>, private readonly now: () => Date) {}

  /**
   * The newest state found in any store, or undefined when no restore is in progress. A copy that
   * cannot be read (Forbidden, unreachable, corrupt) throws: it must never pass for "no restore".
   */
  async load(): Promise<JournalState<P> | undefined> {
    const states = (await this.loadEach()).flatMap((c) => (c.state ? [c.state] : []));
    return states.sort((a, b) => b.updatedAt.localeCompare(a.updatedAt))[0];
  }

  /** Every store's copy, in store order; throws when one cannot be read. */
  async loadEach(): Promise<Array<{ store: JournalStore<P>; state?: JournalState<P> }>> {
    const copies: Array<{ store: JournalStore<P>; state?: JournalState<P> }> = [];
    for (const store of this.stores) copies.push({ store, state: await store.load() });
    return copies;
  }

  /** Writes the state everywhere, after any save still running; fails only if no store took it. */
  save(state: JournalState<P>): Promise<void> {
    const run = this.last.catch(() => undefined).then(async () => {
      state.updatedAt = this.now().toISOString();
      const errors: unknown[] = [];
      for (const store of this.stores) await store.save(state).catch((e) => errors.push(e));
      if (errors.length === this.stores.length) throw errors[0];
    });
    this.last = run;
    return run;
  }

  /** Marks a step done and saves. */
  async markDone(state: JournalState<P>, stepId: string): Promise<void> {
    if (!state.done.includes(stepId)) state.done.push(stepId);
    await this.save(state);
  }

  /**
   * Removes every copy (the restore finished or was rolled back). The cluster copy goes first, so
   * an interruption or a failure in between leaves the local copy, the trusted one. Returns the
   * copies left (the failed one with its reason): left behind, they make the next restore refuse.
   */
  async remove(): Promise<string[]> {
    const order = [...this.stores].sort((a, b) => Number(a.where === 'local') - Number(b.where === 'local'));
    for (const [i, store] of order.entries()) {
      try {
        await store.remove();
      } catch (err) {
        // Stop here: the copies after it (the local one last) stay, so the trusted copy is never the one lost.
        return order.slice(i).map((s, j) => (j === 0 ? `${s.describe()} (${(err as Error).message.split('\n')[0]})` : s.describe()));
      }
    }
    return [];
  }

  /** Where the journal is kept, for messages. */
  describe(): string {
    return this.stores.map((s) => s.describe()).join(' and ');
  }
}
