import { constants } from 'node:os';
import { PluginError } from '../errors.js';

/** The part of `process` that signal handling needs (injectable for tests). */
export interface SignalHost {
  on(event: 'SIGINT' | 'SIGTERM', listener: (signal: NodeJS.Signals) => void): unknown;
  off(event: 'SIGINT' | 'SIGTERM', listener: (signal: NodeJS.Signals) => void): unknown;
  kill(pid: number, signal: NodeJS.Signals): unknown;
  pid: number;
}

/** The operation was stopped by SIGINT/SIGTERM; exits 128 + the signal number (130 for Ctrl-C, 143 for SIGTERM), as shells do. */
export class InterruptedError extends PluginError {
  override readonly exitCode: number;
  constructor(
    message: string,
    readonly signalName: NodeJS.Signals,
    hint?: string,
  ) {
    super(message, hint);
    this.exitCode = 128 + (constants.signals[signalName] ?? 2);
  }
}

/** What guardSignals hands back. */
export interface SignalGuard {
  /** Aborted (reason: an InterruptedError) on the first SIGINT/SIGTERM. */
  signal: AbortSignal;
  /** The signal that arrived, if any. */
  received(): NodeJS.Signals | undefined;
  dispose(): void;
}

/**
 * On the first SIGINT/SIGTERM runs `onSignal` (synchronous cleanup) and aborts the returned signal
 * so the operation unwinds through its finally blocks (which may still clean up in the cluster);
 * a second signal re-raises it with the default action. Call dispose() when the operation is over.
 */
export function guardSignals(host: SignalHost, onSignal: (signal: NodeJS.Signals, first: boolean) => void): SignalGuard {
  const controller = new AbortController();
  let seen: NodeJS.Signals | undefined;
  const listener = (sig: NodeJS.Signals) => {
    onSignal(sig, seen === undefined);
    if (seen) {
      dispose();
      host.kill(host.pid, sig);
      return;
    }
    seen = sig;
    controller.abort(new InterruptedError(`interrupted by ${sig}`, sig));
  };
  const dispose = () => {
    host.off('SIGINT', listener);
    host.off('SIGTERM', listener);
  };
  host.on('SIGINT', listener);
  host.on('SIGTERM', listener);
  return { signal: controller.signal, received: () => seen, dispose };
}
