import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { constants, unlinkSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { Writable } from 'node:stream';
import { PluginError } from '../errors.js';

/**
 * A destination written as `<dest>.partial` (created with O_EXCL, mode 0600) that becomes `dest`
 * only through commit(): fsync the file, rename, fsync the directory. discard() removes it.
 */
export class PartialFile {
  private closed = false;
  private settled = false;

  private constructor(
    readonly dest: string,
    readonly path: string,
    private readonly handle: FileHandle,
  ) {}

  /** Creates `<dest>.partial`; refuses when it already exists (another backup, or a crash). */
  static async create(dest: string): Promise<PartialFile> {
    const path = `${dest}.partial`;
    try {
      const handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      await handle.chmod(0o600);
      return new PartialFile(dest, path, handle);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') {
        throw new PluginError(`file "${path}" already exists`, 'another backup may be writing it; remove it if not');
      }
      if (code === 'ENOENT') throw new PluginError(`directory "${dirname(dest)}" does not exist`, 'create it, or use --dir DIR, which creates it');
      throw new PluginError(`cannot create "${path}": ${code ?? (err as Error).message}`, 'check the destination directory');
    }
  }

  /** A writable stream into the partial file (backpressure-aware; does not close the file). */
  writable(): Writable {
    const handle = this.handle;
    return new Writable({
      highWaterMark: 1 << 20,
      write(chunk: Buffer, _enc, cb) {
        writeAll(handle, chunk).then(() => cb(), cb);
      },
      writev(chunks, cb) {
        writeAll(handle, Buffer.concat(chunks.map((c) => c.chunk as Buffer))).then(() => cb(), cb);
      },
    });
  }

  /** fsyncs the data, renames the partial file onto `dest` (default: the name it was created for) and fsyncs the directory. */
  async commit(dest: string = this.dest): Promise<void> {
    await this.handle.sync();
    await this.close();
    await rename(this.path, dest);
    this.settled = true;
    const dir = await open(dirname(dest), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }

  /** Closes and removes the partial file; safe to call more than once or after commit. */
  async discard(): Promise<void> {
    await this.close().catch(() => {});
    if (this.settled) return;
    this.settled = true;
    await rm(this.path, { force: true });
  }

  /** Removes the partial file synchronously (for signal handlers). */
  discardSync(): void {
    if (this.settled) return;
    try {
      unlinkSync(this.path);
    } catch {
      // already gone
    }
  }

  /** The partial file's name without its directory. */
  get name(): string {
    return basename(this.path);
  }

  private async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }
}

async function writeAll(handle: FileHandle, buf: Buffer): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await handle.write(buf, off, buf.length - off);
    off += bytesWritten;
  }
}
