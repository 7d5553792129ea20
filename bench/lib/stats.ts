// Medians and the alternating schedule: every round runs each variant once, in an order that
// rotates from round to round, so a noisy neighbour slows all variants alike.
import { readFile } from 'node:fs/promises';

/**
 * Busy CPU seconds of the whole machine since boot, summed over every core: /proc/stat's first
 * line: user, nice, system, irq, softirq and steal (proc(5); not idle or iowait, nor guest and
 * guest_nice, which user and nice already hold), in USER_HZ ticks, 100 a second on Linux. The difference over a run is what every process on the machine burned
 * meanwhile (here: etcd, the test cluster's API server and kubelet, and the clients).
 */
export async function machineBusySeconds(): Promise<number> {
  const first = (await readFile('/proc/stat', 'utf8')).split('\n', 1)[0]!;
  const [, ...fields] = first.trim().split(/\s+/);
  const ticks = fields.map(Number);
  const busy = [0, 1, 2, 5, 6, 7].reduce((a, i) => a + (ticks[i] ?? 0), 0);
  return busy / 100;
}

/** Dirty and Writeback of /proc/meminfo (proc(5)), in MiB: data the kernel still owes the disks. */
export async function dirtyMiB(): Promise<number> {
  const info = await readFile('/proc/meminfo', 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(info)?.[1] ?? 0);
  return Math.round((kib('Dirty') + kib('Writeback')) / 1024);
}

/** The median of a non-empty list (mean of the middle two for an even count). */
export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** One variant of a comparison: a name and a function that runs it once and returns its samples. */
export interface Variant<S> {
  name: string;
  run(round: number): Promise<S>;
}

/** Runs every variant `rounds` times, alternating (rotated order per round); returns samples per variant. */
export async function alternate<S>(variants: Variant<S>[], rounds: number, onSample?: (name: string, s: S) => void): Promise<Map<string, S[]>> {
  const samples = new Map<string, S[]>(variants.map((v) => [v.name, []]));
  for (let round = 0; round < rounds; round++) {
    const order = variants.map((_, i) => variants[(i + round) % variants.length]!);
    for (const v of order) {
      const s = await v.run(round);
      samples.get(v.name)!.push(s);
      onSample?.(v.name, s);
    }
  }
  return samples;
}
