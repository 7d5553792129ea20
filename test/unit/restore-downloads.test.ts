// A backup downloaded for a restore (s3://, --from-schedule) is a copy of every Secret: it is read
// into <state>/downloads 0600, checked, leased by the restore that reads it, and stays only while
// that restore runs or a restore journal names it
// (src/restore/downloads.ts, src/storage/fetch.ts readForRestore). Real files, real streams.
import { createHash } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { leaseDownload, sweepDownloads } from '../../src/restore/downloads.js';
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
    expect(path.startsWith(join(state, 'downloads') + '/')).toBe(true);
    expect(existsSync(`${path}.lease-${process.pid}`)).toBe(true);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readFileSync(path).equals(bytes)).toBe(true);
    expect(await readForRestore(src, opts)).toBe(path);
    expect(opened).toBe(1);
    // A changed copy is refused and leaves nothing.
    const bad = { ...src, url: 'schedule/s/y.db', name: 'y.db', open: () => Readable.from([Buffer.from('other')]) };
    await expect(readForRestore(bad, opts)).rejects.toThrow(/is not what was stored/);
    expect(readdirSync(join(state, 'downloads')).filter((n) => !n.includes('.lease-'))).toEqual([path.slice(path.lastIndexOf('/') + 1)]);
  });

  it('stays while a restore journal in the state dir names it (its own path or its plan\'s), and goes once none does', async () => {
    const state = stateDir();
    mkdirSync(join(state, 'downloads'));
    const copy = join(state, 'downloads', 'abc-x.db');
    const other = join(state, 'downloads', 'def-y.db');
    writeFileSync(copy, 'x', { mode: 0o600 });
    writeFileSync(other, 'y', { mode: 0o600 });
    const journal = join(state, 'restore-uc1_kube-etcd.json');
    // A --resume with another snapshot: the plan names it, the journal's own field the first.
    writeFileSync(journal, JSON.stringify({ snapshot: { path: copy }, plan: { snapshot: { path: other } } }));
    expect(await sweepDownloads(state)).toEqual({ removed: [] });
    expect(existsSync(copy) && existsSync(other)).toBe(true);
    rmSync(journal);
    expect((await sweepDownloads(state)).removed.sort()).toEqual([copy, other].sort());
    expect(readdirSync(join(state, 'downloads'))).toEqual([]);
  });

  it('a copy leased by a live restore stays; one whose restore is gone (killed) goes with its lease; our own lease is given back', async () => {
    const state = stateDir();
    mkdirSync(join(state, 'downloads'));
    const held = join(state, 'downloads', 'abc-x.db');
    const left = join(state, 'downloads', 'def-y.db');
    const ours = join(state, 'downloads', 'ghi-z.db');
    for (const f of [held, left, ours]) writeFileSync(f, 'x');
    const live = spawn('sleep', ['30']);
    try {
      writeFileSync(`${held}.lease-${live.pid}`, '');
      const dead = spawnSync('true').pid;
      writeFileSync(`${left}.lease-${dead}`, '');
      await leaseDownload(ours);
      const swept = await sweepDownloads(state);
      expect(swept.removed.sort()).toEqual([left, ours].sort());
      expect(readdirSync(join(state, 'downloads')).sort()).toEqual(['abc-x.db', `abc-x.db.lease-${live.pid}`]);
    } finally {
      live.kill();
    }
  });

  it('a journal that cannot be read keeps every copy, and says so', async () => {
    const state = stateDir();
    mkdirSync(join(state, 'downloads'));
    const copy = join(state, 'downloads', 'abc-x.db');
    writeFileSync(copy, 'x');
    writeFileSync(join(state, 'restore-uc1_kube-etcd.json'), '{ not json');
    const swept = await sweepDownloads(state);
    expect(swept.removed).toEqual([]);
    expect(swept.warning).toMatch(/downloaded copies in ".*downloads" are kept: a restore journal in ".*" cannot be read/);
    expect(existsSync(copy)).toBe(true);
  });
});
