import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { ok, requireCommand, requireRoot, run, startCluster, type CommandResult, type SimCluster } from '../sim/harness.js';
import { buildIfStale } from './plugin-build.js';

// kubectl's manners, judged through real kubectl and the built plugin (bin/ on PATH): two local
// test clusters in one merged KUBECONFIG, --context picking the second; what a pipe and a
// terminal get on stderr; and shell completion as kubectl asks for it (`kubectl __complete etcd …`).
const repo = path.resolve(import.meta.dirname, '../..');
let first: SimCluster;
let second: SimCluster;
let work: string;
let env: NodeJS.ProcessEnv;

function kubectl(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<CommandResult> {
  return run('kubectl', args, { env: { ...env, ...extraEnv }, timeoutMs: 180_000 });
}

/** Requests user "admin" made to a cluster for pods/exec or pods/portforward, from its audit log. */
async function adminPodStreams(cluster: SimCluster): Promise<number> {
  const lines = (await fs.readFile(path.join(cluster.dir, 'audit.log'), 'utf8')).split('\n').filter(Boolean);
  return lines.map((l) => JSON.parse(l)).filter((e) => e.user === 'admin' && e.resource === 'pods' && ['exec', 'portforward'].includes(e.subresource)).length;
}

/** Quotes words for /bin/sh. */
const sh = (words: string[]) => words.map((w) => `'${w.replace(/'/g, `'\\''`)}'`).join(' ');

beforeAll(async () => {
  requireRoot();
  requireCommand('kubectl', 'install kubectl 1.30 or newer');
  requireCommand('script', 'apt-get install -y bsdutils (util-linux script gives the test a terminal)');
  const built = await buildIfStale(repo);
  if (built && built.code !== 0) throw new Error(`npm run build failed: ${built.stdout}${built.stderr}`);
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'manners-e2e-'));
  first = await startCluster({ fixtures: ['single'] });
  second = await startCluster({ fixtures: ['single'] });
  // Both clusters name everything "sim"/"admin": rename the second's entries to "other" (its
  // context carrying namespace uc1), and keep its current-context, which the first file overrides.
  const doc = parse(await fs.readFile(second.kubeconfig, 'utf8'));
  doc.clusters[0].name = 'other';
  doc.users[0].name = 'other-admin';
  doc.contexts[0] = { name: 'other', context: { cluster: 'other', user: 'other-admin', namespace: 'uc1' } };
  doc['current-context'] = 'other';
  const otherConfig = path.join(work, 'other.kubeconfig');
  await fs.writeFile(otherConfig, stringify(doc), { mode: 0o600 });
  env = { ...process.env, PATH: `${path.join(repo, 'bin')}${path.delimiter}${process.env.PATH}`, KUBECONFIG: [first.kubeconfig, otherConfig].join(path.delimiter) };
  delete env.NO_COLOR;
  // From a manifest (sent as JSON): the local test cluster does not take protobuf request bodies.
  await second.kubectl(['create', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'only-in-other' } }) }).then(ok);
}, 600_000);

afterAll(async () => {
  await first?.down();
  await second?.down();
  if (work) await fs.rm(work, { recursive: true, force: true });
});

describe('merged KUBECONFIG and --context', () => {
  it('backs up the cluster --context names, in that context’s namespace, and nothing on the other', async () => {
    const before = [await adminPodStreams(first), await adminPodStreams(second)];
    const file = path.join(work, 'other.db');
    const r = await kubectl(['etcd', 'backup', '--context', 'other', '-f', file, '-o', 'json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const viaOther = JSON.parse(r.stdout);
    expect(viaOther.namespace).toBe('uc1');
    expect(await adminPodStreams(first)).toBe(before[0]);
    expect(await adminPodStreams(second)).toBeGreaterThan(before[1]!);

    // Without --context the first file's current-context wins: the first cluster only.
    const afterOther = await adminPodStreams(second);
    const d = await kubectl(['etcd', 'backup', '-n', 'uc1', '-f', path.join(work, 'default.db'), '-o', 'json']);
    expect(d.code).toBe(0);
    expect(await adminPodStreams(first)).toBeGreaterThan(before[0]!);
    expect(await adminPodStreams(second)).toBe(afterOther);
  });

  it('--cluster and --user pick entries of another context, as kubectl does', async () => {
    const before = [await adminPodStreams(first), await adminPodStreams(second)];
    const r = await kubectl(['etcd', 'status', '--cluster', 'other', '--user', 'other-admin', '-n', 'uc1', '-o', 'json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).members.map((m: { pod: string }) => m.pod)).toEqual(['kube-etcd-0']);
    expect(await adminPodStreams(first)).toBe(before[0]);
    expect(await adminPodStreams(second)).toBeGreaterThan(before[1]!);
  });

  it('rejects a malformed --request-timeout as a usage error (exit 2)', async () => {
    const r = await kubectl(['etcd', 'status', '-n', 'uc1', '--request-timeout', 'soon']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('error: invalid --request-timeout "soon"; use a duration such as 30s, 1m or 0 for none\n');
  });

  it('names a missing context in one line with exit code 1', async () => {
    const r = await kubectl(['etcd', 'status', '--context', 'nope']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('error: context "nope" not found in kubeconfig; run `kubectl config get-contexts` to list contexts, then pass --context\n');
  });

  it('-v 5 tells on stderr which context, server and namespace it chose; stdout stays data', async () => {
    const r = await kubectl(['etcd', 'status', '--context', 'other', '-v', '5', '-o', 'json']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^I5 context "other" server https:\/\/127\.0\.0\.1:\d+ namespace "uc1"$/m);
    expect(JSON.parse(r.stdout).namespace).toBe('uc1');
  });
});

describe('progress and colour', () => {
  it('a pipe gets no progress bar and no escape codes', async () => {
    const r = await kubectl(['etcd', 'backup', '-n', 'uc1', '-f', path.join(work, 'pipe.db')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^backed up uc1\/kube-etcd from pod "kube-etcd-0"/);
    expect(r.stderr + r.stdout).not.toMatch(/[\r\x1b]/);
  });

  it('a terminal gets the progress line in colour, and NO_COLOR takes the colour away', async () => {
    const onTerminal = (file: string, extra: NodeJS.ProcessEnv) =>
      run('script', ['-qec', sh(['kubectl', 'etcd', 'backup', '-n', 'uc1', '-f', path.join(work, file)]), '/dev/null'], { env: { ...env, ...extra }, timeoutMs: 180_000 });
    const coloured = await onTerminal('tty.db', {});
    expect(coloured.code).toBe(0);
    expect(coloured.stdout).toContain('\r\x1b[K');
    expect(coloured.stdout).toMatch(/\x1b\[3\dm/);
    const plain = await onTerminal('tty-nocolor.db', { NO_COLOR: '1' });
    expect(plain.code).toBe(0);
    expect(plain.stdout).toContain('\r\x1b[K');
    expect(plain.stdout).not.toMatch(/\x1b\[\d*m/);
  });
});

describe('completion through kubectl (kubectl __complete etcd …)', () => {
  const candidates = (r: CommandResult) => r.stdout.split('\n').filter((l) => l && !l.startsWith(':')).map((l) => l.split('\t')[0]);

  it('completes commands and flags', async () => {
    const r = await kubectl(['__complete', 'etcd', '']);
    expect(r.code).toBe(0);
    expect(candidates(r)).toEqual(expect.arrayContaining(['backup', 'restore', 'inspect', 'status', 'version']));
    const flags = await kubectl(['__complete', 'etcd', 'backup', '--st']);
    expect(candidates(flags)).toEqual(['--statefulset', '--state-dir']);
  });

  it('completes namespaces and StatefulSets from the cluster the typed --context points at', async () => {
    expect(candidates(await kubectl(['__complete', 'etcd', 'status', '-n', '']))).not.toContain('only-in-other');
    expect(candidates(await kubectl(['__complete', 'etcd', '--context', 'other', 'status', '-n', '']))).toEqual(expect.arrayContaining(['only-in-other', 'uc1']));
    expect(candidates(await kubectl(['__complete', 'etcd', '--context', 'other', 'backup', '--statefulset', 'kube-e']))).toEqual(['kube-etcd']);
    expect(candidates(await kubectl(['__complete', 'etcd', '--context', '']))).toEqual(['sim', 'other']);
  });

  it('completes snapshot files for inspect and restore', async () => {
    const dir = path.join(work, 'snaps');
    await fs.mkdir(path.join(dir, 'older'), { recursive: true });
    await fs.writeFile(path.join(dir, 'a.db'), '');
    await fs.writeFile(path.join(dir, 'notes.txt'), '');
    const r = await kubectl(['__complete', 'etcd', 'inspect', `${dir}/`]);
    expect(candidates(r)).toEqual([`${dir}/a.db`, `${dir}/older/`]);
    expect(r.stdout).toMatch(/^:6$/m); // no file completion from the shell, no space after a directory
    expect(candidates(await kubectl(['__complete', 'etcd', 'restore', `${dir}/a`]))).toEqual([`${dir}/a.db`]);
  });
});
