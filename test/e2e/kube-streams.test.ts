/**
 * The kube seam's pod streams against real pods of the local test cluster (fixture `single`:
 * one real etcd in uc1/kube-etcd-0): exec exit codes and stdin EOF, a 100 MB copy out and in
 * with matching sha256 and flat memory, port-forward to etcd with the etcd3 client, a user
 * without pods/exec, a stream cut mid-copy, and keepalive pings (issue 12 c): through a load
 * balancer's idle cut, and giving up a server that went silent.
 */
import { execFile, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { kubeContextFromOptions } from '../../src/cli/kubecontext.js';
import type { KubeContext } from '../../src/kube/client.js';
import { copyFileIntoPod, copyFileOutOfPod } from '../../src/kube/copy.js';
import { ExecFailedError, execCapture, execInPod } from '../../src/kube/exec.js';
import { portForward } from '../../src/kube/portforward.js';
import { apiSocketUrl } from '../../src/kube/socket.js';
import { ForbiddenError, TransientError, formatError } from '../../src/errors.js';
import { addStreamFault, clearStreamFaults, parseStreamFault } from '../sim/fault.js';

const repo = path.resolve(import.meta.dirname, '../..');
const target = { namespace: 'uc1', pod: 'kube-etcd-0', container: 'kube-etcd' };
const certDir = '/etcd.local.config/certificates';
let dir: string;
let kube: KubeContext;

function sim(...args: string[]): string {
  return execFileSync('npx', ['tsx', 'test/sim/cli.ts', ...args], { cwd: repo, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Runs fn while sampling this process's RSS; returns the largest growth over the starting RSS. */
async function rssGrowthDuring(fn: () => Promise<unknown>): Promise<number> {
  global.gc?.();
  const start = process.memoryUsage().rss;
  let peak = start;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  try {
    await fn();
  } finally {
    clearInterval(timer);
  }
  return Math.max(peak, process.memoryUsage().rss) - start;
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kube-streams-e2e-'));
  sim('up', '--dir', dir, '--fixture', 'single');
  kube = kubeContextFromOptions({ kubeconfig: path.join(dir, 'kubeconfig'), namespace: 'uc1' }, {});
});

afterAll(() => {
  if (dir) {
    sim('down', '--dir', dir);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

describe('exec in a real pod', () => {
  it.each([
    ['true', 0],
    ['exit 3', 3],
    ['echo to-stderr >&2; exit 42', 42],
  ])('sh -c %j ends with exit code %i', async (script, code) => {
    const r = await execCapture(kube, { ...target, command: ['sh', '-c', script] });
    expect(r.exitCode).toBe(code);
    if (code === 42) expect(r.stderr).toBe('to-stderr\n');
  });

  it('delivers stdin and its EOF (v5 CLOSE) so wc can finish', async () => {
    const input = new PassThrough();
    input.end(Buffer.alloc(123_457, 7));
    const r = await execCapture(kube, { ...target, command: ['wc', '-c'], stdin: input });
    expect(r).toMatchObject({ exitCode: 0, protocol: 'v5.channel.k8s.io' });
    expect(r.stdout.trim()).toBe('123457');
  });

  it('works over v4 when the command bounds its input', async () => {
    const input = new PassThrough();
    input.end(Buffer.alloc(5000, 1));
    const r = await execCapture(kube, { ...target, command: ['sh', '-c', 'head -c 5000 | wc -c'], stdin: input, protocols: ['v4.channel.k8s.io'] });
    expect(r).toMatchObject({ exitCode: 0, protocol: 'v4.channel.k8s.io' });
    expect(r.stdout.trim()).toBe('5000');
  });

  it('reports an executable the image does not have', async () => {
    const err = await execCapture(kube, { ...target, command: ['/no/such/tool'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExecFailedError);
    expect((err as ExecFailedError).missingExecutable).toBe(true);
  });

  it('gives a user without pods/exec one line naming the permission', async () => {
    sim('user', '--dir', dir, 'bob');
    const bob = kubeContextFromOptions({ kubeconfig: path.join(dir, 'users', 'bob.kubeconfig') }, {});
    const err = await execCapture(bob, { ...target, command: ['true'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ForbiddenError);
    expect(formatError(err)).toBe('error: user "bob" cannot get "pods/exec" in namespace "uc1"; ask a cluster admin for pods/exec permission');
  });
});

describe('copy a 100 MB file into and out of a real pod', () => {
  const size = 100 * 1024 * 1024;
  const bound = 64 * 1024 * 1024;
  let local: string;
  let localSha: string;

  beforeAll(() => {
    local = path.join(dir, 'big.bin');
    const hash = createHash('sha256');
    const fd = fs.openSync(local, 'w');
    for (let i = 0; i < size / (1 << 20); i++) {
      const chunk = randomBytes(1 << 20);
      hash.update(chunk);
      fs.writeSync(fd, chunk);
    }
    fs.closeSync(fd);
    localSha = hash.digest('hex');
  });

  it('copies in with tar, the pod has the same sha256, memory stays flat', async () => {
    let result;
    const growth = await rssGrowthDuring(async () => {
      result = await copyFileIntoPod(kube, { ...target, path: '/tmp/big.bin', source: fs.createReadStream(local), size, mode: 0o600 });
    });
    expect(result).toEqual({ bytes: size, sha256: localSha });
    const inPod = await execCapture(kube, { ...target, command: ['sh', '-c', 'sha256sum "$1" && wc -c < "$1"', 'sh', '/tmp/big.bin'] });
    expect(inPod.stdout.split(/\s+/).filter((w) => w !== '/tmp/big.bin' && w !== '')).toEqual([localSha, String(size)]);
    expect(growth).toBeLessThan(bound);
  });

  it('copies out into a file, same sha256 and mode, memory stays flat', async () => {
    const out = path.join(dir, 'back.bin');
    let result;
    const growth = await rssGrowthDuring(async () => {
      result = await copyFileOutOfPod(kube, { ...target, path: '/tmp/big.bin', destination: fs.createWriteStream(out) });
    });
    expect(result).toEqual({ bytes: size, mode: 0o600, sha256: localSha });
    expect(fs.statSync(out).size).toBe(size);
    const hash = createHash('sha256');
    for await (const chunk of fs.createReadStream(out)) hash.update(chunk as Buffer);
    expect(hash.digest('hex')).toBe(localSha);
    expect(growth).toBeLessThan(bound);
  });

  it('fails clearly when the stream is cut mid-copy', async () => {
    sim('fault', '--dir', dir, 'stream', '--cut-after', String(10 << 20), '--pod', 'uc1/kube-etcd-0', '--kind', 'exec');
    try {
      const sink = new Writable({ write: (_c, _e, cb) => cb() });
      const run = copyFileOutOfPod(kube, { ...target, path: '/tmp/big.bin', destination: sink });
      await expect(run).rejects.toThrow(/exec in pod "uc1\/kube-etcd-0" (ended before the command reported an exit status|: connection error)/);
    } finally {
      sim('fault', '--dir', dir, 'clear');
    }
  });

  it('streams stdout to a slow consumer without losing bytes', async () => {
    const hash = createHash('sha256');
    let n = 0;
    const slow = new Writable({
      highWaterMark: 64 * 1024,
      write(chunk: Buffer, _e, cb) {
        hash.update(chunk);
        n += chunk.length;
        setImmediate(cb);
      },
    });
    const r = await execInPod(kube, { ...target, command: ['head', '-c', String(20 << 20), '/tmp/big.bin'], stdout: slow, end: true });
    expect(r.exitCode).toBe(0);
    expect(n).toBe(20 << 20);
    const first = createHash('sha256');
    const fd = fs.openSync(local, 'r');
    const buf = Buffer.alloc(20 << 20);
    fs.readSync(fd, buf, 0, buf.length, 0);
    fs.closeSync(fd);
    expect(hash.digest('hex')).toBe(first.update(buf).digest('hex'));
  });
});

describe('port-forward to etcd in a pod', () => {
  it('lets the etcd3 client write a key that etcdctl in the pod then reads', async () => {
    const secret = await kube.core.readNamespacedSecret({ name: 'kube-etcd-certs', namespace: 'uc1' });
    const file = (k: string) => Buffer.from(secret.data![k]!, 'base64');
    const fwd = await portForward(kube, { namespace: 'uc1', pod: 'kube-etcd-0', port: 2379 });
    const client = new Etcd3({
      hosts: `https://127.0.0.1:${fwd.localPort}`,
      credentials: { rootCertificate: file('etcdCA.crt'), certChain: file('etcd.crt'), privateKey: file('etcd.key') },
    });
    try {
      await client.put('e2e/port-forward').value('hello');
      expect(await client.get('e2e/port-forward').string()).toBe('hello');
    } finally {
      client.close();
      await fwd.close();
    }
    const r = await execCapture(kube, {
      ...target,
      command: ['etcdctl', '--endpoints=https://127.0.0.1:2379', `--cacert=${certDir}/etcdCA.crt`, `--cert=${certDir}/etcd.crt`, `--key=${certDir}/etcd.key`, 'get', '--print-value-only', 'e2e/port-forward'],
    });
    expect(r.stdout.trim()).toBe('hello');
  });
});

describe('keepalive pings (issue 12 c)', () => {
  /** The load balancer's idle window: above kubectl's ping period (5 s), as a real one must be for kubectl exec to work. */
  const IDLE_S = 7;
  /** A silent command longer than the idle window. */
  const SILENT_S = 9;
  // Faults written from code (test/sim/fault.ts), as `sim fault` writes them, without its seconds of start-up.
  const fault = (...args: string[]) => addStreamFault(dir, parseStreamFault([...args, '--pod', 'uc1/kube-etcd-0']));
  /** The product with 250 ms pings, so a deadline of 3.05 s (client-go's 61 s at its 5 s period). */
  const shortKeepalive = () => kubeContextFromOptions({ kubeconfig: path.join(dir, 'kubeconfig'), namespace: 'uc1' }, { KUBECTL_ETCD_PING_PERIOD_MS: '250' });

  /** An exec over a bare ws WebSocket, which sends no pings and has no deadline: the socket, and how and when it ended. */
  async function execWithoutPings(argv: string[]): Promise<{ ws: WebSocket; done: Promise<{ ms: number; closeCode: number; status: string }> }> {
    const options: WebSocket.ClientOptions = { headers: {} };
    await kube.kubeConfig.applyToHTTPSOptions(options);
    const query: Array<[string, string]> = [...argv.map((c): [string, string] => ['command', c]), ['container', target.container], ['stdout', 'true']];
    const url = apiSocketUrl(kube.kubeConfig.getCurrentCluster()!.server, `/api/v1/namespaces/${target.namespace}/pods/${target.pod}/exec`, query);
    const t0 = Date.now();
    const ws = new WebSocket(url, ['v5.channel.k8s.io'], options);
    let status = '';
    ws.on('message', (m: Buffer) => {
      if (m[0] === 3) status += m.subarray(1).toString('utf8');
    });
    ws.on('error', () => undefined);
    return { ws, done: new Promise((resolve) => ws.on('close', (closeCode) => resolve({ ms: Date.now() - t0, closeCode, status }))) };
  }

  /** `kubectl exec` (client-go's WebSocket executor, which pings every 5 s): its exit code, and after how long. */
  function kubectlExec(argv: string[]): Promise<{ ms: number; code: number; stderr: string }> {
    const t0 = Date.now();
    const args = ['--kubeconfig', path.join(dir, 'kubeconfig'), '-n', target.namespace, 'exec', target.pod, '-c', target.container, '--', ...argv];
    return new Promise((resolve) =>
      execFile('kubectl', args, (err, _stdout, stderr) => resolve({ ms: Date.now() - t0, code: err ? Number(err.code ?? 1) : 0, stderr })),
    );
  }

  it(`behind a ${IDLE_S} s idle cut, a silent ${SILENT_S} s exec is cut without pings, and kept by kubectl's pings and by ours`, async () => {
    fault('--idle-timeout', String(IDLE_S), '--kind', 'exec');
    try {
      const silent = ['sleep', String(SILENT_S)];
      const t0 = Date.now();
      const [naive, kubectl, ours, oursShort] = await Promise.all([
        execWithoutPings(silent).then((n) => n.done),
        kubectlExec(silent),
        // execCapture never retries: one exec, kept open by the product's own pings (client-go's 5 s)
        execCapture(kube, { ...target, command: silent }).then((r) => ({ ...r, ms: Date.now() - t0 })),
        // the server's pongs alone keep a silent stream within a deadline far shorter than the command
        execCapture(shortKeepalive(), { ...target, command: silent }),
      ]);
      // (a) the naive way: dropped (no close frame, no exit status) once the idle window passed
      expect(naive.status).toBe('');
      expect(naive.closeCode).toBe(1006);
      expect(naive.ms).toBeGreaterThanOrEqual(IDLE_S * 1000 - 200);
      expect(naive.ms).toBeLessThan(SILENT_S * 1000);
      // (b) real kubectl: the sim is no stricter than a load balancer that sees pings as traffic
      expect(kubectl.code, kubectl.stderr).toBe(0);
      expect(kubectl.ms).toBeGreaterThanOrEqual(SILENT_S * 1000);
      // (c) the product: one exec that outlived the idle window
      expect(ours.exitCode).toBe(0);
      expect(ours.ms).toBeGreaterThanOrEqual(SILENT_S * 1000);
      expect(oursShort.exitCode).toBe(0);
    } finally {
      clearStreamFaults(dir);
    }
  }, 60_000);

  it('gives up a server that stopped sending and answering pings (blackhole) within the deadline, exec and port-forward, with one line each', async () => {
    fault('--blackhole');
    const short = shortKeepalive();
    const fwd = await portForward(short, { namespace: 'uc1', pod: 'kube-etcd-0', port: 2379 });
    // The naive way: a client without pings has nothing that tells it the server is gone.
    const naive = await execWithoutPings(['sleep', '6']);
    let naiveClosed = false;
    void naive.done.then(() => { naiveClosed = true; });
    try {
      const t0 = Date.now();
      const exec = execCapture(short, { ...target, command: ['sleep', '6'] }).then(
        () => expect.unreachable('the exec resolved through a blackhole'),
        (err: unknown) => ({ err, ms: Date.now() - t0 }),
      );
      const local = net.connect(fwd.localPort, '127.0.0.1');
      local.on('error', () => undefined);
      const forwardClosed = new Promise<number>((resolve) => local.on('close', () => resolve(Date.now() - t0)));
      const [failed, closedAfter] = await Promise.all([exec, forwardClosed]);

      expect(failed.err).toBeInstanceOf(TransientError);
      expect(formatError(failed.err)).toBe(
        'error: exec in pod "uc1/kube-etcd-0": connection error: no answer from the API server for 3.1 s (keepalive pings unanswered); retry; check the cluster and the pod',
      );
      // Given up once the deadline passed, not before; the upper bound only says it did not hang
      // (the command and the naive client's wait never end through a blackhole).
      expect(failed.ms).toBeGreaterThanOrEqual(3000);
      expect(failed.ms).toBeLessThan(30_000);
      expect(closedAfter).toBeGreaterThanOrEqual(3000);
      expect(closedAfter).toBeLessThan(30_000);
      expect(naiveClosed, 'a client without pings noticed the blackhole').toBe(false);
      expect(fwd.lastError()).toBeInstanceOf(TransientError);
      expect(formatError(fwd.lastError())).toBe(
        'error: port-forward to port 2379 of pod "uc1/kube-etcd-0": connection error: no answer from the API server for 3.1 s (keepalive pings unanswered); retry; check the cluster and the pod',
      );
    } finally {
      naive.ws.terminate();
      await fwd.close();
      clearStreamFaults(dir);
    }
  }, 60_000);
});
