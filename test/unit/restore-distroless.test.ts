// Restore on a distroless etcd image: which images the utility pods get (probed in the members),
// the two-container pod, and how the plan shows it.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { EtcdMember, EtcdTopology } from '../../src/etcd/topology.js';
import { restoreCommand, TOOLS_SCRATCH_DIR, utilityPodManifest } from '../../src/restore/manifests.js';
import { buildRestorePlan, type PlanInput } from '../../src/restore/plan.js';
import { DEFAULT_SHELL_IMAGE, utilityImages } from '../../src/restore/preflight.js';
import { planRecord, renderPlan } from '../../src/restore/render.js';
import { checkStoredPlan } from '../../src/restore/trust.js';

const DISTROLESS = 'gcr.io/etcd-development/etcd:v3.5.17';
const FULL = 'gcr.io/gke-on-prem-release/etcd:v3.4.23-0-gke.1';
const SHELL_TOOLS = ['sh', 'head', 'sha256sum', 'mv', 'rm', 'chown', 'stat', 'sync', 'df', 'mkdir', 'cat', 'rmdir'];

function member(n: number, image: string): EtcdMember {
  return {
    pod: `etcd-${n}`, namespace: 'dl', container: 'etcd', node: `node-${n + 1}`, ordinal: n, name: `etcd-${n}`,
    endpoint: 'https://127.0.0.1:2379', clientPort: 2379, peerUrl: `http://etcd-${n}.etcd:2380`, dataDir: '/var/run/etcd/default.etcd',
    tls: { caFile: '/etc/etcd/tls/etcdCA.crt', certFile: '/etc/etcd/tls/etcd.crt', keyFile: '/etc/etcd/tls/etcd.key' },
    clientTlsEnabled: true, initialClusterToken: 'dl-1',
    dataVolume: { kind: 'pvc', volumeName: 'data', claimName: `data-etcd-${n}`, mountPath: '/var/run/etcd' },
    secretFiles: Object.fromEntries(['etcdCA.crt', 'etcd.crt', 'etcd.key'].map((k) => [`/etc/etcd/tls/${k}`, [{ secretName: 'etcd-tls', key: k }]])),
    image,
  };
}

/** What a member's container can run: a shell or not, and which programs (on PATH). */
interface Box { running: boolean; shell: boolean; bins: string[]; /** etcdutl < 3.5.10: no --bump-revision */ oldEtcdutl?: boolean }

/**
 * A member exec as the restore's preflight deps give it: undefined when the pod does not run or
 * the runtime cannot start argv[0] (no such executable), else the exit code and output.
 */
function fakeExec(boxes: Map<string, Box>, calls: string[][] = []) {
  return async (m: EtcdMember, argv: string[]) => {
    calls.push([m.name, ...argv]);
    const box = boxes.get(m.name)!;
    if (!box.running) return undefined;
    const [cmd, ...rest] = argv;
    if (cmd === 'sh') {
      if (!box.shell) return undefined;
      const tools = /for t in ([^;]+); do/.exec(rest[1]!)![1]!.split(' ');
      const out = tools.filter((t) => t !== 'sh' && !box.bins.includes(t)).map((t) => `missing:${t}\n`).join('') +
        (box.bins.includes('etcdutl') ? `has:etcdutl\n${box.oldEtcdutl ? '' : 'has:bump\n'}` : '');
      return { exitCode: 0, stdout: out, stderr: '' };
    }
    if (!box.bins.includes(cmd!)) return undefined;
    if (cmd === 'etcdutl' && rest[0] === 'snapshot') {
      return { exitCode: 0, stdout: `Flags:\n      --data-dir string${box.oldEtcdutl ? '' : '\n      --bump-revision uint\n      --mark-compacted'}\n`, stderr: '' };
    }
    return { exitCode: 0, stdout: `${cmd} version 3.x\n`, stderr: '' };
  };
}

function refuseThrows(message: string, hint: string): void {
  throw new Error(`${message}; ${hint}`);
}

const distroless = (bins: string[], running = true): Box => ({ running, shell: false, bins: ['etcd', ...bins] });
const full = (bins: string[] = ['etcd', 'etcdctl', ...SHELL_TOOLS]): Box => ({ running: true, shell: true, bins });

describe('utilityImages: the images of the utility pods, probed in a running member of the etcd image', () => {
  it.each([
    {
      case: 'a shell image with etcdctl: that image alone, etcdctl',
      etcdImage: FULL, flag: undefined, box: full(),
      want: { utilityImage: FULL, tool: { binary: 'etcdctl' } }, warns: [],
    },
    {
      case: 'a shell image with etcdutl: that image alone, etcdutl with a bumped revision',
      etcdImage: FULL, flag: undefined, box: full(['etcd', 'etcdctl', 'etcdutl', ...SHELL_TOOLS]),
      want: { utilityImage: FULL, tool: { binary: 'etcdutl', bumpRevision: 1_000_000_000 } }, warns: [],
    },
    {
      case: 'a shell image and --utility-image: the flag image alone, not probed',
      etcdImage: FULL, flag: 'example.com/etcd-util:3.4', box: full(),
      want: { utilityImage: 'example.com/etcd-util:3.4', tool: { binary: 'etcdctl' } }, warns: [/^image "example\.com\/etcd-util:3\.4" is not running anywhere to probe/],
    },
    {
      case: '--utility-image naming the etcd image itself: as if not given',
      etcdImage: FULL, flag: FULL, box: full(),
      want: { utilityImage: FULL, tool: { binary: 'etcdctl' } }, warns: [],
    },
    {
      case: 'distroless with etcdctl (3.4): busybox for the shell, the etcd image for etcdctl',
      etcdImage: DISTROLESS, flag: undefined, box: distroless(['etcdctl']),
      want: { utilityImage: DEFAULT_SHELL_IMAGE, etcdToolsImage: DISTROLESS, tool: { binary: 'etcdctl' } },
      warns: [/^image "docker\.io\/library\/busybox:1\.36" is not running anywhere to probe; assuming it has sh, head, sha256sum/],
    },
    {
      case: 'a shell image with an etcdutl older than 3.5.10: etcdutl without --bump-revision',
      etcdImage: FULL, flag: undefined, box: { ...full(['etcd', 'etcdctl', 'etcdutl', ...SHELL_TOOLS]), oldEtcdutl: true },
      want: { utilityImage: FULL, tool: { binary: 'etcdutl' } }, warns: [],
    },
    {
      case: 'distroless with an etcdutl older than 3.5.10: etcdutl without --bump-revision',
      etcdImage: DISTROLESS, flag: undefined, box: { ...distroless(['etcdctl', 'etcdutl']), oldEtcdutl: true },
      want: { utilityImage: DEFAULT_SHELL_IMAGE, etcdToolsImage: DISTROLESS, tool: { binary: 'etcdutl' } },
      warns: [/busybox/],
    },
    {
      case: 'distroless with etcdutl (3.5+): etcdutl with a bumped revision',
      etcdImage: DISTROLESS, flag: undefined, box: distroless(['etcdctl', 'etcdutl']),
      want: { utilityImage: DEFAULT_SHELL_IMAGE, etcdToolsImage: DISTROLESS, tool: { binary: 'etcdutl', bumpRevision: 1_000_000_000 } },
      warns: [/busybox/],
    },
    {
      case: 'distroless and --utility-image: the flag image for the shell, the etcd image for the tool',
      etcdImage: DISTROLESS, flag: 'docker.io/library/alpine:3.20', box: distroless(['etcdctl']),
      want: { utilityImage: 'docker.io/library/alpine:3.20', etcdToolsImage: DISTROLESS, tool: { binary: 'etcdctl' } },
      warns: [/^image "docker\.io\/library\/alpine:3\.20" is not running anywhere to probe/],
    },
    {
      case: 'no member runs: nothing to probe, the etcd image is assumed to have a shell and etcdctl',
      etcdImage: DISTROLESS, flag: undefined, box: distroless(['etcdctl'], false),
      want: { utilityImage: DISTROLESS, tool: { binary: 'etcdctl' } }, warns: [/^image "gcr\.io\/etcd-development\/etcd:v3\.5\.17" is not running anywhere to probe/],
    },
  ])('$case', async ({ etcdImage, flag, box, want, warns }) => {
    const members = [0, 1, 2].map((n) => member(n, etcdImage));
    const boxes = new Map(members.map((m) => [m.name, box]));
    const got = await utilityImages({ etcdImage, utilityImage: flag, members }, fakeExec(boxes), refuseThrows);
    const { warnings, ...rest } = got;
    expect(rest).toEqual(want);
    expect(warnings).toHaveLength(warns.length);
    warns.forEach((re, i) => expect(warnings[i]).toMatch(re));
  });

  it('probes only members that run the etcd image (the template may have moved on)', async () => {
    const members = [member(0, 'gcr.io/etcd-development/etcd:v3.5.16'), member(1, DISTROLESS)];
    const boxes = new Map<string, Box>([['etcd-0', full()], ['etcd-1', distroless(['etcdctl'])]]);
    const calls: string[][] = [];
    const got = await utilityImages({ etcdImage: DISTROLESS, members }, fakeExec(boxes, calls), refuseThrows);
    expect(got.etcdToolsImage).toBe(DISTROLESS);
    expect(calls.every((c) => c[0] === 'etcd-1')).toBe(true);
  });

  it('refuses a distroless image without etcdutl and etcdctl, naming the image', async () => {
    const members = [member(0, DISTROLESS)];
    const boxes = new Map([['etcd-0', distroless([])]]);
    await expect(utilityImages({ etcdImage: DISTROLESS, members }, fakeExec(boxes), refuseThrows)).rejects.toThrow(
      /^image "gcr\.io\/etcd-development\/etcd:v3\.5\.17" has no shell and neither etcdutl nor etcdctl; restore with an etcd image that ships etcdctl/,
    );
  });

  it('refuses a shell image that lacks a tool the steps need', async () => {
    const members = [member(0, FULL)];
    const boxes = new Map([['etcd-0', full(['etcd', 'etcdctl', 'sh', 'mv', 'rm', 'chown', 'stat', 'sync', 'df', 'mkdir', 'cat', 'rmdir'])]]);
    await expect(utilityImages({ etcdImage: FULL, members }, fakeExec(boxes), refuseThrows)).rejects.toThrow(/^image ".*" lacks head, sha256sum; pass --utility-image/);
  });
});

describe('the utility pod of a distroless etcd image', () => {
  const m = member(1, DISTROLESS);
  const { manifest, shellContainer, toolContainer } = utilityPodManifest({ member: m, image: DEFAULT_SHELL_IMAGE, etcdToolsImage: DISTROLESS, stamp: 'S' });
  const [shell, tools] = manifest.spec.containers as Array<{ name: string; image: string; command: string[]; volumeMounts: Array<{ name: string; mountPath: string }> }>;

  it('has a shell container and the etcd image beside it, the restore tool in the latter', () => {
    expect([shellContainer, toolContainer]).toEqual(['etcd-utility', 'etcd-tools']);
    expect([shell!.name, shell!.image, tools!.name, tools!.image]).toEqual(['etcd-utility', DEFAULT_SHELL_IMAGE, 'etcd-tools', DISTROLESS]);
  });

  it('keeps etcd-tools alive with a loopback etcd whose data is an emptyDir, never the member volume', () => {
    expect(tools!.command[0]).toBe('etcd');
    expect(tools!.command).toContain(`--data-dir=${TOOLS_SCRATCH_DIR}/etcd`);
    expect(tools!.command.filter((a) => /-urls=/.test(a)).every((a) => a.includes('http://127.0.0.1:'))).toBe(true);
    const scratch = tools!.volumeMounts.find((v) => v.mountPath === TOOLS_SCRATCH_DIR)!;
    expect(manifest.spec['volumes']).toContainEqual({ name: scratch.name, emptyDir: {} });
    expect(shell!.volumeMounts.some((v) => v.name === scratch.name)).toBe(false);
  });

  it('mounts the data volume at the member path in both containers, and no certificates', () => {
    for (const c of [shell!, tools!]) {
      expect(c.volumeMounts, c.name).toContainEqual({ name: 'etcd-data', mountPath: '/var/run/etcd' });
      expect(c.volumeMounts.some((v) => v.name === 'etcd-certs'), c.name).toBe(false);
    }
  });

  it('shares one process namespace, so the shell container can run the tool of etcd-tools; a one-container pod does not', () => {
    expect(manifest.spec['shareProcessNamespace']).toBe(true);
    expect(utilityPodManifest({ member: member(0, FULL), image: FULL, stamp: 'S' }).manifest.spec['shareProcessNamespace']).toBeUndefined();
  });

  it('is one container when the etcd image has a shell', () => {
    const one = utilityPodManifest({ member: member(0, FULL), image: FULL, stamp: 'S' });
    expect(one.manifest.spec.containers.map((c) => c['name'])).toEqual(['etcd-utility']);
    expect([one.shellContainer, one.toolContainer]).toEqual(['etcd-utility', 'etcd-utility']);
  });
});

describe('a restore plan for a distroless etcd image', () => {
  const members = [0, 1, 2].map((n) => member(n, DISTROLESS));
  const topology: EtcdTopology = { namespace: 'dl', workload: { kind: 'StatefulSet', name: 'etcd', replicas: 3 }, members, initialClusterToken: 'dl-1', image: DISTROLESS };
  const input: PlanInput = {
    topology, snapshot: { path: 's.db', size: 100, sha256: 'ab', revision: 42, totalKey: 10, hasTrailer: true },
    quiesce: [], pdbs: [], utilityImage: DEFAULT_SHELL_IMAGE, etcdToolsImage: DISTROLESS,
    tool: { binary: 'etcdutl', bumpRevision: 1_000_000_000 }, stamp: '20261130T120000Z', inPlace: false,
  };
  const plan = buildRestorePlan(input);

  it('runs the restore in etcd-tools and everything else in etcd-utility', () => {
    for (const m of plan.members) {
      expect([m.shellContainer, m.toolContainer]).toEqual(['etcd-utility', 'etcd-tools']);
      expect(m.restoreArgv.slice(0, 3)).toEqual(['etcdutl', 'snapshot', 'restore']);
      expect(m.swapArgv[0]).toBe('sh');
    }
  });

  it('says in the text plan and in -o yaml which image supplies the restore tool', () => {
    expect(renderPlan(plan)).toContain(
      `  utility pods: image "${DEFAULT_SHELL_IMAGE}" (shell: copy, swap), beside the etcd image "${DISTROLESS}" (container etcd-tools: etcdutl, as the etcd image has no shell)\n`,
    );
    expect(planRecord(plan)['utilityImages']).toEqual({ shellImage: DEFAULT_SHELL_IMAGE, toolsImage: DISTROLESS, toolContainer: 'etcd-tools' });
    const single = buildRestorePlan({ ...input, topology: { ...topology, image: FULL }, utilityImage: FULL, etcdToolsImage: undefined, tool: { binary: 'etcdctl' } });
    expect(renderPlan(single)).toContain(`  utility pods: image "${FULL}" (shell and etcdctl)\n`);
    expect(planRecord(single)['utilityImages']).toEqual({ shellImage: FULL });
  });

  it('survives the journal: --resume rebuilds the same two-container plan from it', () => {
    const stored = JSON.parse(JSON.stringify(plan)) as typeof plan;
    const state = {
      version: 4 as const, stamp: plan.stamp, namespace: 'dl', workload: 'etcd', snapshot: { path: 's.db', sha256: 'ab', revision: 42, totalKey: 10 },
      etcdReplicas: 3, quiesce: [], pdbs: [], done: [], phase: 'running' as const, plan: stored, startedAt: '', updatedAt: '',
    };
    expect(() => checkStoredPlan(state, 'test')).not.toThrow();
    (stored.members[0]!.utilityPod.spec.containers[1]!['command'] as string[])[0] = '/bin/evil';
    expect(() => checkStoredPlan(state, 'test')).toThrow(/differ from the plan built from its own inputs/);
  });
});

// The shell container's restore command with etcd-tools, run for real on this host: a process whose
// program is `etcd` and which has --name=kubectl-etcd-tools stands for the etcd-tools etcd (its
// root is this host's, so chroot enters /); the command must find it, clear the restore dir and
// run the tool there, and refuse clearly when no such etcd runs in the pod's network namespace.
describe.runIf(process.getuid?.() === 0)('restoreCommand with etcd-tools (needs root for chroot)', () => {
  const run = (argv: string[]) => spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });

  it('with shells that mention the name about, finds the etcd of etcd-tools, clears the restore dir and runs the tool chrooted into its root', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'restore-cmd-'));
    const restoreDir = join(dir, 'restore');
    // Not it: a shell carrying the name inside a longer argument, and one with it whole but program sh.
    const decoys = [spawn('sh', ['-c', 'sleep 30 # --name=kubectl-etcd-tools']), spawn('sh', ['-c', 'sleep 30', '--name=kubectl-etcd-tools'])];
    const tools = spawn('sh', ['-c', 'sleep 30', '--name=kubectl-etcd-tools'], { argv0: 'etcd', env: { PATH: '/usr/bin:/bin' } });
    try {
      await new Promise((r) => setTimeout(r, 200));
      spawnSync('mkdir', ['-p', join(restoreDir, 'half-written')]);
      const r = run(restoreCommand(restoreDir, ['sh', '-c', 'echo "$$ $1" > "$2"', 'sh', 'restored', join(dir, 'out')], true));
      expect(r.status, r.stderr).toBe(0);
      const [pid, word] = readFileSync(join(dir, 'out'), 'utf8').trim().split(' ');
      expect(word).toBe('restored');
      expect(Number(pid)).toBeGreaterThan(0);
      expect(spawnSync('ls', ['-A', restoreDir]).status).not.toBe(0);
    } finally {
      for (const c of [...decoys, tools]) c.kill('SIGKILL');
    }
  });

  it('without the etcd of etcd-tools in the pod: exit 96 and one line naming shareProcessNamespace, the restore dir untouched', () => {
    const dir = mkdtempSync(join(tmpdir(), 'restore-cmd-'));
    spawnSync('mkdir', ['-p', join(dir, 'restore', 'kept')]);
    const r = run(restoreCommand(join(dir, 'restore'), ['true'], true));
    expect(r.status).toBe(96);
    expect(r.stderr.trim()).toBe("no etcd of container etcd-tools runs in this pod; it must share the pod's process namespace (shareProcessNamespace: true)");
    expect(spawnSync('ls', [join(dir, 'restore')], { encoding: 'utf8' }).stdout.trim()).toBe('kept');
  });
});
