/**
 * Pure PersistentVolume logic: quantities, which PV may bind which claim, and the manifest of a
 * provisioned local PV.
 *
 * Differs from the real PV controller: a claim without storageClassName is treated as asking for
 * the default class "standard" (retroactive default-class assignment); quantities are compared as
 * bytes in floating point; volumeMode Block is matched but never provisioned differently.
 */
import type { V1Node, V1PersistentVolume, V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { matchesLabelSelector, matchesNodeSelectorTerms } from './selectors.js';

/** The class every claim without storageClassName gets, and that the controller-manager creates. */
export const DEFAULT_STORAGE_CLASS = 'standard';
/** Provisioner name of the simulator's local-volume provisioner. */
export const PROVISIONER = 'sim.local/local';

const SUFFIX: Record<string, number> = {
  '': 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};

/** A resource.Quantity string ("1Gi", "500M", "1e3", 1024) as a number; NaN when malformed. */
export function parseQuantity(q: string | number | undefined): number {
  if (q === undefined) return NaN;
  if (typeof q === 'number') return q;
  const m = /^([+-]?\d+(?:\.\d+)?|[+-]?\.\d+)(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E))?$/.exec(q.trim());
  if (!m) return NaN;
  const base = Number(m[1]);
  if (m[2]) return base * 10 ** Number(m[2].slice(1));
  return base * SUFFIX[m[3] ?? ''];
}

/** The storage class a claim asks for ('' means "no class"). */
export function claimClass(claim: V1PersistentVolumeClaim): string {
  const legacy = claim.metadata?.annotations?.['volume.beta.kubernetes.io/storage-class'];
  return claim.spec?.storageClassName ?? legacy ?? DEFAULT_STORAGE_CLASS;
}

/** Whether `pv` could bind `claim` (ignoring node placement). */
export function volumeMatchesClaim(pv: V1PersistentVolume, claim: V1PersistentVolumeClaim): boolean {
  if (pv.metadata?.deletionTimestamp) return false;
  const ref = pv.spec?.claimRef;
  if (ref) {
    if (ref.name !== claim.metadata?.name || ref.namespace !== claim.metadata?.namespace) return false;
    if (ref.uid && ref.uid !== claim.metadata?.uid) return false;
  } else if (pv.status?.phase && pv.status.phase !== 'Available' && pv.status.phase !== 'Pending') {
    return false;
  }
  if (claim.spec?.volumeName && claim.spec.volumeName !== pv.metadata?.name) return false;
  if ((pv.spec?.storageClassName ?? '') !== claimClass(claim)) return false;
  const want = parseQuantity(claim.spec?.resources?.requests?.storage as string | undefined);
  const have = parseQuantity(pv.spec?.capacity?.storage as string | undefined);
  if (!(have >= (Number.isNaN(want) ? 0 : want))) return false;
  const modes = pv.spec?.accessModes ?? [];
  if (!(claim.spec?.accessModes ?? []).every((m) => modes.includes(m))) return false;
  if ((pv.spec?.volumeMode ?? 'Filesystem') !== (claim.spec?.volumeMode ?? 'Filesystem')) return false;
  if (claim.spec?.selector && !matchesLabelSelector(claim.spec.selector, pv.metadata?.labels)) return false;
  return true;
}

/** Whether a PV is reachable from `node` (no required node affinity, or it matches). */
export function volumeFitsNode(pv: V1PersistentVolume, node: V1Node): boolean {
  const terms = pv.spec?.nodeAffinity?.required?.nodeSelectorTerms;
  return !terms || matchesNodeSelectorTerms(terms, node);
}

/** The smallest PV among `pvs` that can bind `claim` on `node`; a PV pre-bound to the claim wins. */
export function bestVolumeFor(
  claim: V1PersistentVolumeClaim,
  pvs: V1PersistentVolume[],
  node: V1Node | undefined,
): V1PersistentVolume | undefined {
  const fitting = pvs.filter((pv) => volumeMatchesClaim(pv, claim) && (!node || volumeFitsNode(pv, node)));
  const preBound = fitting.find((pv) => pv.spec?.claimRef);
  if (preBound) return preBound;
  return fitting.sort(
    (a, b) => parseQuantity(a.spec?.capacity?.storage as string) - parseQuantity(b.spec?.capacity?.storage as string),
  )[0];
}

/**
 * The PV the provisioner creates for `claim` on `node`, with its storage under `dir`; its node
 * affinity names the node's `kubernetes.io/hostname` label value (`hostname`), which need not be
 * the node's name, as local volume provisioners write it.
 */
export function provisionedVolume(
  claim: V1PersistentVolumeClaim,
  node: string,
  hostname: string,
  dir: string,
  reclaimPolicy: string,
): V1PersistentVolume {
  const name = `pvc-${claim.metadata?.uid}`;
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: {
      name,
      annotations: { 'pv.kubernetes.io/provisioned-by': PROVISIONER },
      finalizers: [],
    },
    spec: {
      capacity: { storage: (claim.spec?.resources?.requests?.storage as string | undefined) ?? '1Gi' },
      accessModes: claim.spec?.accessModes?.length ? claim.spec.accessModes : ['ReadWriteOnce'],
      persistentVolumeReclaimPolicy: reclaimPolicy,
      storageClassName: claimClass(claim),
      volumeMode: claim.spec?.volumeMode ?? 'Filesystem',
      local: { path: `${dir}/nodes/${node}/volumes/${name}` },
      nodeAffinity: {
        required: {
          nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [hostname] }] }],
        },
      },
      claimRef: {
        apiVersion: 'v1',
        kind: 'PersistentVolumeClaim',
        namespace: claim.metadata?.namespace,
        name: claim.metadata?.name,
        uid: claim.metadata?.uid,
        resourceVersion: claim.metadata?.resourceVersion,
      },
    },
  };
}
