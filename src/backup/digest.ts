import { createHash, type Hash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { Transform, type TransformCallback } from 'node:stream';
import { sha256Parts } from '../etcd/snapshot/trailer.js';

/** What a pass-through digest learned about a snapshot stream. */
export interface StreamDigest {
  size: number;
  /** sha256 (hex) of every byte, as recorded in the sidecar. */
  sha256: string;
  /** true when the last 32 bytes are the sha256 of everything before them (etcd's snapshot trailer). */
  trailerValid: boolean;
}

const TRAILER = 32;

/**
 * A pass-through Transform that hashes the whole stream and checks etcd's sha256 trailer on the
 * fly, holding back nothing but a 32-byte window; read the result with digest() after 'finish'.
 */
export class SnapshotDigester extends Transform {
  /** sha256 of every byte but the last 32 seen so far; the whole stream's is a copy of it fed the tail. */
  private readonly body: Hash = createHash('sha256');
  private tail = Buffer.alloc(0);
  private size = 0;
  private result?: StreamDigest;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.size += chunk.length;
    if (chunk.length >= TRAILER) {
      this.body.update(this.tail);
      this.body.update(chunk.subarray(0, chunk.length - TRAILER));
      this.tail = Buffer.from(chunk.subarray(chunk.length - TRAILER));
    } else {
      const joined = Buffer.concat([this.tail, chunk]);
      const cut = Math.max(0, joined.length - TRAILER);
      this.body.update(joined.subarray(0, cut));
      this.tail = Buffer.from(joined.subarray(cut));
    }
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    // One pass over the bytes: the whole stream's hash continues from the body's.
    const whole = this.body.copy().update(this.tail).digest('hex');
    const bodyDigest = this.body.digest();
    this.result = {
      size: this.size,
      sha256: whole,
      trailerValid: this.tail.length === TRAILER && bodyDigest.equals(this.tail),
    };
    cb();
  }

  /** The digest; throws if the stream has not ended. */
  digest(): StreamDigest {
    if (!this.result) throw new Error('snapshot digest read before the stream ended');
    return this.result;
  }
}

/**
 * A pass-through Transform that only counts the bytes: the tap of a backup to a local file, whose
 * sha256 and trailer are checked on the written file instead (digestFile), once, after the copy,
 * on another core. Hashing the stream as well would check the same bytes twice, and the first
 * time on the thread that moves them, while the save in the pod wants every core there is.
 */
export class ByteCounter extends Transform {
  private size = 0;
  private ended = false;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.size += chunk.length;
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.ended = true;
    cb();
  }

  /** The count; throws if the stream has not ended. */
  digest(): { size: number } {
    if (!this.ended) throw new Error('byte count read before the stream ended');
    return { size: this.size };
  }
}

/** What SnapshotDigester learns from a stream, learned from a file on disk (one sha256 pass, on a worker thread when it is large). */
export async function digestFile(path: string): Promise<StreamDigest> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    const { body, tail, whole } = await sha256Parts(fh, size);
    return { size, sha256: whole, trailerValid: tail.length === TRAILER && body.equals(tail) };
  } finally {
    await fh.close();
  }
}
