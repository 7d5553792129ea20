// Restore: the plugin end to end on the 3-member `anthos` layout (namespace uc1) against the
// manual runbook scripted with real kubectl (runbook.ts) on the same cluster, and the plugin on
// the 1-member layout (namespace single). Each run first writes a marker after the backup, and
// is checked afterwards (untimed): every member serves the pre-backup marker and every pod of
// the namespace is Ready. A run's time ends when the namespace is Ready again.
import { join } from 'node:path';
import type { EtcdMinor } from '../../test/sim/etcd-versions.js';
import { SINGLE_NS } from '../fixture.js';
import type { BenchCluster } from '../lib/cluster.js';
import { alternate, dirtyMiB, median } from '../lib/stats.js';
import { medianPhases } from './backup.js';
import { manualRestore, runbookPodsGone, snapshotRestoreCommand } from './runbook.js';

/** A restore target: namespace, members, and every pod the namespace holds when healthy. */
interface Target {
  ns: string;
  members: number;
  pods: number;
  snapshot: string;
}

/** Median seconds per variant, or why a variant could not run. */
export interface RestoreRow {
  available: boolean;
  reason?: string;
  plugin3?: number;
  plugin1?: number;
  manual3?: number;
  /** The restore command the manual runbook ran (etcdctl's on 3.4, etcdutl's on 3.5). */
  runbookCommand: string;
  samples: Record<string, number[]>;
  /** Per plugin variant, median seconds per phase (restore/... steps timed by the plugin itself). */
  breakdown?: Record<string, Array<[string, number]>>;
  /** Per plugin variant, every round's seconds per phase, in order: a slow round whole, not just the medians. */
  rounds?: Record<string, Array<Record<string, number>>>;
}

/**
 * A plugin run's time by phase, from its `-o json` record: what came before the first step (start-up,
 * discovery, preflight, plan, the safety backup), then each kind of step (the per-member ones run
 * for all members at once, so a kind counts its slowest member), then the wait for the namespace's
 * pods after the plugin exited.
 */
export function restorePhases(
  record: { seconds: number; steps: Array<{ id: string; seconds: number }>; before?: Array<{ name: string; seconds: number }> },
  processSeconds: number,
  timedSeconds: number,
): Record<string, number> {
  const phases: Record<string, number> = { 'before the steps': Math.max(0, processSeconds - record.seconds) };
  // what the plugin timed of it (start-up, load, snapshot, access, discover, preflight, admission, safety backup, journal)
  for (const p of record.before ?? []) phases[`before: ${p.name}`] = p.seconds;
  // The rest of it: the process's time outside what it timed (its start before the clock, its exit after the record).
  if (record.before) phases['before: untimed (process start and exit)'] = Math.max(0, phases['before the steps']! - record.before.reduce((a, p) => a + p.seconds, 0));
  const slowest = new Map<string, Map<string, number>>();
  for (const step of record.steps) {
    const [kind, member = ''] = step.id.split('/');
    const byMember = slowest.get(kind!) ?? new Map<string, number>();
    byMember.set(member, (byMember.get(member) ?? 0) + step.seconds);
    slowest.set(kind!, byMember);
  }
  for (const [kind, byMember] of slowest) phases[kind] = Math.max(...byMember.values());
  phases['pods Ready after exit'] = Math.max(0, timedSeconds - processSeconds);
  return phases;
}

/** The three largest parts of one restore, for the log ("before: safety backup 24.1 s, …"). */
export function slowestParts(phases: Record<string, number>): string {
  return Object.entries(phases)
    .filter(([name]) => name !== 'before the steps')
    .sort((a, b) => b[1] - a[1])
    .slice(0, 3)
    .map(([name, s]) => `${name} ${s.toFixed(1)} s`)
    .join(', ');
}

/** Whether this build has `kubectl etcd restore`; the reason when not. */
export async function restoreAvailability(c: BenchCluster): Promise<{ ok: boolean; reason?: string }> {
  const r = await c.kubectl(['etcd', 'restore', '--help']);
  if (r.code === 0 && /Usage: kubectl etcd restore/.test(r.stdout)) return { ok: true };
  return { ok: false, reason: '`kubectl etcd restore` is not in this build (no restore command registered)' };
}

/**
 * Writes the marker (untimed), asking again for up to a minute as an operator would: pods Ready
 * after a restore (the manual runbook's especially) do not yet mean a leader that takes writes.
 */
async function putMarker(c: BenchCluster, ns: string, value: string): Promise<void> {
  for (const deadline = Date.now() + 60_000; ;) {
    try {
      await c.inEtcd(ns, 'kube-etcd-0', `etcdctl put /bench/marker ${value} >/dev/null`);
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

/** Throws unless every member serves the pre-backup marker and the namespace is Ready. */
async function verifyRestored(c: BenchCluster, t: Target, variant: string): Promise<void> {
  await c.waitReady(t.ns, t.pods, 600_000);
  for (let i = 0; i < t.members; i++) {
    const r = await c.inEtcd(t.ns, `kube-etcd-${i}`, 'etcdctl get /bench/marker --print-value-only --consistency=s');
    if (r.stdout.trim() !== 'before') throw new Error(`${variant} in "${t.ns}": member kube-etcd-${i} serves marker "${r.stdout.trim()}", not "before"`);
  }
}

/** Takes the snapshot each target is restored from (the plugin's backup, which this bench also measures). */
async function prepare(c: BenchCluster, ns: string, members: number, pods: number, outDir: string): Promise<Target> {
  const snapshot = join(outDir, `restore-${ns}.db`);
  await putMarker(c, ns, 'before');
  await c.kubectlMust(['etcd', 'backup', '-n', ns, '-f', snapshot], { timeoutMs: 600_000 });
  return { ns, members, pods, snapshot };
}

/** Runs the three variants `rounds` times, alternating, on a cluster running etcd `etcd`. */
export async function benchRestore(c: BenchCluster, etcd: EtcdMinor, rounds: number, outDir: string, log: (l: string) => void): Promise<RestoreRow> {
  const anthos = await prepare(c, 'uc1', 3, 7, outDir);
  const single = await prepare(c, SINGLE_NS, 1, 3, outDir);
  const available = await restoreAvailability(c);
  const phaseSamples = new Map<string, Array<{ phases: Record<string, number> }>>();
  const timed = (t: Target, variant: string, act: () => Promise<((timedSeconds: number) => void) | void>) => async (): Promise<number> => {
    await putMarker(c, t.ns, 'after');
    // Writeback still owed by earlier sections (GiBs of snapshots) slows every fsync: say how much, per round.
    log(`  restore ${variant} in ${t.ns}: starting with ${await dirtyMiB()} MiB dirty or under writeback`);
    const started = process.hrtime.bigint();
    const after = await act();
    await c.waitReady(t.ns, t.pods, 600_000);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    after?.(seconds);
    await verifyRestored(c, t, variant);
    return seconds;
  };
  const plugin = (t: Target, name: string) => async () => {
    // As a user runs it (a safety backup first, the default); the maintenance deployment is
    // quiesced like the runbook does; the journal and safety backups go to the bench's temp dir.
    const r = await c.kubectlMust(['etcd', 'restore', t.snapshot, '-n', t.ns, '--quiesce', 'deployment/gke-master-etcd-maintenance', '--yes',
      '--state-dir', join(outDir, 'state'), '-o', 'json'], { timeoutMs: 1_800_000 });
    const record = JSON.parse(r.stdout) as Parameters<typeof restorePhases>[0];
    return (timedSeconds: number) => {
      const phases = restorePhases(record, r.seconds, timedSeconds);
      phaseSamples.set(name, [...(phaseSamples.get(name) ?? []), { phases }]);
      // Each round's three slowest parts, so a slow round is named even when the median hides it.
      log(`  restore ${name} round: ${slowestParts(phases)}`);
    };
  };
  // Untimed, after each plugin restore, as an operator would between restores: each restore keeps
  // the data it replaced on the member's volume, and a few rounds would fill the volume.
  const prune = (t: Target) => c.kubectlMust(['etcd', 'restore', '--prune-kept', '-n', t.ns, '--yes', '--state-dir', join(outDir, 'state')], { timeoutMs: 300_000 });
  const thenPrune = (t: Target, run: () => Promise<number>) => async (): Promise<number> => {
    const seconds = await run();
    await prune(t);
    return seconds;
  };
  const variants = [
    {
      name: 'manual runbook, 3 members',
      run: async () => {
        const seconds = await timed(anthos, 'manual runbook', () => manualRestore(c, etcd, anthos.ns, 3, anthos.snapshot, outDir))();
        await runbookPodsGone(c, anthos.ns, 3);
        return seconds;
      },
    },
    ...(available.ok
      ? [
          { name: 'plugin, 3 members', run: thenPrune(anthos, timed(anthos, 'plugin restore', plugin(anthos, 'plugin, 3 members'))) },
          { name: 'plugin, 1 member', run: thenPrune(single, timed(single, 'plugin restore', plugin(single, 'plugin, 1 member'))) },
        ]
      : []),
  ];
  const samples = await alternate(variants, rounds, (name, s) => log(`  restore ${name}: ${s.toFixed(1)} s`));
  const med = (name: string) => (samples.has(name) ? median(samples.get(name)!) : undefined);
  return {
    available: available.ok,
    reason: available.reason,
    manual3: med('manual runbook, 3 members'),
    plugin3: med('plugin, 3 members'),
    plugin1: med('plugin, 1 member'),
    runbookCommand: snapshotRestoreCommand(etcd),
    samples: Object.fromEntries(samples),
    breakdown: Object.fromEntries([...phaseSamples].map(([name, list]) => [name, medianPhases(list) ?? []])),
    rounds: Object.fromEntries([...phaseSamples].map(([name, list]) => [name, list.map((s) => s.phases)])),
  };
}
