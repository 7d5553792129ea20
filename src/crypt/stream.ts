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

/** Cuts a stream into chunks of `size`; a full chunk is handled only once more data follows, so the last one (full or not) carries the flag. */
abstract class Chunker {
  private buf: Buffer = Buffer.alloc(0);
  protected counter = 0;
  constructor(protected readonly key: Buffer, private readonly size: number) {}

  /** What is ready after `data`. */
  push(data: Buffer): Buffer[] {
    const out: Buffer[] = [];
    this.buf = this.buf.length ? Buffer.concat([this.buf, data]) : data;
    while (this.buf.length > this.size) {
      out.push(this.chunk(this.buf.subarray(0, this.size), chunkNonce(this.counter++, false)));
      this.buf = this.buf.subarray(this.size);
    }
    return out;
  }

  /** The last chunk. */
  end(): Buffer {
    return this.last(this.buf);
  }

  protected last(rest: Buffer): Buffer {
    return this.chunk(rest, chunkNonce(this.counter++, true));
  }

  protected abstract chunk(data: Buffer, nonce: Buffer): Buffer;
}

/** Seals plaintext into age payload chunks. */
export class PayloadSealer extends Chunker {
  constructor(key: Buffer) {
    super(key, CHUNK);
  }

  protected chunk(plain: Buffer, nonce: Buffer): Buffer {
    const c = createCipheriv('chacha20-poly1305', this.key, nonce, { authTagLength: TAG });
    const body = c.update(plain);
    c.final();
    return Buffer.concat([body, c.getAuthTag()]);
  }
}

/** Opens age payload chunks; a chunk that does not authenticate (damaged, truncated, reordered) throws. */
export class PayloadOpener extends Chunker {
  constructor(key: Buffer) {
    super(key, SEALED);
  }

  protected override last(rest: Buffer): Buffer {
    if (rest.length < TAG) throw new Error('the encrypted payload is truncated');
    const plain = super.last(rest);
    if (plain.length === 0 && this.counter > 1) throw new Error('the last chunk of the payload is empty');
    return plain;
  }

  protected chunk(sealed: Buffer, nonce: Buffer): Buffer {
    const d = createDecipheriv('chacha20-poly1305', this.key, nonce, { authTagLength: TAG });
    d.setAuthTag(sealed.subarray(sealed.length - TAG));
    const body = d.update(sealed.subarray(0, sealed.length - TAG));
    try {
      d.final();
    } catch {
      throw new Error(`chunk ${this.counter - 1} of the payload does not authenticate (damaged or truncated)`);
    }
    return body;
  }
}
