/**
 * The StatefulSet controller: stable pods `<sts>-<ordinal>`, their claims from
 * volumeClaimTemplates, ordered or parallel scaling, RollingUpdate / OnDelete, and status.
 *
 * Differs from the real controller: no adoption or release of pods by label (only pods whose
 * controller ownerReference is the set are managed), no minReadySeconds (available = ready), no
 * maxUnavailable for rolling updates (one pod at a time), claims that exist but belong to
 * someone else are used as they are; ControllerRevisions are written when the API server serves
 * them (revision numbers only grow, rollback to an old template reuses its hash but not its number).
 *
 * persistentVolumeClaimRetentionPolicy works as the real controller's ownerReferences do
 * (pkg/controller/statefulset/stateful_set_utils.go: isClaimOwnerUpToDate,
 * updateClaimOwnerRefForSetAndPod; KEP-1847): whenDeleted=Delete makes the set a controller owner
 * of every claim; whenScaled=Delete makes a condemned pod the owner of its claims right before the
 * pod is deleted, so the garbage collector deletes them once the pod is gone (pvc-protection holds
 * them while any pod still uses them, and a Delete reclaim policy destroys the data). The refs of
 * every existing pod's claims follow the policy on each pass, so a change to Retain takes the pod
 * refs off the claims of pods that still exist, and only those.
 */
import type {
  V1ControllerRevision,
  V1PersistentVolumeClaim,
  V1Pod,
  V1PodTemplateSpec,
  V1StatefulSet,
  V1StatefulSetStatus,
} from '@kubernetes/client-node';
import { errLine, statusCode, type ClusterApi } from './api.js';
import type { Caches } from './caches.js';
import type { EventRecorder } from './events.js';
import type { LogFn } from './loop.js';
import {
  clone,
  controllerRef,
  hasFields,
  isControlledBy,
  isFinished,
  isRunningAndReady,
  isTerminating,
  shortHash,
  stableJson,
} from './objects.js';

/** Everything the StatefulSet controller needs. */
export interface StatefulSetDeps {
  api: ClusterApi;
  caches: Caches;
  events: EventRecorder;
  log: LogFn;
}

const REVISION_LABEL = 'controller-revision-hash';

/** The revision name (`<sts>-<hash>`) of a pod template. */
export function revisionName(setName: string, template: V1PodTemplateSpec | undefined): string {
  return `${setName}-${shortHash(stableJson(template ?? {}))}`;
}

/** The claim name for one template and ordinal: `<template>-<sts>-<ordinal>`. */
export function claimName(templateName: string, setName: string, ordinal: number): string {
  return `${templateName}-${setName}-${ordinal}`;
}

/** The pod the set runs at `ordinal` with `template`, labelled with `revision`. */
export function statefulSetPod(set: V1StatefulSet, ordinal: number, template: V1PodTemplateSpec, revision: string): V1Pod {
  const setName = set.metadata?.name ?? '';
  const name = `${setName}-${ordinal}`;
  const t = clone(template);
  const volumes = [...(t.spec?.volumes ?? [])];
  for (const vct of set.spec?.volumeClaimTemplates ?? []) {
    const vname = vct.metadata?.name ?? '';
    const volume = { name: vname, persistentVolumeClaim: { claimName: claimName(vname, setName, ordinal) } };
    const i = volumes.findIndex((v) => v.name === vname);
    if (i >= 0) volumes[i] = volume;
    else volumes.push(volume);
  }
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: set.metadata?.namespace,
      labels: {
        ...t.metadata?.labels,
        'statefulset.kubernetes.io/pod-name': name,
        'apps.kubernetes.io/pod-index': String(ordinal),
        [REVISION_LABEL]: revision,
      },
      ...(t.metadata?.annotations ? { annotations: t.metadata.annotations } : {}),
      ownerReferences: [controllerRef(set)],
    },
    spec: {
      ...t.spec,
      containers: t.spec?.containers ?? [],
      volumes,
      hostname: name,
      ...(set.spec?.serviceName ? { subdomain: set.spec.serviceName } : {}),
    },
  };
}

/** Returns the StatefulSet controller's sync function. */
export function makeStatefulSetController({ api, caches, events, log }: StatefulSetDeps): () => Promise<void> {
  async function ensureRevision(set: V1StatefulSet, name: string): Promise<void> {
    if (!caches.revisions.served) return;
    const ns = set.metadata?.namespace ?? 'default';
    const owned = caches.revisions.list(ns).filter((r) => isControlledBy(r, set.metadata?.uid));
    if (!owned.some((r) => r.metadata?.name === name)) {
      const revision: V1ControllerRevision = {
        apiVersion: 'apps/v1',
        kind: 'ControllerRevision',
        metadata: {
          name,
          namespace: ns,
          labels: { ...set.spec?.selector?.matchLabels, 'controller.kubernetes.io/hash': name.slice(name.lastIndexOf('-') + 1) },
          ownerReferences: [controllerRef(set)],
        },
        data: { spec: { template: { ...set.spec?.template, $patch: 'replace' } } },
        revision: Math.max(0, ...owned.map((r) => r.revision ?? 0)) + 1,
      };
      try {
        await api.create(revision);
      } catch (err) {
        if (statusCode(err) !== 409) throw err;
      }
    }
    const limit = set.spec?.revisionHistoryLimit ?? 10;
    const keep = new Set([name, set.status?.currentRevision, set.status?.updateRevision]);
    const old = owned.filter((r) => !keep.has(r.metadata?.name)).sort((a, b) => (a.revision ?? 0) - (b.revision ?? 0));
    for (const r of old.slice(0, Math.max(0, old.length - limit))) await api.remove(r);
  }

  function templateOfRevision(set: V1StatefulSet, revision: string): V1PodTemplateSpec | undefined {
    const r = caches.revisions.get(set.metadata?.namespace ?? '', revision);
    const t = (r?.data as { spec?: { template?: V1PodTemplateSpec & { $patch?: string } } } | undefined)?.spec?.template;
    if (!t) return undefined;
    const { $patch: _ignored, ...template } = t;
    return template;
  }

  /** Creates missing claims for `ordinal`; false when one is being deleted (the pod must wait). */
  async function ensureClaims(set: V1StatefulSet, ordinal: number): Promise<boolean> {
    const ns = set.metadata?.namespace ?? 'default';
    const setName = set.metadata?.name ?? '';
    const deleteWithSet = set.spec?.persistentVolumeClaimRetentionPolicy?.whenDeleted === 'Delete';
    for (const vct of set.spec?.volumeClaimTemplates ?? []) {
      const name = claimName(vct.metadata?.name ?? '', setName, ordinal);
      const existing = caches.claims.get(ns, name);
      if (existing) {
        if (isTerminating(existing)) return false;
        continue;
      }
      const claim: V1PersistentVolumeClaim = {
        apiVersion: 'v1',
        kind: 'PersistentVolumeClaim',
        metadata: {
          name,
          namespace: ns,
          labels: { ...vct.metadata?.labels, ...set.spec?.selector?.matchLabels },
          ...(vct.metadata?.annotations ? { annotations: vct.metadata.annotations } : {}),
          ...(deleteWithSet ? { ownerReferences: [controllerRef(set)] } : {}),
        },
        spec: clone(vct.spec ?? {}),
      };
      try {
        await api.create(claim);
        events.record(set, 'Normal', 'SuccessfulCreate', `create Claim ${name} Pod ${setName}-${ordinal} in StatefulSet ${setName} success`);
      } catch (err) {
        if (statusCode(err) !== 409) throw err;
      }
    }
    return true;
  }

  async function createPod(set: V1StatefulSet, ordinal: number, revision: string): Promise<void> {
    const setName = set.metadata?.name ?? '';
    const template = templateOfRevision(set, revision) ?? set.spec?.template ?? {};
    const pod = statefulSetPod(set, ordinal, template, revision);
    try {
      await api.create(pod);
      events.record(set, 'Normal', 'SuccessfulCreate', `create Pod ${pod.metadata?.name} in StatefulSet ${setName} successful`);
    } catch (err) {
      if (statusCode(err) === 409) return;
      // As stateful_pod_control.go records it (a pod that admission refuses: Pod Security, a quota).
      events.record(set, 'Warning', 'FailedCreate', `create Pod ${pod.metadata?.name} in StatefulSet ${setName} failed error: ${errLine(err).replace(/^HTTP \d+: /, '')}`);
      throw err;
    }
  }

  async function deletePod(set: V1StatefulSet, pod: V1Pod): Promise<void> {
    await api.remove(pod, { uid: pod.metadata?.uid });
    events.record(set, 'Normal', 'SuccessfulDelete', `delete Pod ${pod.metadata?.name} in StatefulSet ${set.metadata?.name} successful`);
  }

  async function syncSet(set: V1StatefulSet): Promise<void> {
    if (isTerminating(set)) return;
    const ns = set.metadata?.namespace ?? 'default';
    const setName = set.metadata?.name ?? '';
    const replicas = set.spec?.replicas ?? 1;
    const start = set.spec?.ordinals?.start ?? 0;
    const monotonic = set.spec?.podManagementPolicy !== 'Parallel';
    const strategy = set.spec?.updateStrategy?.type ?? 'RollingUpdate';
    const partition = set.spec?.updateStrategy?.rollingUpdate?.partition ?? 0;
    const updateRevision = revisionName(setName, set.spec?.template);
    const currentRevision = set.status?.currentRevision || updateRevision;
    await ensureRevision(set, updateRevision);

    const pattern = new RegExp(`^${setName.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-(\\d+)$`);
    const byOrdinal = new Map<number, V1Pod>();
    for (const pod of caches.pods.list(ns)) {
      const m = pattern.exec(pod.metadata?.name ?? '');
      if (m && isControlledBy(pod, set.metadata?.uid)) byOrdinal.set(Number(m[1]), pod);
    }
    const valid = (ord: number): boolean => ord >= start && ord < start + replicas;
    const revOf = (pod: V1Pod): string | undefined => pod.metadata?.labels?.[REVISION_LABEL];

    await writeStatus(set, [...byOrdinal.values()], currentRevision, updateRevision, strategy);
    // Claims follow the retention policy for every pod that exists, condemned ones included, before
    // any of them is deleted below.
    for (const [ord, pod] of byOrdinal) await syncClaimOwners(set, ord, pod, !valid(ord));

    // Finished pods are deleted so that they are recreated.
    for (const [ord, pod] of byOrdinal) {
      if (valid(ord) && isFinished(pod) && !isTerminating(pod)) {
        await deletePod(set, pod);
        if (monotonic) return;
      }
    }
    // Create and wait, lowest ordinal first.
    for (let ord = start; ord < start + replicas; ord++) {
      const pod = byOrdinal.get(ord);
      if (!pod) {
        if (!(await ensureClaims(set, ord))) return;
        const useCurrent = strategy === 'RollingUpdate' && currentRevision !== updateRevision && ord < partition;
        await createPod(set, ord, useCurrent ? currentRevision : updateRevision);
        if (monotonic) return;
        continue;
      }
      if (monotonic && (isTerminating(pod) || !isRunningAndReady(pod))) return;
    }
    // Scale down, highest ordinal first.
    const condemned = [...byOrdinal.entries()].filter(([ord]) => !valid(ord)).sort((a, b) => b[0] - a[0]);
    for (const [, pod] of condemned) {
      if (isTerminating(pod)) {
        if (monotonic) return;
        continue;
      }
      await deletePod(set, pod);
      if (monotonic) return;
    }
    if (condemned.length > 0) return;
    // Rolling update, highest ordinal first, one at a time.
    if (strategy !== 'RollingUpdate') return;
    for (let ord = start + replicas - 1; ord >= start + partition; ord--) {
      const pod = byOrdinal.get(ord);
      if (!pod || isTerminating(pod)) return;
      if (revOf(pod) !== updateRevision) {
        await deletePod(set, pod);
        return;
      }
      if (!isRunningAndReady(pod)) return;
    }
  }

  /**
   * Brings the ownerReferences of one pod's claims in line with the retention policy (the real
   * controller's table): the set owns them when whenDeleted=Delete, unless the pod is condemned and
   * whenScaled=Delete, when the pod owns them instead. Refs to this set and this pod are replaced;
   * a claim controlled by someone else, or by an earlier pod of this ordinal, is left alone.
   */
  async function syncClaimOwners(set: V1StatefulSet, ordinal: number, pod: V1Pod, condemned: boolean): Promise<void> {
    const ns = set.metadata?.namespace ?? 'default';
    const setName = set.metadata?.name ?? '';
    const setUid = set.metadata?.uid ?? '';
    const podUid = pod.metadata?.uid ?? '';
    const policy = set.spec?.persistentVolumeClaimRetentionPolicy;
    const podOwns = condemned && policy?.whenScaled === 'Delete';
    const setOwns = !podOwns && policy?.whenDeleted === 'Delete';
    for (const vct of set.spec?.volumeClaimTemplates ?? []) {
      const claim = caches.claims.get(ns, claimName(vct.metadata?.name ?? '', setName, ordinal));
      if (!claim || isTerminating(claim)) continue;
      const refs = claim.metadata?.ownerReferences ?? [];
      const controller = refs.find((r) => r.controller);
      if (controller && controller.uid !== setUid && controller.uid !== podUid) continue;
      const kept = refs.filter((r) => r.uid !== setUid && r.uid !== podUid);
      const wanted = [
        ...kept,
        ...(setOwns ? [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: setName, uid: setUid, controller: true, blockOwnerDeletion: true }] : []),
        ...(podOwns ? [{ apiVersion: 'v1', kind: 'Pod', name: pod.metadata?.name ?? '', uid: podUid, controller: true, blockOwnerDeletion: true }] : []),
      ];
      if (stableJson(wanted) === stableJson(refs)) continue;
      const updated = clone(claim);
      updated.apiVersion = 'v1';
      updated.kind = 'PersistentVolumeClaim';
      updated.metadata = { ...updated.metadata, ownerReferences: wanted.length ? wanted : undefined };
      await api.replace(updated);
    }
  }

  async function writeStatus(
    set: V1StatefulSet,
    pods: V1Pod[],
    currentRevision: string,
    updateRevision: string,
    strategy: string,
  ): Promise<void> {
    const status: V1StatefulSetStatus = {
      observedGeneration: set.metadata?.generation ?? 1,
      replicas: pods.length,
      readyReplicas: pods.filter(isRunningAndReady).length,
      availableReplicas: pods.filter(isRunningAndReady).length,
      currentReplicas: pods.filter((p) => !isTerminating(p) && p.metadata?.labels?.[REVISION_LABEL] === currentRevision).length,
      updatedReplicas: pods.filter((p) => !isTerminating(p) && p.metadata?.labels?.[REVISION_LABEL] === updateRevision).length,
      currentRevision,
      updateRevision,
      collisionCount: set.status?.collisionCount ?? 0,
    };
    if (
      strategy === 'RollingUpdate' &&
      status.updatedReplicas === status.replicas &&
      status.readyReplicas === status.replicas &&
      status.replicas === (set.spec?.replicas ?? 1)
    ) {
      status.currentRevision = updateRevision;
      status.currentReplicas = status.updatedReplicas;
    }
    if (hasFields(set.status, status)) return;
    const updated = clone(set);
    updated.status = { ...set.status, ...status };
    await api.replaceStatus(updated);
  }

  return async function syncStatefulSets(): Promise<void> {
    let firstError: unknown;
    for (const set of caches.statefulsets.list()) {
      try {
        await syncSet(set);
      } catch (err) {
        const code = statusCode(err);
        if (code === 409 || code === 404) continue;
        log(`statefulset "${set.metadata?.namespace}/${set.metadata?.name}": ${errLine(err)}`);
        firstError ??= err;
      }
    }
    if (firstError) throw firstError;
  };
}
