// Patch application: JSON patch (RFC 6902, via fast-json-patch), JSON merge patch (RFC 7386) and
// strategic merge patch for the built-in types the project touches.
// Differences from a real API server: strategic merge knows list merge keys by field name rather
// than from the Go types (containers/initContainers/env/volumes/imagePullSecrets by name,
// volumeMounts by mountPath, container ports by containerPort, service ports by port,
// ownerReferences by uid, conditions/addresses by type, finalizers merged as a set; every other
// list, tolerations included, is replaced); `$retainKeys` and `$setElementOrder` are accepted and
// ignored; apply-patch (server-side apply) is answered 415 by the caller.
import fjp, { type Operation } from 'fast-json-patch';
import { isObject as isMap } from '../json.js';
import { badRequest } from './status.js';

/** A JSON object being merged into (its values are whatever JSON holds). */
type JsonMap = Record<string, unknown>;

/** Applies a JSON patch (a list of operations) to a copy of doc. */
export function applyJsonPatch(doc: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw badRequest('the JSON patch must be an array of operations');
  try {
    // each operation is checked by applyPatch itself (validateOperation = true)
    return fjp.applyPatch(structuredClone(doc), ops as Operation[], true, false).newDocument;
  } catch (err) {
    throw badRequest(`the server rejected our request due to an error in our request: ${(err as Error).message.split('\n')[0]}`);
  }
}

/** Applies an RFC 7386 merge patch to a copy of doc. */
export function applyMergePatch(doc: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return structuredClone(patch);
  const out: JsonMap = doc && typeof doc === 'object' && !Array.isArray(doc) ? structuredClone(doc as JsonMap) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = applyMergePatch(out[k], v);
  }
  return out;
}

const PRIMITIVE_SETS = new Set(['finalizers']);

function mergeKeyFor(path: string[]): string | undefined {
  const field = path[path.length - 1];
  switch (field) {
    case 'containers': case 'initContainers': case 'ephemeralContainers': case 'env': case 'volumes':
    case 'imagePullSecrets': case 'envFrom_': return 'name';
    case 'volumeMounts': return 'mountPath';
    case 'volumeDevices': return 'devicePath';
    case 'ownerReferences': return 'uid';
    case 'conditions': case 'addresses': return 'type';
    case 'hostAliases': return 'ip';
    case 'ports': return path.includes('containers') || path.includes('initContainers') ? 'containerPort' : 'port';
    default: return undefined;
  }
}

/** Applies a strategic merge patch to a copy of doc. */
export function applyStrategicMergePatch(doc: unknown, patch: unknown): JsonMap | undefined {
  if (!isMap(patch)) throw badRequest('the strategic merge patch must be a JSON object');
  return mergeMap(isMap(doc) ? structuredClone(doc) : {}, patch, []);
}

function mergeMap(target: JsonMap, patch: JsonMap, path: string[]): JsonMap | undefined {
  if (patch.$patch === 'replace') {
    const copy = { ...patch };
    delete copy.$patch;
    return stripDirectives(copy);
  }
  if (patch.$patch === 'delete') return undefined;
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$patch' || k === '$retainKeys' || k.startsWith('$setElementOrder/')) continue;
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const field = k.slice('$deleteFromPrimitiveList/'.length);
      const list = target[field];
      if (Array.isArray(list) && Array.isArray(v)) target[field] = list.filter((x: unknown) => !v.includes(x));
      continue;
    }
    if (v === null) { delete target[k]; continue; }
    const sub = [...path, k];
    if (isMap(v)) {
      const merged = mergeMap(isMap(target[k]) ? target[k] : {}, v, sub);
      if (merged === undefined) delete target[k]; else target[k] = merged;
    } else if (Array.isArray(v)) {
      const list = target[k];
      target[k] = mergeList(Array.isArray(list) ? list : [], v, sub);
    } else {
      target[k] = v;
    }
  }
  return target;
}

function mergeList(target: unknown[], patch: unknown[], path: string[]): unknown[] {
  const field = path[path.length - 1];
  if (PRIMITIVE_SETS.has(field)) return [...target, ...patch.filter((p) => !target.includes(p))];
  const key = mergeKeyFor(path);
  if (!key || !patch.every(isMap)) {
    if (patch.some((p) => isMap(p) && p.$patch === 'replace')) return patch.filter((p) => !(isMap(p) && p.$patch)).map(stripDirectives);
    return patch.map(stripDirectives);
  }
  const items = patch as JsonMap[]; // every one is a map (checked just above)
  if (items.some((p) => p.$patch === 'replace')) return items.filter((p) => !p.$patch).map(stripDirectives);
  const out = target.map((t) => structuredClone(t));
  for (const item of items) {
    const idx = out.findIndex((t) => isMap(t) && t[key] === item[key]);
    if (item.$patch === 'delete') {
      if (idx >= 0) out.splice(idx, 1);
      continue;
    }
    if (idx >= 0) out[idx] = mergeMap(out[idx] as JsonMap, item, path);
    else out.push(stripDirectives(item));
  }
  return out;
}

function stripDirectives(v: JsonMap): JsonMap;
function stripDirectives(v: unknown): unknown;
function stripDirectives(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripDirectives);
  if (!isMap(v)) return v;
  const out: JsonMap = {};
  for (const [k, val] of Object.entries(v)) {
    if (k.startsWith('$')) continue;
    if (val !== null) out[k] = stripDirectives(val);
  }
  return out;
}
