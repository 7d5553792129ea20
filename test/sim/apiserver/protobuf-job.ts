// Table-driven decoding of a batch/v1 Job sent as application/vnd.kubernetes.protobuf (what
// `kubectl create job NAME --from=cronjob/CJ` sends since kubectl 1.32) into the JSON the same
// client would have sent as application/json, i.e. Go's encoding/json of the object it built.
// Field numbers: staging/src/k8s.io/api/batch/v1/generated.proto, core/v1/generated.proto,
// apimachinery pkg/apis/meta/v1/generated.proto and pkg/api/resource/generated.proto (Quantity:
// string 1); JSON names and omitempty: the types.go beside them.
//
// How Go's two encodings differ, and so how a field is turned back into JSON (its `presence`):
// - omitempty: a non-pointer string, number or bool, or a slice or map, with `omitempty`. Protobuf
//   carries the scalar even when it is zero ("" / 0 / false); JSON leaves every zero one out.
// - always: a non-pointer field without omitempty (e.g. a container's name), or any struct (which
//   omitempty does not drop: `resources: {}`, `status: {}`, `creationTimestamp: null`). It is in
//   the JSON even when zero; a nil slice shows as null.
// - pointer: a pointer with omitempty (*int32, *bool, *string, *Struct): protobuf carries it only when
//   it is set, and then JSON has it too, even when it is 0 or false.
// An inline struct (`json:",inline"`, e.g. a Volume's VolumeSource, a key selector's
// LocalObjectReference) is a nested message in protobuf and flattened into its parent in JSON.
// Protobuf cannot tell an empty list from an unset one: a client's `[]` arrives as unset (absent, or
// null where the field has no omitempty), which is also what a real server decodes.
//
// Differences from a real API server: only the fields these tables list are known (a Job and the
// pod template a backup CronJob would use: no probes, lifecycle hooks, ephemeral containers,
// topology spread, DNS config, CSI / ephemeral / cloud volumes, managedFields, status conditions...);
// any other field number, at any depth, throws "unsupported protobuf field N in Message", which the
// HTTP layer answers with 415 (a real server decodes every field). Unknown enum strings pass through.

type Presence = 'omitempty' | 'always' | 'pointer';
type Scalar = 'string' | 'int' | 'bool' | 'quantity' | 'time' | 'stringMap' | 'quantityMap';

interface FieldSpec {
  num: number;
  json: string;
  type: Scalar | (() => Message);
  presence: Presence;
  repeated?: boolean;
  inline?: boolean;
}

/** A protobuf message type: its name (for errors) and its fields, in Go's struct (and JSON) order. */
export interface Message {
  name: string;
  fields: FieldSpec[];
}

// Field constructors: kind(fieldNumber, jsonName, presence).
const str = (num: number, json: string, presence: Presence = 'omitempty'): FieldSpec => ({ num, json, type: 'string', presence });
const int = (num: number, json: string, presence: Presence = 'omitempty'): FieldSpec => ({ num, json, type: 'int', presence });
const bool = (num: number, json: string, presence: Presence = 'omitempty'): FieldSpec => ({ num, json, type: 'bool', presence });
const strs = (num: number, json: string, presence: Presence = 'omitempty'): FieldSpec => ({ num, json, type: 'string', presence, repeated: true });
const ints = (num: number, json: string, presence: Presence = 'omitempty'): FieldSpec => ({ num, json, type: 'int', presence, repeated: true });
const strMap = (num: number, json: string): FieldSpec => ({ num, json, type: 'stringMap', presence: 'omitempty' });
const qtyMap = (num: number, json: string): FieldSpec => ({ num, json, type: 'quantityMap', presence: 'omitempty' });
const qty = (num: number, json: string, presence: Presence = 'pointer'): FieldSpec => ({ num, json, type: 'quantity', presence });
const time = (num: number, json: string, presence: Presence = 'pointer'): FieldSpec => ({ num, json, type: 'time', presence });
const msg = (num: number, json: string, type: () => Message, presence: Presence = 'pointer'): FieldSpec => ({ num, json, type, presence });
const msgs = (num: number, json: string, type: () => Message, presence: Presence = 'omitempty'): FieldSpec =>
  ({ num, json, type, presence, repeated: true });
const inline = (num: number, type: () => Message): FieldSpec => ({ num, json: '', type, presence: 'always', inline: true });

// --- k8s.io/apimachinery/pkg/apis/meta/v1 ---

const OwnerReference: Message = { name: 'OwnerReference', fields: [
  str(5, 'apiVersion', 'always'), str(1, 'kind', 'always'), str(3, 'name', 'always'), str(4, 'uid', 'always'),
  bool(6, 'controller', 'pointer'), bool(7, 'blockOwnerDeletion', 'pointer'),
] };

const ObjectMeta: Message = { name: 'ObjectMeta', fields: [
  str(1, 'name'), str(2, 'generateName'), str(3, 'namespace'), str(4, 'selfLink'), str(5, 'uid'), str(6, 'resourceVersion'),
  int(7, 'generation'), time(8, 'creationTimestamp', 'always'), time(9, 'deletionTimestamp'),
  int(10, 'deletionGracePeriodSeconds', 'pointer'), strMap(11, 'labels'), strMap(12, 'annotations'),
  msgs(13, 'ownerReferences', () => OwnerReference), strs(14, 'finalizers'),
] };

const LabelSelectorRequirement: Message = { name: 'LabelSelectorRequirement', fields: [
  str(1, 'key', 'always'), str(2, 'operator', 'always'), strs(3, 'values'),
] };

const LabelSelector: Message = { name: 'LabelSelector', fields: [
  strMap(1, 'matchLabels'), msgs(2, 'matchExpressions', () => LabelSelectorRequirement),
] };

// --- k8s.io/api/core/v1: volumes ---

const LocalObjectReference: Message = { name: 'LocalObjectReference', fields: [str(1, 'name')] };

const KeyToPath: Message = { name: 'KeyToPath', fields: [str(1, 'key', 'always'), str(2, 'path', 'always'), int(3, 'mode', 'pointer')] };

const ObjectFieldSelector: Message = { name: 'ObjectFieldSelector', fields: [str(1, 'apiVersion'), str(2, 'fieldPath', 'always')] };

const ResourceFieldSelector: Message = { name: 'ResourceFieldSelector', fields: [
  str(1, 'containerName'), str(2, 'resource', 'always'), qty(3, 'divisor', 'always'),
] };

const DownwardAPIVolumeFile: Message = { name: 'DownwardAPIVolumeFile', fields: [
  str(1, 'path', 'always'), msg(2, 'fieldRef', () => ObjectFieldSelector), msg(3, 'resourceFieldRef', () => ResourceFieldSelector),
  int(4, 'mode', 'pointer'),
] };

const HostPathVolumeSource: Message = { name: 'HostPathVolumeSource', fields: [str(1, 'path', 'always'), str(2, 'type', 'pointer')] };

const EmptyDirVolumeSource: Message = { name: 'EmptyDirVolumeSource', fields: [str(1, 'medium'), qty(2, 'sizeLimit')] };

const SecretVolumeSource: Message = { name: 'SecretVolumeSource', fields: [
  str(1, 'secretName'), msgs(2, 'items', () => KeyToPath), int(3, 'defaultMode', 'pointer'), bool(4, 'optional', 'pointer'),
] };

const PersistentVolumeClaimVolumeSource: Message = { name: 'PersistentVolumeClaimVolumeSource', fields: [
  str(1, 'claimName', 'always'), bool(2, 'readOnly'),
] };

const DownwardAPIVolumeSource: Message = { name: 'DownwardAPIVolumeSource', fields: [
  msgs(1, 'items', () => DownwardAPIVolumeFile), int(2, 'defaultMode', 'pointer'),
] };

const ConfigMapVolumeSource: Message = { name: 'ConfigMapVolumeSource', fields: [
  inline(1, () => LocalObjectReference), msgs(2, 'items', () => KeyToPath), int(3, 'defaultMode', 'pointer'), bool(4, 'optional', 'pointer'),
] };

const SecretProjection: Message = { name: 'SecretProjection', fields: [
  inline(1, () => LocalObjectReference), msgs(2, 'items', () => KeyToPath), bool(4, 'optional', 'pointer'),
] };

const ConfigMapProjection: Message = { name: 'ConfigMapProjection', fields: [
  inline(1, () => LocalObjectReference), msgs(2, 'items', () => KeyToPath), bool(4, 'optional', 'pointer'),
] };

const DownwardAPIProjection: Message = { name: 'DownwardAPIProjection', fields: [msgs(1, 'items', () => DownwardAPIVolumeFile)] };

const ServiceAccountTokenProjection: Message = { name: 'ServiceAccountTokenProjection', fields: [
  str(1, 'audience'), int(2, 'expirationSeconds', 'pointer'), str(3, 'path', 'always'),
] };

const VolumeProjection: Message = { name: 'VolumeProjection', fields: [
  msg(1, 'secret', () => SecretProjection), msg(2, 'downwardAPI', () => DownwardAPIProjection),
  msg(3, 'configMap', () => ConfigMapProjection), msg(4, 'serviceAccountToken', () => ServiceAccountTokenProjection),
] };

const ProjectedVolumeSource: Message = { name: 'ProjectedVolumeSource', fields: [
  msgs(1, 'sources', () => VolumeProjection, 'always'), int(2, 'defaultMode', 'pointer'),
] };

const VolumeSource: Message = { name: 'VolumeSource', fields: [
  msg(1, 'hostPath', () => HostPathVolumeSource), msg(2, 'emptyDir', () => EmptyDirVolumeSource), msg(6, 'secret', () => SecretVolumeSource),
  msg(10, 'persistentVolumeClaim', () => PersistentVolumeClaimVolumeSource), msg(16, 'downwardAPI', () => DownwardAPIVolumeSource),
  msg(19, 'configMap', () => ConfigMapVolumeSource), msg(26, 'projected', () => ProjectedVolumeSource),
] };

const Volume: Message = { name: 'Volume', fields: [str(1, 'name', 'always'), inline(2, () => VolumeSource)] };

// --- containers ---

const ContainerPort: Message = { name: 'ContainerPort', fields: [
  str(1, 'name'), int(2, 'hostPort'), int(3, 'containerPort', 'always'), str(4, 'protocol'), str(5, 'hostIP'),
] };

const ConfigMapEnvSource: Message = { name: 'ConfigMapEnvSource', fields: [inline(1, () => LocalObjectReference), bool(2, 'optional', 'pointer')] };
const SecretEnvSource: Message = { name: 'SecretEnvSource', fields: [inline(1, () => LocalObjectReference), bool(2, 'optional', 'pointer')] };

const EnvFromSource: Message = { name: 'EnvFromSource', fields: [
  str(1, 'prefix'), msg(2, 'configMapRef', () => ConfigMapEnvSource), msg(3, 'secretRef', () => SecretEnvSource),
] };

const ConfigMapKeySelector: Message = { name: 'ConfigMapKeySelector', fields: [
  inline(1, () => LocalObjectReference), str(2, 'key', 'always'), bool(3, 'optional', 'pointer'),
] };

const SecretKeySelector: Message = { name: 'SecretKeySelector', fields: [
  inline(1, () => LocalObjectReference), str(2, 'key', 'always'), bool(3, 'optional', 'pointer'),
] };

const EnvVarSource: Message = { name: 'EnvVarSource', fields: [
  msg(1, 'fieldRef', () => ObjectFieldSelector), msg(2, 'resourceFieldRef', () => ResourceFieldSelector),
  msg(3, 'configMapKeyRef', () => ConfigMapKeySelector), msg(4, 'secretKeyRef', () => SecretKeySelector),
] };

const EnvVar: Message = { name: 'EnvVar', fields: [str(1, 'name', 'always'), str(2, 'value'), msg(3, 'valueFrom', () => EnvVarSource)] };

const ResourceClaim: Message = { name: 'ResourceClaim', fields: [str(1, 'name', 'always'), str(2, 'request')] };

const ResourceRequirements: Message = { name: 'ResourceRequirements', fields: [
  qtyMap(1, 'limits'), qtyMap(2, 'requests'), msgs(3, 'claims', () => ResourceClaim),
] };

const VolumeMount: Message = { name: 'VolumeMount', fields: [
  str(1, 'name', 'always'), bool(2, 'readOnly'), str(7, 'recursiveReadOnly', 'pointer'), str(3, 'mountPath', 'always'),
  str(4, 'subPath'), str(5, 'mountPropagation', 'pointer'), str(6, 'subPathExpr'),
] };

const Capabilities: Message = { name: 'Capabilities', fields: [strs(1, 'add'), strs(2, 'drop')] };

const SELinuxOptions: Message = { name: 'SELinuxOptions', fields: [str(1, 'user'), str(2, 'role'), str(3, 'type'), str(4, 'level')] };

const SeccompProfile: Message = { name: 'SeccompProfile', fields: [str(1, 'type', 'always'), str(2, 'localhostProfile', 'pointer')] };

const AppArmorProfile: Message = { name: 'AppArmorProfile', fields: [str(1, 'type', 'always'), str(2, 'localhostProfile', 'pointer')] };

const SecurityContext: Message = { name: 'SecurityContext', fields: [
  msg(1, 'capabilities', () => Capabilities), bool(2, 'privileged', 'pointer'), msg(3, 'seLinuxOptions', () => SELinuxOptions),
  int(4, 'runAsUser', 'pointer'), int(8, 'runAsGroup', 'pointer'), bool(5, 'runAsNonRoot', 'pointer'),
  bool(6, 'readOnlyRootFilesystem', 'pointer'), bool(7, 'allowPrivilegeEscalation', 'pointer'), str(9, 'procMount', 'pointer'),
  msg(11, 'seccompProfile', () => SeccompProfile), msg(12, 'appArmorProfile', () => AppArmorProfile),
] };

const Container: Message = { name: 'Container', fields: [
  str(1, 'name', 'always'), str(2, 'image'), strs(3, 'command'), strs(4, 'args'), str(5, 'workingDir'),
  msgs(6, 'ports', () => ContainerPort), msgs(19, 'envFrom', () => EnvFromSource), msgs(7, 'env', () => EnvVar),
  msg(8, 'resources', () => ResourceRequirements, 'always'), str(24, 'restartPolicy', 'pointer'),
  msgs(9, 'volumeMounts', () => VolumeMount), str(13, 'terminationMessagePath'), str(20, 'terminationMessagePolicy'),
  str(14, 'imagePullPolicy'), msg(15, 'securityContext', () => SecurityContext), bool(16, 'stdin'), bool(17, 'stdinOnce'), bool(18, 'tty'),
] };

// --- pod spec ---

const Sysctl: Message = { name: 'Sysctl', fields: [str(1, 'name', 'always'), str(2, 'value', 'always')] };

const PodSecurityContext: Message = { name: 'PodSecurityContext', fields: [
  msg(1, 'seLinuxOptions', () => SELinuxOptions), int(2, 'runAsUser', 'pointer'), int(6, 'runAsGroup', 'pointer'),
  bool(3, 'runAsNonRoot', 'pointer'), ints(4, 'supplementalGroups'), str(12, 'supplementalGroupsPolicy', 'pointer'),
  int(5, 'fsGroup', 'pointer'), msgs(7, 'sysctls', () => Sysctl), str(9, 'fsGroupChangePolicy', 'pointer'),
  msg(10, 'seccompProfile', () => SeccompProfile), msg(11, 'appArmorProfile', () => AppArmorProfile),
  str(13, 'seLinuxChangePolicy', 'pointer'),
] };

const Toleration: Message = { name: 'Toleration', fields: [
  str(1, 'key'), str(2, 'operator'), str(3, 'value'), str(4, 'effect'), int(5, 'tolerationSeconds', 'pointer'),
] };

const NodeSelectorRequirement: Message = { name: 'NodeSelectorRequirement', fields: [
  str(1, 'key', 'always'), str(2, 'operator', 'always'), strs(3, 'values'),
] };

const NodeSelectorTerm: Message = { name: 'NodeSelectorTerm', fields: [
  msgs(1, 'matchExpressions', () => NodeSelectorRequirement), msgs(2, 'matchFields', () => NodeSelectorRequirement),
] };

const NodeSelector: Message = { name: 'NodeSelector', fields: [msgs(1, 'nodeSelectorTerms', () => NodeSelectorTerm, 'always')] };

const PreferredSchedulingTerm: Message = { name: 'PreferredSchedulingTerm', fields: [
  int(1, 'weight', 'always'), msg(2, 'preference', () => NodeSelectorTerm, 'always'),
] };

const NodeAffinity: Message = { name: 'NodeAffinity', fields: [
  msg(1, 'requiredDuringSchedulingIgnoredDuringExecution', () => NodeSelector),
  msgs(2, 'preferredDuringSchedulingIgnoredDuringExecution', () => PreferredSchedulingTerm),
] };

const PodAffinityTerm: Message = { name: 'PodAffinityTerm', fields: [
  msg(1, 'labelSelector', () => LabelSelector), strs(2, 'namespaces'), str(3, 'topologyKey', 'always'),
  msg(4, 'namespaceSelector', () => LabelSelector), strs(5, 'matchLabelKeys'), strs(6, 'mismatchLabelKeys'),
] };

const WeightedPodAffinityTerm: Message = { name: 'WeightedPodAffinityTerm', fields: [
  int(1, 'weight', 'always'), msg(2, 'podAffinityTerm', () => PodAffinityTerm, 'always'),
] };

const PodAffinity: Message = { name: 'PodAffinity', fields: [
  msgs(1, 'requiredDuringSchedulingIgnoredDuringExecution', () => PodAffinityTerm),
  msgs(2, 'preferredDuringSchedulingIgnoredDuringExecution', () => WeightedPodAffinityTerm),
] };

const PodAntiAffinity: Message = { name: 'PodAntiAffinity', fields: PodAffinity.fields };

const Affinity: Message = { name: 'Affinity', fields: [
  msg(1, 'nodeAffinity', () => NodeAffinity), msg(2, 'podAffinity', () => PodAffinity), msg(3, 'podAntiAffinity', () => PodAntiAffinity),
] };

const HostAlias: Message = { name: 'HostAlias', fields: [str(1, 'ip', 'always'), strs(2, 'hostnames')] };

const PodOS: Message = { name: 'PodOS', fields: [str(1, 'name', 'always')] };

const PodSpec: Message = { name: 'PodSpec', fields: [
  msgs(1, 'volumes', () => Volume), msgs(20, 'initContainers', () => Container), msgs(2, 'containers', () => Container, 'always'),
  str(3, 'restartPolicy'), int(4, 'terminationGracePeriodSeconds', 'pointer'), int(5, 'activeDeadlineSeconds', 'pointer'),
  str(6, 'dnsPolicy'), strMap(7, 'nodeSelector'), str(8, 'serviceAccountName'), str(9, 'serviceAccount'),
  bool(21, 'automountServiceAccountToken', 'pointer'), str(10, 'nodeName'), bool(11, 'hostNetwork'), bool(12, 'hostPID'),
  bool(13, 'hostIPC'), bool(27, 'shareProcessNamespace', 'pointer'), msg(14, 'securityContext', () => PodSecurityContext),
  msgs(15, 'imagePullSecrets', () => LocalObjectReference), str(16, 'hostname'), str(17, 'subdomain'),
  msg(18, 'affinity', () => Affinity), str(19, 'schedulerName'), msgs(22, 'tolerations', () => Toleration),
  msgs(23, 'hostAliases', () => HostAlias), str(24, 'priorityClassName'), int(25, 'priority', 'pointer'),
  str(29, 'runtimeClassName', 'pointer'), bool(30, 'enableServiceLinks', 'pointer'), str(31, 'preemptionPolicy', 'pointer'),
  bool(35, 'setHostnameAsFQDN', 'pointer'), msg(36, 'os', () => PodOS), bool(37, 'hostUsers', 'pointer'),
] };

const PodTemplateSpec: Message = { name: 'PodTemplateSpec', fields: [
  msg(1, 'metadata', () => ObjectMeta, 'always'), msg(2, 'spec', () => PodSpec, 'always'),
] };

// --- k8s.io/api/batch/v1 ---

// kubectl 1.32's k8s.io/api has omitempty on containerName, onExitCodes and onPodConditions (checked
// against its --dry-run=client -o json); later types.go drop it there.
const PodFailurePolicyOnExitCodesRequirement: Message = { name: 'PodFailurePolicyOnExitCodesRequirement', fields: [
  str(1, 'containerName', 'pointer'), str(2, 'operator', 'always'), ints(3, 'values', 'always'),
] };

const PodFailurePolicyOnPodConditionsPattern: Message = { name: 'PodFailurePolicyOnPodConditionsPattern', fields: [
  str(1, 'type', 'always'), str(2, 'status', 'always'),
] };

const PodFailurePolicyRule: Message = { name: 'PodFailurePolicyRule', fields: [
  str(1, 'action', 'always'), msg(2, 'onExitCodes', () => PodFailurePolicyOnExitCodesRequirement),
  msgs(3, 'onPodConditions', () => PodFailurePolicyOnPodConditionsPattern),
] };

const PodFailurePolicy: Message = { name: 'PodFailurePolicy', fields: [msgs(1, 'rules', () => PodFailurePolicyRule, 'always')] };

const SuccessPolicyRule: Message = { name: 'SuccessPolicyRule', fields: [str(1, 'succeededIndexes', 'pointer'), int(2, 'succeededCount', 'pointer')] };

const SuccessPolicy: Message = { name: 'SuccessPolicy', fields: [msgs(1, 'rules', () => SuccessPolicyRule, 'always')] };

const JobSpec: Message = { name: 'JobSpec', fields: [
  int(1, 'parallelism', 'pointer'), int(2, 'completions', 'pointer'), int(3, 'activeDeadlineSeconds', 'pointer'),
  msg(11, 'podFailurePolicy', () => PodFailurePolicy), msg(16, 'successPolicy', () => SuccessPolicy),
  int(7, 'backoffLimit', 'pointer'), int(12, 'backoffLimitPerIndex', 'pointer'), int(13, 'maxFailedIndexes', 'pointer'),
  msg(4, 'selector', () => LabelSelector), bool(5, 'manualSelector', 'pointer'), msg(6, 'template', () => PodTemplateSpec, 'always'),
  int(8, 'ttlSecondsAfterFinished', 'pointer'), str(9, 'completionMode', 'pointer'), bool(10, 'suspend', 'pointer'),
  str(14, 'podReplacementPolicy', 'pointer'), str(15, 'managedBy', 'pointer'),
] };

const UncountedTerminatedPods: Message = { name: 'UncountedTerminatedPods', fields: [strs(1, 'succeeded'), strs(2, 'failed')] };

/** The status fields Go always marshals (a new Job's status is all zero), and the pointer ones that are simple. */
const JobStatus: Message = { name: 'JobStatus', fields: [
  time(2, 'startTime'), time(3, 'completionTime'), int(4, 'active'), int(5, 'succeeded'), int(6, 'failed'),
  int(11, 'terminating', 'pointer'), str(7, 'completedIndexes'), str(10, 'failedIndexes', 'pointer'),
  msg(8, 'uncountedTerminatedPods', () => UncountedTerminatedPods), int(9, 'ready', 'pointer'),
] };

/** batch/v1 Job. */
export const Job: Message = { name: 'Job', fields: [
  msg(1, 'metadata', () => ObjectMeta, 'always'), msg(2, 'spec', () => JobSpec, 'always'), msg(3, 'status', () => JobStatus, 'always'),
] };

/** resource.Quantity (its canonical string) and metav1.Time (a Timestamp), which JSON carries as strings. */
const Quantity: Message = { name: 'Quantity', fields: [str(1, 'string')] };
const Timestamp: Message = { name: 'Time', fields: [int(1, 'seconds'), int(2, 'nanos')] };

// --- the decoder ---

interface RawField { num: number; wire: number; value: Buffer | bigint }

/** The varint at pos, and the position after it. */
function varint(buf: Buffer, pos: number): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    if (pos >= buf.length) throw new Error('truncated protobuf varint');
    const b = buf[pos++]!;
    result |= BigInt(b & 0x7f) << shift;
    shift += 7n;
    if (!(b & 0x80)) return [result, pos];
    if (shift > 63n) throw new Error('malformed protobuf varint');
  }
}

/** Splits a message of the given type into its fields (varints and length-delimited only, as in all k8s types). */
function rawFields(buf: Buffer, type: string): RawField[] {
  const out: RawField[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const [key, p1] = varint(buf, pos);
    const num = Number(key >> 3n);
    const wire = Number(key & 7n);
    pos = p1;
    if (wire === 0) {
      const [v, p2] = varint(buf, pos);
      out.push({ num, wire, value: v });
      pos = p2;
    } else if (wire === 2) {
      const [len, p2] = varint(buf, pos);
      const end = p2 + Number(len);
      if (end > buf.length) throw new Error(`truncated protobuf field ${num} in ${type}`);
      out.push({ num, wire, value: buf.subarray(p2, end) });
      pos = end;
    } else {
      throw new Error(`unsupported protobuf wire type ${wire} (field ${num} in ${type})`);
    }
  }
  return out;
}

/** A varint as the signed 64-bit integer Go wrote (int32 and int64 negatives are sign-extended). */
function signed(v: bigint): number {
  return Number(BigInt.asIntN(64, v));
}

function wireError(f: RawField, m: Message): Error {
  return new Error(`unexpected protobuf wire type ${f.wire} for field ${f.num} in ${m.name}`);
}

/** resource.Quantity: the canonical string Go marshals (q.String()); a zero Quantity is "0". */
function quantity(buf: Buffer): string {
  return (decodeMessage(Quantity, buf).string as string | undefined) ?? '0';
}

/** metav1.Time: a Timestamp, empty for the zero time (null in JSON); RFC 3339 in seconds otherwise. */
function timestamp(buf: Buffer): string | null {
  if (!buf.length) return null;
  const t = decodeMessage(Timestamp, buf) as { seconds?: number };
  return new Date((t.seconds ?? 0) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** A map<string, V> field: its entries are messages of key 1 and value 2. */
function mapEntries(spec: FieldSpec, got: RawField[], m: Message): Record<string, string> {
  const type = `${m.name}.${spec.json} entry`;
  const value = spec.type === 'stringMap' ? (b: Buffer) => b.toString('utf8') : quantity;
  const out: Record<string, string> = {};
  for (const entry of got) {
    if (!Buffer.isBuffer(entry.value)) throw wireError(entry, m);
    let key = '';
    let val = value(Buffer.alloc(0));
    for (const f of rawFields(entry.value, type)) {
      if (f.num === 1 && Buffer.isBuffer(f.value)) key = f.value.toString('utf8');
      else if (f.num === 2 && Buffer.isBuffer(f.value)) val = value(f.value);
      else throw new Error(`unsupported protobuf field ${f.num} in ${type}`);
    }
    out[key] = val;
  }
  return out;
}

/** One element of a field, as JSON. */
function element(spec: FieldSpec, f: RawField, m: Message): unknown {
  const t = spec.type;
  if (t === 'int' || t === 'bool') {
    if (typeof f.value !== 'bigint') throw wireError(f, m);
    return t === 'int' ? signed(f.value) : f.value !== 0n;
  }
  if (!Buffer.isBuffer(f.value)) throw wireError(f, m);
  if (t === 'string') return f.value.toString('utf8');
  if (t === 'quantity') return quantity(f.value);
  if (t === 'time') return timestamp(f.value);
  if (typeof t === 'function') return decodeMessage(t(), f.value);
  throw wireError(f, m);
}

/** The elements of a repeated field (a packed repeated integer field holds several in one). */
function elements(spec: FieldSpec, got: RawField[], m: Message): unknown[] {
  const items: unknown[] = [];
  for (const f of got) {
    if (spec.type === 'int' && Buffer.isBuffer(f.value)) {
      for (let pos = 0; pos < f.value.length;) {
        const [v, next] = varint(f.value, pos);
        items.push(signed(v));
        pos = next;
      }
    } else {
      items.push(element(spec, f, m));
    }
  }
  return items;
}

/** The JSON value of a field Go always writes to JSON, when protobuf did not carry it. */
function zero(spec: FieldSpec): unknown {
  if (spec.repeated) return null;
  switch (spec.type) {
    case 'string': return '';
    case 'int': return 0;
    case 'bool': return false;
    case 'quantity': return '0';
    case 'time': case 'stringMap': case 'quantityMap': return null;
    default: return decodeMessage(spec.type(), Buffer.alloc(0));
  }
}

/**
 * Decodes one message of type m into its JSON object; throws "unsupported protobuf field N in M"
 * for a field number the table does not list (at any depth).
 */
export function decodeMessage(m: Message, buf: Buffer): Record<string, unknown> {
  const seen = new Map<number, RawField[]>();
  for (const f of rawFields(buf, m.name)) {
    if (!m.fields.some((spec) => spec.num === f.num)) throw new Error(`unsupported protobuf field ${f.num} in ${m.name}`);
    seen.set(f.num, [...(seen.get(f.num) ?? []), f]);
  }
  const out: Record<string, unknown> = {};
  for (const spec of m.fields) {
    const got = seen.get(spec.num) ?? [];
    if (spec.type === 'stringMap' || spec.type === 'quantityMap') { // maps are all omitempty
      const map = mapEntries(spec, got, m);
      if (Object.keys(map).length) out[spec.json] = map;
      continue;
    }
    const list = spec.repeated ? elements(spec, got, m) : undefined;
    const present = list ? list.length > 0 : got.length > 0;
    const value = list ?? (present ? element(spec, got[got.length - 1]!, m) : undefined); // the last one wins, as in protobuf
    if (spec.inline) {
      Object.assign(out, present ? value : zero(spec));
    } else if (spec.presence === 'pointer') {
      if (present) out[spec.json] = value;
    } else if (spec.presence === 'always') {
      out[spec.json] = present ? value : zero(spec);
    } else if (present && value !== '' && value !== 0 && value !== false) { // omitempty
      out[spec.json] = value;
    }
  }
  return out;
}

/** A batch/v1 Job's protobuf (the envelope's raw bytes) as the JSON object kubectl would have sent. */
export function jobToJson(raw: Buffer): Record<string, unknown> {
  return { kind: 'Job', apiVersion: 'batch/v1', ...decodeMessage(Job, raw) };
}
