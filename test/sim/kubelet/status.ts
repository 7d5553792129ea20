// Pod status as the kubelet reports it: phase, IPs, start time, conditions and container
// statuses (ephemeral ones in ephemeralContainerStatuses, outside phase and readiness: docs,
// concepts/workloads/pods/ephemeral-containers), computed from the worker's container states.
// Differs from a real kubelet: imageID is the image reference; qosClass is always BestEffort;
// the PodReadyToStartContainers condition and resource fields are not reported.
import type { V1ContainerState, V1PodCondition } from '@kubernetes/client-node';
import type { Json } from '../json.js';

/** Kubernetes timestamp (RFC 3339, seconds). */
export function now(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z');
}

/** The state of one container as the pod status shows it. */
export interface ContainerState {
  name: string;
  /** The image the pod spec names. */
  image: string | undefined;
  state: Json<V1ContainerState>;
  lastState: Json<V1ContainerState>;
  ready: boolean;
  restartCount: number;
  containerID?: string;
  /** True once the container will not run again (terminated and no restart by policy). */
  done: boolean;
  started: boolean;
  /** An init container with restartPolicy Always: a native sidecar. */
  sidecar?: boolean;
}

/** What the pod status is computed from. */
export interface PodStatusInput {
  podIP?: string;
  hostIP: string;
  startTime: string;
  initDone: boolean;
  setupDone: boolean;
  init: ContainerState[];
  regular: ContainerState[];
  /** Ephemeral containers: reported, but never part of the phase or readiness. */
  ephemeral?: ContainerState[];
  /** A pod-level failure (e.g. an init container failed with restartPolicy Never). */
  failed?: { reason: string; message: string };
  /** Previous conditions, to keep lastTransitionTime stable. */
  previous: Json<V1PodCondition>[];
}

function containerStatus(c: ContainerState) {
  return {
    name: c.name, image: c.image, imageID: c.image, ready: c.ready, started: c.started, restartCount: c.restartCount,
    state: c.state, lastState: c.lastState, ...(c.containerID ? { containerID: c.containerID } : {}),
  };
}

/**
 * An ephemeral container's status: never ready, never restarted, and without `started` (the
 * kubelet's prober sets that only for regular and init containers).
 */
function ephemeralStatus(c: ContainerState) {
  return {
    name: c.name, image: c.image, imageID: c.image, ready: false, restartCount: 0,
    state: c.state, lastState: {}, ...(c.containerID ? { containerID: c.containerID } : {}),
  };
}

/** Computes the phase from the containers. */
export function podPhase(s: PodStatusInput): string {
  if (s.failed) return 'Failed';
  if (!s.setupDone || !s.initDone) return 'Pending';
  if (s.regular.length > 0 && s.regular.every((c) => c.done)) {
    return s.regular.every((c) => c.state.terminated?.exitCode === 0) ? 'Succeeded' : 'Failed';
  }
  if (s.regular.some((c) => c.state.running || c.restartCount > 0 || c.state.terminated)) return 'Running';
  return 'Pending';
}

/** Builds the full status object to send with a merge patch. */
export function buildPodStatus(s: PodStatusInput) {
  // A sidecar's readiness counts as a regular container's does (docs: concepts/workloads/pods/sidecar-containers).
  const ready = s.initDone && s.regular.length > 0 && s.regular.every((c) => c.ready) && s.init.filter((c) => c.sidecar).every((c) => c.ready);
  const want: Record<string, boolean> = {
    PodScheduled: true,
    Initialized: s.initDone,
    ContainersReady: ready,
    Ready: ready,
  };
  const conditions = Object.entries(want).map(([type, ok]) => {
    const status = ok ? 'True' : 'False';
    const prev = s.previous.find((c) => c.type === type);
    const lastTransitionTime = prev && prev.status === status ? prev.lastTransitionTime : now();
    const reason = ok ? undefined : type === 'Initialized' ? 'ContainersNotInitialized' : type === 'PodScheduled' ? undefined : 'ContainersNotReady';
    return { type, status, lastProbeTime: null, lastTransitionTime, ...(reason ? { reason } : {}) };
  });
  return {
    phase: podPhase(s),
    ...(s.failed ? { reason: s.failed.reason, message: s.failed.message } : {}),
    conditions,
    hostIP: s.hostIP,
    hostIPs: [{ ip: s.hostIP }],
    ...(s.podIP ? { podIP: s.podIP, podIPs: [{ ip: s.podIP }] } : {}),
    startTime: s.startTime,
    ...(s.init.length ? { initContainerStatuses: s.init.map(containerStatus) } : {}),
    containerStatuses: s.regular.map(containerStatus),
    ...(s.ephemeral?.length ? { ephemeralContainerStatuses: s.ephemeral.map(ephemeralStatus) } : {}),
    qosClass: 'BestEffort',
  };
}
