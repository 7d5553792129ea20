// resource.Quantity as quota and limit-range admission need it: parse, add, compare, and print in
// the canonical form the real server prints (`q.String()`: "500m", "1", "2k", "128Mi").
// docs: reference/kubernetes-api/common-definitions/quantity; source: k8s.io/apimachinery
// pkg/api/resource/quantity.go (CanonicalizeBytes).
// Differences from the real type: values are JavaScript numbers counted in thousandths (exact up
// to about 9 PB), the decimal-exponent format ("1e3") prints as decimal SI, and suffixes past E
// are refused.

/** A parsed quantity: its value in thousandths of the unit, and the suffix family it was written in. */
export interface Quantity {
  milli: number;
  binary: boolean;
}

const DECIMAL: Record<string, number> = { '': 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };
const BINARY: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };

/** Parses "500m", "1.5", "128Mi", "1e3" (or a JSON number); undefined when malformed. */
export function parseQuantity(q: unknown): Quantity | undefined {
  if (typeof q === 'number') return { milli: Math.round(q * 1000), binary: false };
  if (typeof q !== 'string') return undefined;
  const m = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:[eE]([+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E))?$/.exec(q.trim());
  if (!m) return undefined;
  const base = Number(m[1]);
  if (m[2] !== undefined) return { milli: Math.round(base * 10 ** Number(m[2]) * 1000), binary: false };
  const suffix = m[3] ?? '';
  if (suffix in BINARY) return { milli: Math.round(base * BINARY[suffix]! * 1000), binary: true };
  return { milli: Math.round(base * DECIMAL[suffix]! * 1000), binary: false };
}

/** The zero of a sum. */
export const ZERO: Quantity = { milli: 0, binary: false };

/** a + b, printed in a's family unless a is zero (then in b's), as Quantity.Add keeps the receiver's format. */
export function addQuantity(a: Quantity, b: Quantity): Quantity {
  return { milli: a.milli + b.milli, binary: a.milli === 0 ? b.binary : a.binary };
}

/** The canonical text of a quantity, as `resource.Quantity.String()` prints it. */
export function formatQuantity(q: Quantity): string {
  const { milli } = q;
  if (milli % 1000 !== 0) return `${milli}m`;
  const whole = milli / 1000;
  if (q.binary && Math.abs(whole) >= 1024) {
    const units: Array<[string, number]> = [['Ei', 2 ** 60], ['Pi', 2 ** 50], ['Ti', 2 ** 40], ['Gi', 2 ** 30], ['Mi', 2 ** 20], ['Ki', 2 ** 10]];
    for (const [suffix, size] of units) if (whole % size === 0) return `${whole / size}${suffix}`;
    return String(whole);
  }
  if (whole === 0) return '0';
  const units: Array<[string, number]> = [['E', 1e18], ['P', 1e15], ['T', 1e12], ['G', 1e9], ['M', 1e6], ['k', 1e3]];
  for (const [suffix, size] of units) if (whole % size === 0) return `${whole / size}${suffix}`;
  return String(whole);
}
