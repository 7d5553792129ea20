// The channel framing of k8s.io/apimachinery's wsstream as kube-apiserver and the kubelet speak
// it: every binary WebSocket message starts with one channel byte; v5.channel.k8s.io adds the
// CLOSE signal (channel 255 followed by the channel being half-closed). Outgoing data is cut into
// frames of at most 32 KiB, as Go's io.Copy buffer cuts it. Flow control: sends are counted
// until ws reports them written to the socket; past HIGH_WATER the caller is told to pause its
// source, and `onDrain` fires once the backlog falls below LOW_WATER.
// Stream faults (faults.ts): `cut`/`stall` after N payload bytes; `idle` drops the connection once
// no frame went either way for N seconds (client pings and our pongs count, as they do for a load
// balancer that sees TCP bytes); `blackhole` sends nothing from the upgrade on, not even the pongs
// to the client's pings, and ignores what the client sends, while the connection stays open (a
// node or a proxy gone without a reset).
// Pings are answered here (not by ws's autoPong) so that a blackhole can leave them unanswered.
// Differences from a real API server: the base64 protocols (text frames) are not offered; the
// server sends no pings of its own (it answers the client's, which is all client-go needs).
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import type { StreamFault } from './faults.js';

/** Signal byte of v5.channel.k8s.io: "the channel in the next byte will send no more". */
export const CLOSE_CHANNEL = 255;
const MAX_FRAME = 32 * 1024;
const HIGH_WATER = 1024 * 1024;
const LOW_WATER = 256 * 1024;

/** The WebSocket subprotocols the client offered, in its order of preference. */
export function offeredProtocols(req: IncomingMessage): string[] {
  const header = req.headers['sec-websocket-protocol'];
  if (!header) return [];
  return String(header).split(',').map((p) => p.trim()).filter(Boolean);
}

/** Picks the first offered protocol the server allows (Go wsstream's rule); '' means "none offered". */
export function negotiate(offered: string[], allowed: string[]): string | undefined {
  const wanted = offered.length ? offered : [''];
  return wanted.find((p) => allowed.includes(p));
}

/** True when the request asks for a WebSocket upgrade. */
export function isWebSocketRequest(req: IncomingMessage): boolean {
  return String(req.headers.upgrade ?? '').toLowerCase() === 'websocket';
}

/** Answers a failed subprotocol negotiation the way golang.org/x/net/websocket does. */
export function rejectHandshake(socket: Duplex): void {
  socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n');
}

/** Completes the upgrade with the given subprotocol and returns the open WebSocket. */
export function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, protocol: string): Promise<WebSocket> {
  const wss = new WebSocketServer({
    noServer: true, clientTracking: false, perMessageDeflate: false, maxPayload: 16 * 1024 * 1024, autoPong: false,
    handleProtocols: () => protocol || false,
  });
  return new Promise((resolve) => wss.handleUpgrade(req, socket, head, (ws) => resolve(ws)));
}

/** Callbacks a stream handler registers for what the client sends. */
export interface ChannelHandlers {
  data(channel: number, payload: Buffer): void;
  halfClose?(channel: number): void;
  closed(): void;
}

/** A multiplexed, flow-controlled, fault-injectable view of one pod-stream WebSocket. */
export class ChannelSocket {
  private pending = 0;
  private sentPayload = 0;
  private drainWaiters: (() => void)[] = [];
  private stalled = false;
  private cutting = false;
  private ended = false;

  private handlers: ChannelHandlers | undefined;
  /** Client frames that arrived before listen() (a client may send stdin right after the upgrade). */
  private early: Buffer[] = [];
  private closedEarly = false;
  private idleTimer: NodeJS.Timeout | undefined;
  /** True once an idle-timeout fault cut the connection. */
  cutByIdle = false;
  /** A blackhole fault: nothing is sent or read from the upgrade on (see the file comment). */
  private readonly blackhole: boolean;

  constructor(
    private readonly ws: WebSocket,
    private readonly socket: Duplex,
    private readonly protocol: string,
    private readonly fault: StreamFault | undefined,
  ) {
    this.blackhole = fault?.action === 'blackhole';
    this.stalled = this.blackhole;
    // Listen from the first moment: ws drops messages nobody listens to, and the handler may
    // still be checking the container when the client's first stdin frames come in.
    ws.on('message', (raw: RawData, isBinary: boolean) => {
      this.touch();
      if (!isBinary || this.blackhole) return; // text frames belong to the base64 protocols we never negotiate; a blackhole reads nothing
      const data = toBuffer(raw);
      if (data.length === 0) return;
      if (this.handlers) this.deliver(this.handlers, data);
      else {
        this.early.push(Buffer.from(data));
        if (this.early.length === 32) ws.pause(); // up to 32 frames wait; listen() resumes
      }
    });
    ws.on('ping', (data: Buffer) => {
      this.touch();
      if (this.blackhole) return;
      if (ws.readyState === ws.OPEN) ws.pong(data, false, () => {});
    });
    ws.on('pong', () => this.touch());
    ws.on('close', () => {
      this.ended = true;
      if (this.idleTimer) clearTimeout(this.idleTimer);
      if (this.handlers) this.handlers.closed(); else this.closedEarly = true;
      this.wakeDrainWaiters();
    });
    ws.on('error', () => { /* the close event follows */ });
    this.touch();
  }

  /** Restarts the idle-timeout fault's clock: a frame went one way or the other. */
  private touch(): void {
    if (this.fault?.action !== 'idle' || this.ended) return;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      this.cutByIdle = true;
      this.abort();
    }, this.fault.idleSeconds! * 1000);
    this.idleTimer.unref();
  }

  /** Starts delivering client frames to the handlers, first those that came before. */
  listen(h: ChannelHandlers): void {
    this.handlers = h;
    const early = this.early;
    this.early = [];
    if (early.length >= 32) this.ws.resume();
    for (const data of early) this.deliver(h, data);
    if (this.closedEarly) h.closed();
  }

  private deliver(h: ChannelHandlers, data: Buffer): void {
    if (this.protocol === 'v5.channel.k8s.io' && data[0] === CLOSE_CHANNEL) {
      if (data.length === 2) h.halfClose?.(data[1]);
      else this.ws.close(); // wsstream ends the connection on a malformed CLOSE
      return;
    }
    h.data(data[0], data.subarray(1));
  }

  /** True while the client is connected and the connection not cut. */
  get open(): boolean {
    return !this.ended && this.ws.readyState === this.ws.OPEN;
  }

  /** Sends a control frame (port numbers, empty hello) that faults do not count. */
  sendControl(channel: number, payload: Buffer = Buffer.alloc(0)): void {
    if (!this.open || this.stalled) return;
    this.frame(channel, payload);
  }

  /** Sends payload bytes on a data channel; returns false when the source should pause. */
  send(channel: number, payload: Buffer): boolean {
    if (!this.open) return false;
    if (this.stalled) return false;
    let data = payload;
    const limit = this.fault ? this.fault.afterBytes - this.sentPayload : Infinity;
    if (data.length >= limit && this.fault) {
      data = data.subarray(0, Math.max(0, limit));
      for (let off = 0; off < data.length; off += MAX_FRAME) this.frame(channel, data.subarray(off, off + MAX_FRAME));
      this.sentPayload += data.length;
      this.trip(this.fault);
      return false;
    }
    for (let off = 0; off < data.length; off += MAX_FRAME) this.frame(channel, data.subarray(off, off + MAX_FRAME));
    this.sentPayload += data.length;
    return this.pending < HIGH_WATER;
  }

  /** Calls `cb` once the send backlog is low again (or the client is gone). */
  onDrain(cb: () => void): void {
    if (!this.open || this.pending < LOW_WATER) { if (!this.stalled) cb(); return; }
    this.drainWaiters.push(cb);
  }

  /** Stops (true) or restarts (false) reading client frames, for stdin backpressure. */
  pauseInput(paused: boolean): void {
    if (paused) this.ws.pause(); else this.ws.resume();
  }

  /** Sends the final status frame (if any) and closes the WebSocket normally. */
  finish(status?: { channel: number; text: string }): void {
    if (!this.open) return;
    if (this.stalled) return; // a stalled stream never finishes: the client must give up
    if (status && status.text) this.frame(status.channel, Buffer.from(status.text));
    this.ws.close(1000);
  }

  /** Drops the connection without a close frame. */
  abort(): void {
    this.ended = true;
    this.socket.destroy();
    this.ws.terminate();
  }

  private frame(channel: number, payload: Buffer): void {
    this.touch();
    const msg = Buffer.allocUnsafe(payload.length + 1);
    msg[0] = channel;
    payload.copy(msg, 1);
    this.pending += msg.length;
    this.ws.send(msg, { binary: true }, () => {
      this.pending -= msg.length;
      if (this.cutting && this.pending === 0) this.abort();
      else if (this.pending < LOW_WATER) this.wakeDrainWaiters();
    });
  }

  private wakeDrainWaiters(): void {
    if (this.stalled) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  private trip(fault: StreamFault): void {
    if (fault.action === 'stall') {
      this.stalled = true;
      this.drainWaiters = [];
      return;
    }
    // cut: once the bytes before the cut are handed to the socket, drop it
    this.cutting = true;
    this.ended = true;
    this.drainWaiters = [];
    if (this.pending === 0) this.abort();
  }
}

function toBuffer(raw: RawData): Buffer {
  if (Buffer.isBuffer(raw)) return raw;
  if (Array.isArray(raw)) return Buffer.concat(raw);
  return Buffer.from(raw as ArrayBuffer);
}
