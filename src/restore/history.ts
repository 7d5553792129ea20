/**
 * The record of verified restores: the journal is removed once a restore finishes, so before it
 * goes, the restore's stamp is added to a ConfigMap beside etcd
 * (`kubectl-etcd-restore-history-<workload>`, without the journal label: it never makes a restore
 * look in progress). A prune deletes only kept copies whose stamp is recorded here.
 */
import { PluginError } from '../errors.js';
import type { ConfigMapAccess, JournalState } from './journal.js';
import { MANAGED_BY } from './manifests.js';

/** Prefix of the history ConfigMaps; one per etcd workload. */
export const HISTORY_CONFIGMAP_PREFIX = 'kubectl-etcd-restore-history-';

/** One verified restore. */
export interface VerifiedRestore {
  stamp: string;
  snapshot: string;
  revision: number;
  verifiedAt: string;
}

const KEY = 'verified.json';

/** Name of the history ConfigMap of one workload. */
export function historyConfigMapName(workload: string): string {
  return `${HISTORY_CONFIGMAP_PREFIX}${workload}`;
}

/** The verified restores of a workload, oldest first; none when there is no history yet. */
export async function loadVerifiedRestores(api: ConfigMapAccess, namespace: string, workload: string): Promise<VerifiedRestore[]> {
  const name = historyConfigMapName(workload);
  const data = await api.readConfigMap(namespace, name);
  if (!data?.[KEY]) return [];
  try {
    const list = JSON.parse(data[KEY]) as unknown;
    if (!Array.isArray(list)) throw new Error('not a list');
    return list.filter((e): e is VerifiedRestore => !!e && typeof (e as VerifiedRestore).stamp === 'string');
  } catch {
    throw new PluginError(`configmap "${name}" in namespace "${namespace}" does not hold a list of verified restores`, `check it (kubectl get configmap ${name} -n ${namespace} -o yaml); nothing was changed`);
  }
}

/** Adds a finished, verified restore to the workload's history (once per stamp). */
export async function recordVerifiedRestore(api: ConfigMapAccess, state: JournalState, now: Date): Promise<void> {
  const list = await loadVerifiedRestores(api, state.namespace, state.workload);
  if (list.some((e) => e.stamp === state.stamp)) return;
  list.push({ stamp: state.stamp, snapshot: state.snapshot.path, revision: state.snapshot.revision, verifiedAt: now.toISOString() });
  await api.writeConfigMap(state.namespace, historyConfigMapName(state.workload), { [KEY]: JSON.stringify(list, null, 2) }, { ...MANAGED_BY });
}
