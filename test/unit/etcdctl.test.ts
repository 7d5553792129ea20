import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  endpointHealth, endpointStatus, etcdctlSnapshotRestore, etcdutlSnapshotRestore, initialClusterOf, memberList,
  snapshotSave, targetOf,
} from '../../src/etcd/etcdctl.js';
import { shellQuote, splitShellCommands } from '../../src/etcd/shell.js';

const member = {
  endpoint: 'https://127.0.0.1:2379',
  tls: { caFile: '/etcd.local.config/certificates/etcdCA.crt', certFile: '/etcd.local.config/certificates/etcd.crt', keyFile: '/etcd.local.config/certificates/etcd.key' },
};
const conn = ['--endpoints=https://127.0.0.1:2379', '--cacert=/etcd.local.config/certificates/etcdCA.crt', '--cert=/etcd.local.config/certificates/etcd.crt', '--key=/etcd.local.config/certificates/etcd.key'];
const restore = {
  snapshot: '/tmp/snapshot.db', name: 'kube-etcd-1',
  initialCluster: 'kube-etcd-0=https://kube-etcd-0.kube-etcd:2380,kube-etcd-1=https://kube-etcd-1.kube-etcd:2380',
  initialClusterToken: 'etcd-cluster-1', initialAdvertisePeerUrls: 'https://kube-etcd-1.kube-etcd:2380', dataDir: '/var/lib/etcd/restore',
};
const restoreFlags = [
  '--name=kube-etcd-1', `--initial-cluster=${restore.initialCluster}`, '--initial-cluster-token=etcd-cluster-1',
  '--initial-advertise-peer-urls=https://kube-etcd-1.kube-etcd:2380', '--data-dir=/var/lib/etcd/restore',
];

describe('etcdctl argv builders', () => {
  it.each([
    { case: 'snapshot save', cmd: snapshotSave(targetOf(member), '/tmp/s.db'), argv: ['etcdctl', ...conn, 'snapshot', 'save', '/tmp/s.db'], env: { ETCDCTL_API: '3' } },
    { case: 'snapshot restore', cmd: etcdctlSnapshotRestore(restore), argv: ['etcdctl', 'snapshot', 'restore', '/tmp/snapshot.db', ...restoreFlags], env: { ETCDCTL_API: '3' } },
    { case: 'snapshot restore of a raw db', cmd: etcdctlSnapshotRestore({ ...restore, skipHashCheck: true }), argv: ['etcdctl', 'snapshot', 'restore', '/tmp/snapshot.db', ...restoreFlags, '--skip-hash-check'], env: { ETCDCTL_API: '3' } },
    { case: 'etcdutl restore with bumped revision', cmd: etcdutlSnapshotRestore({ ...restore, bumpRevision: 1000000000 }), argv: ['etcdutl', 'snapshot', 'restore', '/tmp/snapshot.db', ...restoreFlags, '--bump-revision=1000000000', '--mark-compacted'], env: {} },
    { case: 'endpoint status', cmd: endpointStatus(targetOf(member)), argv: ['etcdctl', ...conn, 'endpoint', 'status', '-w', 'json'], env: { ETCDCTL_API: '3' } },
    { case: 'endpoint health --cluster', cmd: endpointHealth(targetOf(member), { cluster: true }), argv: ['etcdctl', ...conn, 'endpoint', 'health', '--cluster', '-w', 'json'], env: { ETCDCTL_API: '3' } },
    { case: 'member list without TLS', cmd: memberList({ endpoints: ['http://127.0.0.1:2379'] }), argv: ['etcdctl', '--endpoints=http://127.0.0.1:2379', 'member', 'list', '-w', 'json'], env: { ETCDCTL_API: '3' } },
  ])('$case', ({ cmd, argv, env }) => {
    expect(cmd).toEqual({ argv, env });
  });

  it('snapshot save refuses several endpoints (etcdctl would)', () => {
    expect(() => snapshotSave({ endpoints: ['https://a:2379', 'https://b:2379'] }, '/s.db')).toThrow('exactly one endpoint');
  });

  it('initial cluster from members, in order', () => {
    expect(initialClusterOf([{ name: 'a', peerUrl: 'https://a:2380' }, { name: 'b', peerUrl: 'https://b:2380' }])).toBe('a=https://a:2380,b=https://b:2380');
  });
});

/** Runs a command line through a real POSIX shell and returns each argument it received. */
function argsSeenByShell(line: string): string[] {
  const out = execFileSync('/bin/sh', ['-c', `${line}`], { encoding: 'utf8' });
  return out.split('\0').slice(0, -1);
}

describe('shell quoting, checked by a real /bin/sh', () => {
  it.each([
    ['plain', 'kube-etcd-0=https://kube-etcd-0.kube-etcd:2380'],
    ['space', 'a b'],
    ['single quote', "it's"],
    ['dollar and backticks', '$(rm -rf /) `id` ${HOME}'],
    ['glob and redirects', '* ? [a] > /dev/null; echo pwned &'],
    ['empty', ''],
    ['newline and tab', 'a\nb\tc'],
    ['double quotes and backslash', 'say "hi" \\n'],
  ])('%s', (_name, arg) => {
    expect(argsSeenByShell(`printf '%s\\0' ${shellQuote(arg)} ${shellQuote(arg)}`)).toEqual([arg, arg]);
  });

});

describe('splitShellCommands', () => {
  const env = new Map([['HOSTNAME', 'kube-etcd-0'], ['EMPTY', '']]);
  it.each([
    { script: 'exec etcd --name=${HOSTNAME} --data-dir /var/lib/etcd', out: [['exec', 'etcd', '--name=kube-etcd-0', '--data-dir', '/var/lib/etcd']] },
    { script: `set -e; echo "a  b" 'c$HOSTNAME' && exec etcd`, out: [['set', '-e'], ['echo', 'a  b', 'c$HOSTNAME'], ['exec', 'etcd']] },
    { script: 'etcd \\\n  --name=$HOSTNAME \\\n  --x="$HOSTNAME-$NOPE"', out: [['etcd', '--name=kube-etcd-0', '--x=kube-etcd-0-$NOPE']] },
    { script: 'a=${EMPTY:-dflt} b=${NOPE-d2} c=${EMPTY-kept} cmd # comment', out: [['a=dflt', 'b=d2', 'c=', 'cmd']] },
    { script: 'x | y || z & w\nv', out: [['x'], ['y'], ['z'], ['w'], ['v']] },
    { script: 'etcd --name=$(hostname) "\\$HOME" \\"q', out: [['etcd', '--name=$(hostname)', '$HOME', '"q']] },
  ])('$script', ({ script, out }) => {
    expect(splitShellCommands(script, (n) => env.get(n))).toEqual(out);
  });

  it('rejects an unterminated quote with the script named', () => {
    expect(() => splitShellCommands(`exec etcd --name='x`)).toThrow(`unterminated single quote in shell command "exec etcd --name='x"`);
  });
});
