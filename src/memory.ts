/**
 * Prompt collection of the buffers age encryption and decryption move through (crypt/age.ts
 * counts what they read). Each chunk read and each one the cipher makes is a fresh ArrayBuffer
 * whose memory lives outside V8's heap; its small JS object is all V8 sees. With the young
 * generation held small (cli/heap.ts) and little else allocated, no scavenge comes for megabytes
 * at a time, so dead chunks pile up until their external memory passes V8's fixed 64 MiB
 * allowance, which asks for a full mark-compact. A minor collection every PACE bytes frees them
 * while they are young. Measured on the encrypted leg alone (256 MiB, 3 runs each): peak RSS
 * 114-121 MiB against 140-145, CPU 1.5-1.8 s against 2.1-2.4 (every 2 MiB was worse, 4-8 MiB
 * alike); a whole encrypted backup of 512 MiB on the local test cluster peaked 114 MiB against
 * 126, CPU 0.94x (farm-bench, 5 pairs). The copy from the cluster is not paced: its peak (during
 * verification) did not move, paced or even fully collected every 16 MiB. Without a collector
 * registered (the library in tests, a V8 that refused), movedBytes does nothing.
 */

/** Bytes moved between two minor collections. */
const PACE = 4 << 20;

let collect: (() => void) | undefined;
let since = 0;

/** Registers the minor collection movedBytes runs (cli/heap.ts); undefined turns it off. */
export function collectYoungWith(minorGc: (() => void) | undefined): void {
  collect = minorGc;
  since = 0;
}

/** Counts bytes a flow moved through fresh buffers; every PACE of them, a minor collection frees the dead ones. */
export function movedBytes(n: number): void {
  if (collect === undefined) return;
  since += n;
  if (since < PACE) return;
  since = 0;
  collect();
}
