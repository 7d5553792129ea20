// The detached runner's shell scripts run for real (host sh stands in for the container's), behind
// a ContainerCommand that can "cut the stream": the command runs on, the caller gets a transient
// error, as with a load balancer's idle cut in a real cluster.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TransientError } from '../../src/errors.js';
import { pollRun, runDetached, runDir, settleRun } from '../../src/kube/detached.js';
import type { CommandResult, ContainerCommand } from '../../src/kube/exec.js';

const target = { namespace: 'ns', pod: 'p' };

/** Runs argv on the host; cuts the first `cuts` calls whose argv matches `cutWhen` (the process goes on). */
function hostCommand(o: { cuts?: number; cutWhen?: (argv: string[]) => boolean } = {}): { run: ContainerCommand; calls: string[][] } {
  let cuts = o.cuts ?? 0;
  const calls: string[][] = [];
  const run: ContainerCommand = (_t, argv) => {
    calls.push(argv);
    const child = new Promise<CommandResult>((resolve) => {
      execFile(argv[0]!, argv.slice(1), (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ exitCode: code, stdout, stderr });
      });
    });
    if (cuts > 0 && (o.cutWhen ?? (() => true))(argv)) {
      cuts--;
      return Promise.reject(new TransientError('exec in pod "ns/p" ended before the command reported an exit status (websocket close 1006)'));
    }
    return child;
  };
  return { run, calls };
}

/** Starts `argv` detached as `name` through a caller that then dies (a killed plugin); returns a working ContainerCommand. */
async function leftGoing(name: string, argv: string[]): Promise<ContainerCommand> {
  const host = hostCommand().run;
  let calls = 0;
  const dying: ContainerCommand = (t, a, sig) => (++calls <= 2 ? host(t, a, sig) : Promise.reject(new Error('plugin killed')));
  await expect(runDetached(dying, target, { name, argv }, { pollMs: 20, longPollSeconds: 0 })).rejects.toThrow('plugin killed');
  return host;
}

const names: string[] = [];
function uniqueName(): string {
  const n = `test-${process.pid}-${names.length}-${Date.now()}`;
  names.push(n);
  return n;
}
afterEach(() => {
  for (const n of names.splice(0)) rmSync(runDir(n), { recursive: true, force: true });
});

describe('runDetached', () => {
  it('runs the command once, returns its exit code and output, and removes its marker: two execs (start and wait, then remove the marker)', async () => {
    const { run, calls } = hostCommand();
    const name = uniqueName();
    const r = await runDetached(run, target, { name, argv: ['sh', '-c', 'sleep 0.3; echo out; echo .err >&2; printf "two\\nlines" >&2; exit 3'] }, { pollMs: 20 });
    expect(r).toEqual({ exitCode: 3, stdout: 'out\n', stderr: '.err\ntwo\nlines' });
    expect(existsSync(runDir(name))).toBe(false);
    expect(calls).toHaveLength(2);
  });

  it('starts the command once when the start and the polls are cut while it runs', async () => {
    const work = mkdtempSync(join(tmpdir(), 'detached-'));
    const log = join(work, 'runs');
    // every exec is cut once in three: the start (the process goes on), and polls
    let n = 0;
    const { run } = hostCommand({ cuts: 4, cutWhen: () => n++ % 3 === 0 });
    const name = uniqueName();
    const r = await runDetached(run, target, { name, argv: ['sh', '-c', `echo run >>${log}; sleep 1; echo finished`] }, { pollMs: 20, onRetry: () => undefined });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('finished\n');
    expect(readFileSync(log, 'utf8')).toBe('run\n');
    rmSync(work, { recursive: true, force: true });
  });

  it('joins a run that an earlier caller started and left (a killed plugin, then --resume)', async () => {
    const work = mkdtempSync(join(tmpdir(), 'detached-'));
    const log = join(work, 'runs');
    const name = uniqueName();
    const argv = ['sh', '-c', `echo run >>${log}; sleep 2; echo done-once`];
    // the earlier caller starts the run, then dies (every later exec of it fails for good)
    let calls = 0;
    const host = hostCommand().run;
    const dying: ContainerCommand = (t, a, sig) => (++calls <= 2 ? host(t, a, sig) : Promise.reject(new Error('plugin killed')));
    await expect(runDetached(dying, target, { name, argv }, { pollMs: 20, longPollSeconds: 0 })).rejects.toThrow('plugin killed');
    // 'starting' until the detached shell has written its pid (slow on a loaded machine), then 'running'.
    await expect.poll(async () => (await pollRun(host, target, name)).state, { timeout: 1500, interval: 20 }).toBe('running');
    const r = await runDetached(host, target, { name, argv }, { pollMs: 20 });
    expect(r).toEqual({ exitCode: 0, stdout: 'done-once\n', stderr: '' });
    expect(readFileSync(log, 'utf8')).toBe('run\n');
    rmSync(work, { recursive: true, force: true });
  });

  it('a poll waits for a running command to end (rather than answering "running"), writing a dot while it waits (no idle stream)', async () => {
    const work = mkdtempSync(join(tmpdir(), 'detached-'));
    const gate = join(work, 'gate');
    const name = uniqueName();
    // The run ends only when the test says so: no race with the machine's speed.
    const host = await leftGoing(name, ['sh', '-c', `while [ ! -f ${gate} ]; do sleep 0.05; done`]);
    await expect.poll(async () => (await pollRun(host, target, name)).state, { timeout: 10_000, interval: 20 }).toBe('running');
    let stderr = '';
    const watching: ContainerCommand = async (t, a, sig) => {
      const r = await host(t, a, sig);
      stderr = r.stderr;
      return r;
    };
    const polled = pollRun(watching, target, name, undefined, 30);
    setTimeout(() => writeFileSync(gate, ''), 1000);
    expect(await polled).toEqual({ state: 'done', exitCode: 0 });
    expect(stderr).toMatch(/^\.+$/);
    rmSync(work, { recursive: true, force: true });
  });

  it('settleRun waits for a run left going, then removes its marker; with none it returns at once', async () => {
    const name = uniqueName();
    const host = await leftGoing(name, ['sleep', '1']);
    const t0 = Date.now();
    await settleRun(host, target, name, { pollMs: 20 });
    expect(Date.now() - t0).toBeGreaterThan(500);
    expect((await pollRun(host, target, name)).state).toBe('absent');
    await settleRun(host, target, uniqueName(), { pollMs: 20 });
  });

  it('a run that writes its pid file between two looks of the waiting shell is not taken for dead (the shell preempted right after it found no pid file)', async () => {
    // bash with its `[`/`test` builtins off runs a `[` from PATH that answers "no pid file" 0.3 s
    // late: meanwhile the runner writes it. A waiting shell that tests the pid file again then sees
    // a run started and not alive: "ended without an exit status" while it runs.
    const work = mkdtempSync(join(tmpdir(), 'detached-'));
    writeFileSync(join(work, '['), [
      '#!/bin/sh',
      'if [ "$1" = -f ] && [ "$3" = "]" ]; then',
      '  case "$2" in */pid) if ! [ -f "$2" ]; then sleep 0.3; exit 1; fi;; esac',
      'fi',
      'exec /usr/bin/[ "$@"',
    ].join('\n') + '\n', { mode: 0o755 });
    const host = hostCommand().run;
    const slowTest: ContainerCommand = (t, argv, sig) =>
      argv[0] === 'sh' && argv[1] === '-c'
        ? host(t, ['env', `PATH=${work}:${process.env.PATH}`, 'bash', '-c', `enable -n [ test; ${argv[2]}`, ...argv.slice(3)], sig)
        : host(t, argv, sig);
    const r = await runDetached(slowTest, target, { name: uniqueName(), argv: ['sh', '-c', 'sleep 0.5; exit 3'] }, { pollMs: 20 });
    expect(r.exitCode).toBe(3);
    rmSync(work, { recursive: true, force: true });
  });

  it('writes its output files 0600', async () => {
    const name = uniqueName();
    const { run } = hostCommand();
    const p = runDetached(run, target, { name, argv: ['sh', '-c', 'sleep 0.5; echo secret'] }, { pollMs: 20 });
    await new Promise((r) => setTimeout(r, 200));
    const mode = await new Promise<string>((resolve) => execFile('stat', ['-c', '%a', join(runDir(name), 'out')], (_e, out) => resolve(out.trim())));
    expect(mode).toBe('600');
    await p;
  });

  it('refuses a name that is not a plain folder name', () => {
    expect(() => runDir('../etc')).toThrow(/invalid detached run name/);
  });
});
