/**
 * Cron schedules as the CronJob controller reads them: github.com/robfig/cron/v3 `ParseStandard`
 * (five fields: minute hour day-of-month month day-of-week; names JAN-DEC and SUN-SAT; `*` and
 * `?`; lists, ranges and steps, `N/step` meaning N through the maximum; descriptors @yearly,
 * @annually, @monthly, @weekly, @daily, @midnight, @hourly and @every DURATION), with robfig's
 * error texts. Day matching follows robfig's `dayMatches`: when day-of-month or day-of-week was
 * written as `*` or `?` (without a step above 1) both must match, otherwise either may.
 *
 * `next(after)` is the first matching minute strictly after `after`, in the schedule's IANA time
 * zone (wall-clock fields through Intl), or undefined after five years of none (robfig's `Next`
 * returns the zero time then).
 *
 * As robfig's `Next` does, a wall-clock minute that a DST change skips does not match that day, and
 * one that occurs twice matches twice. Differs from robfig: no TZ=/CRON_TZ= prefix (the API refuses
 * it in a CronJob; the zone comes from `spec.timeZone`).
 */

const STAR = 2n ** 63n;

interface Bounds { min: number; max: number; names?: Record<string, number> }

const MONTH_NAMES = Object.fromEntries(['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'].map((m, i) => [m, i + 1]));
const DOW_NAMES = Object.fromEntries(['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'].map((d, i) => [d, i]));
const FIELDS: Bounds[] = [
  { min: 0, max: 59 }, { min: 0, max: 23 }, { min: 1, max: 31 }, { min: 1, max: 12, names: MONTH_NAMES }, { min: 0, max: 6, names: DOW_NAMES },
];
const DESCRIPTORS: Record<string, string> = {
  '@yearly': '0 0 1 1 *', '@annually': '0 0 1 1 *', '@monthly': '0 0 1 * *', '@weekly': '0 0 * * 0', '@daily': '0 0 * * *', '@midnight': '0 0 * * *', '@hourly': '0 * * * *',
};

/** A parsed schedule. */
interface CronSchedule {
  /** The first scheduled time strictly after `after` (ms since the epoch), whole minutes or @every steps. */
  next(after: number): number | undefined;
}

/** Parses a schedule as `cron.ParseStandard` does; throws with robfig's message. */
export function parseStandard(spec: string, timeZone = 'UTC'): CronSchedule {
  const text = spec.trim();
  if (!text) throw new Error('empty spec string');
  if (text.startsWith('TZ=') || text.startsWith('CRON_TZ=')) throw new Error('TZ and CRON_TZ in the schedule are not supported here; use the timeZone field');
  if (text.startsWith('@every ')) {
    const ms = parseGoDuration(text.slice('@every '.length).trim());
    if (ms === undefined) throw new Error(`failed to parse duration ${text}`);
    const step = Math.max(1000, Math.floor(ms / 1000) * 1000);
    // robfig's ConstantDelaySchedule: `after` plus the delay, rounded down to the second.
    return { next: (after) => Math.floor((after + step) / 1000) * 1000 };
  }
  if (text.startsWith('@')) {
    const expanded = DESCRIPTORS[text.toLowerCase()];
    if (!expanded) throw new Error(`unrecognized descriptor: ${text}`);
    return parseStandard(expanded, timeZone);
  }
  const parts = text.split(/\s+/);
  if (parts.length !== 5) throw new Error(`expected exactly 5 fields, found ${parts.length}: [${parts.join(' ')}]`);
  const bits = parts.map((p, i) => parseField(p, FIELDS[i]!));
  const [minute, hour, dom, month, dow] = bits as [bigint, bigint, bigint, bigint, bigint];
  const fieldsOf = wallClock(timeZone);
  const has = (set: bigint, n: number): boolean => ((set >> BigInt(n)) & 1n) === 1n;
  const dayMatches = (f: WallClock): boolean => {
    const d = has(dom, f.day);
    const w = has(dow, f.weekday);
    return (dom & STAR) !== 0n || (dow & STAR) !== 0n ? d && w : d || w;
  };
  return {
    next(after: number): number | undefined {
      let t = Math.floor(after / 60_000) * 60_000 + 60_000;
      const limit = after + 5 * 366 * 24 * 3600_000;
      while (t <= limit) {
        const f = fieldsOf(t);
        if (!has(month, f.month) || !dayMatches(f) || !has(hour, f.hour)) {
          t += (60 - f.minute) * 60_000; // the next wall-clock hour
          continue;
        }
        if (has(minute, f.minute)) return t;
        t += 60_000;
      }
      return undefined;
    },
  };
}

function parseField(field: string, b: Bounds): bigint {
  let bits = 0n;
  for (const expr of field.split(',')) bits |= parseRange(expr, b);
  return bits;
}

function parseRange(expr: string, b: Bounds): bigint {
  const rangeAndStep = expr.split('/');
  const lowAndHigh = rangeAndStep[0]!.split('-');
  let start: number;
  let end: number;
  let extra = 0n;
  if (lowAndHigh[0] === '*' || lowAndHigh[0] === '?') {
    start = b.min;
    end = b.max;
    extra = STAR;
  } else {
    start = parseIntOrName(lowAndHigh[0]!, b.names);
    if (lowAndHigh.length === 1) end = start;
    else if (lowAndHigh.length === 2) end = parseIntOrName(lowAndHigh[1]!, b.names);
    else throw new Error(`too many hyphens: ${expr}`);
  }
  let step = 1;
  if (rangeAndStep.length === 2) {
    step = mustParseInt(rangeAndStep[1]!);
    if (lowAndHigh.length === 1) end = b.max;
    if (step > 1) extra = 0n;
  } else if (rangeAndStep.length > 2) {
    throw new Error(`too many slashes: ${expr}`);
  }
  if (start < b.min) throw new Error(`beginning of range (${start}) below minimum (${b.min}): ${expr}`);
  if (end > b.max) throw new Error(`end of range (${end}) above maximum (${b.max}): ${expr}`);
  if (start > end) throw new Error(`beginning of range (${start}) beyond end of range (${end}): ${expr}`);
  if (step === 0) throw new Error(`step of range should be a positive number: ${expr}`);
  let bits = extra;
  for (let i = start; i <= end; i += step) bits |= 1n << BigInt(i);
  return bits;
}

function parseIntOrName(expr: string, names?: Record<string, number>): number {
  const named = names?.[expr.toLowerCase()];
  return named ?? mustParseInt(expr);
}

function mustParseInt(expr: string): number {
  if (!/^-?\d+$/.test(expr)) throw new Error(`failed to parse int from ${expr}: strconv.Atoi: parsing ${JSON.stringify(expr)}: invalid syntax`);
  const n = Number(expr);
  if (n < 0) throw new Error(`negative number (${n}) not allowed: ${expr}`);
  return n;
}

/** A Go duration ("1h30m", "90s", "1.5h") in ms, or undefined. */
function parseGoDuration(text: string): number | undefined {
  const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3600_000 };
  if (!/^(\d+(\.\d*)?(ns|us|µs|ms|s|m|h))+$/.test(text)) return text === '0' ? 0 : undefined;
  let ms = 0;
  for (const m of text.matchAll(/(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)/g)) ms += Number(m[1]) * unit[m[2]!]!;
  return ms;
}

interface WallClock { month: number; day: number; weekday: number; hour: number; minute: number }

/** Wall-clock fields of an instant in an IANA zone (throws RangeError for an unknown zone). */
function wallClock(timeZone: string): (t: number) => WallClock {
  if (timeZone === 'UTC' || timeZone === 'Etc/UTC') {
    return (t) => {
      const d = new Date(t);
      return { month: d.getUTCMonth() + 1, day: d.getUTCDate(), weekday: d.getUTCDay(), hour: d.getUTCHours(), minute: d.getUTCMinutes() };
    };
  }
  const fmt = new Intl.DateTimeFormat('en-US', {
    timeZone, hourCycle: 'h23', month: 'numeric', day: 'numeric', weekday: 'short', hour: 'numeric', minute: 'numeric',
  });
  const days: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };
  return (t) => {
    const p = Object.fromEntries(fmt.formatToParts(t).map((x) => [x.type, x.value]));
    return { month: Number(p.month), day: Number(p.day), weekday: days[p.weekday!]!, hour: Number(p.hour), minute: Number(p.minute) };
  };
}

/** Whether an IANA time zone name is known (as Go's time.LoadLocation would find it). */
export function knownTimeZone(name: string): boolean {
  try {
    wallClock(name)(0);
    return true;
  } catch {
    return false;
  }
}
