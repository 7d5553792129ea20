// The pure parts of the quota, alarm and maintenance commands (the e2e file space.test.ts runs them
// against real etcd): how the quota is read, what --check fails on, when disarming is refused, the
// defragmentation order, the compaction target, and etcdctl's answers parsed.
import { describe, expect, it } from 'vitest';
import { readMember } from '../../src/etcd/discovery/index.js';
import { disarmAlarms, disarmRefusal, parseAlarmMembers } from '../../src/etcd/alarm.js';
import { compact, compactionTarget, defragOrder, parseKeep, rollingDefrag, type MemberRow } from '../../src/etcd/maintenance.js';
import { DEFAULT_QUOTA_BYTES, parseGoInt, quotaOf } from '../../src/etcd/quota.js';
import { statusProblems, type MemberStatus } from '../../src/etcd/status.js';
import type { EtcdMember } from '../../src/etcd/topology.js';
import { quotaCell } from '../../src/ui/status-table.js';
import { UsageError } from '../../src/errors.js';

const MiB = 1024 * 1024;

function row(pod: string, s: Partial<MemberStatus> = {}): MemberStatus {
  return { pod, name: pod, endpoint: 'http://127.0.0.1:2379', quota: { bytes: 16 * MiB, source: 'set' }, alarms: [], healthy: true, memberId: `${pod}-id`, leaderId: 'l1', ...s };
}

function member(pod: string): EtcdMember {
  return { pod, namespace: 'etcd', container: 'etcd', name: pod, endpoint: 'http://127.0.0.1:2379', clientPort: 2379, peerUrl: `http://${pod}:2380`, dataDir: '/data', tls: {}, clientTlsEnabled: false, image: 'etcd' };
}

describe('quotaOf: --quota-backend-bytes as etcd reads it (server/etcdserver/quota.go)', () => {
  it.each([
    [undefined, { bytes: DEFAULT_QUOTA_BYTES, source: 'default' }],
    ['0', { bytes: DEFAULT_QUOTA_BYTES, source: 'default' }],
    ['16777216', { bytes: 16 * MiB, source: 'set' }],
    ['-1', { source: 'disabled' }],
    ['8G', { source: 'unknown' }],
  ])('%s → %j', (setting, quota) => {
    expect(quotaOf(setting)).toEqual(quota);
  });

  it('reads integers as Go strconv.ParseInt(s, 0, 64) does', () => {
    expect(['0x1000', '0o17', '017', '0b101', '1_000', '-1'].map(parseGoInt)).toEqual([4096, 15, 15, 5, 1000, -1]);
    expect(['8G', '08', '1__0', '_1', '0x', '1e3'].map(parseGoInt)).toEqual([undefined, undefined, undefined, undefined, undefined, undefined]);
  });

  it('is unknown when the env var comes from a ConfigMap key or envFrom (not read)', () => {
    const pod = (container: object) => ({ metadata: { name: 'e-0', namespace: 'n' }, spec: { containers: [{ name: 'etcd', image: 'etcd', command: ['etcd'], ...container }] } });
    expect(readMember(pod({ env: [{ name: 'ETCD_QUOTA_BACKEND_BYTES', valueFrom: { configMapKeyRef: { name: 'cm', key: 'q' } } }] }))?.quota).toEqual({ source: 'unknown' });
    expect(readMember(pod({ envFrom: [{ configMapRef: { name: 'extra' } }] }))?.quota).toEqual({ source: 'unknown' });
    expect(readMember(pod({ envFrom: [{ configMapRef: { name: 'extra' } }], command: ['etcd', '--quota-backend-bytes=100'] }))?.quota).toEqual({ bytes: 100, source: 'set' });
  });

  it('is unknown when etcd reads a config file (its flags are then ignored)', () => {
    expect(quotaOf('16777216', '/etc/etcd/etcd.yaml')).toEqual({ source: 'unknown' });
  });

  it('readMember takes the last flag, else ETCD_QUOTA_BACKEND_BYTES', () => {
    const pod = (container: object) => ({ metadata: { name: 'e-0', namespace: 'n' }, spec: { containers: [{ name: 'etcd', image: 'etcd', ...container }] } });
    expect(readMember(pod({ command: ['etcd', '--quota-backend-bytes=1000', '--quota-backend-bytes', '2000'] }))?.quota).toEqual({ bytes: 2000, source: 'set' });
    expect(readMember(pod({ command: ['etcd'], env: [{ name: 'ETCD_QUOTA_BACKEND_BYTES', value: '3000' }] }))?.quota).toEqual({ bytes: 3000, source: 'set' });
    expect(readMember(pod({ command: ['etcd'] }))?.quota).toEqual({ bytes: DEFAULT_QUOTA_BYTES, source: 'default' });
    expect(readMember(pod({ command: ['etcd', '--quota-backend-bytes=lots'] }))?.notes).toContain('--quota-backend-bytes "lots" is not a number');
  });
});

describe('status: the quota column and what --check fails on', () => {
  it('shows the quota and the share the db fills', () => {
    expect(quotaCell(row('a', { dbSize: 15.7 * MiB }))).toBe('16.0 MiB (98%)');
    expect(quotaCell(row('a', { dbSize: 20 * MiB, quota: { bytes: DEFAULT_QUOTA_BYTES, source: 'default' } }))).toBe('2.0 GiB default (0%)');
    expect(quotaCell(row('a', { quota: { source: 'disabled' } }))).toBe('none');
    expect(quotaCell(row('a', { quota: { source: 'unknown' } }))).toBe('-');
  });

  it('fails on an unhealthy member and on a db at 90% of its quota or more, not below', () => {
    expect(statusProblems([row('a', { dbSize: 14 * MiB }), row('b', { dbSize: 1 * MiB })])).toEqual([]);
    expect(statusProblems([row('a', { dbSize: 14.5 * MiB }), row('b', { healthy: false, error: 'alarm NOSPACE' })])).toEqual([
      '"a" db size 14.5 MiB is 90% of its quota 16.0 MiB',
      '"b" alarm NOSPACE',
    ]);
    expect(statusProblems([row('a', { dbSize: 15 * MiB, quota: { source: 'disabled' } })])).toEqual([]);
  });
});

describe('alarms', () => {
  it('parses etcdctl alarm list with decimal member IDs into hex', () => {
    expect(parseAlarmMembers('memberID:10276657743932975437 alarm:NOSPACE \nmemberID:1 alarm:CORRUPT \n')).toEqual([
      { memberId: '8e9e05c52164694d', alarm: 'NOSPACE' },
      { memberId: '1', alarm: 'CORRUPT' },
    ]);
    expect(parseAlarmMembers('')).toEqual([]);
  });

  it('disarm reads the list again first and refuses an alarm raised since the check, before etcdctl alarm disarm', async () => {
    const argvs: string[][] = [];
    const run = async (_t: unknown, argv: string[]) => {
      argvs.push(argv);
      return { exitCode: 0, stdout: 'memberID:1 alarm:NOSPACE \nmemberID:2 alarm:CORRUPT \n', stderr: '' };
    };
    await expect(disarmAlarms(run, member('e-0'), [], [{ memberId: '1', alarm: 'NOSPACE' }])).rejects.toThrow('refusing to disarm: CORRUPT on member 2 was raised since the check');
    expect(argvs.map((a) => a.slice(-2).join(' '))).toEqual(['alarm list']);
  });

  it('refuses to disarm CORRUPT whatever the sizes, and NOSPACE while a db fills 90% of its quota', () => {
    const nospace = [{ memberId: '1', pod: 'a', alarm: 'NOSPACE' }];
    expect(disarmRefusal([{ memberId: '1', pod: 'a', alarm: 'CORRUPT' }], [row('a', { dbSize: 1 })])?.message).toMatch(/^refusing to disarm: CORRUPT is raised on member 1 \("a"\)/);
    expect(disarmRefusal(nospace, [row('a', { dbSize: 15 * MiB }), row('b', { dbSize: 1 * MiB })])?.message).toBe(
      'refusing to disarm NOSPACE: the db of "a" (15.0 MiB) is 93% of its quota (16.0 MiB), so the next writes would raise it again',
    );
    expect(disarmRefusal(nospace, [row('a', { dbSize: 2 * MiB })])).toBeUndefined();
  });
});

describe('maintenance', () => {
  it('defragments followers in topology order and the leader last', () => {
    const rows: MemberRow[] = ['e-0', 'e-1', 'e-2'].map((p) => ({ member: member(p), status: row(p, { isLeader: p === 'e-0' }) }));
    expect(defragOrder(rows).map((r) => r.member.pod)).toEqual(['e-1', 'e-2', 'e-0']);
  });

  it('refuses to defragment while a member does not answer; without quorum it points to restore', () => {
    const rows: MemberRow[] = ['e-0', 'e-1', 'e-2'].map((p) => ({ member: member(p), status: row(p, p === 'e-2' ? { memberId: undefined, healthy: false, error: 'context deadline exceeded' } : {}) }));
    expect(() => defragOrder(rows)).toThrow(/^refusing to defragment: "e-2" \(context deadline exceeded\) does not answer/);
    const two = rows.map((r, i) => (i > 0 ? { ...r, status: { ...r.status, memberId: undefined } } : r));
    expect(() => defragOrder(two)).toThrowError(expect.objectContaining({ hint: expect.stringMatching(/restore/) }));
  });

  it('refuses a member that answers status but fails its health check for something else than an alarm, and members that disagree on the leader', () => {
    const base: MemberRow[] = ['e-0', 'e-1', 'e-2'].map((p) => ({ member: member(p), status: row(p, { isLeader: p === 'e-0' }) }));
    const cutOff = base.map((r, i) => (i === 1 ? { ...r, status: { ...r.status, healthy: false, error: 'context deadline exceeded' } } : r));
    expect(() => defragOrder(cutOff)).toThrow(/^refusing to defragment: "e-1" \(context deadline exceeded\) does not answer/);
    const alarmed = base.map((r) => ({ ...r, status: { ...r.status, healthy: false, alarms: ['NOSPACE'], error: 'alarm NOSPACE' } }));
    expect(defragOrder(alarmed).map((r) => r.member.pod)).toEqual(['e-1', 'e-2', 'e-0']);
    const split = base.map((r, i) => (i === 2 ? { ...r, status: { ...r.status, leaderId: 'l2' } } : r));
    expect(() => defragOrder(split)).toThrow(/^refusing to defragment: the members do not agree on one leader/);
  });

  it('compaction target: head minus the kept revisions; nothing below revision 1; bad --keep-revisions is a usage error', () => {
    expect(compactionTarget(100, 0)).toBe(100);
    expect(compactionTarget(100, 10)).toBe(90);
    expect(compactionTarget(100, 100)).toBeUndefined();
    expect(parseKeep(undefined)).toBe(0);
    expect(parseKeep('25')).toBe(25);
    expect(() => parseKeep('-1')).toThrow(UsageError);
    expect(() => parseKeep('1e3')).toThrow(UsageError);
  });

  it('a compaction that etcd answers "already compacted" is not an error; another failure is', async () => {
    const answer = (exitCode: number, stderr: string) => async () => ({ exitCode, stdout: '', stderr });
    await expect(compact(answer(1, 'Error: etcdserver: mvcc: required revision has been compacted\n'), member('e-0'), 7, false)).resolves.toEqual({ revision: 7, already: true });
    await expect(compact(answer(0, ''), member('e-0'), 7, true)).resolves.toEqual({ revision: 7, already: false });
    await expect(compact(answer(1, 'Error: context deadline exceeded\n'), member('e-0'), 7, false)).rejects.toThrow('etcdctl compact 7 failed in pod "e-0": Error: context deadline exceeded');
  });

  it('rolling defrag: one member at a time, waits until each answers again, stops at the first failure naming what was done', async () => {
    const rows: MemberRow[] = ['e-0', 'e-1', 'e-2'].map((p) => ({ member: member(p), status: row(p, { isLeader: p === 'e-1', dbSize: 10 * MiB }) }));
    const ran: string[] = [];
    let silentOnce = true;
    const run = async (t: { pod: string }, argv: string[]) => {
      ran.push(`${t.pod} ${argv.at(-1)}`);
      return t.pod === 'e-0' && argv.at(-1) === 'defrag' && ran.length > 3 ? { exitCode: 1, stdout: '', stderr: 'boom' } : { exitCode: 0, stdout: '', stderr: '' };
    };
    const probe = async (m: EtcdMember) => {
      if (m.pod === 'e-2' && silentOnce) {
        silentOnce = false;
        return row(m.pod, { memberId: undefined });
      }
      return row(m.pod, { dbSize: 1 * MiB });
    };
    const lines: string[] = [];
    const results = await rollingDefrag(run, probe, rows, (l) => lines.push(l), { sleep: async () => undefined });
    expect(ran).toEqual(['e-0 defrag', 'e-2 defrag', 'e-1 defrag']);
    expect(results.map((r) => [r.pod, r.role, r.before, r.after])).toEqual([
      ['e-0', 'follower', 10 * MiB, 1 * MiB], ['e-2', 'follower', 10 * MiB, 1 * MiB], ['e-1', 'leader', 10 * MiB, 1 * MiB],
    ]);
    expect(lines[0]).toBe('defragmenting "e-0" (follower, 10.0 MiB)');
    await expect(rollingDefrag(run, probe, rows, () => undefined, { sleep: async () => undefined })).rejects.toThrowError(
      expect.objectContaining({ message: 'etcdctl defrag failed in pod "e-0": boom', hint: expect.stringMatching(/^members defragmented before it: none;/) }),
    );
  });
});
