// Port-forward relay, run by the API server inside a pod's network namespace
// (`nsenter --target SANDBOXPID --net -- node relay.mjs PORT`): connects to 127.0.0.1:PORT and
// copies stdin to the connection and the connection to stdout, with backpressure both ways.
// A failed connect prints the Go-style dial error on stderr and exits 1.
import net from 'node:net';

const port = Number(process.argv[2]);
const sock = net.connect({ host: '127.0.0.1', port });
sock.once('connect', () => {
  process.stdin.pipe(sock);
  sock.pipe(process.stdout);
});
sock.once('error', (err) => {
  const why = err.code === 'ECONNREFUSED' ? 'connect: connection refused' : err.message;
  process.stderr.write(`dial tcp4 127.0.0.1:${port}: ${why}`);
  process.exit(1);
});
sock.once('close', () => process.exit(0));
process.stdout.on('error', () => process.exit(0));
