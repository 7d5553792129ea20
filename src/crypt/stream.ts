/**
 * age's payload (the STREAM construction of https://age-encryption.org/v1, "Payload"): 64 KiB
 * plaintext chunks, each sealed with ChaCha20-Poly1305 under the payload key, the nonce an 11-byte
 * big-endian chunk counter and a last-chunk flag byte. Done with node:crypto (OpenSSL), several
 * times faster than the age library's JavaScript cipher; the library still writes and reads the
 * header (recipients, stanzas, MAC), so the format is the library's and the reference tool's.
 */
import { createCipheriv, createDecipheriv, hkdfSync } from 'node:crypto';

const CHUNK = 64 * 1024;
const TAG = 16;
const SEALED = CHUNK + TAG;

/** The payload key: HKDF-SHA-256 of the file key, salted with the payload nonce, info "payload". */
export function payloadKey(fileKey: Uint8Array, nonce: Uint8Array): Buffer {
  return Buffer.from(hkdfSync('sha256', fileKey, nonce, 'payload', 32));
}

function chunkNonce(counter: number, last: boolean): Buffer {
  const n = Buffer.alloc(12);
  // 11-byte big-endian counter: a snapshot never needs more than 2^48 chunks (16 EiB)
  n.writeUIntBE(counter, 5, 6);
  n[11] = last ? 1 : 0;
  return n;
}

/**
 * Cuts a stream into chunks of `size`; a full chunk is handled only once more data follows, so the
 * last one (full or not) carries the flag. Chunks are views of the input where they lie whole in
 * it; only a chunk that straddles two inputs is copied (the input as a whole is never
 * concatenated: at 1 MiB reads that was a 1 MiB copy per read, garbage outside V8's heap).
 */
abstract class Chunker {
  /** Bytes of the next chunk not handled yet: fewer than `size`, or a whole chunk held back until more data shows it is not the last. */
  private pending: Buffer = Buffer.alloc(0);
  protected counter = 0;
  constructor(protected readonly key: Buffer, private readonly size: number) {}

  /** What is ready after `data`. */
  push(data: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let at = 0;
    // A short pending chunk takes the start of data first.
    if (this.pending.length && this.pending.length < this.size) {
      at = Math.min(this.size - this.pending.length, data.length);
      this.pending = Buffer.concat([this.pending, data.subarray(0, at)]);
    }
    // A whole pending chunk goes once data shows more follows it.
    if (this.pending.length === this.size && at < data.length) {
      out.push(...this.chunk(this.pending, chunkNonce(this.counter++, false)));
      this.pending = Buffer.alloc(0);
    }
    if (this.pending.length) return out; // still short, or whole and perhaps the last
    // Whole chunks inside data, while more data follows them in it.
    while (data.length - at > this.size) {
      out.push(...this.chunk(data.subarray(at, at + this.size), chunkNonce(this.counter++, false)));
      at += this.size;
    }
    // The rest (at most one chunk) waits: it is the last unless more data comes. A copy, so the
    // 1 MiB read it is part of is not kept alive by a small view.
    if (at < data.length) this.pending = Buffer.from(data.subarray(at));
    return out;
  }

  /** The last chunk. */
  end(): Buffer[] {
    return this.last(this.pending);
  }

  protected last(rest: Buffer): Buffer[] {
    return this.chunk(rest, chunkNonce(this.counter++, true));
  }

  /** The output for one chunk, in pieces written one after the other. */
  protected abstract chunk(data: Buffer, nonce: Buffer): Buffer[];
}

/** Seals plaintext into age payload chunks. */
export class PayloadSealer extends Chunker {
  constructor(key: Buffer) {
    super(key, CHUNK);
  }

  protected chunk(plain: Buffer, nonce: Buffer): Buffer[] {
    const c = createCipheriv('chacha20-poly1305', this.key, nonce, { authTagLength: TAG });
    const body = c.update(plain);
    c.final();
    return [body, c.getAuthTag()]; // the tag after the body, without copying the body to join them
  }
}

/** Opens age payload chunks; a chunk that does not authenticate (damaged, truncated, reordered) throws. */
export class PayloadOpener extends Chunker {
  constructor(key: Buffer) {
    super(key, SEALED);
  }

  protected override last(rest: Buffer): Buffer[] {
    if (rest.length < TAG) throw new Error('the encrypted payload is truncated');
    const plain = super.last(rest);
    if (plain[0]!.length === 0 && this.counter > 1) throw new Error('the last chunk of the payload is empty');
    return plain;
  }

  protected chunk(sealed: Buffer, nonce: Buffer): Buffer[] {
    const d = createDecipheriv('chacha20-poly1305', this.key, nonce, { authTagLength: TAG });
    d.setAuthTag(sealed.subarray(sealed.length - TAG));
    const body = d.update(sealed.subarray(0, sealed.length - TAG));
    try {
      d.final();
    } catch {
      throw new Error(`chunk ${this.counter - 1} of the payload does not authenticate (damaged or truncated)`);
    }
    return [body];
  }
}
