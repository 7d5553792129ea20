/**
 * PersistentVolume controller and local provisioner: binds claims to PVs, provisions
 * `pvc-<claim uid>` local PVs on the consuming pod's node, and reclaims PVs whose claim is gone.
 *
 * Differs from the real PV controller + external provisioner: every class behaves as
 * WaitForFirstConsumer (a claim binds only once a scheduled pod uses it, or the claim carries
 * the volume.kubernetes.io/selected-node annotation); only the "sim.local/local" provisioner
 * exists; Recycle is treated as Retain. Reclaim policy Delete works as with a real provisioner:
 * once the claim is gone the PV turns Released, its storage (the loop-mounted image and its
 * directory) is destroyed with the data on it, then the PV object is deleted (the pv-protection
 * finalizer goes once it is not Bound; controllers/protection.ts).
 */
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';
import { errLine, statusCode, type ClusterApi } from './api.js';
import type { Caches } from './caches.js';
import type { EventRecorder } from './events.js';
import type { LogFn } from './loop.js';
import { clone, isFinished, isTerminating } from './objects.js';
import { withHostnameLabel } from './scheduling.js';
import { destroyLocalVolume } from '../kubelet/localpv.js';
import { bestVolumeFor, claimClass, DEFAULT_STORAGE_CLASS, PROVISIONER, provisionedVolume } from './volumes.js';

/** Everything the PV binder needs; `dir` is the cluster directory (DIR of `sim up`). */
export interface PvBinderDeps {
  api: ClusterApi;
  caches: Caches;
  events: EventRecorder;
  log: LogFn;
  dir: string;
}

/** The default StorageClass the controller-manager creates at start when it is missing. */
export function defaultStorageClass(): V1StorageClass {
  return {
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: { name: DEFAULT_STORAGE_CLASS, annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } },
    provisioner: PROVISIONER,
    reclaimPolicy: 'Delete',
    volumeBindingMode: 'WaitForFirstConsumer',
  };
}

/** Returns the PV binder's sync function. */
export function makePvBinder({ api, caches, events, log, dir }: PvBinderDeps): () => Promise<void> {
  let classEnsured = false;

  async function ensureDefaultClass(): Promise<void> {
    if (classEnsured || !caches.classes.served) return;
    if (!caches.classes.get('', DEFAULT_STORAGE_CLASS)) {
      try {
        await api.create(defaultStorageClass());
      } catch (err) {
        if (statusCode(err) !== 409) throw err;
      }
    }
    classEnsured = true;
  }

  /** The node the claim must live on: a selected-node annotation or a scheduled pod using it. */
  function consumerNode(claim: V1PersistentVolumeClaim): string | undefined {
    const selected = claim.metadata?.annotations?.['volume.kubernetes.io/selected-node'];
    if (selected) return selected;
    const ns = claim.metadata?.namespace;
    const pod = caches.pods
      .list(ns)
      .find(
        (p) =>
          p.spec?.nodeName &&
          !isFinished(p) &&
          (p.spec.volumes ?? []).some((v) => v.persistentVolumeClaim?.claimName === claim.metadata?.name),
      );
    return pod?.spec?.nodeName;
  }

  async function bindClaimSide(claim: V1PersistentVolumeClaim, pv: V1PersistentVolume): Promise<void> {
    const ns = claim.metadata?.namespace;
    let current = claim;
    if (claim.spec?.volumeName !== pv.metadata?.name || claim.spec?.storageClassName === undefined) {
      current = clone(claim);
      current.spec = { ...current.spec, volumeName: pv.metadata?.name, storageClassName: claimClass(claim) };
      current.metadata = {
        ...current.metadata,
        annotations: { ...current.metadata?.annotations, 'pv.kubernetes.io/bind-completed': 'yes' },
      };
      current = await api.replace(current);
    }
    if (current.status?.phase !== 'Bound') {
      const withStatus = clone(current);
      withStatus.apiVersion = 'v1';
      withStatus.kind = 'PersistentVolumeClaim';
      withStatus.status = {
        ...withStatus.status,
        phase: 'Bound',
        capacity: pv.spec?.capacity,
        accessModes: pv.spec?.accessModes,
      };
      await api.replaceStatus(withStatus);
      log(`pv-binder: claim "${ns}/${claim.metadata?.name}" bound to "${pv.metadata?.name}"`);
    }
  }

  async function claimVolume(claim: V1PersistentVolumeClaim, pv: V1PersistentVolume): Promise<V1PersistentVolume> {
    const ref = pv.spec?.claimRef;
    if (ref?.uid === claim.metadata?.uid) return pv;
    const updated = clone(pv);
    updated.spec = {
      ...updated.spec,
      claimRef: {
        apiVersion: 'v1',
        kind: 'PersistentVolumeClaim',
        namespace: claim.metadata?.namespace,
        name: claim.metadata?.name,
        uid: claim.metadata?.uid,
        resourceVersion: claim.metadata?.resourceVersion,
      },
    };
    return api.replace(updated);
  }

  async function syncClaim(claim: V1PersistentVolumeClaim): Promise<void> {
    if (isTerminating(claim)) return;
    const ns = claim.metadata?.namespace ?? 'default';
    const name = claim.metadata?.name ?? '';
    const volumeName = claim.spec?.volumeName;
    if (volumeName) {
      const pv = caches.volumes.get('', volumeName);
      if (!pv) {
        if (claim.status?.phase === 'Bound') {
          const lost = clone(claim);
          lost.status = { ...lost.status, phase: 'Lost' };
          await api.replaceStatus(lost);
          events.record(claim, 'Warning', 'ClaimLost', `Bound claim has lost reference to PersistentVolume. Data on the volume is lost!`);
        }
        return;
      }
      const ref = pv.spec?.claimRef;
      if (ref && (ref.name !== name || ref.namespace !== ns || (ref.uid && ref.uid !== claim.metadata?.uid))) return;
      await bindClaimSide(claim, await claimVolume(claim, pv));
      return;
    }
    // A PV already pointing at this claim (pre-bound by its creator, or our own earlier step).
    const preBound = caches.volumes
      .list()
      .find((pv) => pv.spec?.claimRef?.name === name && pv.spec.claimRef.namespace === ns &&
        (!pv.spec.claimRef.uid || pv.spec.claimRef.uid === claim.metadata?.uid) && !isTerminating(pv));
    if (preBound) {
      await bindClaimSide(claim, await claimVolume(claim, preBound));
      return;
    }
    const nodeName = consumerNode(claim);
    if (!nodeName) {
      if (claim.status?.phase !== 'Pending') {
        const pending = clone(claim);
        pending.status = { ...pending.status, phase: 'Pending' };
        await api.replaceStatus(pending);
      }
      events.record(claim, 'Normal', 'WaitForFirstConsumer', 'waiting for first consumer to be created before binding');
      return;
    }
    const nodeObj = caches.nodes.get('', nodeName);
    const existing = bestVolumeFor(claim, caches.volumes.list(), nodeObj ? withHostnameLabel(nodeObj) : undefined);
    if (existing) {
      await bindClaimSide(claim, await claimVolume(claim, existing));
      return;
    }
    const className = claimClass(claim);
    const cls = caches.classes.get('', className);
    const provisionable = cls ? cls.provisioner === PROVISIONER : className === DEFAULT_STORAGE_CLASS;
    if (!provisionable) {
      events.record(claim, 'Normal', 'ExternalProvisioning', `no volume plugin matched; class "${className}" has no provisioner the simulator knows`);
      return;
    }
    const hostname = (nodeObj ? withHostnameLabel(nodeObj) : undefined)?.metadata?.labels?.['kubernetes.io/hostname'] ?? nodeName;
    const pv = provisionedVolume(claim, nodeName, hostname, dir, cls?.reclaimPolicy ?? 'Delete');
    let created: V1PersistentVolume;
    try {
      created = await api.create(pv);
    } catch (err) {
      if (statusCode(err) !== 409) throw err;
      created = caches.volumes.get('', pv.metadata?.name ?? '') ?? pv;
    }
    events.record(claim, 'Normal', 'ProvisioningSucceeded', `Successfully provisioned volume ${pv.metadata?.name}`);
    log(`pv-binder: provisioned "${pv.metadata?.name}" on "${nodeName}" for claim "${ns}/${name}"`);
    await bindClaimSide(claim, created);
  }

  async function syncVolume(pv: V1PersistentVolume): Promise<void> {
    if (isTerminating(pv)) return;
    const ref = pv.spec?.claimRef;
    let phase: string;
    if (!ref) {
      phase = 'Available';
    } else {
      const claim = caches.claims.get(ref.namespace ?? '', ref.name ?? '');
      const claimMatches = claim && (!ref.uid || claim.metadata?.uid === ref.uid);
      if (claimMatches) {
        phase = claim.spec?.volumeName === pv.metadata?.name ? 'Bound' : pv.status?.phase ?? 'Available';
        if (!ref.uid) phase = pv.status?.phase ?? 'Available'; // pre-bound by name: the claim side binds it
      } else if (!ref.uid) {
        phase = 'Available'; // pre-bound to a claim that does not exist yet
      } else {
        // The claim looks gone; confirm before reclaiming, the claim cache may lag the PV cache.
        const live = await api.read('v1', 'PersistentVolumeClaim', ref.namespace, ref.name ?? '');
        if (live && live.metadata?.uid === ref.uid) return;
        const policy = pv.spec?.persistentVolumeReclaimPolicy ?? 'Retain';
        if (policy === 'Delete') {
          if (pv.status?.phase !== 'Released') {
            const released = clone(pv);
            released.status = { ...released.status, phase: 'Released' };
            await api.replaceStatus(released);
          }
          const path = pv.spec?.local?.path;
          if (path && pv.metadata?.annotations?.['pv.kubernetes.io/provisioned-by'] === PROVISIONER) await destroyLocalVolume(path);
          await api.remove(pv, { uid: pv.metadata?.uid });
          log(`pv-binder: deleted "${pv.metadata?.name}" and its data (claim "${ref.namespace}/${ref.name}" is gone, policy Delete)`);
          return;
        }
        phase = 'Released';
      }
    }
    if (pv.status?.phase !== phase) {
      const updated = clone(pv);
      updated.status = { ...updated.status, phase };
      await api.replaceStatus(updated);
    }
  }

  return async function syncVolumes(): Promise<void> {
    await ensureDefaultClass();
    let firstError: unknown;
    const run = async (what: string, fn: () => Promise<void>): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        const code = statusCode(err);
        if (code === 409 || code === 404) return; // stale cache; next pass sees the fresh object
        log(`pv-binder: ${what}: ${errLine(err)}`);
        firstError ??= err;
      }
    };
    for (const claim of caches.claims.list()) {
      await run(`claim "${claim.metadata?.namespace}/${claim.metadata?.name}"`, () => syncClaim(claim));
    }
    for (const pv of caches.volumes.list()) {
      await run(`volume "${pv.metadata?.name}"`, () => syncVolume(pv));
    }
    if (firstError) throw firstError;
  };
}
