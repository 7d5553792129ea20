import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadKubeConfig, parseRequestTimeout } from '../../src/kube/config.js';
import { NotFoundError, UsageError } from '../../src/errors.js';
import { kubeContextFromOptions } from '../../src/cli/kubecontext.js';
import { verbosityOf } from '../../src/cli/kubeflags.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kube-config-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, body: object): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, JSON.stringify({ apiVersion: 'v1', kind: 'Config', ...body }));
  return file;
}

const fileA = () =>
  write('a.yaml', {
    'current-context': 'ctx-a',
    clusters: [
      { name: 'shared', cluster: { server: 'https://a.example:6443', 'certificate-authority': 'ca-a.crt' } },
      { name: 'only-a', cluster: { server: 'https://only-a:6443' } },
    ],
    users: [{ name: 'alice', user: { token: 'token-a' } }],
    contexts: [
      { name: 'ctx-a', context: { cluster: 'shared', user: 'alice', namespace: 'ns-a' } },
      { name: 'dup', context: { cluster: 'shared', user: 'alice', namespace: 'from-a' } },
    ],
  });
const fileB = () =>
  write('b.yaml', {
    'current-context': 'ctx-b',
    clusters: [
      { name: 'shared', cluster: { server: 'https://b.example:6443' } },
      { name: 'only-b', cluster: { server: 'https://only-b:6443', 'insecure-skip-tls-verify': true } },
    ],
    users: [
      { name: 'alice', user: { token: 'token-b' } },
      { name: 'bob', user: { token: 'token-bob' } },
    ],
    contexts: [
      { name: 'ctx-b', context: { cluster: 'only-b', user: 'bob' } },
      { name: 'dup', context: { cluster: 'only-b', user: 'bob', namespace: 'from-b' } },
    ],
  });

describe('loadKubeConfig merge rules (KUBECONFIG with several files)', () => {
  it('takes current-context from the first file that sets it', () => {
    const r = loadKubeConfig({}, { KUBECONFIG: `${fileA()}:${fileB()}` });
    expect(r.contextName).toBe('ctx-a');
    expect(r.namespace).toBe('ns-a');
    expect(r.kubeConfig.getCurrentCluster()?.server).toBe('https://a.example:6443');
    expect(r.kubeConfig.getCurrentUser()?.token).toBe('token-a');
  });

  it('lets the first file win for a cluster, user or context defined twice', () => {
    const r = loadKubeConfig({ context: 'dup' }, { KUBECONFIG: `${fileB()}:${fileA()}` });
    expect(r.namespace).toBe('from-b');
    expect(r.kubeConfig.getCurrentCluster()?.server).toBe('https://only-b:6443');
    const viaA = loadKubeConfig({ context: 'ctx-a' }, { KUBECONFIG: `${fileB()}:${fileA()}` });
    expect(viaA.kubeConfig.getCurrentCluster()?.server).toBe('https://b.example:6443');
    expect(viaA.kubeConfig.getCurrentUser()?.token).toBe('token-b');
  });

  it('reaches contexts defined only in a later file and skips missing files', () => {
    const r = loadKubeConfig({ context: 'ctx-b' }, { KUBECONFIG: `${path.join(dir, 'missing')}:${fileA()}:${fileB()}` });
    expect(r.kubeConfig.getCurrentUser()?.name).toBe('bob');
    expect(r.kubeConfig.getCurrentCluster()?.skipTLSVerify).toBe(true);
    expect(r.namespace).toBe('default');
  });

  it('resolves relative certificate paths against the file that names them', () => {
    const r = loadKubeConfig({}, { KUBECONFIG: fileA() });
    expect(r.kubeConfig.getCurrentCluster()?.caFile).toBe(path.join(dir, 'ca-a.crt'));
  });

  it('prefers --kubeconfig over KUBECONFIG and ~/.kube/config over nothing', () => {
    const b = fileB();
    expect(loadKubeConfig({ kubeconfig: b }, { KUBECONFIG: fileA() }).contextName).toBe('ctx-b');
    fs.mkdirSync(path.join(dir, '.kube'));
    fs.copyFileSync(b, path.join(dir, '.kube', 'config'));
    expect(loadKubeConfig({}, { HOME: dir }).contextName).toBe('ctx-b');
  });
});

describe('loadKubeConfig flag overrides', () => {
  it('applies --namespace, --cluster, --user, --server, --token and --certificate-authority', () => {
    const r = loadKubeConfig(
      { namespace: 'x', cluster: 'only-a', user: 'bob', token: 'flag-token', certificateAuthority: 'flag-ca.crt' },
      { KUBECONFIG: `${fileA()}:${fileB()}` },
    );
    expect(r.namespace).toBe('x');
    expect(r.kubeConfig.getCurrentCluster()?.server).toBe('https://only-a:6443');
    expect(r.kubeConfig.getCurrentCluster()?.caFile).toBe(path.resolve('flag-ca.crt'));
    expect(r.kubeConfig.getCurrentUser()?.token).toBe('flag-token');
    const s = loadKubeConfig({ server: 'https://127.0.0.1:1' }, { KUBECONFIG: fileA() });
    expect(s.kubeConfig.getCurrentCluster()?.server).toBe('https://127.0.0.1:1');
  });

  it('sets insecure-skip-tls-verify only when given, clearing the CA like kubectl', () => {
    expect(loadKubeConfig({}, { KUBECONFIG: fileA() }).kubeConfig.getCurrentCluster()?.skipTLSVerify).toBe(false);
    const c = loadKubeConfig({ insecureSkipTlsVerify: true }, { KUBECONFIG: fileA() }).kubeConfig.getCurrentCluster();
    expect(c?.skipTLSVerify).toBe(true);
    expect(c?.caFile).toBeUndefined();
  });

  it.each([
    [{ context: 'nope' }, 'context "nope" not found in kubeconfig'],
    [{ cluster: 'nope' }, 'cluster "nope" not found in kubeconfig'],
    [{ user: 'nope' }, 'user "nope" not found in kubeconfig'],
  ])('names what is missing in one line (%o)', (flags, message) => {
    const run = () => loadKubeConfig(flags, { KUBECONFIG: fileA() });
    expect(run).toThrow(NotFoundError);
    expect(run).toThrow(message);
  });

  it('fails clearly when there is no kubeconfig at all, and when --kubeconfig is missing', () => {
    expect(() => loadKubeConfig({}, { HOME: dir })).toThrow(UsageError);
    expect(() => loadKubeConfig({ kubeconfig: path.join(dir, 'nope') }, {})).toThrow(/kubeconfig ".*nope" cannot be read/);
  });
});

describe('parseRequestTimeout', () => {
  it.each([
    [undefined, undefined],
    ['0', undefined],
    ['5', 5000],
    ['30s', 30_000],
    ['1m30s', 90_000],
    ['250ms', 250],
    ['1h', 3_600_000],
  ])('%s → %s ms', (input, ms) => {
    expect(parseRequestTimeout(input)).toBe(ms);
  });

  it('rejects nonsense as a usage error', () => {
    expect(() => parseRequestTimeout('soon')).toThrow(UsageError);
  });
});

describe('kubectl flags as the CLI parses them', () => {
  it.each([
    [undefined, 0],
    ['6', 6],
    ['=6', 6], // -v=6, as kubectl users type it
    ['x', 0],
  ])('-v %s is level %i', (v, level) => {
    expect(verbosityOf({ v })).toBe(level);
  });

  it('logs the chosen context, server and namespace at -v 5 only, on the sink it is given', () => {
    const kubeconfig = fileA();
    const lines: string[] = [];
    const sink = { write: (s: string) => lines.push(s) };
    kubeContextFromOptions({ kubeconfig, v: '4' }, {}, sink);
    expect(lines).toEqual([]);
    kubeContextFromOptions({ kubeconfig, v: '5', namespace: 'x' }, {}, sink);
    expect(lines).toEqual(['I5 context "ctx-a" server https://a.example:6443 namespace "x"\n']);
  });
});
