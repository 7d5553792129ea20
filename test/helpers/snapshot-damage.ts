// Damage to an etcd snapshot that its sha256 trailer does not show: inspect passes it, a restore drill does not.
import { createHash } from 'node:crypto';
import { open, readFile, stat } from 'node:fs/promises';

/** Rewrites the sha256 trailer so it matches the (damaged) content: the damage is invisible to the trailer. */
export async function resealTrailer(file: string): Promise<void> {
  const size = (await stat(file)).size;
  const data = (await readFile(file)).subarray(0, size - 32);
  const fh = await open(file, 'r+');
  await fh.write(createHash('sha256').update(data).digest(), 0, 32, size - 32);
  await fh.close();
}

function varint(n: bigint): Buffer {
  const out: number[] = [];
  while (n >= 0x80n) {
    out.push(Number(n & 0x7fn) | 0x80);
    n >>= 7n;
  }
  out.push(Number(n));
  return Buffer.from(out);
}

/**
 * Damages every copy of lease `leaseId`'s record in the file and reseals the trailer; returns how
 * many copies it found (0: the lease is not in the file, nothing changed). bbolt keeps a leaf
 * element's key and value side by side: the lease's 8-byte id, then its leasepb.Lease (field 1:
 * the id), whose first tag becomes field 1 with wire type 7, which no protobuf decoder accepts;
 * bbolt copies pages on write, so freed pages may hold older copies too.
 */
export async function damageLease(file: string, leaseId: bigint): Promise<number> {
  const data = await readFile(file);
  const key = Buffer.alloc(8);
  key.writeBigUInt64BE(leaseId);
  const lease = Buffer.concat([key, Buffer.from([0x08]), varint(leaseId)]);
  const copies: number[] = [];
  for (let at = data.indexOf(lease); at >= 0; at = data.indexOf(lease, at + 1)) copies.push(at);
  if (copies.length === 0) return 0;
  const fh = await open(file, 'r+');
  for (const at of copies) await fh.write(Buffer.from([0x0f]), 0, 1, at + 8);
  await fh.close();
  await resealTrailer(file);
  return copies.length;
}
