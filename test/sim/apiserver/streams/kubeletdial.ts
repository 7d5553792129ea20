// A pod stream to a node whose kubelet is stopped (fault kubelet-stop, kubelet/stopped.ts): the
// API server's dial to the kubelet (port 10250) is refused. How the client learns it depends on
// the path: the old proxy (UpgradeAwareHandler: exec over v4/SPDY, port-forward, logs) answers
// before any upgrade, with HTTP 500 "error dialing backend: dial tcp IP:10250: connect: connection
// refused" (for logs, the failed GET of the kubelet's containerLogs URL; kubernetes/kubernetes
// #62511, #40817); the stream translator of v5.channel.k8s.io exec (1.30+,
// apiserver/pkg/util/proxy/streamtranslator.go) upgrades first, then dials, and sends the
// failure as an InternalError Status on channel 3, worded by spdy.Negotiate ("error sending
// request: Post "https://IP:10250/exec/…": dial tcp …").
import type { PodStreamContext } from '../podstreams.js';
import { readStopped, stoppedAt } from '../../kubelet/stopped.js';

/** The dial error when the pod's node's kubelet is stopped, else undefined. */
export function kubeletDialFailure(ctx: Pick<PodStreamContext, 'dir' | 'pod'>): { ip: string; dial: string } | undefined {
  const node = ctx.pod.spec?.nodeName;
  if (!node || !stoppedAt(readStopped(ctx.dir, true)).includes(node)) return undefined;
  const ip = ctx.pod.status?.hostIP ?? node;
  return { ip, dial: `dial tcp ${ip}:10250: connect: connection refused` };
}
