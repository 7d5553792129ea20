// A backup downloaded for a restore (s3://, --from-schedule) is a copy of every Secret: it is read
// into <state>/downloads 0600, checked, and stays only while a restore journal names it
// (src/restore/downloads.ts, src/storage/fetch.ts readForRestore). Real files, real streams.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { dropDownloadedCopy, isDownloadedCopy } from '../../src/restore/downloads.js';
import { readForRestore } from '../../src/storage/fetch.js';
import type { BackupRecord } from '../../src/backup/record.js';

const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });
function stateDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'restore-downloads-'));
  dirs.push(d);
  return d;
}

describe('a downloaded copy for a restore', () => {
  it('is written 0600 into <state>/downloads, checked against its record, and reused when it matches', async () => {
    const state = stateDir();
    const bytes = Buffer.from('snapshot bytes '.repeat(1000));
    const record = { size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') } as BackupRecord;
    let opened = 0;
    const src = { url: 'schedule/s/x.db', name: 'x.db', record, open: () => { opened++; return Readable.from([bytes]); } };
    const opts = { stateDir: state, warn: () => {} };
    const path = await readForRestore(src, opts);
    expect(isDownloadedCopy(state, path)).toBe(true);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readFileSync(path).equals(bytes)).toBe(true);
    expect(await readForRestore(src, opts)).toBe(path);
    expect(opened).toBe(1);
    // A changed copy is refused and leaves nothing.
    const bad = { ...src, url: 'schedule/s/y.db', name: 'y.db', open: () => Readable.from([Buffer.from('other')]) };
    await expect(readForRestore(bad, opts)).rejects.toThrow(/is not what was stored/);
    expect(existsSync(join(state, 'downloads', 'y.db'))).toBe(false);
  });

  it('stays while a restore journal in the state dir names it, and goes once none does', async () => {
    const state = stateDir();
    mkdirSync(join(state, 'downloads'));
    const copy = join(state, 'downloads', 'abc-x.db');
    writeFileSync(copy, 'x', { mode: 0o600 });
    const journal = join(state, 'restore-uc1_kube-etcd.json');
    writeFileSync(journal, JSON.stringify({ snapshot: { path: copy } }));
    expect(await dropDownloadedCopy(state, copy)).toBe(false);
    expect(existsSync(copy)).toBe(true);
    rmSync(journal);
    expect(await dropDownloadedCopy(state, copy)).toBe(true);
    expect(existsSync(copy)).toBe(false);
  });

  it('a journal that cannot be read keeps the copy; a file outside <state>/downloads is never removed', async () => {
    const state = stateDir();
    mkdirSync(join(state, 'downloads'));
    const copy = join(state, 'downloads', 'abc-x.db');
    writeFileSync(copy, 'x');
    writeFileSync(join(state, 'restore-uc1_kube-etcd.json'), '{ not json');
    expect(await dropDownloadedCopy(state, copy)).toBe(false);
    expect(existsSync(copy)).toBe(true);
    const own = join(state, 'my-backup.db');
    writeFileSync(own, 'x');
    expect(await dropDownloadedCopy(state, own)).toBe(false);
    expect(isDownloadedCopy(state, join(state, 'downloads', '..', 'my-backup.db'))).toBe(false);
    expect(isDownloadedCopy(state, join(state, 'downloads', 'sub', 'f'))).toBe(false);
    expect(existsSync(own)).toBe(true);
  });
});
