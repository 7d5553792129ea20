import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { etcd3ProtoJson } from '../../krew/bundle.js';

// The single executable cannot read etcd3's .proto files from disk, so the bundle embeds them as
// a JSON descriptor. Here: it defines the same gRPC methods, and encodes messages to the same bytes.
const repo = path.resolve(import.meta.dirname, '../..');
const require = createRequire(path.join(repo, 'node_modules/etcd3/lib/index.js'));
const loader = require('@grpc/proto-loader') as typeof import('@grpc/proto-loader');
const options = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

describe('embedded etcd3 protos', () => {
  const fromDisk = loader.loadSync(path.join(repo, 'node_modules/etcd3/proto/rpc.proto'), options);
  const embedded = loader.fromJSON(JSON.parse(etcd3ProtoJson(repo)), options);

  it('define the same services and methods', () => {
    const methods = (def: typeof fromDisk) =>
      Object.entries(def)
        .filter(([, v]) => !('format' in v))
        .flatMap(([service, v]) => Object.values(v as Record<string, { path: string }>).map((m) => `${service} ${m.path}`))
        .sort();
    expect(methods(embedded)).toEqual(methods(fromDisk));
    expect(methods(embedded)).toContain('etcdserverpb.Maintenance /etcdserverpb.Maintenance/Snapshot');
  });

  it('serialize and deserialize like the files', () => {
    type Method = { requestSerialize(v: object): Buffer; responseSerialize(v: object): Buffer; responseDeserialize(b: Buffer): unknown };
    const range = (def: typeof fromDisk) => (def['etcdserverpb.KV'] as unknown as Record<string, Method>).Range!;
    const request = { key: Buffer.from('/registry/pods/a'), range_end: Buffer.from('/registry/pods/b'), limit: '10', revision: '42' };
    expect(range(embedded).requestSerialize(request)).toEqual(range(fromDisk).requestSerialize(request));
    const response = { header: { cluster_id: '99', revision: '42' }, kvs: [{ key: Buffer.from('k'), value: Buffer.from('v'), mod_revision: '7' }], count: '1' };
    const bytes = range(fromDisk).responseSerialize(response);
    expect(bytes.length).toBeGreaterThan(10);
    expect(range(embedded).responseDeserialize(bytes)).toEqual(range(fromDisk).responseDeserialize(bytes));
  });
});
