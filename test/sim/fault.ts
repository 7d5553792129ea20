// `sim fault`: fault injection. The API server faults live here (restart-apiserver, stream cut
// or stall, clear); every other kind is handed to test/sim/kubelet/fault.ts (runKubeletFault).
// Stream faults are written to DIR/faults.json as {"streams":[{action,afterBytes,pod?,kind?}]},
// which the pod stream handler reads at the start of each stream.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { clientConfig } from './apiserver/clusterfiles.js';
import { waitApiReady } from './apiserver/lifecycle.js';
import { REPO_ROOT, runningPid, startComponent, stopComponent } from './apiserver/procs.js';

/** One stream fault as faults.json holds it. */
export interface StreamFaultSpec {
  action: 'cut' | 'stall';
  afterBytes: number;
  pod?: string;
  kind?: string;
}

function readFaults(dir: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(join(dir, 'faults.json'), 'utf8')) as Record<string, unknown>;
  } catch {
    return {};
  }
}

function writeFaults(dir: string, faults: Record<string, unknown>): void {
  const file = join(dir, 'faults.json');
  writeFileSync(`${file}.tmp`, JSON.stringify(faults, null, 2) + '\n');
  renameSync(`${file}.tmp`, file);
}

/** Kills the API server (SIGKILL) and starts it again on the same port; resolves when it is ready. */
export async function restartApiServer(dir: string): Promise<void> {
  if (!runningPid(dir, 'apiserver')) throw new Error(`no apiserver is running in "${dir}"; run \`npm run sim -- up --dir ${dir}\``);
  await stopComponent(dir, 'apiserver', 0, 'SIGKILL');
  startComponent(dir, 'apiserver', 'test/sim/apiserver/main.ts');
  await waitApiReady(clientConfig(dir), dir, 30_000);
}

/** Parses `stream --cut-after BYTES|--stall [--after BYTES] [--pod NS/NAME] [--kind K]` into a fault. */
export function parseStreamFault(args: string[]): StreamFaultSpec {
  const val = (flag: string) => { const i = args.indexOf(flag); return i >= 0 ? args[i + 1] : undefined; };
  const cut = val('--cut-after');
  const stall = args.includes('--stall');
  if ((cut === undefined) === !stall) throw new Error('fault stream needs exactly one of --cut-after BYTES or --stall');
  const fault: StreamFaultSpec = { action: stall ? 'stall' : 'cut', afterBytes: Number(stall ? val('--after') ?? 0 : cut) };
  if (!Number.isFinite(fault.afterBytes) || fault.afterBytes < 0) throw new Error(`invalid byte count "${cut}"; pass a number of bytes`);
  const pod = val('--pod');
  const kind = val('--kind');
  if (pod) fault.pod = pod;
  if (kind) fault.kind = kind;
  return fault;
}

/** Runs `sim fault --dir DIR KIND ARGS...`. */
export async function runFault(dir: string, kind: string, args: string[]): Promise<string> {
  switch (kind) {
    case 'restart-apiserver':
      await restartApiServer(dir);
      return 'apiserver restarted';
    case 'stream': {
      const faults = readFaults(dir);
      const streams = Array.isArray(faults.streams) ? faults.streams : [];
      const f = parseStreamFault(args);
      writeFaults(dir, { ...faults, streams: [...streams, f] });
      return `stream fault added: ${JSON.stringify(f)}`;
    }
    case 'clear': {
      const faults = readFaults(dir);
      writeFaults(dir, { ...faults, streams: [] });
      const out = 'stream faults cleared';
      if (kubeletFaultFile()) {
        await runKubeletFault(dir, ['clear']);
      }
      return out;
    }
    default: {
      if (!kubeletFaultFile()) throw new Error(`unknown fault "${kind}"; known: restart-apiserver, stream, clear`);
      await runKubeletFault(dir, [kind, ...args]);
      return `fault ${kind} done`;
    }
  }
}

function kubeletFaultFile(): string | undefined {
  const file = join(REPO_ROOT, 'test/sim/kubelet/fault.ts');
  return existsSync(file) ? file : undefined;
}

async function runKubeletFault(dir: string, args: string[]): Promise<void> {
  const mod = await import(pathToFileURL(kubeletFaultFile()!).href) as { runKubeletFault(dir: string, args: string[]): Promise<void> };
  await mod.runKubeletFault(dir, args);
}
