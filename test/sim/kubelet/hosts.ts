// The pod's /etc/hosts: localhost, the pod's own name, and every running pod selected by each
// headless Service of the namespace under `<pod>.<svc>`, `<pod>.<svc>.<ns>`, `<pod>.<svc>.<ns>.svc`
// and `<pod>.<svc>.<ns>.svc.cluster.local`.
// Differs from a real cluster: no DNS server; names resolve only through this file; a pod is
// listed whether or not it is ready (as with publishNotReadyAddresses) and whether or not its
// spec.subdomain names the Service; Service names themselves (without a pod) are not listed.
import type { Pod, Service } from './objects.js';

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
    const members = pods
      .filter((p) => p.metadata?.namespace === ns && !p.metadata?.deletionTimestamp && (p.status?.podIP || p.metadata?.uid === pod.metadata.uid) && selects(svc.spec?.selector, p.metadata.labels))
      .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
    for (const p of members) {
      const n = p.spec?.hostname ?? p.metadata.name;
      const ip = p.metadata.uid === pod.metadata.uid ? podIP : p.status?.podIP;
      lines.push(`${ip}\t${n}.${svcName} ${n}.${svcName}.${ns} ${n}.${svcName}.${ns}.svc ${n}.${svcName}.${ns}.svc.cluster.local`);
    }
  }
  return lines.join('\n') + '\n';
}
