// Pod streams: exec, attach, port-forward and logs, served by the API server after it has
// authenticated and authorized the request. The API server calls `handlePodStream`; the
// protocols live in ./streams/ (exec.ts, portforward.ts, log.ts; framing in channels.ts).
// Differences from a real API server + kubelet (details at the top of each streams/ module):
// - WebSocket only (v5/v4.channel.k8s.io for exec, v4.channel.k8s.io for port-forward); no SPDY,
//   so kubectl < 1.30 cannot exec/cp and `kubectl port-forward` does not work;
// - attach is answered with 501 NotImplemented;
// - no pseudo-terminal for tty=true; logs carry no timestamps;
// - stream faults from DIR/faults.json (see test/sim/README.md) can cut, stall, idle-cut or blackhole a stream.
// A pod on a node whose kubelet is stopped (fault kubelet-stop) gets no stream: see
// streams/kubeletdial.ts (exec answers it in streams/exec.ts, after the upgrade for v5).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { V1Pod } from '@kubernetes/client-node';
import type { Json } from '../json.js';
import { serveExec } from './streams/exec.js';
import { serveLog } from './streams/log.js';
import { servePortForward } from './streams/portforward.js';
import { kubeletDialFailure } from './streams/kubeletdial.js';

/** Everything the API server hands over for one pods/{exec,attach,portforward,log} request. */
export interface PodStreamContext {
  kind: 'exec' | 'attach' | 'portforward' | 'log';
  req: IncomingMessage;
  /** Present for plain HTTP requests (log, or a non-upgrade exec). */
  res?: ServerResponse;
  /** Present for upgrade requests, with the bytes read past the headers. */
  socket?: Duplex;
  head?: Buffer;
  namespace: string;
  pod: Json<V1Pod>;
  query: URLSearchParams;
  /** The cluster's DIR (runtime/, faults.json). */
  dir: string;
  user: string;
  /** Answers with a metav1.Status error (before any upgrade). */
  sendStatus(code: number, reason: string, message: string): void;
}

/** Serves one pod stream; resolves when it is over. */
export async function handlePodStream(ctx: PodStreamContext): Promise<void> {
  const down = ctx.kind === 'portforward' || ctx.kind === 'log' ? kubeletDialFailure(ctx) : undefined;
  if (down && ctx.kind === 'portforward') return ctx.sendStatus(500, 'InternalError', `error dialing backend: ${down.dial}`);
  if (down) {
    const container = ctx.query.get('container') ?? ctx.pod.spec?.containers?.[0]?.name ?? '';
    return ctx.sendStatus(500, 'InternalError', `Get "https://${down.ip}:10250/containerLogs/${ctx.namespace}/${ctx.pod.metadata?.name}/${container}": ${down.dial}`);
  }
  try {
    switch (ctx.kind) {
      case 'exec': return await serveExec(ctx);
      case 'portforward': return await servePortForward(ctx);
      case 'log': return await serveLog(ctx);
      case 'attach':
        return ctx.sendStatus(501, 'NotImplemented', 'attach is not supported by the simulator; use kubectl logs -f or kubectl exec');
    }
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    if (ctx.res && !ctx.res.headersSent) return ctx.sendStatus(500, 'InternalError', `Internal error occurred: ${msg}`);
    if (ctx.res) ctx.res.destroy();
    else ctx.socket?.destroy();
  }
}
