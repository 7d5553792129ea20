/** Running CRC-32C (Castagnoli), the hash Go's crc32.New(crc32.MakeTable(crc32.Castagnoli)) computes. */
export class Crc32c {
  private crc = 0xffffffff;
  private static table: Int32Array | undefined;

  /** Feeds bytes into the hash. */
  update(buf: Uint8Array): void {
    const t = Crc32c.lookup();
    let crc = this.crc;
    for (let i = 0; i < buf.length; i++) crc = t[(crc ^ buf[i]) & 0xff] ^ (crc >>> 8);
    this.crc = crc;
  }

  /** The hash of everything fed so far, as an unsigned 32-bit number. */
  digest(): number {
    return (this.crc ^ 0xffffffff) >>> 0;
  }

  private static lookup(): Int32Array {
    if (!Crc32c.table) {
      const t = new Int32Array(256);
      for (let n = 0; n < 256; n++) {
        let c = n;
        for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
        t[n] = c;
      }
      Crc32c.table = t;
    }
    return Crc32c.table;
  }
}
