import { describe, expect, it } from 'vitest';
import { hashRulesOf } from '../../src/etcd/snapshot/kvhash.js';
import { compare, failureLine } from '../../src/verify/drill.js';

const expected = { hash: 1234, compactRevision: 20, revision: 55, liveKeys: 50, authEnabled: false };

describe('compare (what the drill member serves against what was read offline)', () => {
  it.each([
    ['the same', { revision: 55, keys: 50, hash: 1234, compactRevision: 20 }, undefined],
    ['a later revision (a lease expired since the start)', { revision: 57, keys: 50, hash: 1234, compactRevision: 20 }, undefined],
    ['an older revision', { revision: 54, keys: 50, hash: 1234, compactRevision: 20 }, 'the member serves revision 54, the snapshot holds revision 55'],
    ['fewer keys', { revision: 55, keys: 49, hash: 1234, compactRevision: 20 }, 'the member serves 49 keys at revision 55, the snapshot holds 50'],
    ['another compaction', { revision: 55, keys: 50, hash: 1234, compactRevision: 19 }, 'the member reports compaction at revision 19, the snapshot at 20'],
    ['another hash', { revision: 55, keys: 50, hash: 99, compactRevision: 20 }, "the member's KV hash is 99, the snapshot's 1234"],
  ])('%s', (_name, served, difference) => {
    expect(compare(expected, served)).toBe(difference);
  });
});

describe('failureLine (why etcd or its restore tool stopped)', () => {
  it.each([
    ['a Go panic after other lines', 'starting\npanic: failed to Unmarshal lease proto item; lease ID=1\n\ngoroutine 1 [running]:\nmain.main()', 'panic: failed to Unmarshal lease proto item; lease ID=1'],
    ['a zap panic entry', '{"level":"info","msg":"starting"}\n{"level":"panic","msg":"failed to recover v3 backend from snapshot","error":"bad"}\n', 'failed to recover v3 backend from snapshot: bad'],
    ['a capnslog critical line', '2026-12-06 10:00:00.000000 C | etcdmain: listen tcp 127.0.0.1:1: bind: address already in use', 'etcdmain: listen tcp 127.0.0.1:1: bind: address already in use'],
    ['nothing special: the last line', 'one\ntwo\n', 'two'],
    ['nothing at all', '', 'no output'],
  ])('%s', (_name, log, line) => {
    expect(failureLine(log)).toBe(line);
  });
});

describe('hashRulesOf (which releases leave a delete at the compaction revision out of HashKV, etcd #18274)', () => {
  it.each([
    ['3.4.23', false], ['3.4.33', false], ['3.4.34', true], ['3.5.15', false], ['3.5.16', true], ['3.5.30', true], ['3.6.0', true], ['4.0.0', true],
  ])('%s: %s', (version, skips) => {
    expect(hashRulesOf(version).skipsTombstoneAtCompaction).toBe(skips);
  });
});
