// Pod volumes: each volume becomes a host directory that containers bind-mount at their
// mountPaths. persistentVolumeClaim → the bound local PV (loop-mounted ext4, see localpv.ts);
// secret/configMap/downwardAPI/projected → files written once under the pod's directory;
// emptyDir → a directory under the pod's directory; hostPath → DIR/nodes/NODE/hostpath/PATH.
// Differs from a real kubelet: secret/configMap/downwardAPI files are written once at pod start
// (no ..data symlinks, no updates); emptyDir medium Memory is a plain directory; projected
// serviceAccountToken is a fixed placeholder; only local PVs (spec.local or spec.hostPath) work;
// fsGroup ownership is applied with chgrp -R and g+rwX (and setgid on directories).
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import type {
  V1ConfigMap, V1DownwardAPIVolumeFile, V1KeyToPath, V1PersistentVolume, V1PersistentVolumeClaim, V1Volume, V1VolumeProjection,
} from '@kubernetes/client-node';
import type { Json } from '../json.js';
import type { ApiClient } from './api.js';
import { podField } from './env.js';
import { must } from './host.js';
import { parseQuantity, type LocalVolumes } from './localpv.js';
import type { Pod } from './objects.js';

/** A host directory ready to be bind-mounted, and whether it must stay read-only. */
export interface PreparedVolume {
  source: string;
  alwaysReadOnly: boolean;
}

/** What volume preparation needs from the kubelet. */
export interface VolumeContext {
  api: ApiClient;
  localVolumes: LocalVolumes;
  /** DIR/nodes/NODE for the pod's node. */
  nodeDir: string;
  /** The pod's private directory on the host. */
  podDir: string;
}

function decode(data: Record<string, string> | undefined, b64: boolean): Record<string, Buffer> {
  return Object.fromEntries(Object.entries(data ?? {}).map(([k, v]) => [k, Buffer.from(v, b64 ? 'base64' : 'utf8')]));
}

/** The keys of a Secret (base64 values) or a ConfigMap (text, and binaryData in base64). */
type KeyedData = Pick<Json<V1ConfigMap>, 'data' | 'binaryData'>;

/** The object at path (as T: what the path serves), or undefined when there is none (404). */
async function getObject<T>(api: ApiClient, path: string): Promise<T | undefined> {
  try {
    return await api.request<T>('GET', path);
  } catch (err) {
    if ((err as { code?: unknown }).code === 404) return undefined;
    throw err;
  }
}

function safeJoin(root: string, rel: string): string {
  const p = normalize(join(root, rel));
  if (!p.startsWith(root)) throw new Error(`path "${rel}" escapes its volume`);
  return p;
}

function writeKeyFiles(dir: string, files: Record<string, Buffer>, items: Json<V1KeyToPath>[] | undefined, defaultMode: number, gid: number | undefined, what: string): void {
  const wanted: Json<V1KeyToPath>[] = items?.length ? items : Object.keys(files).map((k) => ({ key: k, path: k }));
  for (const it of wanted) {
    const content = files[it.key];
    if (content === undefined) throw new Error(`key "${it.key}" not found in ${what}; fix the volume items or the object`);
    const file = safeJoin(dir, it.path);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, content);
    chmodSync(file, it.mode ?? defaultMode);
    if (gid !== undefined) chownSync(file, 0, gid);
  }
}

function downwardValue(pod: Pod, item: Json<V1DownwardAPIVolumeFile>): string {
  const path = item.fieldRef?.fieldPath;
  if (!path) throw new Error(`downwardAPI item "${item.path}" needs a fieldRef; resourceFieldRef is not supported by the simulator`);
  if (path === 'metadata.labels' || path === 'metadata.annotations') {
    const m = (path === 'metadata.labels' ? pod.metadata?.labels : pod.metadata?.annotations) ?? {};
    return Object.keys(m).sort().map((k) => `${k}=${JSON.stringify(m[k])}`).join('\n');
  }
  const v = podField(pod, path);
  if (v === undefined) throw new Error(`downwardAPI field "${path}" is not supported by the simulator`);
  return v;
}

async function projectedSource(ctx: VolumeContext, pod: Pod, src: Json<V1VolumeProjection>, dir: string, mode: number, gid: number | undefined): Promise<void> {
  const ns = pod.metadata.namespace;
  const ref = src.secret ?? src.configMap;
  if (ref) {
    const kind = src.secret ? 'secrets' : 'configmaps';
    const obj = await getObject<KeyedData>(ctx.api, `/api/v1/namespaces/${ns}/${kind}/${ref.name}`);
    if (!obj) {
      if (ref.optional) return;
      throw new Error(`${kind.slice(0, -1)} "${ref.name}" not found in namespace "${ns}"; create it or mark the volume optional`);
    }
    const files = src.secret ? decode(obj.data, true) : { ...decode(obj.data, false), ...decode(obj.binaryData, true) };
    writeKeyFiles(dir, files, ref.items, mode, gid, `${kind.slice(0, -1)} "${ref.name}"`);
  } else if (src.downwardAPI) {
    const files: Record<string, Buffer> = {};
    const items = (src.downwardAPI.items ?? []).map((it) => {
      files[it.path] = Buffer.from(downwardValue(pod, it));
      return { key: it.path, path: it.path, mode: it.mode };
    });
    writeKeyFiles(dir, files, items, mode, gid, 'downwardAPI');
  } else if (src.serviceAccountToken) {
    writeKeyFiles(dir, { token: Buffer.from('sim-placeholder-token') }, [{ key: 'token', path: src.serviceAccountToken.path }], mode, gid, 'token');
  }
}

async function applyFsGroup(dir: string, fsGroup: number | undefined): Promise<void> {
  if (fsGroup === undefined) return;
  await must('chgrp', ['-R', String(fsGroup), dir]);
  await must('chmod', ['-R', 'g+rwX', dir]);
  await must('find', [dir, '-type', 'd', '-exec', 'chmod', 'g+s', '{}', '+']);
}

/** Prepares one pod volume on the host and returns the directory to bind-mount. */
export async function prepareVolume(ctx: VolumeContext, pod: Pod, vol: Json<V1Volume>): Promise<PreparedVolume> {
  const ns = pod.metadata.namespace;
  const fsGroup: number | undefined = pod.spec.securityContext?.fsGroup;
  const dir = join(ctx.podDir, 'volumes', vol.name);
  if (vol.persistentVolumeClaim) {
    const claim = vol.persistentVolumeClaim.claimName;
    const pvc = await getObject<Json<V1PersistentVolumeClaim>>(ctx.api, `/api/v1/namespaces/${ns}/persistentvolumeclaims/${claim}`);
    if (!pvc) throw new Error(`persistentvolumeclaim "${claim}" not found in namespace "${ns}"; create it`);
    // A real kubelet will not start a pod on a claim that is being deleted (volumemanager: "PVC is being deleted").
    if (pvc.metadata?.deletionTimestamp) throw new Error(`error processing PVC ${ns}/${claim}: PVC is being deleted`);
    if (!pvc.spec?.volumeName || pvc.status?.phase !== 'Bound') throw new Error(`persistentvolumeclaim "${claim}" is not bound yet; wait for the provisioner`);
    const pv = await getObject<Json<V1PersistentVolume>>(ctx.api, `/api/v1/persistentvolumes/${pvc.spec.volumeName}`);
    const path: string | undefined = pv?.spec?.local?.path ?? pv?.spec?.hostPath?.path;
    if (!path) throw new Error(`persistentvolume "${pvc.spec.volumeName}" has no local path; only local volumes are simulated`);
    const capacity = parseQuantity(pv?.spec?.capacity?.storage ?? pvc.spec.resources?.requests?.storage ?? '1Gi');
    await ctx.localVolumes.ensure(path, capacity);
    await applyFsGroup(path, fsGroup);
    return { source: path, alwaysReadOnly: !!vol.persistentVolumeClaim.readOnly };
  }
  if (vol.emptyDir) {
    mkdirSync(dir, { recursive: true, mode: 0o777 });
    chmodSync(dir, 0o777);
    await applyFsGroup(dir, fsGroup);
    return { source: dir, alwaysReadOnly: false };
  }
  if (vol.hostPath) {
    const source = safeJoin(join(ctx.nodeDir, 'hostpath'), vol.hostPath.path);
    const type = vol.hostPath.type ?? '';
    if (!existsSync(source)) {
      if (type === 'FileOrCreate') {
        mkdirSync(dirname(source), { recursive: true });
        writeFileSync(source, '', { mode: 0o644 });
      } else if (type === '' || type === 'DirectoryOrCreate') {
        mkdirSync(source, { recursive: true, mode: 0o755 });
      } else {
        throw new Error(`hostPath "${vol.hostPath.path}" of volume "${vol.name}" does not exist on the node (type ${type}); create it under ${join(ctx.nodeDir, 'hostpath')}`);
      }
    }
    return { source, alwaysReadOnly: false };
  }
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const mode = (vol.secret ?? vol.configMap ?? vol.downwardAPI ?? vol.projected)?.defaultMode ?? 0o644;
  if (vol.secret) {
    await projectedSource(ctx, pod, { secret: { name: vol.secret.secretName, items: vol.secret.items, optional: vol.secret.optional } }, dir, mode, fsGroup);
  } else if (vol.configMap) {
    await projectedSource(ctx, pod, { configMap: vol.configMap }, dir, mode, fsGroup);
  } else if (vol.downwardAPI) {
    await projectedSource(ctx, pod, { downwardAPI: vol.downwardAPI }, dir, mode, fsGroup);
  } else if (vol.projected) {
    for (const src of vol.projected.sources ?? []) await projectedSource(ctx, pod, src, dir, mode, fsGroup);
  } else {
    throw new Error(`volume "${vol.name}" has a type the simulator does not support; use persistentVolumeClaim, secret, configMap, emptyDir, hostPath, downwardAPI or projected`);
  }
  return { source: dir, alwaysReadOnly: true };
}

/** Whether a host path is a regular file (bind targets must then be files too). */
export function isFile(path: string): boolean {
  try { return lstatSync(path).isFile(); } catch { return false; }
}
