// The S3 object store (src/storage/s3.ts) against a real S3-compatible server (s3rver, with the
// multipart calls it lacks added in test/helpers/s3-server.ts): multipart streaming, listing, the
// abort that leaves no open upload when the body fails, and one-line errors.
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatError } from '../../src/errors.js';
import type { ObjectStore } from '../../src/storage/location.js';
import { openS3Store } from '../../src/storage/s3.js';
import { startS3, type TestS3 } from '../helpers/s3-server.js';

let s3: TestS3;
const saved: Record<string, string | undefined> = {};

function withEnv(env: Record<string, string>): void {
  for (const [k, v] of Object.entries(env)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
}

beforeAll(async () => {
  s3 = await startS3(['backups']);
  withEnv(s3.env);
});

afterAll(async () => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  await s3?.stop();
});

/** A body of n bytes in 1 MiB chunks that fails after `failAfter` bytes, when given. */
function body(n: number, failAfter?: number): { stream: Readable; sha256: string } {
  const data = randomBytes(n);
  let off = 0;
  const stream = new Readable({
    read() {
      if (failAfter !== undefined && off >= failAfter) return this.destroy(new Error('the snapshot stream was cut'));
      if (off >= n) return this.push(null);
      const end = Math.min(n, off + (1 << 20));
      this.push(data.subarray(off, end));
      off = end;
    },
  });
  return { stream, sha256: createHash('sha256').update(data).digest('hex') };
}

async function sha256Of(store: ObjectStore, key: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of (await store.get(key)).body) h.update(c as Buffer);
  return h.digest('hex');
}

describe('S3 object store against s3rver', () => {
  it('streams a multipart upload, lists, reads back and deletes', async () => {
    const store = await openS3Store({ bucket: 'backups', endpoint: s3.endpoint, partSize: 5 << 20 });
    await store.checkBucket();
    const b = body(12 << 20);
    await store.upload('p/one.db', b.stream);
    expect(await store.head('p/one.db')).toEqual({ size: 12 << 20 });
    expect(await sha256Of(store, 'p/one.db')).toBe(b.sha256);
    await store.put('p/one.db.json', '{"a":1}');
    expect(await store.getText('p/one.db.json', 1024)).toBe('{"a":1}');
    expect(await store.getText('p/missing.json', 1024)).toBeUndefined();
    expect((await store.list('p/')).map((o) => o.key).sort()).toEqual(['p/one.db', 'p/one.db.json']);
    await store.delete(['p/one.db', 'p/one.db.json']);
    expect(await store.list('p/')).toEqual([]);
    expect(s3.openUploads('backups')).toEqual([]);
  });

  it('a body that fails after two parts leaves no object and no open multipart upload', async () => {
    const store = await openS3Store({ bucket: 'backups', endpoint: s3.endpoint, partSize: 5 << 20 });
    const b = body(30 << 20, 12 << 20);
    const err = await store.upload('p/cut.db', b.stream).then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/the snapshot stream was cut/);
    expect(await store.head('p/cut.db')).toBeUndefined();
    expect(s3.openUploads('backups')).toEqual([]);
  });

  it('the server\'s extras see an upload left open, and abort it (so the test above can fail)', async () => {
    const { S3Client, CreateMultipartUploadCommand, AbortMultipartUploadCommand } = await import('@aws-sdk/client-s3');
    const client = new S3Client({ endpoint: s3.endpoint, forcePathStyle: true, region: 'us-east-1' });
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: 'backups', Key: 'p/left.db' }));
    expect(s3.openUploads('backups')).toEqual([{ key: 'p/left.db', uploadId: UploadId }]);
    await client.send(new AbortMultipartUploadCommand({ Bucket: 'backups', Key: 'p/left.db', UploadId }));
    expect(s3.openUploads('backups')).toEqual([]);
    client.destroy();
  });

  it('a missing bucket and wrong credentials are one line each', async () => {
    const missing = await openS3Store({ bucket: 'nope', endpoint: s3.endpoint });
    expect(formatError(await missing.checkBucket().then(() => undefined, (e: unknown) => e))).toBe(
      `error: bucket "nope" does not exist at ${s3.endpoint}; create it first, or check the name and --s3-endpoint`,
    );
    const key = process.env['AWS_SECRET_ACCESS_KEY'];
    process.env['AWS_SECRET_ACCESS_KEY'] = 'wrong';
    try {
      const wrong = await openS3Store({ bucket: 'backups', endpoint: s3.endpoint });
      const line = formatError(await wrong.checkBucket().then(() => undefined, (e: unknown) => e));
      expect(line).toMatch(/^error: access denied to reach bucket "backups" at http:\/\/127\.0\.0\.1:\d+ \(HTTP 403\); check the credentials/);
      expect(line.split('\n')).toHaveLength(1);
    } finally {
      process.env['AWS_SECRET_ACCESS_KEY'] = key;
    }
  });
});
