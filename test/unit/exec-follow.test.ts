// The exec transport streams the snapshot while etcdctl writes it (FOLLOW_SCRIPT through a fake
// container): a cut stream is taken up again at the byte it stopped at, the rest comes from the
// finished file, an image whose tail cannot read from an offset falls back to copying the
// finished file, and a stream that makes no progress once the save ended fails in one line.
import { PassThrough, type Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { formatError, TransientError } from '../../src/errors.js';
import { execTransport, FOLLOW_SCRIPT, FOLLOW_UNSUPPORTED, type ContainerStreamOut } from '../../src/backup/exec-transport.js';
import { silentLogger } from '../helpers/log.js';
import type { EtcdMember } from '../../src/etcd/topology.js';

const member = { pod: 'etcd-0', namespace: 'ns1', container: 'etcd', name: 'etcd-0', endpoint: 'http://127.0.0.1:2379', dataDir: '/var/lib/etcd/data', tls: {} } as EtcdMember;
const SNAPSHOT = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));

/** A container whose detached save ends at once with the snapshot's path and size. */
const saveDone = async (_t: unknown, command: string[]) =>
  (command[2] ?? '').includes('with_output=1')
    ? { exitCode: 0, stdout: `done 0\n/tmp/kubectl-etcd-test.db\n${SNAPSHOT.length}\n`, stderr: '\n' }
    : { exitCode: 0, stdout: '', stderr: '' };

/** A stream-out that answers each follow with `plan(offset, round)`: how many bytes to send, then an exit code or a cut. */
function streamOutOf(plan: (offset: number, round: number) => { bytes: number; then: number | 'cut' }) {
  const offsets: number[] = [];
  const streamOut: ContainerStreamOut = async (_t, argv, destination, onBytes) => {
    expect(argv.slice(0, 3)).toEqual(['sh', '-c', FOLLOW_SCRIPT]);
    const offset = Number(argv[5]);
    offsets.push(offset);
    const step = plan(offset, offsets.length);
    const chunk = SNAPSHOT.subarray(offset, offset + step.bytes);
    if (chunk.length > 0) {
      destination.write(chunk);
      onBytes(chunk.length);
    }
    if (step.then === 'cut') throw new TransientError('exec in pod "ns1/etcd-0" ended before the command reported an exit status (websocket close 1006)');
    return { exitCode: step.then, stderr: '' };
  };
  return { streamOut, offsets };
}

async function take(streamOut: ContainerStreamOut, copied: () => Buffer = () => Buffer.alloc(0)) {
  const transport = execTransport({
    run: saveDone,
    streamOut,
    copyOut: async (_t, destination: Writable, onProgress) => {
      const b = copied();
      destination.end(b);
      onProgress(b.length);
      return { bytes: b.length };
    },
    randomName: () => 'kubectl-etcd-test.db',
  });
  const sink = new PassThrough();
  const got: Buffer[] = [];
  sink.on('data', (c: Buffer) => got.push(c));
  const ctx = { signal: new AbortController().signal, onBytes: () => {}, onTotal: () => {}, log: silentLogger() };
  const result = await transport.take(member, sink, ctx);
  return { result, bytes: Buffer.concat(got), ended: sink.writableEnded };
}

describe('exec transport: streaming while the save writes', () => {
  it('a stream cut twice is taken up at the byte it stopped at; the rest comes from the finished file; the sink ends', async () => {
    const { streamOut, offsets } = streamOutOf((offset, round) =>
      round === 1 ? { bytes: 300, then: 'cut' } : round === 2 ? { bytes: 400, then: 66 } : round === 3 ? { bytes: 0, then: 'cut' } : { bytes: 1000 - offset, then: 0 },
    );
    const { result, bytes, ended } = await take(streamOut);
    expect(offsets).toEqual([0, 300, 700, 700]);
    expect(bytes.equals(SNAPSHOT)).toBe(true);
    expect(result.expectedSize).toBe(1000);
    expect(ended).toBe(true);
  });

  it('an image whose tail cannot read from an offset: the finished file is copied instead, from its first byte', async () => {
    const { streamOut, offsets } = streamOutOf(() => ({ bytes: 0, then: FOLLOW_UNSUPPORTED }));
    const { bytes } = await take(streamOut, () => SNAPSHOT);
    expect(offsets).toEqual([0]);
    expect(bytes.equals(SNAPSHOT)).toBe(true);
  });

  it('a stream that brings nothing more once the save ended fails in one line naming the pod', async () => {
    const { streamOut, offsets } = streamOutOf((offset) => (offset === 0 ? { bytes: 500, then: 'cut' } : { bytes: 0, then: 'cut' }));
    const err = await take(streamOut).catch((e: Error) => e);
    expect(formatError(err)).toBe(
      'error: copying the snapshot out of pod "etcd-0" failed: exec in pod "ns1/etcd-0" ended before the command reported an exit status (websocket close 1006); run the backup again; check the network to the cluster',
    );
    // three tries without a byte once the save is known to have ended (one more if it was not yet)
    expect(offsets[0]).toBe(0);
    expect(offsets.slice(1).every((o) => o === 500)).toBe(true);
    expect(offsets.length).toBeGreaterThanOrEqual(4);
    expect(offsets.length).toBeLessThanOrEqual(5);
  });
});
