import { Transform, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PluginError } from '../errors.js';
import { connectEtcdClient, type EtcdTlsMaterial, type PodPortForwarder } from '../etcd/client.js';
import type { EtcdMember } from '../etcd/topology.js';
import type { SnapshotTransport, TransportContext, TransportResult } from './transport.js';

/** Finds the client TLS material for a member (flags, the Secret keys behind its cert files, ...): backup/tls.ts. */
export type TlsResolver = (member: EtcdMember) => Promise<EtcdTlsMaterial | undefined>;

/** Options for the stream transport. */
export interface StreamTransportOptions {
  forward: PodPortForwarder;
  resolveTls: TlsResolver;
}

const SHA_TRAILER = 32;

/** Port-forward to the member's client port and stream the Maintenance/Snapshot RPC with etcd3. */
export function streamTransport(opts: StreamTransportOptions): SnapshotTransport {
  return {
    kind: 'stream',
    overlaps: true,
    async take(member: EtcdMember, sink: Writable, ctx: TransportContext): Promise<TransportResult> {
      const where = `pod "${member.pod}"`;
      const tls = member.clientTlsEnabled ? await opts.resolveTls(member) : undefined;
      if (member.clientTlsEnabled && !tls) {
        throw new PluginError(`no client certificate found for ${where}`, 'pass --cacert, --cert and --key');
      }
      const forward = await opts.forward(member.namespace, member.pod, member.clientPort);
      const connection = await connectEtcdClient({
        port: forward.localPort,
        tls,
        preferredNames: [hostOf(member.endpoint), `${member.pod}`, 'localhost'].filter((n): n is string => !!n),
        ...(forward.roundTripMs ? { roundTripMs: (waitMs?: number) => forward.roundTripMs!(waitMs) } : {}),
      }).catch(async (err: Error) => {
        await forward.close();
        throw new PluginError(`cannot reach etcd in ${where} through a port-forward: ${describe(err, forward.lastError())}`, 'check the member with `kubectl etcd status`');
      });
      const { client } = connection;
      let expectedSize: number | undefined;
      try {
        const rtt = connection.roundTripMs === undefined ? 'round trip unknown' : `round trip ${connection.roundTripMs.toFixed(1)} ms`;
        ctx.log.debug(1, `streaming the snapshot of ${where} over a port-forward to port ${member.clientPort} (${rtt}: HTTP/2 window ${connection.flowControlWindow >> 20} MiB)`);
        const rpc = (await client.maintenance.snapshot()) as unknown as Readable;
        const abort = () => rpc.destroy(ctx.signal.reason as Error);
        ctx.signal.addEventListener('abort', abort, { once: true });
        const blobs = new Transform({
          writableObjectMode: true,
          transform(msg: { blob?: Buffer; remaining_bytes?: string | number }, _e, cb) {
            const blob = msg.blob ?? Buffer.alloc(0);
            if (expectedSize === undefined) {
              // etcd announces the db size in remaining_bytes, then appends a 32-byte sha256 message.
              expectedSize = blob.length + Number(msg.remaining_bytes ?? 0) + SHA_TRAILER;
              ctx.onTotal(expectedSize);
            }
            ctx.onBytes(blob.length);
            cb(null, blob);
          },
        });
        try {
          await pipeline(rpc, blobs, sink);
        } catch (err) {
          throw new PluginError(
            `the snapshot stream from ${where} broke: ${describe(err as Error, forward.lastError())}`,
            'run the backup again; check the network to the cluster',
          );
        } finally {
          ctx.signal.removeEventListener('abort', abort);
        }
        return { expectedSize };
      } finally {
        client.close();
        await forward.close();
      }
    },
  };
}

function hostOf(endpoint: string): string | undefined {
  try {
    return new URL(endpoint).hostname.replace(/^\[|\]$/g, '');
  } catch {
    return undefined;
  }
}

function describe(err: Error, forwardError: Error | undefined): string {
  const msg = (forwardError?.message ?? err.message).split('\n')[0] ?? 'unknown error';
  return msg.replace(/^\d+ [A-Z_]+: /, '');
}
