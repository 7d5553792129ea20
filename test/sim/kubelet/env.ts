// Container environment and command line, as the kubelet computes them: envFrom, env with
// valueFrom (fieldRef, secretKeyRef, configMapKeyRef), `$(VAR)` expansion with `$$` escapes, and
// command/args over the image's entrypoint/cmd.
// Differs from a real kubelet: no Service environment variables (KUBERNETES_SERVICE_HOST, …);
// resourceFieldRef is not supported; fieldRef supports metadata.name/namespace/uid,
// metadata.labels['k'], metadata.annotations['k'], spec.nodeName, spec.serviceAccountName,
// status.podIP and status.hostIP.
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import type { ImageSpec } from '../images.js';
import type { Json } from '../json.js';
import type { Pod } from './objects.js';

/** Reads one key of a Secret or ConfigMap (decoded), or undefined when it or the key is missing. */
export interface KeySource {
  secret(ns: string, name: string): Promise<Record<string, string> | undefined>;
  configMap(ns: string, name: string): Promise<Record<string, string> | undefined>;
}

/** Expands `$(NAME)` references the way Kubernetes does: unknown names stay as written, `$$` is `$`. */
export function expandVars(input: string, lookup: (name: string) => string | undefined): string {
  let out = '';
  let checkpoint = 0;
  for (let cursor = 0; cursor < input.length; cursor++) {
    if (input[cursor] !== '$' || cursor + 1 >= input.length) continue;
    out += input.slice(checkpoint, cursor);
    const next = input[cursor + 1];
    let advance = 1;
    if (next === '$') {
      out += '$';
    } else if (next === '(') {
      const close = input.indexOf(')', cursor + 2);
      if (close < 0) {
        out += '$(';
      } else {
        const name = input.slice(cursor + 2, close);
        const v = lookup(name);
        out += v ?? `$(${name})`;
        advance = close - cursor;
      }
    } else {
      out += `$${next}`;
    }
    cursor += advance;
    checkpoint = cursor + 1;
  }
  return out + input.slice(checkpoint);
}

/** Resolves a downward-API field path against the pod; undefined when unsupported. */
export function podField(pod: Json<V1Pod>, path: string): string | undefined {
  const m = /^metadata\.(labels|annotations)\['(.*)'\]$/.exec(path);
  if (m) return (m[1] === 'labels' ? pod.metadata?.labels : pod.metadata?.annotations)?.[m[2]] ?? '';
  switch (path) {
    case 'metadata.name': return pod.metadata?.name;
    case 'metadata.namespace': return pod.metadata?.namespace;
    case 'metadata.uid': return pod.metadata?.uid;
    case 'spec.nodeName': return pod.spec?.nodeName;
    case 'spec.serviceAccountName': return pod.spec?.serviceAccountName ?? 'default';
    case 'status.podIP': return pod.status?.podIP ?? '';
    case 'status.hostIP': return pod.status?.hostIP ?? '';
    default: return undefined;
  }
}

function missing(what: string, c: Json<V1Container>): Error {
  return new Error(`${what} referenced by container "${c.name}" not found; create it or mark the reference optional`);
}

/** Builds the environment Kubernetes defines for the container (envFrom, then env), in order. */
export async function containerEnv(pod: Pod, c: Json<V1Container>, src: KeySource): Promise<Map<string, string>> {
  const ns = pod.metadata.namespace;
  const env = new Map<string, string>();
  for (const from of c.envFrom ?? []) {
    // an envFrom names a ConfigMap or a Secret (the API requires the name, client-node types it optional)
    const ref = (from.configMapRef ?? from.secretRef)!;
    const data = from.configMapRef ? await src.configMap(ns, ref.name!) : await src.secret(ns, ref.name!);
    if (!data) {
      if (ref.optional) continue;
      throw missing(`${from.configMapRef ? 'configmap' : 'secret'} "${ref.name}"`, c);
    }
    for (const [k, v] of Object.entries(data)) env.set(`${from.prefix ?? ''}${k}`, v);
  }
  for (const e of c.env ?? []) {
    let value: string | undefined;
    if (e.valueFrom?.fieldRef) {
      value = podField(pod, e.valueFrom.fieldRef.fieldPath);
      if (value === undefined) throw new Error(`fieldRef "${e.valueFrom.fieldRef.fieldPath}" of env "${e.name}" is not supported by the simulator`);
    } else if (e.valueFrom?.secretKeyRef || e.valueFrom?.configMapKeyRef) {
      const isSecret = !!e.valueFrom.secretKeyRef;
      const ref = (e.valueFrom.secretKeyRef ?? e.valueFrom.configMapKeyRef)!; // one of them, checked just above
      const data = isSecret ? await src.secret(ns, ref.name!) : await src.configMap(ns, ref.name!);
      value = data?.[ref.key];
      if (value === undefined) {
        if (ref.optional) continue;
        throw missing(`key "${ref.key}" of ${isSecret ? 'secret' : 'configmap'} "${ref.name}"`, c);
      }
    } else if (e.valueFrom) {
      throw new Error(`env "${e.name}" uses a valueFrom the simulator does not support`);
    } else {
      value = expandVars(e.value ?? '', (n) => env.get(n));
    }
    env.set(e.name, value);
  }
  return env;
}

/** The final process environment as K=V: image env, then the kube env, then HOSTNAME. */
export function processEnv(image: ImageSpec, kubeEnv: Map<string, string>, hostname: string): string[] {
  const all = new Map<string, string>(Object.entries(image.env));
  for (const [k, v] of kubeEnv) all.set(k, v);
  if (!kubeEnv.has('HOSTNAME')) all.set('HOSTNAME', hostname);
  if (!all.has('HOME')) all.set('HOME', '/root');
  return [...all].map(([k, v]) => `${k}=${v}`);
}

/** The argv a container runs: command/args over the image's entrypoint/cmd, with `$(VAR)` expanded. */
export function containerArgv(c: Json<V1Container>, image: ImageSpec, env: Map<string, string>): string[] {
  const command: string[] | undefined = c.command?.length ? c.command : undefined;
  const args: string[] | undefined = c.args?.length ? c.args : undefined;
  const lookup = (n: string) => env.get(n);
  const expandedCmd = command ? command.map((s) => expandVars(s, lookup)) : image.entrypoint;
  const expandedArgs = args ? args.map((s) => expandVars(s, lookup)) : command ? [] : image.cmd;
  return [...expandedCmd, ...expandedArgs];
}
