import { describe, expect, it } from 'vitest';
import { backupFlagsToOptions, type BackupFlags } from '../../src/cli/backup.js';
import { UsageError } from '../../src/errors.js';

describe('backup flags', () => {
  it.each<[BackupFlags, object]>([
    [{ file: 'snap.db' }, { destination: { kind: 'file', path: 'snap.db' } }],
    [{ file: '-' }, { destination: { kind: 'stdout' } }],
    [{ dir: '/backups', keep: '3', output: 'json' }, { destination: { kind: 'dir', dir: '/backups', keep: 3 }, output: 'json' }],
    [{ dir: 'b', via: 'stream' }, { destination: { kind: 'dir', dir: 'b', keep: undefined }, via: 'stream' }],
    [{ to: 's3://bkt/etcd', keep: '7' }, { destination: { kind: 's3', bucket: 'bkt', folder: 'etcd/', keep: 7 } }],
    [{ to: 's3://bkt', s3Endpoint: 'http://127.0.0.1:9000/' }, { destination: { kind: 's3', bucket: 'bkt', folder: '', endpoint: 'http://127.0.0.1:9000' } }],
  ])('%j', (flags, expected) => {
    expect(backupFlagsToOptions(flags)).toMatchObject(expected);
  });

  it.each<[BackupFlags, boolean, string]>([
    [{}, false, 'no destination given'],
    [{ file: 'a', dir: 'b' }, false, '-f and --dir cannot be used together'],
    [{ file: 'a', keep: '2' }, false, '--keep works only with --dir or --to'],
    [{ file: 'a', to: 's3://bkt/p' }, false, '-f and --to cannot be used together'],
    [{ dir: 'd', to: 's3://bkt/p' }, false, '--dir and --to cannot be used together'],
    [{ to: '/backups' }, false, '--to "/backups" is not an object-storage URL'],
    [{ to: 's3://Bad_Bucket/p' }, false, 'is not a valid bucket name'],
    [{ to: 's3://bkt//p' }, false, 'has an empty, "." or ".." part'],
    [{ to: 's3://bkt/p', s3Endpoint: 'ftp://x' }, false, 'is not an http(s) URL'],
    [{ to: 's3://bkt/p', s3Endpoint: 'http://key:secret@x' }, false, '--s3-endpoint must not carry credentials'],
    [{ dir: 'd', s3Endpoint: 'http://x' }, false, '--s3-endpoint works only with --to'],
    [{ dir: 'b', keep: '0' }, false, '--keep "0" is not a positive whole number'],
    [{ file: 'a', statefulset: 's', pod: 'p' }, false, '--statefulset, --pod and -l select the same thing'],
    [{ file: 'a', cert: 'c' }, false, '--cacert, --cert and --key go together'],
    [{ file: '-', output: 'json' }, false, '-o cannot be used with -f -'],
    [{ file: '-' }, true, 'refusing to write a binary snapshot to the terminal'],
  ])('%j (stdout a terminal: %s) is a usage error: %s', (flags, tty, message) => {
    let thrown: unknown;
    try {
      backupFlagsToOptions(flags, tty);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(UsageError);
    expect((thrown as Error).message).toContain(message);
  });

  it('a terminal on stdout does not matter when the snapshot goes to a file', () => {
    expect(backupFlagsToOptions({ file: 'snap.db' }, true).destination).toEqual({ kind: 'file', path: 'snap.db' });
  });
});
