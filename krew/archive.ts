/**
 * Release archives: .tar.gz for Linux and macOS, .zip for Windows (what krew unpacks). Entries
 * get fixed modes and a fixed time (SOURCE_DATE_EPOCH, else the Unix epoch) so the same inputs
 * give the same bytes and so the same sha256 in the manifest.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { crc32, createGzip, deflateRawSync, inflateRawSync } from 'node:zlib';
import tar from 'tar-stream';

/** One file to put in an archive. */
export interface ArchiveEntry {
  /** Name inside the archive (no directories). */
  name: string;
  /** Local file to read. */
  file: string;
  mode: number;
}

function entryTime(): Date {
  const epoch = Number(process.env.SOURCE_DATE_EPOCH ?? 0);
  return new Date((Number.isFinite(epoch) ? epoch : 0) * 1000);
}

/** Streams the entries into a gzip-compressed tar file. */
export async function writeTarGz(out: string, entries: ArchiveEntry[]): Promise<void> {
  const pack = tar.pack();
  const writing = pipeline(pack, createGzip({ level: 9 }), createWriteStream(out));
  const mtime = entryTime();
  for (const e of entries) {
    const { size } = await fs.stat(e.file);
    const sink = pack.entry({ name: e.name, size, mode: e.mode, mtime, uid: 0, gid: 0, uname: '', gname: '', type: 'file' });
    await pipeline(createReadStream(e.file), sink);
  }
  pack.finalize();
  await writing;
}

/**
 * Writes a zip file (deflate, no zip64: entries stay far below 4 GiB). Each entry is read whole,
 * which suits the few tens of megabytes of a release, not snapshots.
 */
export async function writeZip(out: string, entries: ArchiveEntry[]): Promise<void> {
  // DOS dates start in 1980: an earlier SOURCE_DATE_EPOCH becomes 1980-01-01.
  const t = entryTime().getUTCFullYear() < 1980 ? new Date(Date.UTC(1980, 0, 1)) : entryTime();
  const dosTime = (t.getUTCHours() << 11) | (t.getUTCMinutes() << 5) | (t.getUTCSeconds() >> 1);
  const dosDate = ((t.getUTCFullYear() - 1980) << 9) | ((t.getUTCMonth() + 1) << 5) | t.getUTCDate();
  const locals: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const data = await fs.readFile(e.file);
    const packed = deflateRawSync(data, { level: 9 });
    const name = Buffer.from(e.name, 'utf8');
    const crc = crc32(data) >>> 0;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed: deflate
    local.writeUInt16LE(0x0800, 6); // names are UTF-8
    local.writeUInt16LE(8, 8); // deflate
    local.writeUInt16LE(dosTime, 10);
    local.writeUInt16LE(dosDate, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(packed.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    const header = Buffer.alloc(46);
    header.writeUInt32LE(0x02014b50, 0);
    header.writeUInt16LE((3 << 8) | 20, 4); // made by: Unix, so the external attributes carry the mode
    header.writeUInt16LE(20, 6);
    header.writeUInt16LE(0x0800, 8);
    header.writeUInt16LE(8, 10);
    header.writeUInt16LE(dosTime, 12);
    header.writeUInt16LE(dosDate, 14);
    header.writeUInt32LE(crc, 16);
    header.writeUInt32LE(packed.length, 20);
    header.writeUInt32LE(data.length, 24);
    header.writeUInt16LE(name.length, 28);
    header.writeUInt32LE(((0o100000 | e.mode) << 16) >>> 0, 38);
    header.writeUInt32LE(offset, 42);
    locals.push(local, name, packed);
    central.push(header, name);
    offset += local.length + name.length + packed.length;
  }
  const centralSize = central.reduce((n, b) => n + b.length, 0);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(centralSize, 12);
  end.writeUInt32LE(offset, 16);
  await fs.writeFile(out, Buffer.concat([...locals, ...central, end]));
}

/** Lists a zip's entries from its central directory, checking each entry's CRC. */
export async function listZip(file: string): Promise<{ name: string; mode: number; size: number }[]> {
  const buf = await fs.readFile(file);
  const endAt = buf.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (endAt < 0) throw new Error(`${file} is not a zip file (no end of central directory)`);
  const count = buf.readUInt16LE(endAt + 10);
  let at = buf.readUInt32LE(endAt + 16);
  const out: { name: string; mode: number; size: number }[] = [];
  for (let i = 0; i < count; i++) {
    if (buf.readUInt32LE(at) !== 0x02014b50) throw new Error(`${file}: bad central directory entry ${i}`);
    const method = buf.readUInt16LE(at + 10);
    const crc = buf.readUInt32LE(at + 16);
    const packedSize = buf.readUInt32LE(at + 20);
    const size = buf.readUInt32LE(at + 24);
    const nameLen = buf.readUInt16LE(at + 28);
    const extraLen = buf.readUInt16LE(at + 30);
    const commentLen = buf.readUInt16LE(at + 32);
    const attrs = buf.readUInt32LE(at + 38);
    const localAt = buf.readUInt32LE(at + 42);
    const name = buf.toString('utf8', at + 46, at + 46 + nameLen);
    const dataAt = localAt + 30 + buf.readUInt16LE(localAt + 26) + buf.readUInt16LE(localAt + 28);
    const packed = buf.subarray(dataAt, dataAt + packedSize);
    const data = method === 8 ? inflateRawSync(packed) : packed;
    if (data.length !== size || crc32(data) >>> 0 !== crc) throw new Error(`${file}: entry "${name}" is corrupt`);
    out.push({ name, mode: (attrs >>> 16) & 0o7777, size });
    at += 46 + nameLen + extraLen + commentLen;
  }
  return out;
}
