import { formatBytes, formatDuration } from './bytes.js';

/** The terminal stream progress is drawn on (normally process.stderr). */
export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
}

/** A byte-count progress indicator. */
export interface Progress {
  /** Records that `bytes` more bytes were transferred. */
  add(bytes: number): void;
  /** Sets the expected total once it is known. */
  setTotal(total: number): void;
  /** Clears the line; call once at the end (success or failure). */
  done(): void;
}

/** Options for createProgress; `now` returns milliseconds and is injectable for tests. */
export interface ProgressOptions {
  stream: ProgressStream;
  label: string;
  total?: number;
  now?: () => number;
  env?: Record<string, string | undefined>;
  /** Minimum milliseconds between redraws. */
  intervalMs?: number;
}

/** Draws bytes, rate and ETA on one line, only when the stream is a TTY; NO_COLOR disables colour. */
export function createProgress(opts: ProgressOptions): Progress {
  const now = opts.now ?? Date.now;
  const interval = opts.intervalMs ?? 200;
  const enabled = opts.stream.isTTY === true;
  const colour = enabled && !opts.env?.NO_COLOR && opts.env?.TERM !== 'dumb';
  const start = now();
  let total = opts.total;
  let done = 0;
  let lastDraw = -Infinity;
  let drawn = false;
  const draw = () => {
    const elapsed = (now() - start) / 1000;
    const rate = elapsed > 0 ? done / elapsed : 0;
    const parts = [opts.label, total ? `${formatBytes(done)} / ${formatBytes(total)}` : formatBytes(done)];
    if (rate > 0) parts.push(`${formatBytes(rate)}/s`);
    if (total && rate > 0 && total > done) parts.push(`ETA ${formatDuration((total - done) / rate)}`);
    const text = parts.join('  ');
    opts.stream.write(`\r\x1b[K${colour ? `\x1b[36m${text}\x1b[0m` : text}`);
    drawn = true;
  };
  return {
    add(bytes) {
      done += bytes;
      if (!enabled) return;
      const t = now();
      if (t - lastDraw >= interval) {
        lastDraw = t;
        draw();
      }
    },
    setTotal(value) {
      total = value;
    },
    done() {
      if (enabled && drawn) opts.stream.write('\r\x1b[K');
    },
  };
}
