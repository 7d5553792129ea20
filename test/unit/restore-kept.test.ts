import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { restoreCommand, validateRestoreOptions, type RestoreDeps, type RestoreOptions } from '../../src/restore/command.js';
import { historyConfigMapName } from '../../src/restore/history.js';
import { JOURNAL_VERSION, journalConfigMapName, type ConfigMapAccess } from '../../src/restore/journal.js';
import {
  keptCopiesDirOf, measureKeptArgv, parseKeptListing, removeKeptArgv, selectPrunable, type KeptCopy,
} from '../../src/restore/kept.js';
import { buildRestorePlan } from '../../src/restore/plan.js';
import { preflight, type PreflightDeps } from '../../src/restore/preflight.js';
import { planRecord, renderPlan } from '../../src/restore/render.js';
import { parseKeepCount } from '../../src/restore/keep-count.js';
import { restoreMember } from './restore-support.js';

// Kept copies (member.pre-restore-<stamp>): where they live, how they are measured, which a prune
// deletes, the scripts run for real with sh and du, and `restore --prune-kept` with small fakes.

const copy = (stamp: string, bytes = 1024): KeptCopy => ({ name: `member.pre-restore-${stamp}`, kind: 'restore', stamp, dirs: [`member.pre-restore-${stamp}`], bytes });
const A = '20261201T100000Z';
const B = '20261202T100000Z';
const C = '20261203T100000Z';

describe('kept copies', () => {
  it('live in the data dir, or at the volume root when the data dir is a sub-folder of the volume (Bitnami)', () => {
    expect(keptCopiesDirOf(restoreMember(0))).toBe('/var/lib/etcd');
    expect(keptCopiesDirOf(restoreMember(0, { dataDir: '/bitnami/etcd/data', dataVolume: { kind: 'pvc', volumeName: 'data', claimName: 'c', mountPath: '/bitnami/etcd' } }))).toBe('/bitnami/etcd');
  });

  it('are read from du -sk lines: the live dir apart, start files counted with their copy, other names ignored', () => {
    const out = [
      'live 2048\t/var/lib/etcd/member',
      `1024\t/var/lib/etcd/member.pre-restore-${B}`,
      `4\t/var/lib/etcd/member.pre-restore-${B}.start-files`,
      `512\t/var/lib/etcd/member.pre-restore-${A}`,
      '8\t/var/lib/etcd/member.pre-restore-garbage',
    ].join('\n');
    expect(parseKeptListing(out)).toEqual({
      liveBytes: 2048 * 1024,
      keptCopies: [
        { name: `member.pre-restore-${A}`, kind: 'restore', stamp: A, dirs: [`member.pre-restore-${A}`], bytes: 512 * 1024 },
        { name: `member.pre-restore-${B}`, kind: 'restore', stamp: B, dirs: [`member.pre-restore-${B}`, `member.pre-restore-${B}.start-files`], bytes: 1028 * 1024 },
      ],
      keptBytes: 1540 * 1024,
    });
    expect(parseKeptListing('')).toEqual({ liveBytes: undefined, keptCopies: [], keptBytes: 0 });
  });

  it('include the old data member replaces set aside, with what a start made meanwhile, apart from a restore copy of the same stamp', () => {
    const out = [
      `1024\t/bitnami/etcd/member.pre-replace-${B}`,
      `8\t/bitnami/etcd/member.pre-replace-${B}.started-meanwhile`,
      `512\t/bitnami/etcd/member.pre-restore-${B}`,
      '4\t/bitnami/etcd/member.pre-replace-x',
    ].join('\n');
    expect(parseKeptListing(out).keptCopies).toEqual([
      { name: `member.pre-replace-${B}`, kind: 'replace', stamp: B, dirs: [`member.pre-replace-${B}`, `member.pre-replace-${B}.started-meanwhile`], bytes: 1032 * 1024 },
      { name: `member.pre-restore-${B}`, kind: 'restore', stamp: B, dirs: [`member.pre-restore-${B}`], bytes: 512 * 1024 },
    ]);
  });

  it('of a member replace are pruned once no replace of the member is under way; the newest N stay, whatever kept them', () => {
    const replaced = (stamp: string): KeptCopy => ({ name: `member.pre-replace-${stamp}`, kind: 'replace', stamp, dirs: [`member.pre-replace-${stamp}`], bytes: 1024 });
    const done = selectPrunable([copy(A), replaced(B), copy(C)], new Set([A, C]), 1);
    expect(done.prune.map((c) => c.name).sort()).toEqual([`member.pre-replace-${B}`, `member.pre-restore-${A}`]);
    const open = selectPrunable([copy(A), replaced(B), copy(C)], new Set([A, C]), 1, true);
    expect(open.prune.map((c) => c.name)).toEqual([`member.pre-restore-${A}`]);
    expect(open.keep.map((k) => [k.copy.name, k.reason])).toEqual([[`member.pre-restore-${C}`, 'newest'], [`member.pre-replace-${B}`, 'replace-open']]);
    expect(selectPrunable([copy(A), replaced(C)], new Set([A]), 1).keep.map((k) => k.copy.name)).toEqual([`member.pre-replace-${C}`]);
  });

  it.each([
    ['keeps the newest and prunes the older verified ones', [A, B, C], [A, B, C], 1, [A, B], []],
    ['keeps the newest N', [A, B, C], [A, B, C], 2, [A], []],
    ['--keep 0 prunes every verified copy', [A, B], [A, B], 0, [A, B], []],
    ['never prunes a copy whose restore is not recorded as verified', [A, B, C], [B, C], 1, [B], [A]],
    ['the newest stays even when it is not verified', [A, B], [A], 1, [A], []],
    ['nothing to prune with one copy', [A], [A], 1, [], []],
  ])('%s', (_name, stamps, verified, keep, pruned, unverified) => {
    const s = selectPrunable(stamps.map((x) => copy(x)), new Set(verified), keep);
    expect(s.prune.map((c) => c.stamp).sort()).toEqual(pruned);
    expect(s.keep.filter((k) => k.reason === 'not-verified').map((k) => k.copy.stamp)).toEqual(unverified);
    expect(s.keep.length + s.prune.length).toBe(stamps.length);
  });
});

describe('the restore plan shows them', () => {
  const plan = buildRestorePlan({
    topology: { namespace: 'uc1', workload: { kind: 'StatefulSet', name: 'kube-etcd', replicas: 2 }, members: [restoreMember(0), restoreMember(1)], image: 'etcd:3.4', initialClusterToken: 't' },
    snapshot: { path: 's.db', size: 3, sha256: 'abc', revision: 5, totalKey: 5, hasTrailer: true },
    quiesce: [], pdbs: [], utilityImage: 'etcd:3.4', tool: { binary: 'etcdctl' }, stamp: C, inPlace: false,
  });
  const space = { 'kube-etcd-0': { liveBytes: 3 * 1024 * 1024, keptCopies: [copy(A, 1024 * 1024), copy(B, 2 * 1024 * 1024)], keptBytes: 3 * 1024 * 1024 } };

  it('per member in the text: each copy with its size, the total and what this restore adds; "not measured" when unknown', () => {
    const text = renderPlan(plan, space);
    expect(text).toContain([
      `    kube-etcd-0: node "node-0", pvc "data-kube-etcd-0", data /var/lib/etcd, old data kept in /var/lib/etcd/member.pre-restore-${C}`,
      '      kept copies: 2, 3.0 MiB in all; this restore keeps 3.0 MiB more',
      `        member.pre-restore-${A} 1.0 MiB`,
      `        member.pre-restore-${B} 2.0 MiB`,
      `    kube-etcd-1: node "node-1", pvc "data-kube-etcd-1", data /var/lib/etcd, old data kept in /var/lib/etcd/member.pre-restore-${C}`,
      '      kept copies: not measured',
    ].join('\n'));
  });

  it('in the record (-o yaml/json)', () => {
    const members = planRecord(plan, space)['members'] as Array<Record<string, unknown>>;
    expect(members[0]).toMatchObject({
      keptCopies: [{ name: `member.pre-restore-${A}`, bytes: 1024 * 1024 }, { name: `member.pre-restore-${B}`, bytes: 2 * 1024 * 1024 }],
      keptCopiesBytes: 3 * 1024 * 1024,
      newKeptCopyBytes: 3 * 1024 * 1024,
    });
    expect(members[1]).not.toHaveProperty('keptCopies');
  });
});

describe('the in-pod scripts, run with real sh and du', () => {
  function volume(): string {
    const dir = mkdtempSync(join(tmpdir(), 'kept-'));
    for (const d of ['member/wal', `member.pre-restore-${A}/snap`, `member.pre-restore-${B}/snap`, `member.pre-restore-${B}.start-files`, 'member.restored-x', `member.pre-replace-${C}/snap`, 'kubectl-etcd-replace']) mkdirSync(join(dir, d), { recursive: true });
    writeFileSync(join(dir, 'member/wal/0.wal'), Buffer.alloc(64 * 1024));
    writeFileSync(join(dir, `member.pre-restore-${A}/snap/db`), Buffer.alloc(128 * 1024));
    return dir;
  }
  const sh = (argv: string[]) => execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });

  it('measure the live dir and every kept copy', () => {
    const dir = volume();
    const space = parseKeptListing(sh(measureKeptArgv(restoreMember(0, { dataDir: dir, dataVolume: undefined }))));
    expect(space.liveBytes).toBeGreaterThanOrEqual(64 * 1024);
    expect(space.keptCopies.map((c) => c.name)).toEqual([`member.pre-restore-${A}`, `member.pre-restore-${B}`, `member.pre-replace-${C}`]);
    expect(space.keptCopies[0]!.bytes).toBeGreaterThanOrEqual(128 * 1024);
  });

  it('remove only the named kept copies (with their start files), never member/', () => {
    const dir = volume();
    const m = restoreMember(0, { dataDir: dir, dataVolume: undefined });
    sh(removeKeptArgv(m, [{ ...copy(B), dirs: [`member.pre-restore-${B}`, `member.pre-restore-${B}.start-files`] }]));
    expect(readdirSync(dir).sort()).toEqual(['kubectl-etcd-replace', 'member', `member.pre-replace-${C}`, `member.pre-restore-${A}`, 'member.restored-x']);
    sh(removeKeptArgv(m, [{ name: `member.pre-replace-${C}`, kind: 'replace', stamp: C, dirs: [`member.pre-replace-${C}`], bytes: 0 }]));
    expect(readdirSync(dir).sort()).toEqual(['kubectl-etcd-replace', 'member', `member.pre-restore-${A}`, 'member.restored-x']);
    expect(() => removeKeptArgv(m, [{ ...copy(A), dirs: ['member'] }])).toThrow(/"member" is not a kept copy/);
    // The script refuses other names by itself too.
    const argv = removeKeptArgv(m, [copy(A)]);
    expect(() => execFileSync('sh', [...argv.slice(1, -1), 'member'], { stdio: 'pipe' })).toThrow();
    expect(existsSync(join(dir, 'member/wal/0.wal'))).toBe(true);
  });
});

describe('preflight counts the kept copies', () => {
  const topology = { namespace: 'uc1', workload: { kind: 'StatefulSet' as const, name: 'kube-etcd', replicas: 1 }, members: [restoreMember(0)], image: 'etcd:3.4' };
  const snapshot = { path: 's.db', size: 10 * 1024 * 1024, sha256: 'ab', revision: 2, totalKey: 2, hasTrailer: true, liveKeys: 1 };
  const deps = (df: string | undefined, capacity?: number): PreflightDeps => ({
    checkAccess: async () => [],
    readNode: async () => ({ ready: true, taints: [] }),
    dataPinnedToNode: async () => true,
    claimCapacity: async () => capacity,
    run: async (_ref, argv) => {
      if (argv[0] === 'df') return df ? { exitCode: 0, stdout: `Filesystem 1024-blocks Used Available Capacity Mounted\n/dev/x 200000 0 ${df} 1% /var/lib/etcd\n`, stderr: '' } : { exitCode: 127, stdout: '', stderr: 'no df' };
      if (argv[0] === 'sh' && argv[2]?.includes('du -sk')) return { exitCode: 0, stdout: `live 20480\t/var/lib/etcd/member\n40960\t/var/lib/etcd/member.pre-restore-${A}\n`, stderr: '' };
      return { exitCode: 0, stdout: '', stderr: '' };
    },
  });

  it('measures them for the plan', async () => {
    const r = await preflight({ topology, etcdImage: 'etcd:3.4', snapshot, quiesce: [], pdbs: [], force: false }, deps('900000'));
    expect(r.space['kube-etcd-0']).toMatchObject({ liveBytes: 20 * 1024 * 1024, keptBytes: 40 * 1024 * 1024 });
  });

  it('names them and the prune when the volume is short of space', async () => {
    await expect(preflight({ topology, etcdImage: 'etcd:3.4', snapshot, quiesce: [], pdbs: [], force: false }, deps('1000'))).rejects.toThrow(
      /has 1\.0 MiB free, the restore needs [\d.]+ MiB; 1 copy kept by earlier restores take 40\.0 MiB: run `kubectl etcd restore --prune-kept -n uc1`/,
    );
  });

  it('subtracts them (and the live data) from the capacity when df cannot be run', async () => {
    // 128 MiB holds the 85 MiB a restore of 10 MiB needs, but not once 60 MiB are in use.
    await expect(preflight({ topology, etcdImage: 'etcd:3.4', snapshot, quiesce: [], pdbs: [], force: false }, deps(undefined, 128 * 1024 * 1024))).rejects.toThrow(
      /holds 128\.0 MiB \(60\.0 MiB of it in use\), the restore needs/,
    );
  });
});

describe('restore --prune-kept', () => {
  const base: RestoreOptions = { namespace: 'uc1', quiesce: [], dryRun: false, yes: false, force: false, resume: false, abort: false, safetyBackup: false, inPlace: false, stateDir: '/nonexistent' };

  it.each([
    [{ keep: 1 }, /^--keep works only with --prune-kept$/],
    [{ pruneKept: true, resume: true }, /^--prune-kept cannot be used with --resume$/],
    [{ pruneKept: true, abort: true }, /^--prune-kept cannot be used with --abort$/],
    [{ pruneKept: true, inPlace: true }, /^--prune-kept cannot be used with --in-place$/],
    [{ pruneKept: true, snapshot: 's.db' }, /^--prune-kept takes no snapshot$/],
  ])('refuses %o as a usage error', (o, message) => {
    expect(() => validateRestoreOptions({ ...base, ...o })).toThrow(message);
    expect(() => validateRestoreOptions({ ...base, ...o })).toThrow(UsageError);
  });

  it.each(['-1', 'abc', '1.5', ''])('refuses --keep "%s"', (v) => {
    expect(() => parseKeepCount(v)).toThrow(UsageError);
  });

  function setup(maps: Map<string, Record<string, string>>, listing = `live 2048\t/var/lib/etcd/member\n1024\t/var/lib/etcd/member.pre-restore-${A}\n1024\t/var/lib/etcd/member.pre-restore-${B}\n`) {
    const calls: string[] = [];
    const configMaps: ConfigMapAccess = {
      listConfigMaps: async () => [...maps.keys()].filter((n) => n.startsWith('kubectl-etcd-restore-journal-')),
      readConfigMap: async (_ns, name) => maps.get(name),
      writeConfigMap: async (_ns, name, data) => { maps.set(name, data); },
      deleteConfigMap: async (_ns, name) => { maps.delete(name); },
    };
    const out = new PassThrough();
    let stdout = '';
    out.on('data', (d: Buffer) => { stdout += d.toString(); });
    const deps = {
      discover: async () => ({ namespace: 'uc1', workload: { kind: 'StatefulSet', name: 'kube-etcd', replicas: 2 }, members: [restoreMember(0, { ready: true }), restoreMember(1, { ready: true })], image: 'etcd:3.4' }),
      templateImage: async () => 'etcd:3.4',
      configMaps,
      preflight: { run: async () => ({ exitCode: 0, stdout: listing, stderr: '' }) },
      cluster: () => ({
        createPodAndWait: async (m: { metadata: { name: string } }) => { calls.push(`create ${m.metadata.name}`); },
        deletePodAndWait: async (name: string) => { calls.push(`delete ${name}`); },
      }),
      pods: () => ({ run: async (ref: { pod: string }, argv: string[]) => { calls.push(`exec ${ref.pod} ${argv.slice(4).join(' ')}`); return { exitCode: 0, stdout: '', stderr: '' }; } }),
      ask: async () => undefined,
      log: { info: () => undefined, warn: () => undefined, debug: () => undefined },
      stdout: out,
      stderr: new PassThrough(),
      now: () => new Date('2026-12-04T00:00:00Z'),
    } as unknown as RestoreDeps;
    return { deps, calls, stdout: () => stdout };
  }
  const history = (stamps: string[]) => ({ 'verified.json': JSON.stringify(stamps.map((stamp) => ({ stamp, snapshot: 's.db', revision: 1, verifiedAt: '' }))) });
  const stateDir = () => mkdtempSync(join(tmpdir(), 'prune-'));

  it('refuses while a restore journal is open, before any change', async () => {
    const open = { version: JOURNAL_VERSION, stamp: C, namespace: 'uc1', workload: 'kube-etcd', snapshot: { path: 's.db' }, done: [], phase: 'running', plan: {}, updatedAt: 'x' };
    const maps = new Map<string, Record<string, string>>([[journalConfigMapName('kube-etcd'), { 'journal.json': JSON.stringify(open) }], [historyConfigMapName('kube-etcd'), history([A, B])]]);
    const h = setup(maps);
    await expect(restoreCommand({ ...base, stateDir: stateDir(), pruneKept: true, yes: true }, h.deps)).rejects.toThrow(
      new RegExp(`^a restore of uc1/kube-etcd \\(stamp ${C}\\) is in progress, .*; its kept copies are what --abort puts back, so nothing was pruned$`),
    );
    expect(h.calls).toEqual([]);
  });

  it('deletes the older verified copy on every member through its utility pod, keeping the newest', async () => {
    const h = setup(new Map<string, Record<string, string>>([[historyConfigMapName('kube-etcd'), history([A, B])]]));
    await restoreCommand({ ...base, stateDir: stateDir(), pruneKept: true, yes: true }, h.deps);
    expect(h.calls.sort()).toEqual([
      'create etcd-prune-0', 'create etcd-prune-1', 'delete etcd-prune-0', 'delete etcd-prune-1',
      `exec etcd-prune-0 /var/lib/etcd member.pre-restore-${A}`, `exec etcd-prune-1 /var/lib/etcd member.pre-restore-${A}`,
    ]);
    expect(h.stdout()).toBe('pruned 2 kept copies on 2 member(s) of uc1/kube-etcd: freed 2.0 MiB\n');
  });

  it('deletes the older copy a finished member replace kept, but not on a member whose replace is under way', async () => {
    const listing = `live 2048\t/var/lib/etcd/member\n1024\t/var/lib/etcd/member.pre-replace-${A}\n1024\t/var/lib/etcd/member.pre-restore-${B}\n`;
    const h = setup(new Map<string, Record<string, string>>([[historyConfigMapName('kube-etcd'), history([B])], ['kubectl-etcd-replace-kube-etcd-1', { 'replace.json': '{}' }]]), listing);
    await restoreCommand({ ...base, stateDir: stateDir(), pruneKept: true, yes: true }, h.deps);
    expect(h.calls.sort()).toEqual(['create etcd-prune-0', 'delete etcd-prune-0', `exec etcd-prune-0 /var/lib/etcd member.pre-replace-${A}`]);
    expect(h.stdout()).toBe('pruned 1 kept copy on 1 member(s) of uc1/kube-etcd: freed 1.0 MiB\n');
  });

  it('--dry-run prints the plan and creates nothing; without a history nothing is deleted', async () => {
    const h = setup(new Map());
    await restoreCommand({ ...base, stateDir: stateDir(), pruneKept: true, dryRun: true }, h.deps);
    expect(h.calls).toEqual([]);
    expect(h.stdout()).toMatch(new RegExp(`keep   member\\.pre-restore-${A} \\(1\\.0 MiB; its restore is not recorded as verified\\)`));
    expect(h.stdout()).toMatch(/frees 0 B in all/);
  });
});
