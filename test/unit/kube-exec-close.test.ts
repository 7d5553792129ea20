/**
 * The end of an exec session, with a small fake socket: a session that ends while our own
 * backpressure has the socket paused must leave it reading, or the closing handshake is never
 * read and ws holds the socket (and the process, at exit) open for its 30 s close timeout.
 */
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import { runSession } from '../../src/kube/exec.js';

class FakeSocket extends EventEmitter {
  readonly OPEN = 1;
  readonly CLOSED = 3;
  readyState = 1;
  isPaused = false;
  closed: number[] = [];
  pause(): void { this.isPaused = true; }
  resume(): void { this.isPaused = false; }
  close(code: number): void { this.closed.push(code); }
  terminate(): void { this.readyState = 3; this.emit('close', 1006); }
  send(): void {}
}

const frame = (channel: number, text: string) => Buffer.concat([Buffer.from([channel]), Buffer.from(text)]);
const SUCCESS = JSON.stringify({ metadata: {}, status: 'Success' });

describe('the end of an exec session', () => {
  it('leaves the socket reading when the exit status comes while a slow reader has it paused, and closes it', async () => {
    const ws = new FakeSocket();
    const written: string[] = [];
    const slow = new Writable({ highWaterMark: 1, write: (c: Buffer, _e, cb) => { written.push(c.toString()); setTimeout(cb, 50); } });
    const session = runSession(ws as unknown as WebSocket, { namespace: 'n', pod: 'p', command: ['x'], stdout: slow }, 'pod "n/p"');
    // The last output and the status arrive in one read: the output's write fills the reader, so
    // the socket is paused, and the status is parsed from the same chunk.
    ws.emit('message', frame(1, 'the last bytes'), true);
    expect(ws.isPaused).toBe(true);
    ws.emit('message', frame(3, SUCCESS), true);
    await expect(session).resolves.toBe(0);
    expect(ws.isPaused).toBe(false);
    expect(ws.closed).toEqual([1000]);
    // A frame after the status is not the command's: it is not written anywhere.
    ws.emit('message', frame(1, 'late'), true);
    expect(written).toEqual(['the last bytes']);
  });
});

describe('the end of an exec session on a real WebSocket', () => {
  it('does not hold the connection (and the process, at exit) open when the server never reads our close frame', async () => {
    // The server sends the exit status and its close frame while it is not reading (an exec whose
    // stdin it had paused for backpressure): it never answers our close, and ws would wait its
    // 30 s close timeout for that answer before it let the connection go.
    const { WebSocketServer, WebSocket: Client } = await import('ws');
    const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise((r) => server.once('listening', r));
    server.on('connection', (peer) => {
      // Once the session listens (the client says so on stdin), the server stops reading and ends.
      peer.once('message', () => {
        peer.pause();
        peer.send(frame(1, 'out'));
        peer.send(frame(3, SUCCESS));
        peer.close(1000);
      });
    });
    const ws = new Client(`ws://127.0.0.1:${(server.address() as { port: number }).port}/`);
    await new Promise((r, j) => { ws.once('open', r); ws.once('error', j); });
    const out: string[] = [];
    const stdout = new Writable({ write: (c: Buffer, _e, cb) => { out.push(c.toString()); cb(); } });
    const closed = new Promise<number>((r) => ws.once('close', () => r(Date.now())));
    try {
      const session = runSession(ws, { namespace: 'n', pod: 'p', command: ['x'], stdout }, 'pod "n/p"');
      ws.send(frame(0, 'ready'));
      await expect(session).resolves.toBe(0);
      const ended = Date.now();
      const at = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(Infinity), 5_000))]);
      expect(out).toEqual(['out']);
      expect(at - ended).toBeLessThan(5_000); // (it was 30 s)
    } finally {
      ws.terminate();
      for (const c of server.clients) c.terminate();
      await new Promise((r) => server.close(r));
    }
  }, 45_000);
});
