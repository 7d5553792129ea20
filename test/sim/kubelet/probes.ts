// Readiness and liveness probes: exec (inside the container, as its user, with its env),
// tcpSocket and httpGet (from inside the pod's network namespace; HTTPS without verification).
// Differs from a real kubelet: tcp/http probes run a short-lived helper (bash /dev/tcp, curl or node)
// entered into the pod's network namespace; grpc probes and startupProbe are not supported
// (a startupProbe is ignored); successThreshold above 1 is treated as 1.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { V1Probe } from '@kubernetes/client-node';
import type { Json } from '../json.js';
import { execInContainerArgv } from './container.js';

/** What a probe needs to know about the running container. */
export interface ProbeTarget {
  pid: number;
  uid: number;
  gid: number;
  env: string[];
  netnsPath: string;
  podIP: string;
  ports: { name?: string; containerPort: number }[];
}

function runWithTimeout(argv: string[], env: Record<string, string>, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    // Its own process group, killed whole on timeout: nsenter forks into the container's PID
    // namespace, and killing nsenter alone would leave the command running there.
    const child = spawn(argv[0], argv.slice(1), { stdio: 'ignore', env, detached: true });
    const t = setTimeout(() => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { child.kill('SIGKILL'); } }, timeoutMs);
    child.on('error', () => { clearTimeout(t); resolve(false); });
    child.on('exit', (code) => { clearTimeout(t); resolve(code === 0); });
  });
}

function resolvePort(port: number | string, t: ProbeTarget): number {
  if (typeof port === 'number') return port;
  if (/^\d+$/.test(port)) return Number(port);
  const p = t.ports.find((x) => x.name === port);
  if (!p) throw new Error(`probe port "${port}" is not a named containerPort`);
  return p.containerPort;
}

const CURL = '/usr/bin/curl';

// Without curl: success for a status of 200 to 399, as the kubelet's (and curl --fail's, which follows no redirect).
const HTTP_PROBE = `
const [url, headers] = [process.argv[1], JSON.parse(process.argv[2])];
const mod = url.startsWith('https:') ? require('node:https') : require('node:http');
const req = mod.get(url, { rejectUnauthorized: false, headers }, (res) => {
  res.resume();
  process.exit(res.statusCode >= 200 && res.statusCode < 400 ? 0 : 1);
});
req.on('error', () => process.exit(1));
`;

/** Runs one probe once; true when it succeeded. */
export async function runProbe(probe: Json<V1Probe>, t: ProbeTarget): Promise<boolean> {
  const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
  const hostEnv = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };
  try {
    if (probe.exec) {
      const env = Object.fromEntries(t.env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
      return await runWithTimeout(execInContainerArgv(t.pid, t.uid, t.gid, probe.exec.command ?? []), env, timeoutMs);
    }
    if (probe.tcpSocket) {
      const host = probe.tcpSocket.host ?? t.podIP;
      const port = resolvePort(probe.tcpSocket.port, t);
      return await runWithTimeout(['/usr/bin/nsenter', `--net=${t.netnsPath}`, '--', '/bin/bash', '-c', `exec 3<>/dev/tcp/${host}/${port}`], hostEnv, timeoutMs);
    }
    if (probe.httpGet) {
      const g = probe.httpGet;
      const scheme = (g.scheme ?? 'HTTP').toLowerCase();
      const path = g.path ?? '/';
      const url = `${scheme}://${g.host ?? t.podIP}:${resolvePort(g.port, t)}${path.startsWith('/') ? '' : '/'}${path}`;
      const headers = Object.fromEntries((g.httpHeaders ?? []).map((h) => [h.name, h.value]));
      // curl when the machine has it: a node process costs about 0.1 s of CPU per probe, curl a tenth of that.
      const argv = existsSync(CURL)
        ? [CURL, '--silent', '--insecure', '--http1.1', '--fail', '--output', '/dev/null', ...Object.entries(headers).flatMap(([k, v]) => ['--header', `${k}: ${v}`]), '--', url]
        : [process.execPath, '-e', HTTP_PROBE, url, JSON.stringify(headers)];
      return await runWithTimeout(['/usr/bin/nsenter', `--net=${t.netnsPath}`, '--', ...argv], hostEnv, Math.max(timeoutMs, 2000));
    }
  } catch {
    return false;
  }
  return false;
}
