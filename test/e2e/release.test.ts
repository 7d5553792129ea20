import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { validateManifest } from '../../krew/manifest.js';
import { listTarGz } from '../../krew/runtime.js';
import { VERSION } from '../../src/version.js';
import { requireCommand, requireRoot, run, startCluster, type CommandResult, type SimCluster } from '../sim/harness.js';
import { startS3 } from '../helpers/s3-server.js';

// The release as a user gets it: `npm run release` for linux-x64 (the Node.js runtime package is
// cached under node_modules/.cache after the first run), the archive unpacked into an empty
// directory, and the plugin run through real kubectl with no `node` anywhere on PATH.
const repo = path.resolve(import.meta.dirname, '../..');
let work: string;
let out: string;
let unpacked: string;
let archive: string;
let cluster: SimCluster;
let env: NodeJS.ProcessEnv;

/** Runs `kubectl ARGS` with a PATH holding only kubectl and the unpacked archive. */
function kubectl(args: string[]): Promise<CommandResult> {
  return run('kubectl', args, { env, timeoutMs: 180_000 });
}

beforeAll(async () => {
  requireRoot();
  requireCommand('/usr/bin/kubectl', 'install kubectl 1.30 or newer at /usr/bin/kubectl');
  requireCommand('tar', 'install tar');
  requireCommand('etcdctl', 'apt-get install -y etcd-client');
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'release-e2e-'));
  out = path.join(work, 'release');
  const built = await run(process.execPath, ['--import', 'tsx', path.join(repo, 'krew/release.ts'), '--platform', 'linux-x64', '--out', out], { timeoutMs: 600_000 });
  if (built.code !== 0) throw new Error(`npm run release failed (exit ${built.code}): ${built.stderr.trim()}`);
  archive = path.join(out, `kubectl-etcd_v${VERSION}_linux_amd64.tar.gz`);
  unpacked = path.join(work, 'unpacked');
  await fs.mkdir(unpacked);
  const untar = await run('tar', ['-xzf', archive, '-C', unpacked]);
  if (untar.code !== 0) throw new Error(`tar failed: ${untar.stderr}`);
  // kubectl alone in a directory: the only other PATH entry is the unpacked archive.
  const kubectlOnly = path.join(work, 'kubectl-only');
  await fs.mkdir(kubectlOnly);
  await fs.symlink('/usr/bin/kubectl', path.join(kubectlOnly, 'kubectl'));
  cluster = await startCluster({ fixtures: ['single'] });
  env = { PATH: `${kubectlOnly}${path.delimiter}${unpacked}`, HOME: work, KUBECONFIG: cluster.kubeconfig };
}, 900_000);

afterAll(async () => {
  await cluster?.down();
  if (work) await fs.rm(work, { recursive: true, force: true });
});

describe('npm run release (linux-x64)', () => {
  it('renders a manifest that passes krew rules against the archive it built', async () => {
    const manifestFile = path.join(out, 'etcd.yaml');
    const text = await fs.readFile(manifestFile, 'utf8');
    const doc = parse(text);
    expect(doc.spec.version).toBe(`v${VERSION}`);
    expect(doc.spec.platforms).toHaveLength(1);
    const problems = await validateManifest(text, manifestFile, (uri) => (uri.endsWith(path.basename(archive)) ? archive : undefined));
    expect(problems).toEqual([]);
    const names = (await listTarGz(archive)).map((e) => `${e.name} ${e.mode.toString(8)}`);
    expect(names).toEqual(['kubectl-etcd 755', 'kubectl_complete-etcd 755', 'LICENSE 644', 'LICENSE-node 644']);
  });

  it('runs with no node on PATH: kubectl etcd version', async () => {
    const noNode = await run('/bin/sh', ['-c', 'command -v node'], { env });
    expect(noNode.code).not.toBe(0);
    const r = await kubectl(['etcd', 'version', '-o', 'json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ version: `v${VERSION}`, platform: 'linux/amd64', singleExecutable: true });
  });

  it.each(['exec', 'stream'])('takes a real backup via %s through kubectl etcd', async (via) => {
    const file = path.join(work, `snapshot-${via}.db`);
    const r = await kubectl(['etcd', 'backup', '-n', 'uc1', '--via', via, '-f', file, '-o', 'json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const record = JSON.parse(r.stdout);
    expect(record).toMatchObject({ namespace: 'uc1', workload: 'kube-etcd', transport: via, file });
    expect((await fs.stat(file)).mode & 0o777).toBe(0o600);
    // etcdctl, not the plugin, says what the file holds.
    const status = await run('etcdctl', ['--write-out', 'json', 'snapshot', 'status', file], { env: { ...process.env, ETCDCTL_API: '3' } });
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout).revision).toBe(record.revision);
  });

  it('backs up to object storage and lists it (the storage chunk, loaded only for s3://)', async () => {
    const s3 = await startS3(['backups']);
    try {
      const withS3 = { ...env, ...s3.env };
      const r = await run('kubectl', ['etcd', 'backup', '-n', 'uc1', '--to', 's3://backups/uc1/', '--s3-endpoint', s3.endpoint], { env: withS3, timeoutMs: 180_000 });
      expect(r.code, r.stderr).toBe(0);
      const listed = await run('kubectl', ['etcd', 'snapshots', 'list', 's3://backups/uc1/', '--s3-endpoint', s3.endpoint, '-o', 'json'], { env: withS3 });
      expect(listed.code, listed.stderr).toBe(0);
      expect((JSON.parse(listed.stdout) as Array<{ record: { namespace: string } }>).map((b) => b.record.namespace)).toEqual(['uc1']);
    } finally {
      await s3.stop();
    }
  });

  it('compiles its lazy chunk from the code cache it carries (V8 accepts it)', async () => {
    const r = await kubectl(['etcd', 'status', '-n', 'uc1', '-v', '9']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^I9 code cache of the single executable's lazy chunk: accepted$/m);
  });

  it('completes through the archive’s kubectl_complete-etcd', async () => {
    const r = await kubectl(['__complete', 'etcd', '-n', 'uc1', 'backup', '--statefulset', '']);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')).toContain('kube-etcd');
  });
});
