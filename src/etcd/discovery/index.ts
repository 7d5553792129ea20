/** etcd topology discovery: select the workload, read members from pod specs, confirm against the live cluster. */
export { discoverTopology, topologyFromWorkload, type DiscoveryOverrides, type MemberOverride } from './discover.js';
export { selectEtcdWorkload, type EtcdPodLister, type SelectedWorkload, type WorkloadSelection } from './select.js';
export { readMember, localClientEndpoint, ordinalOf, type MemberReadOptions } from './member.js';
export { confirmMembers, parseMemberList, type LiveMember, type MemberConfirmation, type MemberOutcome } from './confirm.js';
export { findEtcdContainer, findEtcdArgv } from './command.js';
export { podFromStatefulSet, labelSelectorString } from './template.js';
export { containerEnv, expandKubeVars } from './env.js';
