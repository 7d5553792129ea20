/**
 * The exec client against a small real WebSocket server on 127.0.0.1 (TLS, bearer token) that
 * speaks the channel protocol and runs the requested command as a real child process.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { loadKubeConfig } from '../../src/kube/config.js';
import { ExecFailedError, execCapture, execInPod } from '../../src/kube/exec.js';
import { portForward } from '../../src/kube/portforward.js';
import { connectEtcdClient, flowControlWindow } from '../../src/etcd/client.js';
import { copyFileIntoPod, copyFileOutOfPod } from '../../src/kube/copy.js';
import { ForbiddenError, NotFoundError, formatError } from '../../src/errors.js';
import { ensureCA, issueCert } from '../sim/pki.js';

let dir: string;
let server: https.Server;
let kubeconfigFor: (token: string, protocols?: string[]) => string;
let serverProtocols = ['v5.channel.k8s.io', 'v4.channel.k8s.io'];

function status(ws: WebSocket, body: object): void {
  ws.send(Buffer.concat([Buffer.from([3]), Buffer.from(JSON.stringify(body))]), () => ws.close(1000));
}

/** Runs argv as a child process and relays it over the socket, as a kubelet would. */
function serveExec(ws: WebSocket, argv: string[], closeEarly: boolean): void {
  const v5 = ws.protocol === 'v5.channel.k8s.io';
  const child = spawn(argv[0]!, argv.slice(1), { stdio: 'pipe' });
  let spawnFailed = false;
  child.on('error', (err) => {
    spawnFailed = true;
    status(ws, { metadata: {}, status: 'Failure', reason: 'InternalError', message: `exec: "${argv[0]}": executable file not found in $PATH (${err.message})` });
  });
  ws.on('message', (msg: Buffer) => {
    if (msg[0] === 0) child.stdin.write(msg.subarray(1));
    else if (v5 && msg[0] === 255 && msg[1] === 0) child.stdin.end();
  });
  child.stdin.on('error', () => {});
  const relay = (from: Readable, channel: number) =>
    from.on('data', (chunk: Buffer) => {
      if (closeEarly) return ws.terminate();
      from.pause();
      ws.send(Buffer.concat([Buffer.from([channel]), chunk]), () => from.resume());
    });
  relay(child.stdout, 1);
  relay(child.stderr, 2);
  child.on('close', (code) => {
    if (spawnFailed || closeEarly) return;
    if (code === 0) status(ws, { metadata: {}, status: 'Success' });
    else
      status(ws, {
        metadata: {},
        status: 'Failure',
        message: `command terminated with non-zero exit code: exit code ${code}`,
        reason: 'NonZeroExitCode',
        details: { causes: [{ reason: 'ExitCode', message: String(code) }] },
      });
  });
}

/** Relays channel 0 to a TCP connection on 127.0.0.1:port, port header first, errors on channel 1. */
function servePortForward(ws: WebSocket, port: number): void {
  const header = Buffer.from([port & 0xff, port >> 8]);
  ws.send(Buffer.concat([Buffer.from([0]), header]));
  ws.send(Buffer.concat([Buffer.from([1]), header]));
  const tcp = net.connect(port, '127.0.0.1');
  tcp.on('error', (err) => {
    ws.send(Buffer.concat([Buffer.from([1]), Buffer.from(`error forwarding port ${port}: ${err.message}`)]), () => ws.close(1000));
  });
  tcp.on('data', (c: Buffer) => ws.send(Buffer.concat([Buffer.from([0]), c])));
  tcp.on('end', () => ws.close(1000));
  ws.on('message', (msg: Buffer) => {
    if (msg[0] === 0) tcp.write(msg.subarray(1));
  });
  ws.on('close', () => tcp.destroy());
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kube-exec-'));
  const ca = ensureCA(dir, 'ca');
  const serving = issueCert(dir, 'ca', 'server', { commonName: 'fake-apiserver', ips: ['127.0.0.1'], usage: 'server' });
  server = https.createServer({ cert: serving.cert, key: serving.key });
  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (offered) => serverProtocols.find((p) => offered.has(p)) ?? false,
  });
  // A server that answers no WebSocket ping (RFC 6455 wants a pong; an older proxy may not send one).
  const deaf = new WebSocketServer({ noServer: true, autoPong: false, handleProtocols: (offered) => serverProtocols.find((p) => offered.has(p)) ?? false });
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url!, 'https://127.0.0.1');
    const pf = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/portforward$/.exec(url.pathname);
    if (pf && req.headers.authorization === 'Bearer admin-token') {
      return (pf[2] === 'deaf' ? deaf : wss).handleUpgrade(req, socket, head, (ws) => servePortForward(ws, Number(url.searchParams.get('ports'))));
    }
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/exec$/.exec(url.pathname);
    const reply = (code: number, body: object) => {
      const text = JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', code, ...body });
      socket.end(`HTTP/1.1 ${code} X\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`);
    };
    if (req.headers.authorization === 'Bearer bob-token') {
      return reply(403, { reason: 'Forbidden', message: `pods "${m?.[2]}" is forbidden: User "bob" cannot create resource "pods/exec" in API group "" in the namespace "${m?.[1]}"` });
    }
    if (req.headers.authorization !== 'Bearer admin-token') return reply(401, { reason: 'Unauthorized', message: 'Unauthorized' });
    if (!m || m[2] === 'missing') return reply(404, { reason: 'NotFound', message: `pods "${m?.[2]}" not found` });
    wss.handleUpgrade(req, socket, head, (ws) => serveExec(ws, url.searchParams.getAll('command'), m[2] === 'flaky'));
  });
  return new Promise<void>((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as AddressInfo).port;
      kubeconfigFor = (token) => {
        const file = path.join(dir, `${token}.kubeconfig`);
        fs.writeFileSync(
          file,
          JSON.stringify({
            apiVersion: 'v1',
            kind: 'Config',
            'current-context': 'fake',
            clusters: [{ name: 'fake', cluster: { server: `https://127.0.0.1:${port}`, 'certificate-authority-data': Buffer.from(ca.cert).toString('base64') } }],
            users: [{ name: 'u', user: { token } }],
            contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'u', namespace: 'ns1' } }],
          }),
        );
        return file;
      };
      resolve();
    }),
  );
});

afterAll(() => {
  server?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const admin = () => loadKubeConfig({ kubeconfig: kubeconfigFor('admin-token') });

describe('execInPod against a real WebSocket server', () => {
  it('captures stdout and exit code 0', async () => {
    const r = await execCapture(admin(), { namespace: 'ns1', pod: 'p', command: ['sh', '-c', 'echo hello'] });
    expect(r).toMatchObject({ exitCode: 0, stdout: 'hello\n', stderr: '', protocol: 'v5.channel.k8s.io' });
  });

  it('reports a non-zero exit code and stderr', async () => {
    const r = await execCapture(admin(), { namespace: 'ns1', pod: 'p', command: ['sh', '-c', 'echo oops >&2; exit 7'] });
    expect(r.exitCode).toBe(7);
    expect(r.stderr).toBe('oops\n');
  });

  it('signals stdin EOF with v5 CLOSE so cat ends, bytes intact through a slow consumer', async () => {
    const input = randomBytes(8 << 20);
    const hash = createHash('sha256');
    let received = 0;
    const slow = new Writable({
      highWaterMark: 16 * 1024,
      write(chunk: Buffer, _e, cb) {
        hash.update(chunk);
        received += chunk.length;
        setImmediate(cb);
      },
    });
    const r = await execInPod(admin(), { namespace: 'ns1', pod: 'p', command: ['cat'], stdin: Readable.from([input]), stdout: slow, end: true });
    expect(r.exitCode).toBe(0);
    expect(received).toBe(input.length);
    expect(hash.digest('hex')).toBe(createHash('sha256').update(input).digest('hex'));
  });

  it('works over v4 with length-bounded stdin (head -c N)', async () => {
    serverProtocols = ['v4.channel.k8s.io'];
    try {
      const input = new PassThrough();
      input.end(Buffer.alloc(100_000, 1));
      const r = await execCapture(admin(), { namespace: 'ns1', pod: 'p', command: ['sh', '-c', 'head -c 100000 | wc -c'], stdin: input });
      expect(r).toMatchObject({ exitCode: 0, protocol: 'v4.channel.k8s.io' });
      expect(r.stdout.trim()).toBe('100000');
    } finally {
      serverProtocols = ['v5.channel.k8s.io', 'v4.channel.k8s.io'];
    }
  });

  it('rejects a command that cannot start with the runtime message', async () => {
    const run = execCapture(admin(), { namespace: 'ns1', pod: 'p', command: ['/nonexistent/tool'] });
    await expect(run).rejects.toBeInstanceOf(ExecFailedError);
    await expect(run).rejects.toThrow(/exec in pod "ns1\/p" failed: exec: "\/nonexistent\/tool": executable file not found/);
  });

  it('rejects when the connection drops before the exit status', async () => {
    const run = execCapture(admin(), { namespace: 'ns1', pod: 'flaky', command: ['sh', '-c', 'echo partial; sleep 1'] });
    await expect(run).rejects.toThrow(/exec in pod "ns1\/flaky" ended before the command reported an exit status/);
  });

  it('turns a 403 on the upgrade into one line naming pods/exec', async () => {
    const bob = loadKubeConfig({ kubeconfig: kubeconfigFor('bob-token') });
    const err = await execCapture(bob, { namespace: 'uc1', pod: 'kube-etcd-0', command: ['true'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ForbiddenError);
    expect(formatError(err)).toBe('error: user "bob" cannot create "pods/exec" in namespace "uc1"; ask a cluster admin for pods/exec permission');
  });

  it('turns a 404 into a NotFoundError naming the pod', async () => {
    const err = await execCapture(admin(), { namespace: 'ns1', pod: 'missing', command: ['true'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as Error).message).toBe('pods "missing" not found');
  });
});

describe('copy through the exec client (host processes behind the fake server)', () => {
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

  it('copies one file out via tar into the destination, with mode, size and sha256', async () => {
    const data = randomBytes(20 << 20);
    const file = path.join(dir, 'out.db');
    fs.writeFileSync(file, data, { mode: 0o640 });
    const chunks: Buffer[] = [];
    let progress = 0;
    const r = await copyFileOutOfPod(admin(), {
      namespace: 'ns1',
      pod: 'p',
      path: file,
      destination: new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) }),
      onProgress: (b) => (progress = b),
    });
    expect(r).toEqual({ bytes: data.length, mode: 0o640, sha256: sha(data) });
    expect(progress).toBe(data.length);
    expect(sha(Buffer.concat(chunks))).toBe(sha(data));
  });

  it('fails with tar\'s stderr when the file does not exist', async () => {
    const run = copyFileOutOfPod(admin(), { namespace: 'ns1', pod: 'p', path: path.join(dir, 'nope.db'), destination: new PassThrough() });
    await expect(run).rejects.toThrow(/copying ".*nope\.db" in pod "ns1\/p" failed: tar exited with 2: .*No such file/);
  });

  it('refuses a directory', async () => {
    fs.mkdirSync(path.join(dir, 'adir'));
    const run = copyFileOutOfPod(admin(), { namespace: 'ns1', pod: 'p', path: path.join(dir, 'adir'), destination: new PassThrough().resume() });
    await expect(run).rejects.toThrow(/expected one regular file, got directory/);
  });

  it('copies a file in with head -c and the digest in the pod matches', async () => {
    const data = randomBytes(3 << 20);
    const target = path.join(dir, 'in-head.db');
    const r = await copyFileIntoPod(admin(), { namespace: 'ns1', pod: 'p', path: target, source: Readable.from([data]), size: data.length, mode: 0o600 });
    expect(r).toEqual({ bytes: data.length, sha256: sha(data) });
    expect(fs.statSync(target).mode & 0o777).toBe(0o600);
    const inPod = await execCapture(admin(), { namespace: 'ns1', pod: 'p', command: ['sha256sum', target] });
    expect(inPod.stdout.split(/\s+/)[0]).toBe(sha(data));
  });

  it('fails with the command\'s stderr when the target directory is missing', async () => {
    const data = Buffer.from('x');
    const run = copyFileIntoPod(admin(), { namespace: 'ns1', pod: 'p', path: path.join(dir, 'no/such/dir/f'), source: Readable.from([data]), size: 1, mode: 0o600 });
    await expect(run).rejects.toThrow(/copying into ".*f" in pod "ns1\/p" failed: sh exited with \d+: .*/);
  });
});

describe('portForward against the fake server', () => {
  it('relays a TCP conversation both ways, port header stripped', async () => {
    const echo = net.createServer((s) => s.pipe(s));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    const port = (echo.address() as AddressInfo).port;
    const fwd = await portForward(admin(), { namespace: 'ns1', pod: 'p', port });
    try {
      const payload = randomBytes(4 << 20);
      const client = net.connect(fwd.localPort, '127.0.0.1');
      const got: Buffer[] = [];
      let n = 0;
      await new Promise<void>((resolve, reject) => {
        client.on('data', (c: Buffer) => {
          got.push(c);
          n += c.length;
          if (n >= payload.length) resolve();
        });
        client.on('error', reject);
        client.write(payload);
      });
      client.destroy();
      expect(Buffer.concat(got).equals(payload)).toBe(true);
      expect(fwd.lastError()).toBeUndefined();
    } finally {
      await fwd.close();
      echo.close();
    }
  });

  it('measures the round trip to the API server with pings as a connection\'s tunnel opens', async () => {
    const version = http.createServer((_req, res) => res.end('{"etcdserver":"3.4.23"}'));
    await new Promise<void>((r) => version.listen(0, '127.0.0.1', r));
    const port = (version.address() as AddressInfo).port;
    const fwd = await portForward(admin(), { namespace: 'ns1', pod: 'p', port });
    try {
      expect(await fwd.roundTripMs()).toBeUndefined(); // no connection yet: nothing measured, nothing waited for
      // The plain member's first connection (connectEtcdClient's GET /version), then the client's window.
      const conn = await connectEtcdClient({ port: fwd.localPort, roundTripMs: (w) => fwd.roundTripMs(w) });
      conn.client.close();
      expect(conn.roundTripMs).toBeGreaterThan(0);
      expect(conn.roundTripMs).toBeLessThan(1_000);
      expect(await fwd.roundTripMs()).toBe(conn.roundTripMs);
      expect(conn.flowControlWindow).toBe(flowControlWindow(conn.roundTripMs));
      expect(fwd.lastError()).toBeUndefined();
    } finally {
      await fwd.close();
      version.close();
    }
  });

  it('a server that answers no ping leaves the round trip unknown after the wait, and the window at 8 MiB', async () => {
    const echo = net.createServer((s) => s.pipe(s));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    const port = (echo.address() as AddressInfo).port;
    const fwd = await portForward(admin(), { namespace: 'ns1', pod: 'deaf', port });
    try {
      const client = net.connect(fwd.localPort, '127.0.0.1');
      await new Promise<void>((resolve, reject) => {
        client.once('data', () => resolve());
        client.once('error', reject);
        client.write('hello');
      });
      const started = performance.now();
      expect(await fwd.roundTripMs(300)).toBeUndefined();
      expect(performance.now() - started).toBeGreaterThanOrEqual(290);
      client.destroy();
    } finally {
      await fwd.close();
      echo.close();
    }
    // A plain member behind such a server: its client gets the window of a far cluster.
    const version = http.createServer((_req, res) => res.end('{"etcdserver":"3.4.23"}'));
    await new Promise<void>((r) => version.listen(0, '127.0.0.1', r));
    const deafFwd = await portForward(admin(), { namespace: 'ns1', pod: 'deaf', port: (version.address() as AddressInfo).port });
    try {
      const conn = await connectEtcdClient({ port: deafFwd.localPort, roundTripMs: (w) => deafFwd.roundTripMs(w) });
      conn.client.close();
      expect(conn).toMatchObject({ flowControlWindow: 8 << 20 });
      expect(conn.roundTripMs).toBeUndefined();
    } finally {
      await deafFwd.close();
      version.close();
    }
  });

  it('surfaces error-channel text and closes the local connection', async () => {
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const errors: Error[] = [];
    const fwd = await portForward(admin(), { namespace: 'ns1', pod: 'p', port, onError: (e) => errors.push(e) });
    try {
      const client = net.connect(fwd.localPort, '127.0.0.1');
      await new Promise<void>((resolve) => client.on('close', () => resolve()).on('error', () => {}).resume());
      expect(errors[0]?.message).toMatch(new RegExp(`port-forward to port ${port} of pod "ns1/p" failed: error forwarding port ${port}: connect ECONNREFUSED`));
    } finally {
      await fwd.close();
    }
  });
});
