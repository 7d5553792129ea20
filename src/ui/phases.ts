/**
 * Where a command's wall time went, phase by phase in the order they ran: printed with `-v` and
 * in the `-o json|yaml` record, so a slow run shows which part was slow (and `npm run bench`
 * breaks its figures down the same way).
 */
// The global `performance` (Node's own, the same object node:perf_hooks exports), read when a
// clock first asks: importing node:perf_hooks would load it in every start, --help included.

/** One phase's wall time. */
export interface PhaseTime {
  name: string;
  seconds: number;
}

/** Times consecutive phases: starting one ends the one before. */
export class PhaseClock {
  private readonly done: Array<{ name: string; ms: number }> = [];
  private current?: { name: string; since: number };

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Records the time from process start until now as `name` (start-up, before any phase). */
  sinceProcessStart(name: string): void {
    this.add(name, this.now());
  }

  /** Ends the running phase, if any, and starts `name`. */
  start(name: string): void {
    this.end();
    this.current = { name, since: this.now() };
  }

  /** Ends the running phase. */
  end(): void {
    if (!this.current) return;
    this.add(this.current.name, this.now() - this.current.since);
    this.current = undefined;
  }

  /** The phases so far (a phase run twice is summed), rounded to milliseconds. */
  list(): PhaseTime[] {
    return this.done.map((p) => ({ name: p.name, seconds: Math.round(p.ms) / 1000 }));
  }

  private add(name: string, ms: number): void {
    const same = this.done.find((p) => p.name === name);
    if (same) same.ms += ms;
    else this.done.push({ name, ms });
  }
}

/** One line for `-v`: "start-up 0.21s, discover 0.10s, …". */
export function renderPhases(phases: PhaseTime[]): string {
  return phases.map((p) => `${p.name} ${p.seconds.toFixed(2)}s`).join(', ');
}
