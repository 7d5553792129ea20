// stdout closed by its reader: `kubectl etcd --help | head -1` must end quietly (as SIGPIPE ends
// kubectl itself), while a snapshot written to stdout keeps its own failure (backup -f -, in
// test/e2e/backup.test.ts). The real process runs the development build (dist/, built by npm test).
import { execFile } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXIT_CLOSED_STDOUT, watchStdout } from '../../src/cli/main.js';

const BIN = join(import.meta.dirname, '../../bin/kubectl-etcd');

function watched(extraListener = false) {
  const stdout = new EventEmitter();
  const exits: number[] = [];
  let stderr = '';
  watchStdout(stdout, (code) => exits.push(code), { write: (s: string) => (stderr += s) });
  if (extraListener) stdout.on('error', () => {});
  return { stdout, exits, stderr: () => stderr };
}

const errno = (code: string) => Object.assign(new Error(`write ${code}`), { code });

describe('stdout write errors no command handles', () => {
  it('a reader that stopped reading (EPIPE) ends the command quietly with status 141', () => {
    const w = watched();
    w.stdout.emit('error', errno('EPIPE'));
    expect(w.exits).toEqual([EXIT_CLOSED_STDOUT]);
    expect(w.stderr()).toBe('');
  });

  it('another write error is one line on stderr and status 1', () => {
    const w = watched();
    w.stdout.emit('error', errno('ENOSPC'));
    expect(w.exits).toEqual([1]);
    expect(w.stderr()).toBe('error: cannot write to stdout: ENOSPC\n');
  });

  it('is left to a command that watches stdout itself (a snapshot written to stdout)', () => {
    const w = watched(true);
    w.stdout.emit('error', errno('EPIPE'));
    expect(w.exits).toEqual([]);
  });

  it('`kubectl-etcd --help | true` (the reader gone before the help is written) prints no stack trace and ends with 141', async () => {
    const r = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile('bash', ['-c', `set -o pipefail; "$0" "$1" --help | true`, process.execPath, BIN], (err, _stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stderr });
      });
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(EXIT_CLOSED_STDOUT);
  });
});
