/**
 * Port-forward to a pod: a local TCP server on 127.0.0.1:0; every accepted connection gets its
 * own WebSocket to pods/NAME/portforward (`v4.channel.k8s.io`: channel 0 data, channel 1 errors,
 * the first frame on each carries the 2-byte little-endian port, which is stripped).
 */
import net from 'node:net';
import type WebSocket from 'ws';
import { PluginError, TransientError } from '../errors.js';
import { openApiSocket, type KubeStreamAccess } from './socket.js';

/** Which pod port to forward. */
export interface PortForwardOptions {
  namespace: string;
  pod: string;
  port: number;
  /** Called with each error (refused upgrade, error-channel text, socket failure). */
  onError?: (err: Error) => void;
}

/** A running forward: connect to 127.0.0.1:localPort. */
export interface PortForward {
  localPort: number;
  /** The most recent error any connection hit, if any. */
  lastError(): Error | undefined;
  /**
   * The round trip to the API server in ms: two WebSocket pings as each connection's tunnel opens,
   * the fastest answer so far. Waits up to `waitMs` for pings still unanswered; undefined when no
   * ping was answered (a server that answers none, or no connection yet).
   */
  roundTripMs(waitMs?: number): Promise<number | undefined>;
  /** Stops listening and cuts every open connection. */
  close(): Promise<void>;
}

/** Bytes from the local socket allowed in flight on the WebSocket before the local socket is paused. */
const highWater = 1 << 20;

/** Starts forwarding 127.0.0.1:<random port> to the pod's port. */
export async function portForward(kube: KubeStreamAccess, opts: PortForwardOptions): Promise<PortForward> {
  const target = `port ${opts.port} of pod "${opts.namespace}/${opts.pod}"`;
  const open = new Set<{ local: net.Socket; ws?: WebSocket }>();
  // Every WebSocket until it has closed: a connection whose local side is gone may still wait for
  // the server's close frame (ws waits up to 30 s), and would keep the process alive that long.
  const sockets = new Set<WebSocket>();
  let lastError: Error | undefined;
  let bestRoundTrip: number | undefined;
  let pingsUnanswered = 0;
  const roundTripWaiters = new Set<() => void>();
  /**
   * Times two pings on a tunnel that just opened, one after the other: the first also waits for
   * the far side to finish setting the tunnel up. A tunnel that closes first answers nothing.
   */
  const sampleRoundTrip = (ws: WebSocket, pings = 2) => {
    const sent = performance.now();
    pingsUnanswered++;
    const settle = (ms?: number) => {
      ws.off('pong', onPong);
      ws.off('close', onClose);
      pingsUnanswered--;
      if (ms !== undefined) bestRoundTrip = Math.min(bestRoundTrip ?? ms, ms);
      if (ms !== undefined && pings > 1 && ws.readyState === ws.OPEN) sampleRoundTrip(ws, pings - 1);
      for (const wake of roundTripWaiters) wake();
    };
    const onPong = () => settle(performance.now() - sent);
    const onClose = () => settle();
    ws.once('pong', onPong);
    ws.once('close', onClose);
    ws.ping();
  };
  const report = (err: Error) => {
    lastError = err;
    opts.onError?.(err);
  };
  const server = net.createServer((local) => {
    const conn: { local: net.Socket; ws?: WebSocket } = { local };
    open.add(conn);
    // Without this, Nagle holds back small HTTP/2 frames (gRPC window updates) until the peer's
    // delayed ACK, which capped the snapshot stream at about 1 MB/s.
    local.setNoDelay(true);
    local.pause();
    local.on('close', () => {
      open.delete(conn);
      // Paused by this connection's backpressure, the socket would never read the closing
      // handshake, and ws would hold it (and the process, at exit) open for its 30 s close timeout.
      if (conn.ws?.isPaused) conn.ws.resume();
      conn.ws?.close(1000);
    });
    local.on('error', () => conn.ws?.terminate());
    const path = `/api/v1/namespaces/${encodeURIComponent(opts.namespace)}/pods/${encodeURIComponent(opts.pod)}/portforward`;
    openApiSocket(kube, path, [['ports', String(opts.port)]], ['v4.channel.k8s.io'], `port-forward to ${target}`).then(
      (ws) => {
        sockets.add(ws);
        ws.once('close', () => sockets.delete(ws));
        if (local.destroyed) return ws.terminate();
        conn.ws = ws;
        sampleRoundTrip(ws);
        relayConnection(local, ws, target, report);
      },
      (err: Error) => {
        report(err);
        local.destroy();
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const localPort = (server.address() as net.AddressInfo).port;
  return {
    localPort,
    lastError: () => lastError,
    roundTripMs: (waitMs = 1_000) => {
      if (pingsUnanswered === 0) return Promise.resolve(bestRoundTrip);
      return new Promise<number | undefined>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          roundTripWaiters.delete(wake);
          resolve(bestRoundTrip);
        };
        const wake = () => {
          if (pingsUnanswered === 0) done();
        };
        const timer = setTimeout(done, waitMs).unref();
        roundTripWaiters.add(wake);
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of open) c.local.destroy();
        for (const ws of sockets) ws.terminate();
        server.close(() => resolve());
      }),
  };
}

function relayConnection(local: net.Socket, ws: WebSocket, target: string, report: (err: Error) => void): void {
  const headerPending = [true, true];
  let errorText = '';
  let inFlight = 0;
  let localPaused = true;
  ws.on('message', (raw: Buffer) => {
    if (raw.length === 0 || local.destroyed) return;
    const channel = raw[0]!;
    let data = raw.subarray(1);
    if (channel > 1) return;
    if (headerPending[channel]) {
      // The first frame on a channel starts with the port number (2 bytes, little-endian).
      const take = Math.min(2, data.length);
      data = data.subarray(take);
      if (take === 2) headerPending[channel] = false;
    }
    if (data.length === 0) return;
    if (channel === 1) {
      errorText += data.toString('utf8');
      return;
    }
    if (!local.write(data)) {
      ws.pause();
      local.once('drain', () => ws.resume());
    }
  });
  ws.on('close', () => {
    if (errorText) {
      report(new PluginError(`port-forward to ${target} failed: ${errorText.trim().split('\n')[0]}`, 'check that the port is open in the pod'));
      local.destroy();
    } else local.end();
  });
  ws.on('error', (err) => {
    report(new TransientError(`port-forward to ${target}: connection error: ${err.message}`, 'retry; check the cluster and the pod'));
    local.destroy();
  });
  local.on('data', (chunk: Buffer) => {
    const frame = Buffer.allocUnsafe(chunk.length + 1);
    frame[0] = 0;
    chunk.copy(frame, 1);
    inFlight += chunk.length;
    if (inFlight > highWater && !localPaused) {
      localPaused = true;
      local.pause();
    }
    ws.send(frame, (err) => {
      inFlight -= chunk.length;
      if (err) return local.destroy();
      if (localPaused && inFlight <= highWater / 2) {
        localPaused = false;
        local.resume();
      }
    });
  });
  local.on('end', () => ws.close(1000));
  localPaused = false;
  local.resume();
}
