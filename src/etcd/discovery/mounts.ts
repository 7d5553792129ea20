/**
 * What a path in a container is, read from the pod spec as the kubelet lays it out: the volume
 * mounted there (the deepest mount wins), the folder of the volume behind it (subPath,
 * subPathExpr), and which Secret key a Secret or projected volume puts at it (items rename keys
 * and leave unlisted keys out). Pure: the pod object is the only input.
 */
import { posix } from 'node:path';
import type { V1Container, V1Pod, V1Volume } from '@kubernetes/client-node';
import type { SecretKeyRef } from '../topology.js';
import { expandKubeVars } from './env.js';

/** The pod volume mounted at the longest mountPath that is a prefix of `path`, with the mount's subPath / subPathExpr. */
export function volumeForPath(pod: V1Pod, container: V1Container, path: string): {
  volume?: V1Volume; name: string; mountPath: string; subPath?: string; subPathExpr?: string;
} | undefined {
  const under = (mount: string): boolean => path === mount || path.startsWith(mount.endsWith('/') ? mount : `${mount}/`);
  const mount = (container.volumeMounts ?? [])
    .filter((m) => under(m.mountPath))
    .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
  if (!mount) return undefined;
  return {
    volume: pod.spec?.volumes?.find((v) => v.name === mount.name), name: mount.name, mountPath: mount.mountPath,
    ...(mount.subPath ? { subPath: mount.subPath } : {}),
    ...(mount.subPathExpr ? { subPathExpr: mount.subPathExpr } : {}),
  };
}

/** A relative path inside a volume without `.`, empty segments or surrounding slashes ('' for the root). */
function volumeRelative(path: string): string {
  const p = posix.normalize(`/${path}`).replace(/^\/+|\/+$/g, '');
  return p === '.' ? '' : p;
}

/** One source of a Secret or projected volume: a Secret (name, items) or anything else that writes files. */
interface KeySource {
  secretName?: string;
  /** key → path; undefined when every key of the object is projected under its own name. */
  items?: Array<{ key: string; path: string }>;
  /** Paths a non-key source (downwardAPI, serviceAccountToken) writes. */
  paths?: string[];
}

function sourcesOf(volume: V1Volume): KeySource[] {
  const items = (list: Array<{ key: string; path: string }> | undefined) => (list?.length ? list : undefined);
  if (volume.secret?.secretName) return [{ secretName: volume.secret.secretName, items: items(volume.secret.items) }];
  return (volume.projected?.sources ?? []).map((s): KeySource => {
    if (s.secret?.name) return { secretName: s.secret.name, items: items(s.secret.items) };
    if (s.configMap) return { items: items(s.configMap.items) };
    if (s.downwardAPI) return { paths: (s.downwardAPI.items ?? []).map((i) => i.path) };
    if (s.serviceAccountToken) return { paths: [s.serviceAccountToken.path] };
    return { paths: [] };
  });
}

/**
 * The Secret keys that may be the file at `path` in the container (absolute, as etcd is given it),
 * most binding first: the first one whose Secret holds the key is the file. Empty when no Secret
 * volume puts a file there (a hostPath, a ConfigMap, a path under no mount).
 *
 * As the kubelet: the path lies in the volume at the mount's subPath (subPathExpr expanded with
 * `vars`, the container's env) joined with what follows the mountPath; a Secret volume without
 * items holds every key under its own name, with items only the listed keys at their paths; a
 * projected volume writes its sources in order, so a later source's file replaces an earlier one
 * (listed first here), and a later non-Secret source that certainly writes the path (its items or
 * paths name it) hides every Secret before it. A ConfigMap source without items may also hold a
 * key of that name; that cannot be known from the pod, and it is taken as not.
 */
export function secretKeysAt(pod: V1Pod, container: V1Container, path: string, vars: ReadonlyMap<string, string>): SecretKeyRef[] {
  const file = posix.normalize(path);
  const found = volumeForPath(pod, container, file);
  if (!found?.volume) return [];
  const sub = found.subPathExpr ? expandKubeVars(found.subPathExpr, vars) : (found.subPath ?? '');
  const rest = file.slice(found.mountPath.replace(/\/+$/, '').length);
  const inVolume = volumeRelative(`${sub}/${rest}`);
  if (!inVolume) return [];
  const refs: SecretKeyRef[] = [];
  for (const source of sourcesOf(found.volume).reverse()) {
    const item = source.items?.find((i) => volumeRelative(i.path) === inVolume);
    if (source.secretName) {
      if (item) refs.push({ secretName: source.secretName, key: item.key });
      else if (!source.items && !inVolume.includes('/')) refs.push({ secretName: source.secretName, key: inVolume });
    } else if (item || source.paths?.some((p) => volumeRelative(p) === inVolume)) {
      break;
    }
  }
  return refs;
}
