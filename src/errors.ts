/** Exit codes documented in the README: 0 ok, 1 failure, 2 usage, 3 verification or check failed. */
export const ExitCode = { ok: 0, failure: 1, usage: 2, verification: 3 } as const;

/** Base of every error the plugin reports to a user: one line, lowercase, with a hint. */
export class PluginError extends Error {
  readonly exitCode: number = ExitCode.failure;
  constructor(message: string, readonly hint?: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** Bad flags or arguments. */
export class UsageError extends PluginError {
  override readonly exitCode: number = ExitCode.usage;
}

/** A snapshot or a restored cluster did not pass verification. */
export class VerificationError extends PluginError {
  override readonly exitCode: number = ExitCode.verification;
}

/** `--check` found something wrong (an unhealthy member, an alarm, a nearly full database). */
export class CheckFailedError extends PluginError {
  override readonly exitCode: number = ExitCode.verification;
}

/** The cluster refused a request for lack of permission. */
export class ForbiddenError extends PluginError {}

/** Something the user named (or that discovery needed) does not exist. */
export class NotFoundError extends PluginError {}

/**
 * The API server or the connection to it went away (a restart, a reset, a 5xx, a request that
 * timed out): the request was not wrong, and the same request may work when retried.
 */
export class TransientError extends PluginError {}

/** No etcd member answered: the cluster is down, not the request wrong. */
export class NoHealthyMemberError extends PluginError {}

/** Formats any thrown value as the single line shown to the user. */
export function formatError(err: unknown): string {
  if (err instanceof PluginError) {
    return `error: ${err.message}${err.hint ? `; ${err.hint}` : ''}`;
  }
  const msg = err instanceof Error ? err.message : String(err);
  return `error: ${msg.split('\n')[0]}`;
}

/** Exit code for any thrown value. */
export function exitCodeOf(err: unknown): number {
  return err instanceof PluginError ? err.exitCode : ExitCode.failure;
}
