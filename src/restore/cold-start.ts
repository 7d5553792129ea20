/**
 * Can the members of a StatefulSet start again from nothing? After a restore every member starts
 * at once on its restored data, and etcd answers health checks only once a quorum of members
 * talk to each other. Two ordinary settings make that wait forever when the etcd container's
 * readiness (or startup) probe needs quorum:
 *
 * - podManagementPolicy OrderedReady (the default): the StatefulSet controller creates pod N+1
 *   only once pod N is Ready, so pod 0 waits alone for peers that are never created
 *   (https://kubernetes.io/docs/concepts/workloads/controllers/statefulset/#orderedready-pod-management);
 * - a governing headless Service without publishNotReadyAddresses: DNS lists a member only while
 *   it is Ready, so members that are not Ready cannot find each other
 *   (Service v1 API reference, publishNotReadyAddresses).
 *
 * podManagementPolicy and serviceName cannot be changed on an existing StatefulSet. What can change
 * is the pod template and the Service. Under OrderedReady the restore takes the probes off while
 * the members start, and puts them back (a rolling update, one member at a time, with quorum) once
 * etcd is healthy. A Service that hides not-ready members is made to publish them, and stays so:
 * with peer TLS, etcd accepts a peer only when a DNS name of the peer's certificate resolves to
 * its address, so a member out of DNS can never (re)join — under such a Service a rolling update
 * stalls on its first member, and a member whose probe fails once is lost (measured: set back
 * right after a restore, a member dropped out and never came back).
 */
import type { V1Probe, V1Service, V1StatefulSet } from '@kubernetes/client-node';

/** The probes the hold takes off the etcd container, as they were. */
export interface HeldProbes {
  readinessProbe?: V1Probe;
  startupProbe?: V1Probe;
}

/** Why a cold start would never finish, and what the restore sets aside while the members start. */
export interface ColdStartHold {
  /** The etcd container whose probes are held. */
  container: string;
  /** One phrase each: "podManagementPolicy is OrderedReady", "Service "x" publishes Ready pods only". */
  reasons: string[];
  /** Probes taken off while the members start (OrderedReady); empty when only the Service is held. */
  probes: HeldProbes;
  /** The governing Service, when it publishes not-ready members only while they start. */
  service?: string;
  updateStrategy: 'RollingUpdate' | 'OnDelete';
  /** updateStrategy.rollingUpdate.partition, when above 0 (preflight refuses it). */
  partition?: number;
}

/**
 * True when a probe may need quorum to pass. Only a TCP check, and etcd's /health or /readyz
 * asked for a serializable (local) answer, are known not to; anything else (etcdctl endpoint
 * health, a linearizable /health, a script) is taken to need it.
 */
export function probeMayNeedQuorum(probe: V1Probe | undefined): boolean {
  if (!probe) return false;
  if (probe.tcpSocket) return false;
  if (probe.httpGet) return !/[?&]serializable=true\b/.test(probe.httpGet.path ?? '');
  return true;
}

/**
 * The hold a restore of this StatefulSet needs, or undefined when its members can start together
 * as they are. service is the governing Service (spec.serviceName), undefined when absent.
 */
export function coldStartHold(sts: V1StatefulSet, container: string, service: V1Service | undefined): ColdStartHold | undefined {
  const replicas = sts.spec?.replicas ?? 1;
  const c = sts.spec?.template?.spec?.containers?.find((x) => x.name === container);
  if (!c || replicas < 2) return undefined;
  const quorumProbes: HeldProbes = {
    ...(probeMayNeedQuorum(c.readinessProbe) ? { readinessProbe: c.readinessProbe } : {}),
    ...(probeMayNeedQuorum(c.startupProbe) ? { startupProbe: c.startupProbe } : {}),
  };
  if (!quorumProbes.readinessProbe && !quorumProbes.startupProbe) return undefined;
  const reasons: string[] = [];
  const ordered = (sts.spec?.podManagementPolicy ?? 'OrderedReady') === 'OrderedReady';
  if (ordered) reasons.push('its podManagementPolicy is OrderedReady (pod 1 is created only once pod 0 is Ready)');
  const hidden = service?.spec?.clusterIP === 'None' && service.spec.publishNotReadyAddresses !== true;
  if (hidden) reasons.push(`its Service "${service.metadata?.name}" does not set publishNotReadyAddresses (members are in DNS only while Ready)`);
  if (!reasons.length) return undefined;
  const onDelete = sts.spec?.updateStrategy?.type === 'OnDelete';
  const partition = onDelete || !ordered ? 0 : sts.spec?.updateStrategy?.rollingUpdate?.partition ?? 0;
  return {
    container, reasons, probes: ordered ? quorumProbes : {}, ...(hidden ? { service: service.metadata?.name ?? '' } : {}),
    updateStrategy: onDelete ? 'OnDelete' : 'RollingUpdate', ...(partition > 0 ? { partition } : {}),
  };
}

/** The probe names a hold takes off, for titles: "readiness probe", "readiness and startup probes"; undefined when none. */
export function heldProbeNames(hold: ColdStartHold): string | undefined {
  const names = [hold.probes.readinessProbe ? 'readiness' : '', hold.probes.startupProbe ? 'startup' : ''].filter(Boolean);
  if (!names.length) return undefined;
  return names.length > 1 ? `${names.join(' and ')} probes` : `${names[0]} probe`;
}

/** What a hold changes while the members start, for titles and messages. */
export function holdWhat(hold: ColdStartHold): string {
  const probes = heldProbeNames(hold);
  return [
    probes ? `the ${probes} of container "${hold.container}" off` : '',
    hold.service ? `Service "${hold.service}" publishing not-ready members` : '',
  ].filter(Boolean).join(' and ');
}
