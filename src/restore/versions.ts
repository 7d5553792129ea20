/**
 * Which etcd version may open which snapshot: the rule preflight applies before the first change.
 *
 * Evidence (etcd 3.4.23 and 3.5.16, issue 13): etcdutl 3.5 restores a 3.4 snapshot and etcd 3.5
 * serves it — the data path of etcd's own upgrade, which goes one minor at a time. A 3.5 snapshot
 * restored by etcdctl 3.4 also starts and serves on 3.4, but that is a downgrade, which etcd
 * supports only as a documented rolling procedure on a live cluster, not by opening newer data
 * with an older binary; so it is refused unless --force. Members running different minors mean a
 * rollout is under way: the restore would restart every member from the template, finishing (or
 * undoing) that upgrade inside a disaster recovery, and the restore tool is probed in members of
 * the template's image, which such a cluster may not run (seen: a 3.5 template over 3.4 pods, forced,
 * plans `etcdctl snapshot restore` with no revision bump); so it is refused unless --force.
 */
import { minorOf } from './snapshot.js';

/** What the rule is given: versions as they were read (full or minor), undefined when unknown. */
export interface VersionFacts {
  /** The etcd version that wrote the snapshot. */
  snapshot?: string;
  /** The etcd version the restored members will run (the template's image). */
  cluster?: string;
  /** The etcd version each member's pod runs now, by member name (from its image tag). */
  members: Record<string, string | undefined>;
}

/** The rule's outcome. */
export type VersionVerdict =
  | { outcome: 'same'; minor: string }
  /** The snapshot is one minor older: etcd's upgrade path. Allowed. */
  | { outcome: 'upgrade'; from: string; to: string }
  /** The snapshot is newer than the cluster: a downgrade. Refused. */
  | { outcome: 'downgrade'; from: string; to: string }
  /** The snapshot is more than one minor older: etcd upgrades one minor at a time. Refused. */
  | { outcome: 'skips-minor'; from: string; to: string }
  /** Members (or members and template) run different minors: a rollout is under way. Refused. */
  | { outcome: 'mixed'; template: string; byMinor: Record<string, string[]> }
  /** The snapshot's or the cluster's version cannot be told. Allowed with a warning. */
  | { outcome: 'unknown'; what: 'snapshot' | 'cluster' };

/** Applies the rule; pure. */
export function compareVersions(facts: VersionFacts): VersionVerdict {
  const cluster = minorOf(facts.cluster);
  if (cluster) {
    const byMinor: Record<string, string[]> = {};
    for (const [name, version] of Object.entries(facts.members)) {
      const minor = minorOf(version);
      if (minor && minor !== cluster) (byMinor[minor] ??= []).push(name);
    }
    if (Object.keys(byMinor).length) return { outcome: 'mixed', template: cluster, byMinor };
  }
  const snap = minorOf(facts.snapshot);
  if (!snap) return { outcome: 'unknown', what: 'snapshot' };
  if (!cluster) return { outcome: 'unknown', what: 'cluster' };
  if (snap === cluster) return { outcome: 'same', minor: snap };
  const [sMajor, sMinor] = snap.split('.').map(Number) as [number, number];
  const [cMajor, cMinor] = cluster.split('.').map(Number) as [number, number];
  if (sMajor > cMajor || (sMajor === cMajor && sMinor > cMinor)) return { outcome: 'downgrade', from: snap, to: cluster };
  if (sMajor === cMajor && sMinor + 1 === cMinor) return { outcome: 'upgrade', from: snap, to: cluster };
  return { outcome: 'skips-minor', from: snap, to: cluster };
}
