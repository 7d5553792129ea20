/**
 * An etcd3 client for one member, reached through a port-forward's local 127.0.0.1 listener. TLS is verified against the member's CA with a
 * server name taken from the member's certificate (one of its SANs).
 */
import { connect as tlsConnect, type PeerCertificate } from 'node:tls';
import { isIP } from 'node:net';
import { Etcd3 } from 'etcd3';

/** A running port-forward: connections to 127.0.0.1:localPort reach the pod's port. */
export interface LocalForward {
  localPort: number;
  /** The most recent error a forwarded connection hit (e.g. the stream was cut). */
  lastError(): Error | undefined;
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
 * HTTP/2 flow-control window of the client (connection and streams). With the default 64 KiB a
 * snapshot stream moves one window per round trip through the port-forward (WebSocket or SPDY
 * through the API server and the kubelet), whatever the bandwidth. A window is what the client
 * may hold unread: 8 MiB stays far below the memory target.
 */
const FLOW_CONTROL = { 'grpc-node.flow_control_window': 8 << 20 };

/** Options for connectEtcdClient. */
export interface EtcdClientOptions {
  port: number;
  /** undefined for a plain-http member. */
  tls?: EtcdTlsMaterial;
  /** Names to prefer when verifying the server certificate (e.g. the member's endpoint host). */
  preferredNames?: string[];
  dialTimeoutMs?: number;
}

/** Connects an etcd3 client to the local forward, verifying TLS with a name from the member's certificate. */
export async function connectEtcdClient(opts: EtcdClientOptions): Promise<Etcd3> {
  const common = { dialTimeout: opts.dialTimeoutMs ?? 15_000 };
  if (!opts.tls) return new Etcd3({ ...common, hosts: `http://127.0.0.1:${opts.port}`, grpcOptions: FLOW_CONTROL });
  const names = await readServerNames(opts.port, opts.tls);
  const serverName = chooseServerName(names, opts.preferredNames ?? []);
  return new Etcd3({
    ...common,
    hosts: `https://127.0.0.1:${opts.port}`,
    credentials: { rootCertificate: opts.tls.ca, certChain: opts.tls.cert, privateKey: opts.tls.key },
    grpcOptions: { ...FLOW_CONTROL, ...(serverName ? { 'grpc.ssl_target_name_override': serverName, 'grpc.default_authority': serverName } : {}) },
  });
}
