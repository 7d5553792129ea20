import { UsageError } from '../errors.js';
import type { EtcdMember } from '../etcd/topology.js';

/**
 * The members to try, in order: with `forced` only the member whose pod, etcd name or member ID
 * matches; otherwise ready members first (followers are not preferred over the leader: any
 * healthy member can serve a snapshot), in topology order.
 */
export function orderCandidates(members: EtcdMember[], forced?: string): EtcdMember[] {
  if (forced !== undefined) {
    const hit = members.find((m) => m.pod === forced || m.name === forced || m.memberId === forced);
    if (!hit) {
      throw new UsageError(
        `member "${forced}" is not part of this etcd cluster`,
        `pass --member with one of: ${members.map((m) => m.pod).join(', ')}`,
      );
    }
    return [hit];
  }
  return [...members.filter((m) => m.ready !== false), ...members.filter((m) => m.ready === false)];
}
