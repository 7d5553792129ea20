// pods/portforward over WebSocket as the kubelet's streaming server speaks it behind
// kube-apiserver: subprotocol v4.channel.k8s.io (or none), query `ports` (repeated or
// comma-separated; `port` accepted too), channels 2i (data) and 2i+1 (error) for the i-th port,
// each opened with the port number as 2 little-endian bytes, one connection per port per
// WebSocket, closed when every connection has ended. Each connection is a relay process
// (relay.mjs) run with `nsenter --target SANDBOXPID --net` that dials 127.0.0.1:PORT inside the
// pod's network namespace.
// Differences from a real API server + kubelet: `portforward.k8s.io` (kubectl port-forward's
// SPDY-over-WebSocket tunnel) and SPDY are not offered, so `kubectl port-forward` does not work;
// the error text on the error channel is shorter than containerd's.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { PodStreamContext } from '../podstreams.js';
import { ChannelSocket, isWebSocketRequest, negotiate, offeredProtocols, rejectHandshake, upgrade } from './channels.js';
import { findStreamFault } from './faults.js';
import { isAlive, readPodRuntime } from './runtime.js';

const RELAY = fileURLToPath(new URL('./relay.mjs', import.meta.url));

/** The ports asked for, or the kubelet's error message for a bad `ports` query. */
export function parsePorts(q: URLSearchParams): number[] | string {
  const raw = [...q.getAll('ports'), ...q.getAll('port')];
  if (raw.length === 0) return 'query parameter "port" is required';
  const ports: number[] = [];
  for (const s of raw) {
    if (s === '') return 'query parameter "port" cannot be empty';
    for (const p of s.split(',')) {
      const n = /^\d+$/.test(p) ? Number(p) : NaN;
      if (!(n <= 65535)) return `unable to parse "${s}" as a port: strconv.ParseUint: parsing "${p}": invalid syntax`;
      if (n < 1) return `port "${s}" must be > 0`;
      ports.push(n);
    }
  }
  return ports;
}

/** Serves GET/upgrade pods/NAME/portforward. Resolves when the stream is over. */
export async function servePortForward(ctx: PodStreamContext): Promise<void> {
  const podName: string = ctx.pod?.metadata?.name ?? '';
  const ports = parsePorts(ctx.query);
  if (typeof ports === 'string') return ctx.sendStatus(400, 'BadRequest', ports);
  if (!ctx.pod?.spec?.nodeName) return ctx.sendStatus(400, 'BadRequest', `pod ${podName} does not have a host assigned`);
  if (!ctx.socket || !isWebSocketRequest(ctx.req)) {
    return ctx.sendStatus(400, 'BadRequest', 'the simulator serves port-forward only over WebSocket (v4.channel.k8s.io); kubectl port-forward is not supported, use @kubernetes/client-node PortForward');
  }
  const protocol = negotiate(offeredProtocols(ctx.req), ['', 'v4.channel.k8s.io']);
  if (protocol === undefined) return rejectHandshake(ctx.socket);
  const sandbox = await readPodRuntime(ctx.dir, ctx.namespace, podName);
  if (!sandbox || !isAlive(sandbox.sandboxPid)) {
    return ctx.sendStatus(500, 'InternalError', `pod not found ("${podName}_${ctx.namespace}")`);
  }

  const fault = await findStreamFault(ctx.dir, 'portforward', ctx.namespace, podName);
  const ws = await upgrade(ctx.req, ctx.socket, ctx.head ?? Buffer.alloc(0), protocol);
  const chan = new ChannelSocket(ws, ctx.socket, protocol, fault);
  for (let i = 0; i < ports.length; i++) {
    const portBytes = Buffer.alloc(2);
    portBytes.writeUInt16LE(ports[i]);
    chan.sendControl(2 * i, portBytes);
    chan.sendControl(2 * i + 1, portBytes);
  }

  return new Promise<void>((resolve) => {
    const relays = ports.map((port, i) => startRelay(chan, sandbox.sandboxPid!, port, i, podName, sandbox.uid));
    let remaining = relays.length;
    let inputPaused = false;
    for (const r of relays) r.on('close', () => { if (--remaining === 0) chan.finish(); });
    chan.listen({
      data(channel, payload) {
        const r = channel % 2 === 0 ? relays[channel / 2] : undefined;
        if (!r?.stdin || r.stdin.destroyed) return;
        if (!r.stdin.write(payload) && !inputPaused) {
          inputPaused = true;
          chan.pauseInput(true);
          r.stdin.once('drain', () => { inputPaused = false; chan.pauseInput(false); });
        }
      },
      closed() {
        for (const r of relays) if (r.exitCode === null) r.kill('SIGKILL');
        resolve();
      },
    });
  });
}

function startRelay(chan: ChannelSocket, sandboxPid: number, port: number, i: number, pod: string, uid: string): ChildProcess {
  const r = spawn('nsenter', ['--target', String(sandboxPid), '--net', '--', process.execPath, RELAY, String(port)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  r.stdin!.on('error', () => {});
  r.stdout!.on('data', (chunk: Buffer) => {
    if (chan.send(2 * i, chunk)) return;
    r.stdout!.pause();
    chan.onDrain(() => r.stdout!.resume());
  });
  let err = '';
  r.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  r.on('exit', (code) => {
    if (code !== 0 && err) {
      chan.sendControl(2 * i + 1, Buffer.from(`error forwarding port ${port} to pod ${pod}, uid ${uid}: failed to connect to localhost:${port} inside the pod's network namespace, IPv4: ${err}`));
    }
  });
  return r;
}
