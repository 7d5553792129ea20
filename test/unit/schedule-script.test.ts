/**
 * The scheduled backup's sh script (src/schedule/script.ts) run for real: dash (Debian's /bin/sh)
 * and busybox sh with busybox's own applets first on PATH (as in a busybox image), against a
 * throwaway etcd 3.4 on 127.0.0.1, a temp dir standing in for the backup volume. etcd, etcdctl,
 * dash and, with CI=true, busybox are required (startEtcd fails naming the package; scripts/setup.sh
 * installs busybox-static); outside CI a machine without busybox runs the dash half only.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupStem, parseBackupFileName } from '../../src/backup/naming.js';
import { ownerOfRecord, writeSidecar, type BackupRecord } from '../../src/backup/record.js';
import { selectBackupsToPrune } from '../../src/backup/retention.js';
import { splitShellCommands } from '../../src/etcd/shell.js';
import { backupScript, endpointHost, ownerLines, SCHEDULE_EXIT, SCHEDULE_TRANSPORT, type BackupScriptOptions } from '../../src/schedule/script.js';
import { etcdctlSnapshotStatus, freePort, requireBinary, startEtcd, type LocalEtcd } from '../helpers/etcd.js';
import { etcdBinaries } from '../sim/etcd-versions.js';
import { compactUtc } from '../../src/ui/time.js';

const CI = process.env['CI'] === 'true';
const root = mkdtempSync(join(tmpdir(), 'schedule-script-'));

/** A shell to run the script with, and the PATH it runs under. */
interface Shell { name: string; argv: string[]; path: string }

function which(bin: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

function shells(): Shell[] {
  const path = process.env['PATH'] ?? '/usr/bin:/bin';
  const list: Shell[] = [{ name: 'dash', argv: [which('dash') ?? 'dash'], path }];
  const busybox = which('busybox');
  if (!busybox && CI) throw new Error('busybox is missing: apt-get install busybox-static (scripts/setup.sh does)');
  if (busybox) {
    // Its applets (sed, sort, grep, df, sha256sum, date …) before the host's, as in a busybox image.
    const apps = join(root, 'busybox-applets');
    mkdirSync(apps);
    for (const applet of execFileSync(busybox, ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean)) {
      symlinkSync(busybox, join(apps, applet));
    }
    list.push({ name: 'busybox sh', argv: [busybox, 'sh'], path: `${apps}:${path}` });
  }
  return list;
}

interface Run { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; termlog: string }

let counter = 0;
/** A fresh backup dir, work dir and termination log path. */
function place(dirName = 'pvc'): { dir: string; work: string; terminationLog: string } {
  const base = join(root, `case-${++counter}`);
  mkdirSync(join(base, dirName), { recursive: true });
  return { dir: join(base, dirName), work: join(base, 'work'), terminationLog: join(base, 'termination-log') };
}

/** Writes the script and runs it with the shell; `during` gets the child once it runs (to signal it). */
async function runScript(sh: Shell, opts: BackupScriptOptions, during?: (pid: number) => Promise<void>, cwd = root): Promise<Run> {
  const file = join(root, `script-${++counter}.sh`);
  writeFileSync(file, backupScript(opts));
  rmSync(opts.terminationLog!, { force: true });
  const child = spawn(sh.argv[0]!, [...sh.argv.slice(1), file], { cwd, env: { ...process.env, PATH: sh.path }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  if (during) await during(child.pid!);
  const { code, signal } = await exited;
  const termlog = existsSync(opts.terminationLog!) ? readFileSync(opts.terminationLog!, 'utf8') : '';
  return { code, signal, stdout, stderr, termlog };
}

/** What is in the backup dir besides .incoming, which must be empty. */
function backups(dir: string): string[] {
  const names = readdirSync(dir).sort();
  if (names.includes('.incoming')) expect(readdirSync(join(dir, '.incoming'))).toEqual([]);
  return names.filter((n) => n !== '.incoming');
}

/** An executable sh wrapper around the real etcdctl. */
function wrapper(name: string, body: string): string {
  const file = join(root, name);
  writeFileSync(file, `#!/bin/sh\n${body}\n`);
  chmodSync(file, 0o755);
  return file;
}

const SAVE_THEN = (after: string) => `
case " $* " in *" snapshot save "*)
  for last; do :; done
  etcdctl "$@" || exit
  ${after}
  exit 0 ;;
esac
exec etcdctl "$@"`;

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

function readRecord(dir: string, name: string): BackupRecord & { schedule: string } {
  return JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) as BackupRecord & { schedule: string };
}

function ownerFile(dir: string) {
  return (f: string) => {
    const p = join(dir, `${f}.json`);
    return existsSync(p) ? ownerOfRecord(readFileSync(p, 'utf8')) : undefined;
  };
}

let etcd: LocalEtcd;

beforeAll(async () => {
  await requireBinary('dash', 'dash');
  etcd = await startEtcd();
  await etcd.ctl(['put', '/registry/configmaps/default/a', 'one']);
}, 60_000);

afterAll(async () => {
  await etcd?.destroy();
  rmSync(root, { recursive: true, force: true });
});

describe('backupScript options', () => {
  const ok: BackupScriptOptions = {
    endpoints: ['https://10.0.0.1:2379'], etcdctl: ['etcdctl'], dir: '/backups', work: '/work',
    namespace: 'kube-system', workload: 'etcd', keep: 3, schedule: 'nightly', pluginVersion: '0.1.0',
  };

  it('refuses what it cannot run safely', () => {
    expect(() => backupScript(ok)).not.toThrow();
    expect(() => backupScript({ ...ok, endpoints: [] })).toThrow(/endpoint/);
    expect(() => backupScript({ ...ok, endpoints: ['https://a:2379,https://b:2379'] })).toThrow(/one client URL/);
    expect(() => backupScript({ ...ok, namespace: 'a/b' })).toThrow(/namespace/);
    expect(() => backupScript({ ...ok, namespace: 'a\nb' })).toThrow(/namespace/);
    expect(() => backupScript({ ...ok, keep: 0 })).toThrow(/keep/);
    expect(() => backupScript({ ...ok, keep: 1.5 })).toThrow(/keep/);
    expect(() => backupScript({ ...ok, dir: 'backups' })).toThrow(/absolute/);
    expect(() => backupScript({ ...ok, work: '/backups' })).toThrow(/work/);
    expect(() => backupScript({ ...ok, dialTimeout: '3; rm -rf /' })).toThrow(/duration/);
    expect(() => backupScript({ ...ok, etcdctl: [] })).toThrow(/etcdctl/);
  });

  it('names the endpoint host as the pod when none is given', () => {
    expect(endpointHost('https://10.0.0.5:2379')).toBe('10.0.0.5');
    expect(endpointHost('https://[fd00::5]:2379')).toBe('fd00::5');
    expect(endpointHost('etcd-0.etcd.kube-system.svc:2379')).toBe('etcd-0.etcd.kube-system.svc');
  });

  it('(e) quotes every value it was given: command words and TLS paths read back as single words', () => {
    const hostile = "/etc/x $(touch pwned) `id` ';\" \\";
    const script = backupScript({ ...ok, etcdctl: [`${hostile}/etcdctl`, '--x'], tls: { cacert: `${hostile}/ca.crt`, cert: `${hostile}/c.crt`, key: `${hostile}/k.key` } });
    const saves = splitShellCommands(script).filter((words) => words.includes('save') && words.includes('snapshot'));
    expect(saves).toHaveLength(1);
    expect(saves[0]!.slice(0, 6)).toEqual(['run', `${hostile}/etcdctl`, '--x', `--cacert=${hostile}/ca.crt`, `--cert=${hostile}/c.crt`, `--key=${hostile}/k.key`]);
    // No word holds a piece of it: wherever it is, it is whole.
    const pieces = splitShellCommands(script).flat().filter((w) => w.includes('pwned'));
    expect(pieces.length).toBeGreaterThan(0);
    for (const w of pieces) expect(w).toContain(hostile);
  });
});

describe.each(shells())('the scheduled backup script under $name', (sh) => {
  const base = (p: ReturnType<typeof place>, extra: Partial<BackupScriptOptions> = {}): BackupScriptOptions => ({
    endpoints: [etcd.endpoint], etcdctl: ['etcdctl'], namespace: 'uc1', workload: 'kube-etcd', keep: 5,
    schedule: 'nightly', pluginVersion: '0.0.0-test', dialTimeout: '1s', commandTimeout: '1s', ...p, ...extra,
  });

  it('(a) a good run stores one snapshot and its record, as backup --dir does', async () => {
    const p = place();
    const r = await runScript(sh, base(p));
    expect(r.code, r.stderr).toBe(SCHEDULE_EXIT.ok);
    const files = backups(p.dir);
    expect(files).toHaveLength(2);
    const name = files.find((f) => f.endsWith('.db'))!;
    expect(files).toEqual([name, `${name}.json`]);
    const parsed = parseBackupFileName(name, 'uc1', 'kube-etcd');
    expect(parsed).toBeDefined();
    const text = readFileSync(join(p.dir, `${name}.json`), 'utf8');
    expect(ownerOfRecord(text)).toEqual({ namespace: 'uc1', workload: 'kube-etcd' });
    // selectBackupsToPrune counts it as the workload's: with keep 0 it would be the one pruned.
    expect(selectBackupsToPrune(files, ownerFile(p.dir), 'uc1', 'kube-etcd', 0)).toEqual([name]);
    const record = readRecord(p.dir, name);
    const file = join(p.dir, name);
    const status = await etcdctlSnapshotStatus(file);
    expect(record).toEqual({
      file, size: statSync(file).size, sha256: sha256(file), revision: status.revision, totalKeys: status.totalKey, hash: status.hash,
      etcdVersion: '3.4.23', namespace: 'uc1', workload: 'kube-etcd', sourcePod: '127.0.0.1', sourceMember: etcd.endpoint,
      transport: SCHEDULE_TRANSPORT, startedAt: record.startedAt, time: record.time, pluginVersion: '0.0.0-test',
      verified: { size: true, sha256Trailer: true, bbolt: true }, schedule: 'nightly',
    });
    expect(record.size).toBe(status.totalSize + 32);
    expect(parsed!.revision).toBe(record.revision);
    expect(parsed!.time.toISOString()).toBe(new Date(record.startedAt).toISOString());
    expect(Date.parse(record.time)).toBeGreaterThanOrEqual(Date.parse(record.startedAt));
    // writeSidecar's layout: 2-space JSON, so the owner lines pruning greps for are there verbatim.
    const lines = ownerLines('uc1', 'kube-etcd');
    expect(text.split('\n')).toEqual(expect.arrayContaining([lines.namespace, lines.workload]));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(p.dir, `${name}.json`)).mode & 0o777).toBe(0o600);
    expect(r.termlog).toBe(`saved ${name} (revision ${record.revision}, ${record.size} bytes, sha256 ${record.sha256}) from ${etcd.endpoint}\n`);
    expect(JSON.parse(r.stdout)).toEqual(record);
    expect(existsSync(join(p.work, 'verify'))).toBe(false);
  });

  it('(a) with etcdutl (3.5) for snapshot status and restore', async (ctx) => {
    const etcdutl = etcdBinaries('3.5').etcdutl!;
    if (!existsSync(etcdutl)) {
      if (CI) throw new Error(`etcdutl 3.5 is not at ${etcdutl}; run npm run setup (scripts/setup.sh)`);
      ctx.skip();
    }
    const p = place();
    const r = await runScript(sh, base(p, { etcdutl: [etcdutl] }));
    expect(r.code, r.stderr).toBe(SCHEDULE_EXIT.ok);
    const name = backups(p.dir).find((f) => f.endsWith('.db'))!;
    expect(readRecord(p.dir, name).sha256).toBe(sha256(join(p.dir, name)));
  });

  it('(d) --verify-restore: etcd started on the restored snapshot serves its revision; what it served is in the record', async () => {
    const p = place();
    const r = await runScript(sh, base(p, { drill: { etcd: ['etcd'] } }));
    expect(r.code, r.stderr).toBe(SCHEDULE_EXIT.ok);
    const name = backups(p.dir).find((f) => f.endsWith('.db'))!;
    const record = readRecord(p.dir, name) as unknown as { revision: number; startedAt: string; drills: Array<Record<string, any>> };
    expect(record.drills).toHaveLength(1);
    const d = record.drills[0]!;
    expect(d).toMatchObject({ where: 'schedule', outcome: 'passed', etcdVersion: '3.4.23', restoredWith: 'etcdctl', expectedRevision: record.revision });
    expect(d.served.revision).toBe(record.revision);
    expect(d.served.keys).toBeGreaterThanOrEqual(1);
    expect(d.served.hash).toBeGreaterThan(0);
    expect(Date.parse(d.at)).toBeGreaterThanOrEqual(Date.parse(record.startedAt));
    expect(r.stderr).toMatch(/restore drill passed: etcd served revision \d+/);
    expect(existsSync(join(p.work, 'verify'))).toBe(false);
    // The drill's etcd is gone.
    const drillEtcd = readdirSync('/proc').filter((d) => /^\d+$/.test(d)).filter((pid) => {
      try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('--name=kubectl-etcd-drill'); } catch { return false; }
    });
    expect(drillEtcd).toEqual([]);
  });

  it('(d) --verify-restore: a snapshot etcd refuses to start on fails the run (exit 11) with etcd\'s reason, and nothing is saved', async () => {
    const p = place();
    const etcdRefuses = wrapper('etcd-refuses.sh', 'echo "starting" >&2; echo "panic: failed to Unmarshal lease proto item" >&2; exit 2');
    const r = await runScript(sh, base(p, { drill: { etcd: [etcdRefuses] } }));
    expect(r.code, r.stderr).toBe(SCHEDULE_EXIT.verification);
    expect(r.termlog).toMatch(/fails the restore drill: etcd exited with code 2: panic: failed to Unmarshal lease proto item\n$/);
    expect(backups(p.dir)).toEqual([]);
    expect(existsSync(join(p.work, 'verify'))).toBe(false);
  });

  it('(b) keep 2 over four runs leaves the two newest, and never touches files that are not the workload\'s', async () => {
    const p = place();
    const stem = backupStem('uc1', 'kube-etcd');
    // Not ours: no record at all; a record of uc1-kube/etcd, whose names share the stem uc1-kube-etcd.
    const orphan = `${stem}-20200101T000000Z-rev1.db`;
    const other = `${stem}-20200101T000001Z-rev1.db`;
    // Ours, written by `backup --dir` (writeSidecar): the oldest, so it goes.
    const local = `${stem}-20200101T000002Z-rev1.db`;
    for (const f of [orphan, other, local]) writeFileSync(join(p.dir, f), 'old');
    const record = (namespace: string, workload: string, file: string): BackupRecord => ({
      file, size: 3, sha256: '0'.repeat(64), namespace, workload, sourcePod: 'p', sourceMember: 'm', transport: 'exec',
      startedAt: '2020-01-01T00:00:00.000Z', time: '2020-01-01T00:00:00.000Z', pluginVersion: '0', verified: { size: true, sha256Trailer: true, bbolt: true },
    });
    await writeSidecar(join(p.dir, other), record('uc1-kube', 'etcd', join(p.dir, other)));
    await writeSidecar(join(p.dir, local), record('uc1', 'kube-etcd', join(p.dir, local)));
    writeFileSync(join(p.dir, 'notes.txt'), 'keep me');

    const names: string[] = [];
    let before: string[] = [];
    let owners = new Map<string, ReturnType<typeof ownerOfRecord>>();
    for (let i = 0; i < 4; i++) {
      // Runs 1 and 2 see the same revision, likely in the same second: the second is named by a later one.
      if (i >= 2) await etcd.ctl(['put', `/registry/configmaps/default/run-${i}`, String(i)]);
      before = backups(p.dir);
      owners = new Map(before.map((f) => [f, ownerFile(p.dir)(f)]));
      const r = await runScript(sh, base(p, { keep: 2 }));
      expect(r.code, r.stderr).toBe(SCHEDULE_EXIT.ok);
      const added = backups(p.dir).filter((f) => !before.includes(f) && f.endsWith('.db'));
      expect(added).toHaveLength(1);
      names.push(added[0]!);
    }
    expect(new Set(names).size).toBe(4);
    const times = names.map((n) => parseBackupFileName(n, 'uc1', 'kube-etcd')!);
    expect(times.every((t) => t !== undefined)).toBe(true);
    expect(times[1]!.time.getTime()).toBeGreaterThan(times[0]!.time.getTime());
    expect(backups(p.dir)).toEqual([orphan, other, `${other}.json`, names[2]!, `${names[2]!}.json`, names[3]!, `${names[3]!}.json`, 'notes.txt'].sort());
    // What the last run pruned is what retention.ts would have pruned.
    owners.set(names[3]!, ownerFile(p.dir)(names[3]!));
    const expected = selectBackupsToPrune([...before, names[3]!], (f) => owners.get(f), 'uc1', 'kube-etcd', 2);
    expect(expected).toEqual([names[1]!]);
    expect(selectBackupsToPrune(backups(p.dir), ownerFile(p.dir), 'uc1', 'kube-etcd', 2)).toEqual([]);
  }, 20_000);

  it('(c) a dead first member is passed over; with every member dead it exits 10 naming each', async () => {
    const dead = [`http://127.0.0.1:${await freePort()}`, `http://127.0.0.1:${await freePort()}`];
    const p = place();
    const good = await runScript(sh, base(p, { endpoints: [dead[0]!, { url: etcd.endpoint, pod: 'etcd-1', member: 'etcd-1' }] }));
    expect(good.code, good.stderr).toBe(SCHEDULE_EXIT.ok);
    const name = backups(p.dir).find((f) => f.endsWith('.db'))!;
    expect(readRecord(p.dir, name)).toMatchObject({ sourcePod: 'etcd-1', sourceMember: 'etcd-1' });
    expect(good.stderr).toContain(`member ${dead[0]}:`);

    const before = backups(p.dir);
    const bad = await runScript(sh, base(p, { endpoints: dead }));
    expect(bad.code).toBe(SCHEDULE_EXIT.noMember);
    expect(bad.termlog).toMatch(new RegExp(`^no etcd member answered: ${dead[0]}: .+; ${dead[1]}: .+\\n$`));
    expect(bad.termlog).toContain('connection refused');
    expect(backups(p.dir)).toEqual(before);

    // A member that answers but has no leader (cut off from the others) gives no snapshot.
    const leaderless = wrapper('leaderless-etcdctl.sh', `
case " $* " in *" endpoint status "*) etcdctl "$@" | sed 's/"leader":[0-9]*,//'; exit ;; esac
exec etcdctl "$@"`);
    const cut = await runScript(sh, base(p, { etcdctl: [leaderless] }));
    expect(cut.code).toBe(SCHEDULE_EXIT.noMember);
    expect(cut.termlog).toBe(`no etcd member answered: ${etcd.endpoint}: it has no leader\n`);
    expect(backups(p.dir)).toEqual(before);
  });

  it('(3) a name already taken in this second (a foreign file, or a record) is not overwritten: the backup is named by a later second', async () => {
    const p = place();
    const stem = backupStem('uc1', 'kube-etcd');
    const status = JSON.parse(await etcd.ctl(['endpoint', 'status', '-w', 'json'])) as Array<{ Status: { header: { revision: number } } }>;
    const revision = status[0]!.Status.header.revision;
    const now = Date.now();
    const taken = [0, 1000].map((ms) => `${stem}-${compactUtc(new Date(now + ms))}-rev${revision}.db`);
    writeFileSync(join(p.dir, taken[0]!), 'foreign');
    writeFileSync(join(p.dir, `${taken[1]!}.json`), '{}\n');
    const r = await runScript(sh, base(p));
    expect(r.code, r.stderr).toBe(SCHEDULE_EXIT.ok);
    const name = backups(p.dir).find((f) => f.endsWith('.db') && !taken.includes(f))!;
    expect(parseBackupFileName(name, 'uc1', 'kube-etcd')!.time.getTime()).toBeGreaterThan(Math.floor(now / 1000) * 1000);
    expect(readFileSync(join(p.dir, taken[0]!), 'utf8')).toBe('foreign');
    expect(readFileSync(join(p.dir, `${taken[1]!}.json`), 'utf8')).toBe('{}\n');
    expect(readRecord(p.dir, name).sha256).toBe(sha256(join(p.dir, name)));
  });

  it.each([
    ['a byte flipped (sha256 trailer)', 'printf garbage | dd of="$last" bs=1 seek=12000 conv=notrunc 2>/dev/null'],
    ['cut short', 'head -c 5000 "$last" >"$last.cut" && mv "$last.cut" "$last"'],
    ['garbage', 'head -c 40000 /dev/urandom >"$last"'],
  ])('(d) a corrupt snapshot (%s) exits 11 and leaves only the backups there were', async (what, corrupt) => {
    const p = place();
    const first = await runScript(sh, base(p));
    expect(first.code, first.stderr).toBe(SCHEDULE_EXIT.ok);
    const before = backups(p.dir);
    const bad = await runScript(sh, base(p, { etcdctl: [wrapper(`corrupt-${what.split(' ')[0]}.sh`, SAVE_THEN(corrupt))] }));
    expect(bad.code, bad.stderr).toBe(SCHEDULE_EXIT.verification);
    expect(bad.termlog).toMatch(new RegExp(`^(the snapshot of ${etcd.endpoint} |snapshot status of the snapshot of)`));
    expect(backups(p.dir)).toEqual(before);
    expect(existsSync(join(p.work, 'verify'))).toBe(false);
  });

  it('(4) a volume that cannot be written exits 12 and leaves nothing; a full one stops at the first member', async () => {
    const p = place();
    writeFileSync(join(p.dir, '.incoming'), 'not a directory');
    const r = await runScript(sh, base(p));
    expect(r.code).toBe(SCHEDULE_EXIT.volume);
    expect(r.termlog).toMatch(/^volume full or not writable: cannot create .*\.incoming/);
    expect(readdirSync(p.dir)).toEqual(['.incoming']);

    const q = place();
    const calls = join(root, `calls-${counter}`);
    const full = wrapper('full-etcdctl.sh', `
case " $* " in *" snapshot save "*)
  echo save >>'${calls}'
  for last; do :; done
  head -c 1000 /dev/zero >"$last.part"
  echo "Error: write $last.part: no space left on device" >&2
  exit 1 ;;
esac
exec etcdctl "$@"`);
    const r2 = await runScript(sh, base(q, { etcdctl: [full], endpoints: [etcd.endpoint, etcd.endpoint] }));
    expect(r2.code).toBe(SCHEDULE_EXIT.volume);
    expect(r2.termlog).toMatch(/^volume full or not writable: Error: write .*no space left on device\n$/);
    expect(readFileSync(calls, 'utf8')).toBe('save\n');
    expect(backups(q.dir)).toEqual([]);
  });

  it('(6) SIGTERM during the save stops etcdctl, removes the partial files and exits 143', async () => {
    const p = place();
    const pidFile = join(root, `sleeper-${counter}`);
    const slow = wrapper('slow-etcdctl.sh', `
case " $* " in *" snapshot save "*)
  for last; do :; done
  echo partial >"$last.part"
  echo $$ >'${pidFile}'
  exec sleep 30 ;;
esac
exec etcdctl "$@"`);
    const r = await runScript(sh, base(p, { etcdctl: [slow] }), async (pid) => {
      for (let i = 0; i < 100 && !existsSync(pidFile); i++) await new Promise((res) => setTimeout(res, 50));
      expect(readdirSync(join(p.dir, '.incoming')).length).toBeGreaterThan(0);
      process.kill(pid, 'SIGTERM');
    });
    expect(r.code).toBe(SCHEDULE_EXIT.terminate);
    expect(r.termlog).toBe('interrupted by SIGTERM; no backup was saved\n');
    expect(backups(p.dir)).toEqual([]);
    const sleeper = Number(readFileSync(pidFile, 'utf8'));
    expect(() => process.kill(sleeper, 0)).toThrow();
  });

  it('(e) a namespace, workload, schedule and dir full of quotes, spaces and $(…) stay data', async () => {
    const namespace = `o'k "ns" $(touch pwned-ns) \`touch pwned-bt\` %s \\n ;`;
    const workload = `web $(touch pwned-wl); x' "y" \\ %d\nline2`;
    const schedule = `sch'ed "$HOME" $(touch pwned-sched)`;
    const pluginVersion = `v1 $(touch pwned-version) \``;
    const p = place(`pvc dir's "x" $(touch pwned-dir)`);
    const cwd = join(p.dir, '..');
    const opts = base(p, { namespace, workload, schedule, pluginVersion, keep: 1 });
    const r1 = await runScript(sh, opts, undefined, cwd);
    expect(r1.code, r1.stderr).toBe(SCHEDULE_EXIT.ok);
    await etcd.ctl(['put', '/registry/configmaps/default/hostile', 'x']);
    const r2 = await runScript(sh, opts, undefined, cwd);
    expect(r2.code, r2.stderr).toBe(SCHEDULE_EXIT.ok);
    expect(r2.termlog).toContain('pruned 1 older backup(s)');
    const files = backups(p.dir);
    expect(files).toHaveLength(2);
    const name = files.find((f) => f.endsWith('.db'))!;
    expect(name.startsWith(backupStem(namespace, workload))).toBe(true);
    expect(parseBackupFileName(name, namespace, workload)).toBeDefined();
    const record = readRecord(p.dir, name);
    expect(record).toMatchObject({ namespace, workload, schedule, pluginVersion, file: join(p.dir, name), sha256: sha256(join(p.dir, name)) });
    expect(ownerOfRecord(readFileSync(join(p.dir, `${name}.json`), 'utf8'))).toEqual({ namespace, workload });
    const everywhere = [root, cwd, p.dir, p.work].flatMap((d) => readdirSync(d));
    expect(everywhere.filter((f) => f.startsWith('pwned'))).toEqual([]);
  });
});
