// pods/exec over WebSocket. v5.channel.k8s.io is answered as kube-apiserver's stream translator
// answers it (statuses worded by the translator, all errors after the upgrade on channel 3);
// v4.channel.k8s.io and channel.k8s.io / no subprotocol as the apiserver proxies them to the
// runtime's streaming server (statuses worded by containerd; "container not found" is an HTTP
// 500 before the upgrade). The process runs inside the container via nsenter (runtime.ts).
// Differences from a real API server + kubelet + containerd:
// - no pseudo-terminal: with tty=true the command gets pipes, stderr is merged into stdout and
//   resize events (channel 4) are ignored;
// - not a difference: what an exec started (and what that left running, in any process group) is
//   killed when its container exits, as a runtime kills a stopped container's processes (the
//   kubelet does it: kubelet/container.ts holdMountNamespace);
// - not a difference: when the client goes away (closed, killed, or cut by a stream fault) the
//   exec'd process is not killed. As in a real cluster it goes on with stdin at EOF, and the read
//   ends of its stdout/stderr pipes are closed, so a process that writes again gets EPIPE/SIGPIPE
//   while a silent one runs to its end. Real Kubernetes never kills it: the CRI exec process
//   outlives its stream (the kubelet logs "Exec session in container <id> terminated but process
//   still running!", kubernetes/kubernetes#73056, #89031; runc only forwards SIGHUP for a tty,
//   opencontainers/runc#3359); containerd's CRI closes its end of the exec's stdout when the
//   copy to the gone client fails ("Failed to pipe stdout ... file already closed",
//   linuxkit/kubernetes#28);
// - v2/v3.channel.k8s.io and the base64 protocols are not offered (a real kubelet does not offer
//   v2/v3 over WebSocket either); SPDY/3.1 upgrades are refused with a 400 naming kubectl >= 1.30.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants } from 'node:os';
import type { PodStreamContext } from '../podstreams.js';
import { ChannelSocket, isWebSocketRequest, negotiate, offeredProtocols, rejectHandshake, upgrade } from './channels.js';
import { findStreamFault } from './faults.js';
import { internalErrorStatus, legacyStatusText, marshalStatus, nonZeroExitStatus, successStatus, type StreamStatus } from './gostatus.js';
import { kubeletDialFailure } from './kubeletdial.js';
import { chooseContainer, containerEnv, isAlive, missingExecutable, nsenterArgs, readContainerRuntime, type ContainerRuntime } from './runtime.js';

const V5 = 'v5.channel.k8s.io';
const RUNTIME_PROTOCOLS = ['', 'channel.k8s.io', 'v4.channel.k8s.io'];
const STATUS_CHANNEL = 3;

/** Parses a boolean query parameter the way Go's strconv.ParseBool accepts it. */
export function queryBool(v: string | null): boolean {
  return v !== null && ['1', 't', 'T', 'true', 'TRUE', 'True'].includes(v);
}

/** Serves GET/upgrade pods/NAME/exec. Resolves when the stream is over. */
export async function serveExec(ctx: PodStreamContext): Promise<void> {
  const q = ctx.query;
  const argv = q.getAll('command');
  const tty = queryBool(q.get('tty'));
  const want = { stdin: queryBool(q.get('stdin')), stdout: queryBool(q.get('stdout')), stderr: queryBool(q.get('stderr')) && !tty };
  const podName: string = ctx.pod?.metadata?.name ?? '';

  if (argv.length === 0) return ctx.sendStatus(400, 'BadRequest', 'you must specify at least 1 command');
  if (!want.stdin && !want.stdout && !want.stderr) {
    return ctx.sendStatus(400, 'BadRequest', 'you must specify at least 1 of stdin, stdout, stderr');
  }
  const chosen = chooseContainer(ctx.pod, q.get('container'));
  if (typeof chosen === 'string') return ctx.sendStatus(400, 'BadRequest', chosen);
  if (!ctx.pod?.spec?.nodeName) return ctx.sendStatus(400, 'BadRequest', `pod ${podName} does not have a host assigned`);
  if (!ctx.socket || !isWebSocketRequest(ctx.req)) {
    const spdy = String(ctx.req.headers.upgrade ?? '').toLowerCase().startsWith('spdy');
    return ctx.sendStatus(400, 'BadRequest', spdy
      ? 'the simulator serves exec only over WebSocket (v5.channel.k8s.io, v4.channel.k8s.io), not SPDY; use kubectl 1.30 or newer'
      : 'Upgrade request required');
  }

  const offered = offeredProtocols(ctx.req);
  const protocol = negotiate(offered, offered.includes(V5) ? [V5] : RUNTIME_PROTOCOLS);
  if (protocol === undefined) return rejectHandshake(ctx.socket);

  // The node's kubelet does not answer: v4 is refused before the upgrade, v5 told after it.
  const down = kubeletDialFailure(ctx);
  if (down && protocol !== V5) return ctx.sendStatus(500, 'InternalError', `error dialing backend: ${down.dial}`);
  const container = await readContainerRuntime(ctx.dir, ctx.namespace, podName, chosen.name);
  const running = container && isAlive(container.pid) ? container : undefined;
  const notFound = `container not found ("${chosen.name}")`;
  if (!running && protocol !== V5) return ctx.sendStatus(500, 'InternalError', notFound);

  const fault = await findStreamFault(ctx.dir, 'exec', ctx.namespace, podName);
  const ws = await upgrade(ctx.req, ctx.socket, ctx.head ?? Buffer.alloc(0), protocol);
  const chan = new ChannelSocket(ws, ctx.socket, protocol, fault);
  const statusText = (s: StreamStatus) => (protocol === V5 || protocol === 'v4.channel.k8s.io' ? marshalStatus(s) : legacyStatusText(s));
  const finish = (s: StreamStatus) => chan.finish({ channel: STATUS_CHANNEL, text: statusText(s) });

  // "Send an empty message to the lowest writable channel to notify the client the connection is established"
  chan.sendControl(want.stdout ? 1 : want.stderr ? 2 : STATUS_CHANNEL);

  return new Promise<void>((resolve) => {
    if (down) {
      const query = new URLSearchParams([...argv.map((a) => ['command', a]), ...(want.stderr ? [['error', '1']] : []), ...(want.stdin ? [['input', '1']] : []), ...(want.stdout ? [['output', '1']] : [])]);
      chan.listen({ data() {}, closed: resolve });
      finish(internalErrorStatus(`error sending request: Post "https://${down.ip}:10250/exec/${ctx.namespace}/${podName}/${chosen.name}?${query}": ${down.dial}`));
      return;
    }
    if (!running) {
      chan.listen({ data() {}, closed: resolve });
      finish(internalErrorStatus(`unable to upgrade connection: ${notFound}`));
      return;
    }
    void run(chan, running, argv, want, tty, protocol === V5 ? 'translator' : 'runtime', finish, resolve);
  });
}

async function run(
  chan: ChannelSocket, c: ContainerRuntime, argv: string[], want: { stdin: boolean; stdout: boolean; stderr: boolean },
  tty: boolean, via: 'translator' | 'runtime', finish: (s: StreamStatus) => void, done: () => void,
): Promise<void> {
  const env = containerEnv(c);
  const missing = await missingExecutable(c, argv[0], env);
  if (missing) {
    chan.listen({ data() {}, closed: done });
    const execId = randomBytes(32).toString('hex');
    finish(internalErrorStatus(`error executing command in container: failed to exec in container: failed to start exec "${execId}": OCI runtime exec failed: exec failed: unable to start container process: ${missing}: unknown`));
    return;
  }
  // Its own process group: a signal meant for the apiserver (Ctrl-C in its terminal) does not reach it.
  const [program, ...args] = nsenterArgs(c, argv);
  const child = spawn(program!, args, {
    env,
    detached: true,
    stdio: [want.stdin ? 'pipe' : 'ignore', want.stdout || tty ? 'pipe' : 'ignore', want.stderr || tty ? 'pipe' : 'ignore'],
  });
  const outputs = [
    { stream: child.stdout, channel: 1 },
    { stream: child.stderr, channel: tty ? 1 : 2 },
  ].filter((o) => o.stream !== null);
  let waiting = false;
  const resume = () => { waiting = false; for (const o of outputs) o.stream!.resume(); };
  for (const o of outputs) {
    o.stream!.on('data', (chunk: Buffer) => {
      if (chan.send(o.channel, chunk) || waiting) return;
      waiting = true;
      for (const p of outputs) p.stream!.pause();
      chan.onDrain(resume);
    });
    o.stream!.on('error', () => {});
  }

  let stdinOpen = want.stdin;
  let inputPaused = false;
  const endStdin = () => { if (stdinOpen) { stdinOpen = false; child.stdin?.end(); } };
  child.stdin?.on('error', () => { stdinOpen = false; });
  chan.listen({
    data(channel, payload) {
      if (channel !== 0 || !stdinOpen || !child.stdin) return; // channel 4 (resize) is ignored
      if (!child.stdin.write(payload) && !inputPaused) {
        inputPaused = true;
        chan.pauseInput(true);
        child.stdin.once('drain', () => { inputPaused = false; chan.pauseInput(false); });
      }
    },
    halfClose(channel) { if (channel === 0) endStdin(); },
    closed() {
      // The process goes on (never killed here); its next write to stdout/stderr fails with EPIPE.
      endStdin();
      for (const o of outputs) o.stream!.destroy();
      done();
    },
  });

  child.on('error', (err) => {
    finish(internalErrorStatus(`error executing command in container: ${err.message}`));
  });
  child.on('close', (code, signal) => {
    const rc = code ?? 128 + (signal ? constants.signals[signal] : 0);
    finish(rc === 0 ? successStatus() : nonZeroExitStatus(rc, argv, via));
  });
}
