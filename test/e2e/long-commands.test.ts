// Issue 12, item 5: a long in-pod command whose stream is cut while the process goes on. A load
// balancer cuts a WebSocket that carried no bytes for a while; in a real cluster the exec'd process
// lives on (kubernetes/kubernetes#73056), and so it does in the sim; its stream fault
// `--idle-timeout S` models the cut. First the hazard on the sim (a silent exec is cut, its process
// goes on, and a retry runs it a second time beside the first), then the product on a single member whose
// database is made > 512 MiB: backup by exec and a restore, both behind the idle cut, each long
// command started once (counted in the audit log, whose requestURI carries an exec's command).
// On both etcd minors, a cluster each (3.5 restores with etcdutl and a bumped revision); the killed
// and resumed restore on the default minor only.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TransientError } from '../../src/errors.js';
import { connect } from 'node:net';
import { kubeContextFromOptions } from '../../src/cli/kubecontext.js';
import { containerCommand } from '../../src/kube/exec.js';
import { portForward } from '../../src/kube/portforward.js';
import { DEFAULT_ETCD_MINOR, ETCD_MINORS } from '../sim/etcd-versions.js';
import { withFixtureOption } from '../sim/fixtures/index.js';
import { teardown, type SimCluster } from '../sim/harness.js';
import { etcdctl, kubectlEtcd, startKubectlEtcd, startRestoreCluster, anthosAccess, keysOn, waitClusterHealthy } from './restore-helpers.js';

const NS = 'uc1';
const POD = 'kube-etcd-0';
const S = anthosAccess(1);
/** The idle window of the sim's own test (a 4 s job). */
const IDLE_S = 2;
/** Values of ~1 MB: VALUES of them make the database > 512 MiB. */
const VALUES = 540;

let cluster: SimCluster;
let work: string;
let state: string;

interface AuditLine { subresource: string; name: string; code: number; ts: string; received?: string; requestURI?: string }

function audit(): AuditLine[] {
  return readFileSync(join(cluster.dir, 'audit.log'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as AuditLine);
}

/** The exec commands (argv, from requestURI) of audit lines after `mark`. */
function execsSince(mark: number): Array<{ pod: string; argv: string[]; ts: number }> {
  return audit().slice(mark).filter((a) => a.subresource === 'exec' && a.requestURI).map((a) => ({
    pod: a.name,
    argv: new URL(a.requestURI!, 'https://x').searchParams.getAll('command'),
    ts: Date.parse(a.received ?? a.ts), // when the exec arrived (its line is written when it ends)
  }));
}

/** Whether an exec is kube/detached.ts's start-and-wait script (RUN). */
const isRun = (e: { argv: string[] }) => e.argv[0] === 'sh' && e.argv[2]?.includes('with_output=1') === true;
/** Whether an exec removes the marker `dir` (kube/detached.ts removeRunsCommand, alone or with a caller's leftovers). */
const removes = (e: { argv: string[] }, dir: string) => e.argv[0] === 'sh' && e.argv[2]?.startsWith('rm -rf -- "$@"') === true && e.argv.slice(4).includes(dir);

/**
 * Starts of detached runs whose command matches `re`: a run starts only where its marker folder
 * is claimed, so at the first start-and-wait exec of a folder, or the first after its marker was
 * removed; the others join the run (a wait again, or a retry after a cut).
 */
function detachedStarts(mark: number, re: RegExp): Array<{ pod: string; ts: number; dir: string }> {
  const claimed = new Set<string>();
  const starts: Array<{ pod: string; ts: number; dir: string }> = [];
  for (const e of execsSince(mark)) {
    for (const key of claimed) if (key.startsWith(`${e.pod} `) && removes(e, key.slice(e.pod.length + 1))) claimed.delete(key);
    if (!isRun(e) || !re.test(e.argv.slice(6).join(' '))) continue;
    const key = `${e.pod} ${e.argv[4]}`;
    if (!claimed.has(key)) starts.push({ pod: e.pod, ts: e.ts, dir: e.argv[4]! });
    claimed.add(key);
  }
  return starts;
}

/** When a detached run started at `after` had its output read (its marker is removed right after). */
function detachedRead(mark: number, dir: string, after = 0): number | undefined {
  return execsSince(mark).find((e) => removes(e, dir) && e.ts >= after)?.ts;
}

const TARGET = { namespace: NS, pod: POD, container: 'kube-etcd' };

/** The product's exec, as the admin of the cluster. */
function simExec(): ReturnType<typeof containerCommand> {
  return containerCommand(kubeContextFromOptions({ kubeconfig: cluster.kubeconfig, namespace: NS }, {}));
}

async function fault(...args: string[]): Promise<void> {
  const r = await cluster.sim(['fault', ...args]);
  expect(r.code, r.stderr).toBe(0);
}

async function inPod(script: string): Promise<string> {
  const r = await cluster.kubectl(['-n', NS, 'exec', POD, '-c', 'kube-etcd', '--', 'sh', '-c', script], { timeoutMs: 300_000 });
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
}

describe.each(ETCD_MINORS)('etcd %s', (minor) => {
  beforeAll(async () => {
    ({ cluster, work, state } = await startRestoreCluster([withFixtureOption('single:storage=4Gi', 'etcd', minor)], `long-commands-${minor}`));
  }, 600_000);

  afterAll(() => teardown(cluster, work, { clearFaults: true }), 180_000);

  // The sim's behaviour does not depend on the etcd version: shown once (not registered on 3.5, so nothing is skipped).
  if (minor === DEFAULT_ETCD_MINOR) {
    describe('the sim cuts idle streams and leaves the exec\'d process running', () => {
      it('a silent exec is cut after the idle window, its process goes on, and a retry runs a second one beside the first', async () => {
        const run = simExec();
        const job = (log: string) => ['sh', '-c', `echo start >>${log}; sleep 4; echo end >>${log}`];

        await fault('stream', '--idle-timeout', String(IDLE_S), '--kind', 'exec', '--pod', `${NS}/${POD}`);
        try {
          const t0 = Date.now();
          // the naive way: a retry after the cut
          await expect(run(TARGET, job('/tmp/twice'))).rejects.toBeInstanceOf(TransientError);
          expect(Date.now() - t0).toBeGreaterThanOrEqual(IDLE_S * 1000 - 200);
          await expect(run(TARGET, job('/tmp/twice'))).rejects.toBeInstanceOf(TransientError);
          await fault('clear');
          // the second started while the first still ran (no "end" between the starts), and both finished
          expect(await inPod('sleep 4; cat /tmp/twice')).toBe('start\nstart\nend\nend\n');
        } finally {
          await fault('clear');
        }
      }, 120_000);

      it('a process that writes after its stream was cut gets EPIPE: its output goes nowhere', async () => {
        const run = simExec();
        await fault('stream', '--idle-timeout', String(IDLE_S), '--kind', 'exec', '--pod', `${NS}/${POD}`);
        try {
          // SIGPIPE ignored, so the failed write is seen as an exit status of echo, written to a file
          await expect(run(TARGET, ['sh', '-c', 'trap "" PIPE; sleep 3; echo late; echo $? >/tmp/late.rc'])).rejects.toBeInstanceOf(TransientError);
        } finally {
          await fault('clear');
        }
        expect(await inPod('sleep 2; cat /tmp/late.rc')).not.toBe('0\n');
      }, 60_000);

      it('what an exec left running dies with the container, even in a process group of its own: work exec\'d into a container that is then restarted is lost', async () => {
        const started = await cluster.kubectl(['-n', NS, 'exec', POD, '-c', 'kube-etcd', '--', 'sh', '-c',
          'sleep 6171 >/dev/null 2>&1 & timeout 600 sleep 6172 >/dev/null 2>&1 & echo started']);
        expect(started.stdout.trim(), started.stderr).toBe('started');
        // GNU timeout puts itself in a process group of its own (setpgid). No PID namespace in the
        // sim: the test sees the container's processes.
        const left = () => { try { return execFileSync('pgrep', ['-x', '-f', 'sleep 617[12]'], { encoding: 'utf8' }).split('\n').filter(Boolean).length; } catch { return 0; } };
        expect(left()).toBe(2);
        await fault('kill-container', `${NS}/${POD}`, 'kube-etcd');
        await expect.poll(left, { timeout: 15_000, interval: 500 }).toBe(0);
        await waitClusterHealthy(cluster, S);
      }, 120_000);

      it('idle cuts port-forward streams too', async () => {
        await fault('stream', '--idle-timeout', String(IDLE_S), '--kind', 'portforward', '--pod', `${NS}/${POD}`);
        try {
          const kube = kubeContextFromOptions({ kubeconfig: cluster.kubeconfig, namespace: NS }, {});
          const fwd = await portForward(kube, { namespace: NS, pod: POD, port: 2379 });
          try {
            const t0 = Date.now();
            const local = connect(fwd.localPort, '127.0.0.1');
            local.on('error', () => undefined);
            const closedAfter = await new Promise<number>((resolve) => local.on('close', () => resolve(Date.now() - t0)));
            expect(closedAfter).toBeGreaterThanOrEqual(IDLE_S * 1000 - 200);
            expect(closedAfter).toBeLessThan(IDLE_S * 1000 + 3000);
          } finally {
            await fwd.close();
          }
        } finally {
          await fault('clear');
        }
      }, 60_000);
    });
  }

  describe('the product behind an idle cut shorter than a snapshot save, that leaves processes running', () => {
    let snapshot: string;
    /**
     * The idle window for the product: a third of a snapshot save of this database timed here, at most 2 s.
     * A fixed window is not enough: a save of 540 MB took 6 s on one machine and 1.8 s on CI's (etcd 3.5).
     */
    let idleS = IDLE_S;

    it(`makes the database larger than 512 MiB (${VALUES} values of 1 MB)`, async () => {
      const conn = S.etcdctl.slice(1).join(' ');
      const t0 = Date.now();
      // Four writers side by side (each put is an etcdctl process of its own), each every fourth key.
      await inPod(`head -c 1000000 /dev/urandom >/tmp/v; pids=; for k in 0 1 2 3; do (i=$k; while [ $i -lt ${VALUES} ]; do etcdctl ${conn} put /big/$i </tmp/v >/dev/null || exit 1; i=$((i+4)); done) & pids="$pids $!"; done; rc=0; for p in $pids; do wait $p || rc=1; done; rm -f /tmp/v; exit $rc`);
      const status = JSON.parse(await etcdctl(cluster, S, POD, ['endpoint', 'status', '-w', 'json'])) as Array<{ Status: { dbSize: number } }>;
      const dbSize = status[0]!.Status.dbSize;
      console.log(`filled in ${Date.now() - t0} ms; dbSize ${dbSize}`);
      expect(dbSize).toBeGreaterThan(512 * 1024 * 1024);
      const t1 = Date.now();
      await inPod(`etcdctl ${conn} snapshot save /tmp/timed.db >/dev/null 2>&1; rm -f /tmp/timed.db`);
      const saveMs = Date.now() - t1;
      // A third of it. The restore's etcdutl snapshot restore of the same data runs in about 0.45 of
      // a save (1.95 s against a 2 s window when the window was a half: too long to be outlasted);
      // and the product's quick probes (endpoint health and status, one exec each, silent until
      // they end) must fit in it: a fifth (0.8 s of a 4.3 s save) cut one of them on a loaded
      // machine, failing the backup for a reason no real idle timeout has.
      idleS = Math.min(IDLE_S, Math.max(0.3, Math.floor(saveMs / 300) / 10));
      console.log(`a snapshot save took ${saveMs} ms; idle window ${idleS} s`);
    }, 600_000);

    it('the naive way: one silent exec of etcdctl snapshot save is cut before the save ends', async () => {
      const kube = kubeContextFromOptions({ kubeconfig: cluster.kubeconfig, namespace: NS }, {});
      const run = containerCommand(kube);
      await fault('stream', '--idle-timeout', String(idleS), '--kind', 'exec');
      try {
        const save = ['sh', '-c', `etcdctl ${S.etcdctl.slice(1).join(' ')} snapshot save /tmp/naive.db >/dev/null 2>&1; echo $? >/tmp/naive.rc`];
        await expect(run({ namespace: NS, pod: POD, container: 'kube-etcd' }, save)).rejects.toBeInstanceOf(TransientError);
      } finally {
        await fault('clear');
      }
      // the save went on behind the cut, and ended well: the stream was cut while the command ran
      await inPod('while [ ! -f /tmp/naive.rc ]; do sleep 0.5; done; test "$(cat /tmp/naive.rc)" = 0; rm -f /tmp/naive.db /tmp/naive.rc');
    }, 300_000);

    it('backup by exec succeeds, with one snapshot save, and leaves nothing in the pod', async () => {
      await fault('stream', '--idle-timeout', String(idleS), '--kind', 'exec');
      const mark = audit().length;
      snapshot = join(work, 'big.db');
      const t0 = Date.now();
      let r;
      try {
        r = await kubectlEtcd(cluster, state, ['backup', '-n', NS, '--via', 'exec', '-f', snapshot], { timeoutMs: 600_000 });
      } finally {
        await fault('clear');
      }
      console.log(`backup took ${Date.now() - t0} ms`);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/via exec/);
      const starts = detachedStarts(mark, /snapshot save/);
      expect(starts).toHaveLength(1);
      const read = detachedRead(mark, starts[0]!.dir, starts[0]!.ts);
      // the save took longer than the idle window: one exec of it would have been cut
      expect(read! - starts[0]!.ts).toBeGreaterThan(idleS * 1000);
      expect(await inPod('ls -a /tmp /var/lib/etcd 2>/dev/null | grep kubectl-etcd || true')).toBe('');
    }, 600_000);

    it('a restore of it succeeds: the sha256sum and snapshot restore each started once, though they outlasted the idle window', async () => {
      await etcdctl(cluster, S, POD, ['put', '/after/backup', 'x']);
      await fault('stream', '--idle-timeout', String(idleS), '--kind', 'exec');
      const mark = audit().length;
      const t0 = Date.now();
      let r;
      try {
        r = await kubectlEtcd(cluster, state, ['restore', snapshot, '-n', NS, '--yes', '--no-safety-backup'], { timeoutMs: 900_000 });
      } finally {
        await fault('clear');
      }
      console.log(`restore took ${Date.now() - t0} ms`);
      expect(r.code, r.stderr).toBe(0);
      const restores = detachedStarts(mark, /snapshot restore/);
      expect(restores).toHaveLength(1);
      const restoreTook = detachedRead(mark, restores[0]!.dir, restores[0]!.ts)! - restores[0]!.ts;
      const shas = detachedStarts(mark, /^sha256sum/);
      console.log(`snapshot restore ran ${restoreTook} ms; sha256sum runs: ${shas.map((x) => `${detachedRead(mark, x.dir, x.ts)! - x.ts} ms`).join(', ')}`);
      expect(restoreTook).toBeGreaterThan(idleS * 1000);
      // one before the copy (no copy yet), one after it
      expect(shas).toHaveLength(2);
      await waitClusterHealthy(cluster, S);
      expect(await keysOn(cluster, S, POD, '/after/')).toEqual([]);
      expect((await keysOn(cluster, S, POD, '/big/')).length).toBe(VALUES);
    }, 900_000);

    // On the default minor only: a resume joins the detached run whichever tool it runs (the restore above shows etcdutl's on 3.5).
    if (minor === DEFAULT_ETCD_MINOR) it('a restore killed (SIGKILL) during its snapshot restore and resumed joins the run still going: started once', async () => {
      await etcdctl(cluster, S, POD, ['put', '/after/backup', 'y']);
      await fault('stream', '--idle-timeout', String(idleS), '--kind', 'exec');
      const mark = audit().length;
      let r;
      try {
        const started = startKubectlEtcd(cluster, state, ['restore', snapshot, '-n', NS, '--yes', '--no-safety-backup']);
        await started.until(/==> etcd(ctl|utl) snapshot restore into .*\n/, 600_000);
        // the run is started (or about to be) and outlasts the idle window: kill the plugin in the middle of it
        await new Promise((res) => setTimeout(res, 300));
        started.child.kill('SIGKILL');
        await started.done;
        // the exec that started it was waiting for it: its audit line is written once the API server saw its stream end
        await expect.poll(() => detachedStarts(mark, /snapshot restore/).length, { timeout: 15_000, interval: 100 }).toBe(1);
        r = await kubectlEtcd(cluster, state, ['restore', '-n', NS, '--resume', '--yes'], { timeoutMs: 900_000 });
      } finally {
        await fault('clear');
      }
      expect(r.code, r.stderr).toBe(0);
      expect(detachedStarts(mark, /snapshot restore/)).toHaveLength(1);
      await waitClusterHealthy(cluster, S);
      expect(await keysOn(cluster, S, POD, '/after/')).toEqual([]);
      expect((await keysOn(cluster, S, POD, '/big/')).length).toBe(VALUES);
    }, 900_000);
  });
});
