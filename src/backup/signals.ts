/** The part of `process` that signal handling needs (injectable for tests). */
export interface SignalHost {
  on(event: 'SIGINT' | 'SIGTERM', listener: (signal: NodeJS.Signals) => void): unknown;
  off(event: 'SIGINT' | 'SIGTERM', listener: (signal: NodeJS.Signals) => void): unknown;
  kill(pid: number, signal: NodeJS.Signals): unknown;
  pid: number;
}

/**
 * On the first SIGINT/SIGTERM runs `onSignal` (synchronous cleanup) and aborts the returned signal
 * so the operation unwinds through its finally blocks; a second signal re-raises it with the
 * default action. Call the returned dispose() when the operation is over.
 */
export function guardSignals(host: SignalHost, onSignal: () => void): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  let seen = false;
  const listener = (sig: NodeJS.Signals) => {
    onSignal();
    if (seen) {
      dispose();
      host.kill(host.pid, sig);
      return;
    }
    seen = true;
    controller.abort(new Error(`interrupted by ${sig}`));
  };
  const dispose = () => {
    host.off('SIGINT', listener);
    host.off('SIGTERM', listener);
  };
  host.on('SIGINT', listener);
  host.on('SIGTERM', listener);
  return { signal: controller.signal, dispose };
}
