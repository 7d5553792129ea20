// Keepalive of the pod streams (kube/socket.ts keepAlive): client-go's ping cadence, the dead-peer
// deadline, and the hidden test variable that shortens both. Fake timers, a fake socket.
import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CLIENT_GO_KEEPALIVE, keepAlive, streamKeepalive, type PingableSocket } from '../../src/kube/socket.js';

const OPEN = 1;
const CLOSED = 3;

class FakeSocket extends EventEmitter implements PingableSocket {
  readyState = OPEN;
  isPaused = false;
  pings = 0;
  errors: string[] = [];
  ping(): void {
    this.pings++;
  }
  terminate(): void {
    this.readyState = CLOSED;
    this.emit('close');
  }
}

/** A socket as exec and port-forward hold it: with an error listener. */
function openSocket(): FakeSocket {
  const ws = new FakeSocket();
  ws.on('error', (err: Error) => ws.errors.push(err.message));
  keepAlive(ws, CLIENT_GO_KEEPALIVE);
  return ws;
}

describe('keepAlive', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('pings every 5 s while open, and stops with every timer once closed', () => {
    const ws = openSocket();
    vi.advanceTimersByTime(4_999);
    expect(ws.pings).toBe(0);
    vi.advanceTimersByTime(1);
    expect(ws.pings).toBe(1);
    ws.emit('pong');
    vi.advanceTimersByTime(20_000);
    expect(ws.pings).toBe(5);
    ws.readyState = CLOSED;
    ws.emit('close');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('gives a silent server up after 61 s with a connection error, not before', () => {
    const ws = openSocket();
    vi.advanceTimersByTime(60_999);
    expect(ws.readyState).toBe(OPEN);
    vi.advanceTimersByTime(1);
    expect(ws.errors).toEqual(['no answer from the API server for 61 s (keepalive pings unanswered)']);
    expect(ws.readyState).toBe(CLOSED);
    expect(vi.getTimerCount()).toBe(0);
  });

  it.each(['message', 'ping', 'pong'])('a %s from the server restarts the 61 s', (event) => {
    const ws = openSocket();
    for (let i = 0; i < 10; i++) {
      vi.advanceTimersByTime(60_000);
      ws.emit(event);
    }
    vi.advanceTimersByTime(60_999);
    expect(ws.errors).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(ws.errors).toHaveLength(1);
  });

  it('does not count the time the socket is paused by our own backpressure (seen at each ping)', () => {
    const ws = openSocket();
    ws.isPaused = true;
    vi.advanceTimersByTime(302_000);
    ws.isPaused = false;
    vi.advanceTimersByTime(58_999);
    expect(ws.errors).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(ws.errors).toHaveLength(1);
  });

  it('leaves a socket that is closing to ws close timeout', () => {
    const ws = openSocket();
    ws.readyState = 2; // CLOSING: close() sent, waiting for the server's close frame
    vi.advanceTimersByTime(120_000);
    expect(ws.errors).toEqual([]);
  });
});

describe('streamKeepalive', () => {
  it.each([
    [{}, CLIENT_GO_KEEPALIVE],
    [{ KUBECTL_ETCD_PING_PERIOD_MS: '' }, CLIENT_GO_KEEPALIVE],
    [{ KUBECTL_ETCD_PING_PERIOD_MS: 'soon' }, CLIENT_GO_KEEPALIVE],
    [{ KUBECTL_ETCD_PING_PERIOD_MS: '5' }, CLIENT_GO_KEEPALIVE],
    [{ KUBECTL_ETCD_PING_PERIOD_MS: '500' }, { pingEveryMs: 500, deadAfterMs: 6_100 }],
    [{ KUBECTL_ETCD_PING_PERIOD_MS: '250' }, { pingEveryMs: 250, deadAfterMs: 3_050 }],
  ])('%j', (env, keepalive) => {
    expect(streamKeepalive(env)).toEqual(keepalive);
  });
});
