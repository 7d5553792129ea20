/**
 * A level-triggered reconcile loop: `kick()` (from watch events) runs `sync` once after a short
 * debounce, never two at a time; a slow periodic pass catches anything a watch missed.
 *
 * Differs from client-go's workqueue: one full pass over all objects instead of per-key work
 * items, which is plenty for a test cluster of a few dozen objects.
 */

/** Where a loop reports failures. */
export type LogFn = (line: string) => void;

/** Runs one controller's sync function, debounced and serialized. */
export class SyncLoop {
  private timer?: NodeJS.Timeout;
  private periodic?: NodeJS.Timeout;
  private running = false;
  private again = false;
  private stopped = false;

  constructor(
    readonly name: string,
    private readonly sync: () => Promise<void>,
    private readonly log: LogFn,
    private readonly debounceMs = 50,
    private readonly periodMs = 10_000,
  ) {}

  /** Starts the periodic pass and runs a first sync. */
  start(): void {
    this.periodic = setInterval(() => this.kick(), this.periodMs);
    this.periodic.unref();
    this.kick();
  }

  /** Schedules a sync soon (coalescing bursts of events). */
  kick(delayMs = this.debounceMs): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer) return;
    this.timer = setTimeout(() => void this.run(), delayMs);
  }

  /** Stops all timers; a sync in flight finishes on its own. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.periodic);
  }

  private async run(): Promise<void> {
    this.timer = undefined;
    this.running = true;
    this.again = false;
    let failed = false;
    try {
      await this.sync();
    } catch (err) {
      this.log(`${this.name}: sync failed: ${String((err as Error)?.message ?? err).split('\n')[0]}`);
      failed = true;
    } finally {
      this.running = false;
    }
    if (failed) this.kick(2000);
    else if (this.again) this.kick();
  }
}
