#!/usr/local/bin/node
// Stand-in for kube-apiserver in the image gcr.io/gke-on-prem-release/kube-apiserver.
// Differs from the real one: it serves no Kubernetes API at all. It reads the etcd flags
// (--etcd-servers, --etcd-cafile, --etcd-certfile, --etcd-keyfile, --etcd-prefix), writes the key
// <prefix>/sim-heartbeat/<hostname> every 100 ms through etcd's v3 JSON gateway (/v3/kv/put), and
// answers /readyz, /livez and /healthz on --secure-port (HTTPS when --tls-cert-file and
// --tls-private-key-file are given, plain HTTP otherwise) with 200 only while the last write
// succeeded within a second; and records that last success in /sim-apiserver.json (apiserver/gate.ts).
// Other flags are accepted and ignored.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';

function parseFlags(argv) {
  const flags = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) continue;
    const eq = a.indexOf('=');
    if (eq > 0) flags[a.slice(2, eq)] = a.slice(eq + 1);
    else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) flags[a.slice(2)] = argv[++i];
    else flags[a.slice(2)] = 'true';
  }
  return flags;
}

const flags = parseFlags(process.argv.slice(2));
const servers = (flags['etcd-servers'] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
if (servers.length === 0) {
  console.error('kube-apiserver: --etcd-servers must be set');
  process.exit(1);
}
const read = (f) => (f ? readFileSync(f) : undefined);
const tls = { ca: read(flags['etcd-cafile']), cert: read(flags['etcd-certfile']), key: read(flags['etcd-keyfile']) };
const prefix = (flags['etcd-prefix'] ?? '/registry').replace(/\/$/, '');
const key = Buffer.from(`${prefix}/sim-heartbeat/${os.hostname()}`).toString('base64');
let lastOk = 0;
let next = 0;

function put(server) {
  return new Promise((resolve, reject) => {
    const url = new URL('/v3/kv/put', server);
    const body = JSON.stringify({ key, value: Buffer.from(new Date().toISOString()).toString('base64') });
    const mod = url.protocol === 'https:' ? https : http;
    const req = mod.request(url, { method: 'POST', timeout: 1000, ...tls, headers: { 'content-type': 'application/json' } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

// The last write that went through, for the simulator's API server to follow (apiserver/gate.ts);
// written beside and renamed, so it is never read half-written. A root it may not write is skipped.
function record() {
  try {
    writeFileSync('/sim-apiserver.json.tmp', JSON.stringify({ lastOk }));
    renameSync('/sim-apiserver.json.tmp', '/sim-apiserver.json');
  } catch {
    // not root, or a read-only root: nothing follows this one
  }
}

async function beat() {
  const server = servers[next++ % servers.length];
  try {
    await put(server);
    if (Date.now() - lastOk > 2000) console.log(`heartbeat to ${server} ok`);
    lastOk = Date.now();
    record();
  } catch (err) {
    console.error(`heartbeat to ${server} failed: ${err.message}`);
  }
  setTimeout(beat, 100);
}

function handler(req, res) {
  const ready = Date.now() - lastOk < 1000;
  const path = (req.url ?? '/').split('?')[0];
  if (['/readyz', '/livez', '/healthz'].includes(path)) {
    res.writeHead(ready ? 200 : 500, { 'content-type': 'text/plain' });
    res.end(ready ? 'ok' : 'etcd not writable');
    return;
  }
  res.writeHead(404);
  res.end();
}

const port = Number(flags['secure-port'] ?? 6443);
const host = flags['bind-address'] && flags['bind-address'] !== '0.0.0.0' ? flags['bind-address'] : undefined;
const server = flags['tls-cert-file'] && flags['tls-private-key-file']
  ? https.createServer({ cert: read(flags['tls-cert-file']), key: read(flags['tls-private-key-file']) }, handler)
  : http.createServer(handler);
server.listen(port, host, () => console.log(`kube-apiserver stand-in listening on ${port}, etcd ${servers.join(',')}`));
process.on('SIGTERM', () => { server.close(); process.exit(0); });
beat();
