/**
 * Retrying requests while the API server is away (restarts, connection resets, 5xx). Only
 * failures typed as transient (kube/errors.ts: `isTransient`) are retried; a refusal, a missing
 * object or a wait that timed out is thrown at once. For idempotent work only.
 */
import { isTransient } from './errors.js';

/** How long to keep retrying while the API server does not answer. */
export const RETRY_FOR_MS = 90_000;

/** Runs fn, retrying transient failures with a growing pause for up to RETRY_FOR_MS. */
export async function retrying<T>(fn: () => Promise<T>, onRetry?: (err: unknown) => void): Promise<T> {
  const deadline = Date.now() + RETRY_FOR_MS;
  let pause = 500;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!isTransient(err) || Date.now() > deadline) throw err;
      onRetry?.(err);
      await new Promise((r) => setTimeout(r, pause));
      pause = Math.min(pause * 2, 5000);
    }
  }
}
