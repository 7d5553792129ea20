/**
 * The Kubernetes channel WebSocket protocols (`v4.channel.k8s.io`, `v5.channel.k8s.io`): every
 * binary message starts with one byte naming its stream; v5 adds CLOSE (255, stream id).
 */
import type { KubeStatus } from './errors.js';

/** Stream ids of the exec / attach protocol. */
export const Channel = { stdin: 0, stdout: 1, stderr: 2, error: 3, resize: 4, close: 255 } as const;

/** Exec subprotocols in order of preference. */
export const execProtocols = ['v5.channel.k8s.io', 'v4.channel.k8s.io'] as const;

/** Prefixes a payload with its channel byte (copies once; payloads are chunk-sized). */
export function encodeFrame(channel: number, data: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(data.length + 1);
  frame[0] = channel;
  frame.set(data, 1);
  return frame;
}

/** The v5 CLOSE frame that half-closes one stream (stdin EOF). */
export function encodeClose(stream: number): Buffer {
  return Buffer.from([Channel.close, stream]);
}

/** Splits a received message into channel and payload (a view, no copy); undefined for an empty message. */
export function decodeFrame(message: Buffer): { channel: number; data: Buffer } | undefined {
  if (message.length === 0) return undefined;
  return { channel: message[0]!, data: message.subarray(1) };
}

/** How an exec ended, as the status channel says: an exit code, or a failure that is not a command exit. */
export type ExecOutcome = { exitCode: number } | { failure: string; reason?: string };

/** Reads the status channel's Status: Success → 0, NonZeroExitCode → its ExitCode cause, else a failure. */
export function execOutcome(status: KubeStatus): ExecOutcome {
  if (status.status === 'Success') return { exitCode: 0 };
  if (status.reason === 'NonZeroExitCode') {
    const cause = status.details?.causes?.find((c) => c.reason === 'ExitCode');
    const code = Number(cause?.message);
    if (Number.isInteger(code)) return { exitCode: code };
  }
  return { failure: status.message || status.reason || 'unknown failure', reason: status.reason };
}
