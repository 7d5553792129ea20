// The pod's /etc/hosts: localhost, the pod's own name, and every running pod selected by each
// headless Service of the namespace under `<pod>.<svc>`, `<pod>.<svc>.<ns>`, `<pod>.<svc>.<ns>.svc`
// and `<pod>.<svc>.<ns>.svc.cluster.local`.
// As in a real cluster, another pod is listed only while it is Ready, unless the Service sets
// publishNotReadyAddresses: DNS for a headless Service serves the Ready endpoints of its
// EndpointSlices, and not-ready ones only when the Service publishes them ("publishNotReadyAddresses
// indicates that any agent which deals with endpoints for this Service should disregard any
// indications of ready/not-ready. The primary use case for setting this field is for a
// StatefulSet's Headless Service to propagate SRV DNS records for its Pods for the purpose of peer
// discovery", Service v1 API reference; CoreDNS kubernetes plugin). Members of an etcd
// StatefulSet whose readiness needs quorum therefore cannot find each other after a cold start.
// Differs from a real cluster: no DNS server; names resolve only through this file (the pod's own
// names always, as the kubelet writes its hostname there); a pod is listed whether or not its
// spec.subdomain names the Service; Service names themselves (without a pod) are not listed.
import type { Pod, Service } from './objects.js';

function isReady(pod: Pod): boolean {
  return (pod.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

function selects(selector: Record<string, string> | undefined, labels: Record<string, string> | undefined): boolean {
  if (!selector || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

/** Renders the hosts file of one pod from the pods and Services of its namespace. */
export function renderHosts(pod: Pod, podIP: string, pods: Pod[], services: Service[]): string {
  const ns = pod.metadata.namespace;
  const hostname = pod.spec?.hostname ?? pod.metadata.name;
  const lines = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback'];
  const own = [hostname];
  if (pod.spec?.subdomain) own.unshift(`${hostname}.${pod.spec.subdomain}.${ns}.svc.cluster.local`);
  lines.push(`${podIP}\t${own.join(' ')}`);
  const headless = services.filter((s) => s.metadata?.namespace === ns && s.spec?.clusterIP === 'None');
  for (const svc of headless.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
    const svcName = svc.metadata.name;
    const self = (p: Pod) => p.metadata?.uid === pod.metadata.uid;
    const published = (p: Pod) => self(p) || svc.spec?.publishNotReadyAddresses === true || isReady(p);
    const members = pods
      .filter((p) => p.metadata?.namespace === ns && !p.metadata?.deletionTimestamp && (p.status?.podIP || self(p)) && published(p) && selects(svc.spec?.selector, p.metadata.labels))
      .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
    for (const p of members) {
      const n = p.spec?.hostname ?? p.metadata.name;
      const ip = p.metadata.uid === pod.metadata.uid ? podIP : p.status?.podIP;
      lines.push(`${ip}\t${n}.${svcName} ${n}.${svcName}.${ns} ${n}.${svcName}.${ns}.svc ${n}.${svcName}.${ns}.svc.cluster.local`);
    }
  }
  return lines.join('\n') + '\n';
}
