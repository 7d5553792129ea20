// The one-line errors backup prints when a local file operation or the pod's output goes wrong:
// each names the object in quotes and the next step (formatError is what the user sees).
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { formatError } from '../../src/errors.js';
import { execTransport } from '../../src/backup/exec-transport.js';
import { removeRunsCommand } from '../../src/kube/detached.js';
import { localWriteError, PartialFile } from '../../src/backup/partial.js';
import { writeSidecar, type BackupRecord } from '../../src/backup/record.js';
import { InterruptedError } from '../../src/backup/signals.js';
import { silentLogger } from '../helpers/log.js';
import type { EtcdMember } from '../../src/etcd/topology.js';

const errno = (code: string) => Object.assign(new Error(`${code}: something low-level`), { code });

describe('local write errors', () => {
  it.each([
    ['ENOSPC', 'error: cannot write "/b/s.db.partial": ENOSPC; free space or pass another -f/--dir'],
    ['EDQUOT', 'error: cannot write "/b/s.db.partial": EDQUOT; free space or pass another -f/--dir'],
    ['EIO', 'error: cannot write "/b/s.db.partial": EIO; check the disk, or pass another -f/--dir'],
  ])('%s while writing the partial file', (code, line) => {
    expect(formatError(localWriteError('/b/s.db.partial', errno(code)))).toBe(line);
  });

  it('commit onto a directory that vanished names both files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kubectl-etcd-msg-'));
    const p = await PartialFile.create(join(dir, 's.db'));
    const target = join(dir, 'gone', 's.db');
    await expect(p.commit(target)).rejects.toThrow(`cannot rename "${join(dir, 's.db.partial')}" to "${target}": ENOENT`);
    await p.discard();
  });

  it('a sidecar that cannot be written names it and says the snapshot is safe', async () => {
    const dir = join(await mkdtemp(join(tmpdir(), 'kubectl-etcd-msg-')), 'gone');
    const err = await writeSidecar(join(dir, 's.db'), {} as BackupRecord).catch((e: Error) => e);
    expect(formatError(err)).toBe(
      `error: cannot write the sidecar "${join(dir, 's.db.json')}": ENOENT; the snapshot "${join(dir, 's.db')}" is saved; free space or fix the directory's permissions`,
    );
  });
});

describe('interruption', () => {
  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)('%s exits %i', (sig, code) => {
    expect(new InterruptedError('backup interrupted', sig).exitCode).toBe(code);
  });
});

describe('exec transport output', () => {
  it('a snapshot save that prints something else is reported by its first line only, and the temp file is still removed', async () => {
    const member = { pod: 'etcd-0', namespace: 'ns1', container: 'etcd', name: 'etcd-0', endpoint: 'http://127.0.0.1:2379', dataDir: '/var/lib/etcd/data', tls: {} } as EtcdMember;
    const commands: string[][] = [];
    const transport = execTransport({
      run: async (_t, command) => {
        commands.push(command);
        // the detached save: started and waited for, it answers done with its output; then its marker goes
        const script = command[2] ?? '';
        if (script.includes('with_output=1')) return { exitCode: 0, stdout: 'done 0\nmotd: welcome\nline two\nline three\n', stderr: '\n' };
        return { exitCode: 0, stdout: '', stderr: '' };
      },
      copyOut: async () => ({ bytes: 0 }),
      randomName: () => 'kubectl-etcd-test.db',
    });
    const ctx = { signal: new AbortController().signal, onBytes: () => {}, onTotal: () => {}, log: silentLogger() };
    const err = await transport.take(member, new PassThrough(), ctx).catch((e: Error) => e);
    expect(formatError(err)).toBe(
      'error: snapshot save in pod "etcd-0" did not print the file\'s path and size (first line of its output: "motd: welcome"); check that the image has df and wc, or use --via stream',
    );
    expect(commands).toHaveLength(2); // the save started and waited for in one exec; its marker removed with the temp file
    expect(commands.at(-1)).toEqual([...removeRunsCommand([]), '/tmp/kubectl-etcd-test.db', '/tmp/kubectl-etcd-test.db.part', '/var/lib/etcd/kubectl-etcd-test.db', '/var/lib/etcd/kubectl-etcd-test.db.part', '/tmp/kubectl-etcd-runs/backup-kubectl-etcd-test']);
  });
});
