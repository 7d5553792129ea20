import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeKvHash, hashRulesOf } from '../../src/etcd/snapshot/kvhash.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startEtcd } from '../helpers/etcd.js';
import { etcdBinaries, type EtcdMinor } from '../sim/etcd-versions.js';

const run = promisify(execFile);

// The HashKV inspect computes offline, against what real etcd answers for the same data: the live
// member the snapshot was taken from (nothing written after it, so its current state is the snapshot's), on both minors.
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kvhash-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface Answer {
  hash: number;
  compactRevision: number;
  revision: number;
  count: number;
}

type Ctl = (args: string[]) => Promise<string>;

async function etcdAnswer(ctl: Ctl): Promise<Answer> {
  const status = JSON.parse(await ctl(['endpoint', 'status', '-w', 'json'])) as [{ Status: { header: { revision: number } } }];
  const revision = status[0].Status.header.revision;
  const h = JSON.parse(await ctl(['endpoint', 'hashkv', '-w', 'json'])) as [{ HashKV: { hash: number; compact_revision?: number } }];
  const count = JSON.parse(await ctl(['get', '', '--from-key', '--keys-only', '--limit=1', '-w', 'json'])) as { count?: number };
  return { hash: h[0].HashKV.hash, compactRevision: h[0].HashKV.compact_revision ?? 0, revision, count: count.count ?? 0 };
}

const HISTORIES: [string, (ctl: Ctl) => Promise<void>][] = [
  ['puts only', async (ctl) => {
    for (let i = 0; i < 20; i++) await ctl(['put', `/registry/pods/ns/p${i}`, `v${i}`]);
  }],
  ['overwrites, deletes, a lease, a compaction, then overwrites and deletes of compacted keys', async (ctl) => {
    for (let i = 0; i < 10; i++) await ctl(['put', `/k/${i}`, 'first']);
    for (let i = 0; i < 5; i++) await ctl(['put', `/k/${i}`, 'second']);
    await ctl(['del', '/k/9']);
    const lease = /lease ([0-9a-f]+) granted/.exec(await ctl(['lease', 'grant', '3600']))![1];
    await ctl(['put', '/leased', 'x', `--lease=${lease}`]);
    const rev = (JSON.parse(await ctl(['endpoint', 'status', '-w', 'json'])) as [{ Status: { header: { revision: number } } }])[0].Status.header.revision;
    await ctl(['compact', String(rev)]);
    await ctl(['put', '/k/0', 'third']);
    await ctl(['put', '/k/6', 'after the compaction']);
    await ctl(['del', '/k/7']);
    await ctl(['put', '/k/new', 'new']);
  }],
  ['compacted at a delete, no key left (the member starts at the compaction revision; 3.5.16 leaves the delete out of the hash)', async (ctl) => {
    await ctl(['put', '/a', '1']);
    await ctl(['put', '/b', '2']);
    await ctl(['del', '', '--from-key']);
    await ctl(['compact', '4']);
  }],
  ['compacted at a delete, keys left', async (ctl) => {
    await ctl(['put', '/a', '1']);
    await ctl(['put', '/b', '2']);
    await ctl(['del', '/a']);
    await ctl(['compact', '4']);
  }],
  ['every key deleted after a compaction', async (ctl) => {
    await ctl(['put', '/a', '1']);
    await ctl(['put', '/b', '2']);
    const rev = (JSON.parse(await ctl(['endpoint', 'status', '-w', 'json'])) as [{ Status: { header: { revision: number } } }])[0].Status.header.revision;
    await ctl(['compact', String(rev)]);
    await ctl(['del', '', '--from-key']);
  }],
];

describe.each(['3.4', '3.5'] as EtcdMinor[])('computeKvHash on etcd %s', (minor) => {
  it.each(HISTORIES)('%s: equals the member\'s HashKV, compaction revision, revision and key count', async (name, history) => {
    const etcd = await startEtcd({ minor });
    try {
      await history(etcd.ctl);
      const file = join(dir, `${minor}-${name.length}.db`);
      await etcd.ctl(['snapshot', 'save', file]);
      const answer = await etcdAnswer(etcd.ctl);
      const version = /etcd Version: (\S+)/.exec((await run(minor === '3.4' ? 'etcd' : etcdBinaries('3.5').etcd, ['--version'])).stdout)![1];
      const ours = await computeKvHash(file, hashRulesOf(version));
      expect({ hash: ours.hash, compactRevision: ours.compactRevision, revision: ours.revision, count: ours.liveKeys }).toEqual(answer);
    } finally {
      await etcd.destroy();
    }
  }, 60_000);
});
