// Create, read, update, patch and delete of stored objects, with the metadata rules clients
// depend on: uid, generateName, creationTimestamp, resourceVersion (409 on a stale one),
// generation bumps on spec changes, status-only status subresources, finalizers and graceful pod
// deletion (deletionTimestamp + deletionGracePeriodSeconds when bound to a node; the kubelet
// finishes it with gracePeriodSeconds=0).
// Differences from a real API server: propagationPolicy Foreground, Background and Orphan are all
// treated as Background (the garbage collector in the controller-manager removes dependents;
// Orphan does not strip ownerReferences); update never creates a missing object; list ignores
// limit/continue and resourceVersion (always the latest state); server-side field validation is
// accepted and ignored (fieldValidation is advertised in OpenAPI so kubectl skips client-side
// validation); dryRun=All validates and defaults without storing. A client's create, update or
// patch passes its AdmissionNotes, which Pod Security Admission's warnings and audit annotations
// go to; the workloads' pod templates are evaluated only then (internal writes, such as a scale,
// pass none: PodSecurity skips subresources). A pod update through the main resource follows
// ValidatePodUpdate (podupdate.ts): its spec is immutable but for images, activeDeadlineSeconds,
// tolerations added and scheduling gates removed; a new pod may not carry ephemeral containers.
import { randomBytes, randomUUID } from 'node:crypto';
import type { V1DeleteOptions, V1ObjectMeta, V1Pod, V1PodSpec, V1ResourceQuota, V1Service } from '@kubernetes/client-node';
import { isObject, type PartialJson } from '../json.js';
import { admitLimitRanges, type LimitRangeJson } from './limitranger.js';
import { admitPod, admitWorkload, hasPodTemplate, type AdmissionNotes } from './podsecurity.js';
import { admitPodQuota } from './resourcequota.js';
import { admitServiceAccount } from './serviceaccount.js';
import { applyCreateDefaults, defaultPodResources, defaultPodSpec, mergeStringData, tracksGeneration, validate, validateUpdate } from './defaults.js';
import { ephemeralOnCreateErrors } from './ephemeralcontainers.js';
import { carryPodUpdateDefaults, mirrorAnnotationErrors, podUpdateErrors } from './podupdate.js';
import { applyJsonPatch, applyMergePatch, applyStrategicMergePatch } from './patch.js';
import { apiVersionOf, type ResourceDef } from './registry.js';
import { parseFieldSelector, parseLabelSelector } from './selectors.js';
import { ApiError, alreadyExists, badRequest, conflict, invalid, notFound, unsupportedMediaType } from './status.js';
import type { ObjectStore, Stored, StoredObject } from './store.js';

/** Which object or collection a request addresses. */
export interface Target {
  def: ResourceDef;
  namespace: string;
  name: string;
  subresource: string;
}

/** A List of one kind, as list and deletecollection answer. */
export interface KubeList {
  kind: string;
  apiVersion: string;
  metadata: { resourceVersion: string };
  items: StoredObject[];
}

/** DeleteOptions as a client may send them (the body of a DELETE, or the query's gracePeriodSeconds). */
export type DeleteOptions = PartialJson<V1DeleteOptions>;

/** An object as a client sends it for create or update, before validation. */
export type SentObject = Record<string, unknown> & { metadata?: PartialJson<V1ObjectMeta> };

/** Store key of a resource type: "group/resource". */
export function grOf(def: ResourceDef): string {
  return `${def.group}/${def.resource}`;
}

/** RFC 3339 timestamp at second precision, as Kubernetes writes it. */
export function timestamp(d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z');
}

function nameSuffix(): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  return [...randomBytes(5)].map((b) => alphabet[b % alphabet.length]).join('');
}

function isCorePod(def: ResourceDef): boolean {
  return def.resource === 'pods' && !def.group;
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

/** The CRUD operations over an ObjectStore for every served type. */
export class ResourceApi {
  private clusterIPCounter = 0;

  constructor(readonly store: ObjectStore, private readonly now: () => Date = () => new Date()) {}

  private keyNs(t: Target): string | undefined {
    return t.def.namespaced ? t.namespace : undefined;
  }

  private stamp<T extends object>(def: ResourceDef, obj: T): T & { apiVersion: string; kind: string } {
    return Object.assign(obj, { apiVersion: apiVersionOf(def), kind: def.kind });
  }

  /** The stored object or 404. */
  get(t: Target): StoredObject {
    const obj = this.store.get(grOf(t.def), this.keyNs(t), t.name);
    if (!obj) throw notFound(t.def.group, t.def.resource, t.name);
    return structuredClone(obj);
  }

  /** A List of the objects matching the label and field selectors in query. */
  list(t: Target, query: URLSearchParams): KubeList {
    const labels = parseLabelSelector(query.get('labelSelector'));
    const fields = parseFieldSelector(query.get('fieldSelector'));
    const items = this.store.list(grOf(t.def), t.def.namespaced && t.namespace ? t.namespace : undefined)
      .filter((o) => labels(o) && fields(o));
    return {
      kind: `${t.def.kind}List`, apiVersion: apiVersionOf(t.def),
      metadata: { resourceVersion: String(this.store.currentRv()) },
      items,
    };
  }

  private checkNamespace(t: Target, name: string): void {
    if (!t.def.namespaced) return;
    const ns = this.store.get('/namespaces', undefined, t.namespace);
    if (!ns) throw notFound('', 'namespaces', t.namespace);
    if (ns.metadata.deletionTimestamp) {
      throw new ApiError(403, 'Forbidden',
        `${t.def.group ? `${t.def.resource}.${t.def.group}` : t.def.resource} "${name}" is forbidden: unable to create new content in namespace ${t.namespace} because it is being terminated`,
        { name, group: t.def.group, kind: t.def.resource,
          causes: [{ reason: 'NamespaceTerminating', message: `namespace ${t.namespace} is being terminated`, field: 'metadata.namespace' }] });
    }
  }

  /** Creates body as a new object; returns it as stored. */
  create(t: Target, body: unknown, dryRun = false, notes?: AdmissionNotes): StoredObject {
    if (!isObject(body)) throw badRequest('the request body must be a JSON object');
    const obj = this.stamp(t.def, structuredClone(body) as SentObject);
    obj.metadata ??= {};
    if (t.def.namespaced) {
      if (obj.metadata.namespace && obj.metadata.namespace !== t.namespace) {
        throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
      }
      obj.metadata.namespace = t.namespace;
    } else {
      delete obj.metadata.namespace;
    }
    // Mutating admission sees the name asked for (generateName's prefix); the name is made after it.
    const asked = obj.metadata.name || obj.metadata.generateName || '';
    if (!obj.metadata.name && obj.metadata.generateName) obj.metadata.name = `${obj.metadata.generateName}${nameSuffix()}`;
    validate(t.def, obj);
    if (isCorePod(t.def)) {
      const errs = ephemeralOnCreateErrors(obj.spec as PartialJson<V1PodSpec> | undefined);
      if (errs.length) throw invalid('', 'Pod', obj.metadata.name, errs);
    }
    mergeStringData(t.def, obj);
    this.checkNamespace(t, obj.metadata.name);
    if (t.def.resource === 'pods' && !t.def.group) this.admitPod(t.namespace, obj, notes, asked);
    if (notes) this.admitWorkload(t, obj, notes);
    if (this.store.get(grOf(t.def), this.keyNs(t), obj.metadata.name)) throw alreadyExists(t.def.group, t.def.resource, obj.metadata.name);
    obj.metadata.uid = randomUUID();
    obj.metadata.creationTimestamp = timestamp(this.now());
    delete obj.metadata.resourceVersion;
    delete obj.metadata.deletionTimestamp;
    delete obj.metadata.deletionGracePeriodSeconds;
    if (tracksGeneration(t.def)) obj.metadata.generation = 1;
    applyCreateDefaults(t.def, obj, () => this.nextClusterIP());
    return this.store.put(grOf(t.def), obj as StoredObject, dryRun); // validated: it has a name
  }

  /**
   * The admission plugins a new pod goes through, in kube-apiserver's order: API defaulting of
   * requests from limits, LimitRanger (mutating, then validating), PodSecurity, ResourceQuota.
   * Mutates obj (defaults); throws 403 Forbidden when a plugin refuses it.
   */
  private admitPod(namespace: string, obj: SentObject & { metadata: { name: string } }, notes: AdmissionNotes | undefined, asked: string): void {
    const spec = obj.spec as PartialJson<V1PodSpec> | undefined;
    defaultPodResources(spec);
    const ranges = this.store.list('/limitranges', namespace) as LimitRangeJson[];
    admitLimitRanges(ranges, obj.metadata.name, obj.metadata as { annotations?: Record<string, string> }, spec);
    const mirror = (obj.metadata as { annotations?: Record<string, string> }).annotations?.['kubernetes.io/config.mirror'] !== undefined;
    admitServiceAccount(namespace, asked, spec, (sa) => Boolean(this.store.get('/serviceaccounts', namespace, sa)), mirror);
    const ns = this.store.get('/namespaces', undefined, namespace);
    admitPod(ns?.metadata.labels, obj.metadata.name, spec as Parameters<typeof admitPod>[2], notes);
    const quotas = this.store.list('/resourcequotas', namespace) as Stored<V1ResourceQuota>[];
    if (quotas.length) admitPodQuota(quotas, this.store.list('/pods', namespace) as Stored<V1Pod>[], obj.metadata.name, spec);
  }

  /** PodSecurity's evaluation of a workload's pod template (warn and audit; it never refuses). */
  private admitWorkload(t: Target, obj: SentObject, notes: AdmissionNotes): void {
    if (t.subresource || !hasPodTemplate(t.def.group, t.def.resource)) return;
    const ns = this.store.get('/namespaces', undefined, t.namespace);
    admitWorkload(ns?.metadata.labels, t.def.group, t.def.resource, obj, notes);
  }

  private nextClusterIP(): string {
    const used = new Set((this.store.list('/services') as Stored<V1Service>[]).map((s) => s.spec?.clusterIP));
    for (;;) {
      this.clusterIPCounter = (this.clusterIPCounter % 65000) + 1;
      const ip = `10.96.${(this.clusterIPCounter + 9) >> 8}.${(this.clusterIPCounter + 9) & 255}`;
      if (!used.has(ip)) return ip;
    }
  }

  /** Replaces an object (or only its status for the status subresource); 409 on a stale resourceVersion. */
  update(t: Target, body: unknown, dryRun = false, notes?: AdmissionNotes): StoredObject {
    if (!isObject(body)) throw badRequest('the request body must be a JSON object');
    const sent: SentObject = body;
    const cur = this.get(t);
    const rv = sent.metadata?.resourceVersion;
    if (rv && rv !== cur.metadata.resourceVersion) throw conflict(t.def.group, t.def.resource, t.name);
    if (sent.metadata?.name && sent.metadata.name !== t.name) {
      throw badRequest(`the name of the object (${sent.metadata.name}) does not match the name on the URL (${t.name})`);
    }
    let next: StoredObject;
    if (t.subresource === 'status') {
      next = { ...cur, metadata: { ...cur.metadata }, status: sent.status };
    } else {
      // the name (and the rest of the server-owned metadata) is copied from cur just below
      next = this.stamp(t.def, structuredClone(sent) as StoredObject);
      next.metadata = { ...next.metadata };
      const from: Record<string, unknown> = cur.metadata;
      const to: Record<string, unknown> = next.metadata;
      for (const k of ['uid', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'generation', 'namespace', 'name']) {
        if (from[k] === undefined) delete to[k]; else to[k] = from[k];
      }
      if (t.def.subresources.includes('status') && t.def.resource !== 'namespaces') next.status = cur.status;
      if (t.def.resource === 'namespaces') next.status = cur.status;
      if (tracksGeneration(t.def) && !same(cur.spec, next.spec)) next.metadata.generation = (cur.metadata.generation ?? 1) + 1;
      validate(t.def, next);
      validateUpdate(t.def, cur, next);
      if (isCorePod(t.def)) this.validatePodUpdate(cur, next);
      mergeStringData(t.def, next);
      if (notes) this.admitWorkload(t, next, notes);
    }
    delete next.metadata.resourceVersion;
    if (same({ ...cur, metadata: { ...cur.metadata, resourceVersion: undefined } }, next)) return cur;
    if (this.finishedDeleting(t.def, next)) return this.removeExisting(t, dryRun);
    return this.store.put(grOf(t.def), next, dryRun);
  }

  /**
   * A pod update through the main resource: the sent spec is defaulted (and what admission keeps
   * on update carried over) before ValidatePodUpdate's rules (podupdate.ts) are applied; 422 when
   * it changes what a pod update may not change, ephemeral containers included.
   */
  private validatePodUpdate(cur: StoredObject, next: StoredObject): void {
    const spec = ((next as SentObject).spec ??= {}) as PartialJson<V1PodSpec> & Record<string, unknown>;
    const old = ((cur as SentObject).spec ?? {}) as PartialJson<V1PodSpec> & Record<string, unknown>;
    defaultPodSpec(spec);
    spec.enableServiceLinks ??= true;
    carryPodUpdateDefaults(old, spec);
    const annotations = (o: StoredObject) => (o.metadata as { annotations?: Record<string, string> }).annotations;
    const errs = [...mirrorAnnotationErrors(annotations(cur), annotations(next)), ...podUpdateErrors(old, spec)];
    if (errs.length) throw invalid('', 'Pod', cur.metadata.name, errs);
  }

  /** Removes the object t, which this.get(t) has just found (so the store cannot miss it). */
  private removeExisting(t: Target, dryRun: boolean): StoredObject {
    return this.store.remove(grOf(t.def), this.keyNs(t), t.name, dryRun)!;
  }

  /** Applies a patch of the given content type, then updates as PUT would. */
  patch(t: Target, body: unknown, contentType: string, dryRun = false, notes?: AdmissionNotes): StoredObject {
    const cur = this.get(t);
    const result = applyPatchOfType(cur, body, contentType);
    if (!result || typeof result !== 'object') throw badRequest('the patch produced something that is not an object');
    const patched: SentObject = result as SentObject; // an array, if it is one, is refused by update()
    if (patched.metadata?.resourceVersion === cur.metadata.resourceVersion) delete patched.metadata!.resourceVersion; // equal to cur's, which is always set
    return this.update(t, patched, dryRun, notes);
  }

  private finishedDeleting(def: ResourceDef, obj: StoredObject): boolean {
    if (!obj.metadata.deletionTimestamp || (obj.metadata.finalizers ?? []).length > 0) return false;
    return def.resource !== 'pods' || obj.metadata.deletionGracePeriodSeconds === 0;
  }

  /** Deletes (or starts deleting) an object; returns it as it now stands. */
  delete(t: Target, options: DeleteOptions | undefined, dryRun = false): StoredObject {
    const cur = this.get(t);
    const pre = options?.preconditions ?? {};
    if ((pre.uid && pre.uid !== cur.metadata.uid) || (pre.resourceVersion && pre.resourceVersion !== cur.metadata.resourceVersion)) {
      throw conflict(t.def.group, t.def.resource, t.name);
    }
    let grace = 0;
    if (t.def.resource === 'pods') {
      const pod = cur as Stored<V1Pod>;
      const terminal = pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
      grace = !pod.spec?.nodeName || terminal ? 0 : Number(options?.gracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30);
      if (cur.metadata.deletionGracePeriodSeconds !== undefined) grace = Math.min(grace, cur.metadata.deletionGracePeriodSeconds);
    }
    const finalizers = (cur.metadata.finalizers ?? []).length > 0;
    if (grace > 0 || finalizers) {
      const next = structuredClone(cur);
      if (!next.metadata.deletionTimestamp || grace < (cur.metadata.deletionGracePeriodSeconds ?? Infinity)) {
        next.metadata.deletionTimestamp = timestamp(new Date(this.now().getTime() + grace * 1000));
      }
      next.metadata.deletionGracePeriodSeconds = grace;
      if (t.def.resource === 'pods' && grace === 0 && !finalizers) return this.removeExisting(t, dryRun);
      if (same(next, cur)) return cur;
      return this.store.put(grOf(t.def), next, dryRun);
    }
    return this.removeExisting(t, dryRun);
  }

  /** Deletes every object the selectors in query match; returns the List of them. */
  deleteCollection(t: Target, query: URLSearchParams, options: DeleteOptions | undefined, dryRun = false): KubeList {
    const list = this.list(t, query);
    list.items = list.items.map((o) => this.delete({ ...t, namespace: o.metadata.namespace ?? '', name: o.metadata.name }, options, dryRun));
    return list;
  }
}

/** Applies body to cur according to the request's patch content type. */
export function applyPatchOfType(cur: unknown, body: unknown, contentType: string): unknown {
  const type = contentType.split(';')[0].trim().toLowerCase();
  switch (type) {
    case 'application/json-patch+json': return applyJsonPatch(cur, body);
    case 'application/merge-patch+json': return applyMergePatch(cur, body);
    case 'application/strategic-merge-patch+json': return applyStrategicMergePatch(cur, body);
    default: throw unsupportedMediaType(type);
  }
}
