import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backupFileName, fileSafe, parseAnyBackupName, parseBackupFileName, streamedBackupName } from '../../src/backup/naming.js';
import { pruneBackups, selectBackupsToPrune } from '../../src/backup/retention.js';
import { orderCandidates } from '../../src/backup/choose.js';
import type { EtcdMember } from '../../src/etcd/topology.js';

describe('backup file names', () => {
  it('are self-describing and round-trip', () => {
    const time = new Date('2026-11-25T18:04:05.678Z');
    const name = backupFileName({ namespace: 'uc1', workload: 'kube-etcd', time, revision: 42 });
    expect(name).toBe('uc1-kube-etcd-20261125T180405Z-rev42.db');
    expect(parseBackupFileName(name, 'uc1', 'kube-etcd')).toEqual({ time: new Date('2026-11-25T18:04:05Z'), revision: 42 });
  });

  it('an age-encrypted backup (.db.age) is one of the workload\'s backups, and --keep counts it with the plain ones', () => {
    expect(parseBackupFileName('uc1-kube-etcd-20261125T180405Z-rev42.db.age', 'uc1', 'kube-etcd')).toEqual({ time: new Date('2026-11-25T18:04:05Z'), revision: 42 });
    const files = ['uc1-kube-etcd-20261125T100000Z-rev10.db', 'uc1-kube-etcd-20261125T110000Z-rev20.db.age', 'uc1-kube-etcd-20261125T120000Z-rev30.db.age'];
    expect(selectBackupsToPrune(files, () => ({ namespace: 'uc1', workload: 'kube-etcd' }), 'uc1', 'kube-etcd', 1)).toEqual(files.slice(0, 2).reverse());
  });

  it.each([
    ['uc1-kube-etcd-20261125T180405Z-rev42.db.json', 'uc1', 'kube-etcd'],
    ['uc1-kube-etcd-20261125T180405Z-rev42.db.partial', 'uc1', 'kube-etcd'],
    ['uc1-kube-etcd-20261125T180405Z-rev42.db.age.partial', 'uc1', 'kube-etcd'],
    ['uc1-kube-etcd-20261125T180405Z-rev42.db.age.json', 'uc1', 'kube-etcd'],
    ['uc1-kube-etcd-extra-20261125T180405Z-rev42.db', 'uc1', 'kube-etcd'],
    ['uc2-kube-etcd-20261125T180405Z-rev42.db', 'uc1', 'kube-etcd'],
    ['notes.txt', 'uc1', 'kube-etcd'],
  ])('%s is not a backup of %s/%s', (file, ns, workload) => {
    expect(parseBackupFileName(file, ns, workload)).toBeUndefined();
  });
});

describe('names of backups streamed to object storage (no revision: it is known only once the snapshot is read)', () => {
  it('round-trip without a revision, and prune orders them by time with the named ones', () => {
    const t = new Date('2026-12-06T12:00:05Z');
    const name = streamedBackupName('uc1', 'kube-etcd', t);
    expect(name).toBe('uc1-kube-etcd-20261206T120005Z.db');
    expect(parseBackupFileName(name, 'uc1', 'kube-etcd')).toEqual({ time: t });
    expect(parseBackupFileName(`${name}.age`, 'uc1', 'kube-etcd')).toEqual({ time: t });
    expect(parseAnyBackupName(name)).toEqual({ stem: 'uc1-kube-etcd', time: t });
    expect(parseAnyBackupName('notes.txt')).toBeUndefined();
    const older = backupFileName({ namespace: 'uc1', workload: 'kube-etcd', time: new Date('2026-12-06T11:00:00Z'), revision: 9 });
    const owner = () => ({ namespace: 'uc1', workload: 'kube-etcd' });
    expect(selectBackupsToPrune([older, name], owner, 'uc1', 'kube-etcd', 1)).toEqual([older]);
  });
});

describe('workload names in file names', () => {
  it.each([
    ['kube-etcd', 'kube-etcd'],
    ['component=etcd', 'component-etcd'],
    ['component=etcd,tier=control-plane', 'component-etcd-tier-control-plane'],
    ['app in (etcd, etcd2)', 'app-in-etcd-etcd2'],
    ['!legacy', 'legacy'],
    ['===', 'etcd'],
  ])('%s becomes %s', (workload, safe) => {
    expect(fileSafe(workload)).toBe(safe);
  });

  it('static pods named by their selector round-trip through a shell-safe name', () => {
    const time = new Date('2026-11-25T18:04:05Z');
    const name = backupFileName({ namespace: 'kube-system', workload: 'component=etcd', time, revision: 7 });
    expect(name).toBe('kube-system-component-etcd-20261125T180405Z-rev7.db');
    expect(parseBackupFileName(name, 'kube-system', 'component=etcd')).toEqual({ time, revision: 7 });
    const owner = () => ({ namespace: 'kube-system', workload: 'component=etcd' });
    expect(selectBackupsToPrune([name, 'kube-system-component-etcd-20261124T000000Z-rev3.db'], owner, 'kube-system', 'component=etcd', 1)).toEqual([
      'kube-system-component-etcd-20261124T000000Z-rev3.db',
    ]);
  });
});

describe('retention', () => {
  const files = [
    'uc1-kube-etcd-20261125T100000Z-rev10.db',
    'uc1-kube-etcd-20261125T100000Z-rev10.db.json',
    'uc1-kube-etcd-20261125T120000Z-rev30.db',
    'uc1-kube-etcd-20261125T110000Z-rev20.db',
    'uc1-kube-apiserver-20261125T090000Z-rev5.db',
    'other.db',
  ];
  const ours = () => ({ namespace: 'uc1', workload: 'kube-etcd' });

  it.each([
    [0, ['uc1-kube-etcd-20261125T120000Z-rev30.db', 'uc1-kube-etcd-20261125T110000Z-rev20.db', 'uc1-kube-etcd-20261125T100000Z-rev10.db']],
    [1, ['uc1-kube-etcd-20261125T110000Z-rev20.db', 'uc1-kube-etcd-20261125T100000Z-rev10.db']],
    [2, ['uc1-kube-etcd-20261125T100000Z-rev10.db']],
    [3, []],
    [9, []],
  ])('keep %i prunes the oldest of the same workload only', (keep, expected) => {
    expect(selectBackupsToPrune(files, ours, 'uc1', 'kube-etcd', keep)).toEqual(expected);
  });

  it('a file whose sidecar is missing or names another workload is never pruned, whatever its name', () => {
    const owners: Record<string, { namespace: string; workload: string } | undefined> = {
      'uc1-kube-etcd-20261125T100000Z-rev10.db': { namespace: 'uc1-kube', workload: 'etcd' },
      'uc1-kube-etcd-20261125T110000Z-rev20.db': undefined,
      'uc1-kube-etcd-20261125T120000Z-rev30.db': { namespace: 'uc1', workload: 'kube-etcd' },
    };
    expect(selectBackupsToPrune(files, (f) => owners[f], 'uc1', 'kube-etcd', 0)).toEqual(['uc1-kube-etcd-20261125T120000Z-rev30.db']);
  });

  /** Writes a snapshot stand-in and its sidecar as runBackup does. */
  async function backup(dir: string, namespace: string, workload: string, time: string, revision: number, sidecar = true): Promise<string> {
    const file = backupFileName({ namespace, workload, time: new Date(time), revision });
    await writeFile(join(dir, file), 'x', { mode: 0o600 });
    if (sidecar) await writeFile(join(dir, `${file}.json`), JSON.stringify({ file: join(dir, file), namespace, workload }), { mode: 0o600 });
    return file;
  }

  it('two workloads whose names collide in one --dir keep each other\'s backups', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kubectl-etcd-prune-'));
    // namespace "uc1", StatefulSet "kube-etcd" and namespace "uc1-kube", StatefulSet "etcd": the same stem
    const a = [
      await backup(dir, 'uc1', 'kube-etcd', '2026-11-25T10:00:00Z', 10),
      await backup(dir, 'uc1', 'kube-etcd', '2026-11-25T12:00:00Z', 30),
    ];
    const b = [
      await backup(dir, 'uc1-kube', 'etcd', '2026-11-25T11:00:00Z', 20),
      await backup(dir, 'uc1-kube', 'etcd', '2026-11-25T13:00:00Z', 40),
    ];
    // selectors that fileSafe maps to the same name: "app=etcd" and "app-etcd"
    const c = [
      await backup(dir, 'kube-system', 'app=etcd', '2026-11-25T10:00:00Z', 1),
      await backup(dir, 'kube-system', 'app-etcd', '2026-11-25T09:00:00Z', 2),
    ];
    const noSidecar = await backup(dir, 'uc1', 'kube-etcd', '2026-11-24T00:00:00Z', 1, false);
    expect(new Set([...a, ...b].map((f) => f.replace(/-2026.*/, '')))).toEqual(new Set(['uc1-kube-etcd'])); // the names really collide
    expect(await pruneBackups(dir, 'uc1', 'kube-etcd', 1)).toEqual([a[0]]);
    expect(await pruneBackups(dir, 'uc1-kube', 'etcd', 1)).toEqual([b[0]]);
    expect(await pruneBackups(dir, 'kube-system', 'app-etcd', 0)).toEqual([c[1]]);
    expect((await readdir(dir)).sort()).toEqual([a[1], `${a[1]}.json`, b[1], `${b[1]}.json`, c[0], `${c[0]}.json`, noSidecar].sort());
  });

  it('removes pruned snapshots and their sidecars from disk, nothing else', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kubectl-etcd-prune-'));
    for (const f of files) await writeFile(join(dir, f), 'x');
    for (const f of files.filter((f) => f.startsWith('uc1-kube-etcd-') && f.endsWith('.db'))) {
      await writeFile(join(dir, `${f}.json`), JSON.stringify({ namespace: 'uc1', workload: 'kube-etcd' }));
    }
    const pruned = await pruneBackups(dir, 'uc1', 'kube-etcd', 2);
    expect(pruned).toEqual(['uc1-kube-etcd-20261125T100000Z-rev10.db']);
    expect((await readdir(dir)).sort()).toEqual(
      [
        'other.db',
        'uc1-kube-apiserver-20261125T090000Z-rev5.db',
        'uc1-kube-etcd-20261125T110000Z-rev20.db',
        'uc1-kube-etcd-20261125T110000Z-rev20.db.json',
        'uc1-kube-etcd-20261125T120000Z-rev30.db',
        'uc1-kube-etcd-20261125T120000Z-rev30.db.json',
      ].sort(),
    );
  });
});

describe('choosing a member', () => {
  const member = (pod: string, ready: boolean, memberId?: string) =>
    ({ pod, name: pod, ready, memberId }) as Partial<EtcdMember> as EtcdMember;
  const members = [member('etcd-0', false, 'a1'), member('etcd-1', true, 'b2'), member('etcd-2', true, 'c3')];

  it('tries ready members first, keeping their order', () => {
    expect(orderCandidates(members).map((m) => m.pod)).toEqual(['etcd-1', 'etcd-2', 'etcd-0']);
  });

  it.each(['etcd-0', 'a1'])('--member %s forces exactly that member', (forced) => {
    expect(orderCandidates(members, forced).map((m) => m.pod)).toEqual(['etcd-0']);
  });

  it('an unknown --member is a usage error listing the members', () => {
    expect(() => orderCandidates(members, 'etcd-9')).toThrow('member "etcd-9" is not part of this etcd cluster');
    try {
      orderCandidates(members, 'etcd-9');
    } catch (err) {
      expect((err as { hint?: string }).hint).toBe('pass --member with one of: etcd-0, etcd-1, etcd-2');
      expect((err as { exitCode: number }).exitCode).toBe(2);
    }
  });
});
