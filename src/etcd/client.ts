/**
 * An etcd3 client for one member, reached through a port-forward's local 127.0.0.1 listener. TLS is verified against the member's CA with a
 * server name taken from the member's certificate (one of its SANs).
 */
import { connect as tlsConnect, type PeerCertificate } from 'node:tls';
import { connect as netConnect, isIP } from 'node:net';
import { Etcd3 } from 'etcd3';

/** A running port-forward: connections to 127.0.0.1:localPort reach the pod's port. */
export interface LocalForward {
  localPort: number;
  /** The most recent error a forwarded connection hit (e.g. the stream was cut). */
  lastError(): Error | undefined;
  /** The round trip to the API server measured on the forward's connections (kube/portforward.ts), if known. */
  roundTripMs?(waitMs?: number): Promise<number | undefined>;
  close(): Promise<void>;
}

/** Starts a port-forward to a pod's port. */
export type PodPortForwarder = (namespace: string, pod: string, port: number) => Promise<LocalForward>;

/** PEM client TLS material for etcd. */
export interface EtcdTlsMaterial {
  ca: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/** The names a TLS server certificate is valid for (DNS and IP SANs, then the CN). */
export function certificateNames(cert: Pick<PeerCertificate, 'subjectaltname' | 'subject'>): string[] {
  const names = (cert.subjectaltname ?? '')
    .split(',')
    .map((s) => s.trim())
    .map((s) => (s.startsWith('DNS:') ? s.slice(4) : s.startsWith('IP Address:') ? s.slice(11) : ''))
    .filter((s) => s !== '' && !s.includes('*'));
  const cn = cert.subject?.CN;
  if (names.length === 0 && typeof cn === 'string') names.push(cn);
  return names;
}

/** Picks the server name to verify: `preferred` when the certificate lists it, else a DNS name, else an IP. */
export function chooseServerName(names: string[], preferred: string[]): string | undefined {
  for (const p of preferred) if (names.includes(p) && isIP(p) === 0) return p;
  return names.find((n) => isIP(n) === 0) ?? names.find((n) => preferred.includes(n)) ?? names[0];
}

/** Handshakes once (chain verified against the CA) to read the names in the member's serving certificate. */
export function readServerNames(port: number, tls: EtcdTlsMaterial): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port,
      ca: tls.ca,
      cert: tls.cert,
      key: tls.key,
      ALPNProtocols: ['h2'],
      rejectUnauthorized: true,
      checkServerIdentity: () => undefined,
    });
    socket.setTimeout(15_000, () => socket.destroy(new Error('TLS handshake with etcd timed out')));
    socket.once('secureConnect', () => {
      const names = certificateNames(socket.getPeerCertificate());
      socket.end();
      socket.destroy();
      resolve(names);
    });
    socket.once('error', reject);
  });
}

/**
 * HTTP/2 flow-control window of the client (connection and streams), from the round trip to the
 * API server. With grpc-js's default 64 KiB a snapshot stream moves one window per round trip
 * through the port-forward (WebSocket or SPDY through the API server and the kubelet), whatever
 * the bandwidth; what the window holds is data the client may receive before it reads it.
 * - Near (a round trip up to 8 ms): 4 MiB. On the local test cluster (2 cores, the client the
 *   bottleneck) an 8 MiB window stays full, and the buffers that wait in it pile up as garbage
 *   outside V8's heap until a full collection: arrayBuffers peaked at 31-38 MiB against 8-11 MiB
 *   with 4 MiB. A 525 MiB stream backup peaked at 113 MiB RSS against 129 MiB with 8 MiB, in
 *   1.03x the wall time (0.98-1.25; farm-bench, 6 pairs, node running the bundle).
 * - Far (16 ms or more) or unknown: 8 MiB, as before. Through a proxy adding 30 ms of round trip,
 *   4 MiB took 10.7-12.8 s to copy what 8 MiB copied in 7.6-9.2 s; there the link is the
 *   bottleneck, the window does not stay full, and memory stays low with 8 MiB too.
 * - In between: proportional.
 */
export function flowControlWindow(roundTripMs: number | undefined): number {
  const near = 4 << 20;
  const far = 8 << 20;
  if (roundTripMs === undefined || !Number.isFinite(roundTripMs)) return far;
  const scaled = Math.round(roundTripMs * (far / 16));
  return Math.min(far, Math.max(near, scaled));
}

/** A client, and the flow-control window it was given (with the round trip that chose it). */
export interface EtcdConnection {
  client: Etcd3;
  flowControlWindow: number;
  roundTripMs?: number;
}

/** Options for connectEtcdClient. */
export interface EtcdClientOptions {
  port: number;
  /** undefined for a plain-http member. */
  tls?: EtcdTlsMaterial;
  /** Names to prefer when verifying the server certificate (e.g. the member's endpoint host). */
  preferredNames?: string[];
  dialTimeoutMs?: number;
  /** The forward's round trip (LocalForward.roundTripMs); asked once a first connection went through it. */
  roundTripMs?: (waitMs?: number) => Promise<number | undefined>;
}

/**
 * Connects an etcd3 client to the local forward, verifying TLS with a name from the member's
 * certificate. A first connection goes through the forward before the client is made, so that its
 * tunnel measures the round trip that sizes the window: the TLS handshake that reads the
 * certificate's names, or for a plain member one `GET /version`, a request etcd answers (a
 * connection closed unused is logged by etcd 3.4 as rejected on a TLS port).
 */
export async function connectEtcdClient(opts: EtcdClientOptions): Promise<EtcdConnection> {
  let names: string[] = [];
  if (opts.tls) names = await readServerNames(opts.port, opts.tls);
  else if (opts.roundTripMs) await askVersion(opts.port).catch(() => undefined);
  const roundTripMs = await opts.roundTripMs?.();
  const window = flowControlWindow(roundTripMs);
  const common = { dialTimeout: opts.dialTimeoutMs ?? 15_000 };
  const flow = { 'grpc-node.flow_control_window': window };
  let client: Etcd3;
  if (!opts.tls) client = new Etcd3({ ...common, hosts: `http://127.0.0.1:${opts.port}`, grpcOptions: flow });
  else {
    const serverName = chooseServerName(names, opts.preferredNames ?? []);
    client = new Etcd3({
      ...common,
      hosts: `https://127.0.0.1:${opts.port}`,
      credentials: { rootCertificate: opts.tls.ca, certChain: opts.tls.cert, privateKey: opts.tls.key },
      grpcOptions: { ...flow, ...(serverName ? { 'grpc.ssl_target_name_override': serverName, 'grpc.default_authority': serverName } : {}) },
    });
  }
  return { client, flowControlWindow: window, ...(roundTripMs !== undefined ? { roundTripMs } : {}) };
}

/** One plain HTTP/1.1 `GET /version` to a member's client port; settles when the answer ends (fails after 2 s). */
function askVersion(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(port, '127.0.0.1');
    socket.setTimeout(2_000, () => socket.destroy(new Error('etcd did not answer GET /version')));
    socket.once('connect', () => socket.write('GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'));
    socket.on('data', () => {});
    socket.once('end', () => {
      socket.destroy();
      resolve();
    });
    socket.once('error', reject);
  });
}
