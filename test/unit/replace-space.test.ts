// checkReplaceSpace in a dry run: the free space is read in the member's container when it answers,
// and said "not read" when it does not (a crash-looping member's container answers only in the
// moments it runs, so the e2e member-replace.test.ts may see either line; both are pinned here).
import { describe, expect, it } from 'vitest';
import { checkReplaceSpace, type ReplaceDeps, type ReplacePlan } from '../../src/etcd/replace.js';
import type { CommandResult } from '../../src/kube/exec.js';

const member = { pod: 'kube-etcd-1', namespace: 'uc1', container: 'kube-etcd', name: 'kube-etcd-1', endpoint: 'https://127.0.0.1:2379', clientPort: 2379, peerUrl: 'https://kube-etcd-1.kube-etcd:2380', dataDir: '/var/lib/etcd', tls: {}, clientTlsEnabled: true, image: 'etcd:3.5' };
const plan = { target: { member }, dbBytes: 1024 * 1024 } as unknown as ReplacePlan;

function deps(run: () => Promise<CommandResult>): { deps: ReplaceDeps; calls: string[][] } {
  const calls: string[][] = [];
  const kube = new Proxy({}, { get: () => { throw new Error('a dry run must not reach the API'); } });
  return { calls, deps: { kube, run: async (_t: unknown, argv: string[]) => { calls.push(argv); return run(); }, probe: undefined, say: () => undefined } as unknown as ReplaceDeps };
}

describe('checkReplaceSpace --dry-run', () => {
  it('reads df in the member\'s container when it answers', async () => {
    const df = 'Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/x 1000000 10000 488345 2% /var/lib/etcd\n';
    const d = deps(async () => ({ exitCode: 0, stdout: df, stderr: '' }));
    const line = await checkReplaceSpace(d.deps, plan, { dryRun: true, timeoutMs: 1000 });
    expect(line).toMatch(/^free space on the volume of "kube-etcd-1": 476\.9 MiB, the replace needs [\d.]+ MiB$/);
    expect(d.calls).toEqual([['df', '-Pk', '/var/lib/etcd']]);
  });

  it('says it was not read when the container does not answer, and starts no ephemeral container', async () => {
    const d = deps(async () => ({ exitCode: 1, stdout: '', stderr: 'container not running\n' }));
    const line = await checkReplaceSpace(d.deps, plan, { dryRun: true, timeoutMs: 1000 });
    expect(line).toMatch(/^free space on the volume of "kube-etcd-1": not read in a dry run \(the member's container does not answer \(container not running\)\); the run reads it in an ephemeral container first, and needs [\d.]+ MiB$/);
    const thrown = deps(async () => { throw new Error('connection refused'); });
    expect(await checkReplaceSpace(thrown.deps, plan, { dryRun: true, timeoutMs: 1000 })).toMatch(/not read in a dry run \(the member's container does not answer\)/);
  });
});
