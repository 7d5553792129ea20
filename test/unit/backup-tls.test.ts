// The stream transport's client certificate: each file from the Secret key the pod spec puts at
// its path (discovery's secretFiles), else through a shell in the member; a distroless member
// whose file no Secret holds fails in one line that names why and what to pass.
import { describe, expect, it } from 'vitest';
import { tlsResolver, type SecretDataReader } from '../../src/backup/tls.js';
import { formatError, PluginError } from '../../src/errors.js';
import type { EtcdMember, SecretKeyRef } from '../../src/etcd/topology.js';
import { ExecFailedError, type ContainerCommand } from '../../src/kube/exec.js';

const CA = '/etc/etcd/tls/ca.crt';
const CRT = '/etc/etcd/tls/client.crt';
const KEY = '/etc/etcd/tls/client.key';
const b64 = (s: string) => Buffer.from(s).toString('base64');

function member(secretFiles?: Record<string, SecretKeyRef[]>): EtcdMember {
  return {
    pod: 'etcd-0', namespace: 'ns1', container: 'etcd', name: 'etcd-0', endpoint: 'https://127.0.0.1:2379', clientPort: 2379,
    peerUrl: 'http://etcd-0.etcd:2380', dataDir: '/var/run/etcd', clientTlsEnabled: true, image: 'gcr.io/etcd-development/etcd:v3.5.16',
    tls: { caFile: CA, certFile: CRT, keyFile: KEY },
    ...(secretFiles ? { secretFiles } : {}),
  };
}

/** Secrets by name; records every read. */
function secrets(data: Record<string, Record<string, string>>): { read: SecretDataReader; reads: string[] } {
  const reads: string[] = [];
  return { reads, read: async (ns, name) => (reads.push(`${ns}/${name}`), data[name]) };
}

/** A member container whose shell prints `files`, or that has no shell. */
function container(files: Record<string, string> | 'no shell'): { run: ContainerCommand; argv: string[][] } {
  const argv: string[][] = [];
  const run: ContainerCommand = async (_t, a) => {
    argv.push(a);
    if (files === 'no shell') {
      throw new ExecFailedError('exec in pod "etcd-0" failed: exec: "sh": executable file not found in $PATH', 'check the container name and that the image has this command');
    }
    const content = files[a[a.length - 1]!];
    return content === undefined ? { exitCode: 1, stdout: '', stderr: `sh: can't open ${a[a.length - 1]}: no such file\n` } : { exitCode: 0, stdout: content, stderr: '' };
  };
  return { run, argv };
}

describe('tlsResolver', () => {
  it('reads each file from the first Secret key that exists, each Secret once, and never execs', async () => {
    const s = secrets({ 'etcd-ca': { 'ca.crt': b64('CA') }, 'etcd-client': { 'tls.crt': b64('CRT'), 'tls.key': b64('KEY') } });
    const c = container('no shell');
    const resolve = tlsResolver({ secretData: s.read, run: c.run }, {});
    const tls = await resolve(member({
      [CA]: [{ secretName: 'gone', key: 'ca.crt' }, { secretName: 'etcd-client', key: 'ca.crt' }, { secretName: 'etcd-ca', key: 'ca.crt' }],
      [CRT]: [{ secretName: 'etcd-client', key: 'tls.crt' }],
      [KEY]: [{ secretName: 'etcd-client', key: 'tls.key' }],
    }));
    expect({ ca: tls?.ca.toString(), cert: tls?.cert?.toString(), key: tls?.key?.toString() }).toEqual({ ca: 'CA', cert: 'CRT', key: 'KEY' });
    expect(s.reads).toEqual(['ns1/gone', 'ns1/etcd-client', 'ns1/etcd-ca']);
    expect(c.argv).toEqual([]);
  });

  it('reads a file no Secret holds through the member\'s shell (builtins only), the others from their Secret', async () => {
    const s = secrets({ 'etcd-client': { 'tls.crt': b64('CRT'), 'tls.key': b64('KEY') } });
    const c = container({ [CA]: 'CA\n' });
    const tls = await tlsResolver({ secretData: s.read, run: c.run }, {})(member({
      [CRT]: [{ secretName: 'etcd-client', key: 'tls.crt' }],
      [KEY]: [{ secretName: 'etcd-client', key: 'tls.key' }],
    }));
    expect(tls?.ca.toString()).toBe('CA\n');
    expect(c.argv).toEqual([['sh', '-c', expect.stringMatching(/^while IFS= read -r l/), 'sh', CA]]);
  });

  it.each([
    {
      case: 'no Secret volume puts the file there',
      secretFiles: undefined,
      message: `cannot read "${CA}" from pod "etcd-0": no Secret volume puts it in the container, and the image has no shell to read it with`,
    },
    {
      case: 'the Secrets behind it lack the key',
      secretFiles: { [CA]: [{ secretName: 'etcd-tls', key: 'ca.crt' }, { secretName: 'gone', key: 'ca.crt' }] },
      message: `cannot read "${CA}" from pod "etcd-0": secret "etcd-tls" has no key "ca.crt", secret "gone" has no key "ca.crt", and the image has no shell to read it with`,
    },
  ])('on an image without a shell, when $case: one line with the way out', async ({ secretFiles, message }) => {
    const resolve = tlsResolver({ secretData: secrets({ 'etcd-tls': { 'tls.crt': b64('CRT') } }).read, run: container('no shell').run }, {});
    const err = await resolve(member(secretFiles)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PluginError);
    expect(formatError(err)).toBe(`error: ${message}; pass --cacert, --cert and --key (copies of the client certificate files)`);
  });

  it('a file the shell cannot open fails with the shell\'s first line; an exec that fails otherwise is not called a missing shell', async () => {
    const missing = await tlsResolver({ secretData: secrets({}).read, run: container({}).run }, {})(member()).catch((e: unknown) => e);
    expect(formatError(missing)).toMatch(new RegExp(`^error: cannot read "${CA}" from pod "etcd-0": sh: can't open ${CA}: no such file; pass --cacert`));
    const refused = new ExecFailedError('exec in pod "etcd-0" failed: container "etcd" is not running', 'wait for the pod');
    const other = await tlsResolver({ secretData: secrets({}).read, run: async () => { throw refused; } }, {})(member()).catch((e: unknown) => e);
    expect(other).toBe(refused);
  });

  it('local files given with --cacert, --cert and --key win, and nothing is read from the cluster', async () => {
    const s = secrets({});
    const c = container('no shell');
    const err = await tlsResolver({ secretData: s.read, run: c.run }, { cacert: '/nonexistent/ca.crt' })(member()).catch((e: unknown) => e);
    expect(formatError(err)).toBe('error: cannot read "/nonexistent/ca.crt": ENOENT; check --cacert, --cert and --key');
    expect([s.reads, c.argv]).toEqual([[], []]);
  });
});
