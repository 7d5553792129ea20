// The drill pod of `verify --restore --in-cluster`: what it is made of (pure), and how the image is
// probed (a small fake exec). The drill itself runs end to end in test/e2e/schedule.test.ts.
import { describe, expect, it } from 'vitest';
import type { EtcdMember } from '../../src/etcd/topology.js';
import type { CommandResult } from '../../src/kube/exec.js';
import { drillPodManifest, drillPodSpec } from '../../src/verify/pod-drill.js';

const member: EtcdMember = {
  pod: 'etcd-0', namespace: 'uc1', container: 'etcd', node: 'node-1', ordinal: 0, name: 'etcd-0',
  endpoint: 'https://127.0.0.1:2379', clientPort: 2379, peerUrl: 'https://etcd-0.etcd:2380', dataDir: '/var/lib/etcd',
  tls: {}, clientTlsEnabled: true, image: 'registry.example/etcd:3.5.16', runAsUser: 1001,
  podFacts: { imagePullSecrets: [{ name: 'pull' }], securityContext: { runAsNonRoot: true, allowPrivilegeEscalation: false } },
};

/** An exec that answers as an image with `shell` (and these programs missing) or without one. */
function exec(shell: boolean, missing: string[] = [], runs = true) {
  const calls: string[][] = [];
  const run = async (_t: unknown, argv: string[]): Promise<CommandResult> => {
    calls.push(argv);
    if (!runs) throw new Error('container not found ("etcd")');
    if (argv[0] === 'sh') return shell ? { exitCode: 0, stdout: missing.map((m) => `missing:${m}\n`).join(''), stderr: '' } : { exitCode: 126, stdout: '', stderr: 'exec: "sh": executable file not found in $PATH' };
    if (argv[0] === 'etcd') return { exitCode: 0, stdout: 'etcd Version: 3.5.16\n', stderr: '' };
    return { exitCode: 127, stdout: '', stderr: 'not found' };
  };
  return { run, calls };
}

describe('drill pod', () => {
  it('an image with a shell: one container of it, as the members\' user, no token, no service links, an emptyDir only, ending within the hour', async () => {
    const spec = await drillPodSpec(exec(true).run, member);
    expect(spec.shellImage).toBeUndefined();
    const pod = drillPodManifest(spec, 'kubectl-etcd-drill-abc123');
    expect(pod.metadata).toMatchObject({ name: 'kubectl-etcd-drill-abc123', namespace: 'uc1', labels: { 'kubectl-etcd/drill': 'true', 'app.kubernetes.io/managed-by': 'kubectl-etcd' } });
    expect(pod.spec).toMatchObject({ restartPolicy: 'Never', automountServiceAccountToken: false, enableServiceLinks: false, activeDeadlineSeconds: 3600, imagePullSecrets: [{ name: 'pull' }] });
    expect(pod.spec!.shareProcessNamespace).toBeUndefined();
    expect(pod.spec!.containers).toHaveLength(1);
    expect(pod.spec!.containers[0]).toMatchObject({ name: 'drill', image: member.image, securityContext: { runAsNonRoot: true, allowPrivilegeEscalation: false, runAsUser: 1001 } });
    expect(pod.spec!.volumes!.every((v) => v.emptyDir !== undefined)).toBe(true);
    expect(pod.spec!.containers[0]!.ports).toBeUndefined();
  });

  it('an image without a shell: the shell image beside it, one process namespace, both as root (to reach the etcd image\'s root through /proc)', async () => {
    const spec = await drillPodSpec(exec(false).run, member, 'registry.example/busybox:1');
    expect(spec.shellImage).toBe('registry.example/busybox:1');
    const pod = drillPodManifest(spec, 'kubectl-etcd-drill-abc123');
    expect(pod.spec!.shareProcessNamespace).toBe(true);
    expect(pod.spec!.containers.map((c) => [c.name, c.image, c.securityContext?.runAsUser])).toEqual([['drill', 'registry.example/busybox:1', 0], ['etcd-tools', member.image, 0]]);
    expect(pod.spec!.containers[1]!.command).toContain('--name=kubectl-etcd-tools');
  });

  it('refuses an image with a shell that lacks a tool, and a member that runs nothing, naming the way out', async () => {
    await expect(drillPodSpec(exec(true, ['sed']).run, member)).rejects.toThrow(/^image "registry\.example\/etcd:3\.5\.16" of pod "etcd-0" lacks sed, which the drill in a pod needs$/);
    await expect(drillPodSpec(exec(true, [], false).run, member)).rejects.toThrow(/^cannot run a command in pod "etcd-0" \(container "etcd"\): container not found/);
  });
});
