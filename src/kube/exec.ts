/**
 * Streaming exec into a pod over the channel WebSocket protocol. Resolves only once the status
 * channel has said how the command ended; honours backpressure both ways.
 *
 * stdin EOF: on `v5.channel.k8s.io` a CLOSE frame for stream 0 is sent when `stdin` ends. On
 * `v4.channel.k8s.io` there is no way to signal EOF: the command must stop reading by itself
 * (length-bounded input such as `head -c N`); `protocol` in the result says which one was used,
 * and `protocols: ['v4.channel.k8s.io']` forces v4.
 */
import { Writable, type Readable } from 'node:stream';
import type WebSocket from 'ws';
import { PluginError, TransientError } from '../errors.js';
import { Channel, decodeFrame, encodeClose, encodeFrame, execOutcome, execProtocols } from './channel.js';
import { kubeletUnreachable, parseStatus } from './errors.js';
import { retrying } from './retry.js';
import { abortError, openApiSocket, type KubeStreamAccess } from './socket.js';

/** What to run where, and the streams to connect. */
export interface ExecOptions {
  namespace: string;
  pod: string;
  container?: string;
  command: string[];
  stdin?: Readable;
  stdout?: Writable;
  stderr?: Writable;
  /** End stdout/stderr when the command ends and wait until they have finished (default false). */
  end?: boolean;
  /** Subprotocols to offer, best first (default v5 then v4). */
  protocols?: readonly string[];
  /** Aborting terminates the WebSocket and rejects with the abort reason. */
  signal?: AbortSignal;
}

/** How the command ended, and over which protocol. */
export interface ExecResult {
  exitCode: number;
  protocol: string;
}

/** The command could not run at all (e.g. executable not found); carries the status reason. */
export class ExecFailedError extends PluginError {
  /** True when the runtime said the executable does not exist in the image (distroless, no shell/tar). */
  readonly missingExecutable: boolean;
  constructor(message: string, hint: string, readonly reason?: string) {
    super(message, hint);
    this.missingExecutable = /executable file not found|no such file or directory/i.test(message);
  }
}

/** Bytes of stdin allowed in flight on the socket before stdin is paused. */
const stdinHighWater = 1 << 20;

/** Runs a command in a pod, streaming stdin/stdout/stderr; resolves with the exit code. */
export async function execInPod(kube: KubeStreamAccess, opts: ExecOptions): Promise<ExecResult> {
  const target = `pod "${opts.namespace}/${opts.pod}"`;
  const query: Array<[string, string]> = opts.command.map((c) => ['command', c]);
  if (opts.container) query.push(['container', opts.container]);
  query.push(['stdin', String(!!opts.stdin)], ['stdout', String(!!opts.stdout)], ['stderr', String(!!opts.stderr)]);
  const path = `/api/v1/namespaces/${encodeURIComponent(opts.namespace)}/pods/${encodeURIComponent(opts.pod)}/exec`;
  const ws = await openApiSocket(kube, path, query, opts.protocols ?? execProtocols, `exec in ${target}`, opts.signal);
  const protocol = ws.protocol;
  const exitCode = await runSession(ws, opts, target);
  if (opts.end) await Promise.all([finish(opts.stdout), finish(opts.stderr)]);
  return { exitCode, protocol };
}

/** How long a finished session's socket may take over its closing handshake before it is dropped. */
const CLOSE_GRACE_MS = 1000;

/** Terminates `ws` unless it has closed within `ms`. */
function closeWithin(ws: WebSocket, ms: number): void {
  if (ws.readyState === ws.CLOSED) return;
  const timer = setTimeout(() => ws.terminate(), ms);
  ws.once('close', () => clearTimeout(timer));
}

/** One exec session over an open socket (exported for tests): resolves with the exit code. */
export function runSession(ws: WebSocket, opts: ExecOptions, target: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let statusText = '';
    let settled = false;
    let paused = 0;
    const settle = (err: Error | undefined, code?: number) => {
      if (settled) return;
      settled = true;
      opts.stdin?.removeListener('data', onStdinData);
      opts.stdin?.removeListener('end', onStdinEnd);
      opts.stdin?.removeListener('error', onStdinError);
      opts.stdin?.pause();
      opts.signal?.removeEventListener('abort', onAbort);
      if (err) {
        ws.terminate();
        if (opts.end) {
          opts.stdout?.destroy(err);
          opts.stderr?.destroy(err);
        }
        reject(err);
      } else {
        // Nothing is read after the exit status but the closing handshake, and that must be read:
        // a socket our own backpressure left paused would never see the server's close frame, and
        // ws would hold it (and so the process, at exit) open for its 30 s close timeout. The
        // server may not read ours either (the sim's exec does not while stdin is paused for
        // backpressure): past CLOSE_GRACE_MS the connection is dropped, as client-go drops it
        // without a handshake at all.
        if (ws.isPaused) ws.resume();
        if (ws.readyState === ws.OPEN) ws.close(1000);
        closeWithin(ws, CLOSE_GRACE_MS);
        resolve(code!);
      }
    };
    const deliver = (out: Writable | undefined, data: Buffer) => {
      if (!out || data.length === 0) return;
      if (!out.write(data)) {
        paused++;
        if (paused === 1) ws.pause();
        out.once('drain', () => {
          paused--;
          if (paused === 0 && !settled) ws.resume();
        });
      }
    };
    const onAbort = () => settle(abortError(opts.signal!, `exec in ${target}`));
    if (opts.signal?.aborted) return onAbort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    ws.on('message', (raw: Buffer, isBinary: boolean) => {
      if (settled) return; // the command has ended: nothing more belongs to it
      const frame = decodeFrame(isBinary ? raw : Buffer.from(raw));
      if (!frame) return;
      if (frame.channel === Channel.stdout) deliver(opts.stdout, frame.data);
      else if (frame.channel === Channel.stderr) deliver(opts.stderr, frame.data);
      else if (frame.channel === Channel.error) {
        statusText += frame.data.toString('utf8');
        const status = parseStatus(statusText);
        if (!status) return;
        const outcome = execOutcome(status);
        // A v5 exec whose API server could not dial the kubelet learns it only here (the translator upgrades first).
        const unreachable = 'exitCode' in outcome ? undefined : kubeletUnreachable(status.code, outcome.failure, `exec in ${target}`);
        if ('exitCode' in outcome) settle(undefined, outcome.exitCode);
        else if (unreachable) settle(unreachable);
        else settle(new ExecFailedError(`exec in ${target} failed: ${outcome.failure}`, 'check the container name and that the image has this command', outcome.reason));
      }
    });
    ws.on('error', (err) => settle(new TransientError(`exec in ${target}: connection error: ${firstLine(err.message)}`, 'retry; check the cluster and the pod')));
    ws.on('close', (code) =>
      settle(new TransientError(`exec in ${target} ended before the command reported an exit status (websocket close ${code})`, 'retry; check that the pod is still running')),
    );
    for (const out of [opts.stdout, opts.stderr]) {
      out?.on('error', (err) =>
        settle(err instanceof PluginError ? err : new PluginError(`exec in ${target}: writing its output failed: ${firstLine(err.message)}`, 'check where the output goes (free disk space, a pipe still open)')),
      );
    }

    // stdin: send chunks, pause while too much is in flight on the socket.
    // (Own flag instead of isPaused(): stdin may be a streamx stream such as a tar-stream pack.)
    let inFlight = 0;
    let stdinPaused = false;
    const v5 = ws.protocol === 'v5.channel.k8s.io';
    const onStdinData = (chunk: Buffer | string) => {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      inFlight += buf.length;
      if (inFlight > stdinHighWater && !stdinPaused) {
        stdinPaused = true;
        opts.stdin!.pause();
      }
      ws.send(encodeFrame(Channel.stdin, buf), (err) => {
        inFlight -= buf.length;
        if (err) return settle(new TransientError(`exec in ${target}: sending input failed: ${firstLine(err.message)}`, 'retry; check the cluster and that the pod is still running'));
        if (inFlight <= stdinHighWater / 2 && stdinPaused && !settled) {
          stdinPaused = false;
          opts.stdin!.resume();
        }
      });
    };
    const onStdinEnd = () => {
      if (v5 && ws.readyState === ws.OPEN) ws.send(encodeClose(Channel.stdin));
    };
    const onStdinError = (err: Error) =>
      settle(err instanceof PluginError ? err : new PluginError(`exec in ${target}: reading its input failed: ${firstLine(err.message)}`, 'check the local file being sent'));
    if (opts.stdin) {
      opts.stdin.on('data', onStdinData);
      opts.stdin.once('end', onStdinEnd);
      opts.stdin.once('error', onStdinError);
      opts.stdin.resume();
    }
  });
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0] ?? '';
}

function finish(out: Writable | undefined): Promise<void> {
  if (!out || out.writableFinished === true) return Promise.resolve();
  return new Promise((resolve, reject) => {
    out.once('finish', resolve);
    out.once('error', reject);
    out.end();
  });
}

/** How a small command ended and what it printed: the one result shape of a command run in a container. */
export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Captured output of a small command, with the protocol it ran over. */
export interface CaptureResult extends ExecResult, CommandResult {}

/** Runs a command and returns its stdout/stderr as strings (for small outputs only). */
export async function execCapture(
  kube: KubeStreamAccess,
  opts: Omit<ExecOptions, 'stdout' | 'stderr' | 'end'> & { maxBytes?: number },
): Promise<CaptureResult> {
  const max = opts.maxBytes ?? 16 << 20;
  const collect = (chunks: Buffer[]) => {
    let size = 0;
    return new Writable({
      write(chunk: Buffer, _enc, cb) {
        size += chunk.length;
        if (size > max) return cb(new Error(`output larger than ${max} bytes`));
        chunks.push(chunk);
        cb();
      },
    });
  };
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const result = await execInPod(kube, { ...opts, stdout: collect(out), stderr: collect(err), end: true });
  return { ...result, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}

/** A container to run a command in. */
export interface ContainerRef {
  namespace: string;
  pod: string;
  /** The pod's default container when unset. */
  container?: string;
}

/**
 * Runs a small command (argv, never a shell string) in a container and captures its output;
 * rejects when it cannot run at all or `signal` aborts. The one seam through which the plugin
 * runs commands in containers (kubectl's RemoteExecutor); tests hand in a small fake.
 */
export type ContainerCommand = (target: ContainerRef, argv: string[], signal?: AbortSignal) => Promise<CommandResult>;

/** How a ContainerCommand treats a failure that a retry may cure (see kube/retry.ts). */
export interface ContainerCommandOptions {
  /** Retry transient failures (the API server restarting, a reset stream): for idempotent commands only. */
  retry?: { onRetry?: (err: unknown) => void };
}

/** The ContainerCommand over the kube seam's exec. */
export function containerCommand(kube: KubeStreamAccess, opts: ContainerCommandOptions = {}): ContainerCommand {
  const once: ContainerCommand = (t, argv, signal) => execCapture(kube, { namespace: t.namespace, pod: t.pod, container: t.container, command: argv, signal });
  if (!opts.retry) return once;
  const { onRetry } = opts.retry;
  return (t, argv, signal) => retrying(() => once(t, argv, signal), onRetry);
}
