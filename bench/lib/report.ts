// The printed table and the target verdicts. Targets are reported, never asserted.
import { ENCRYPTED, type BackupRow, type BackupVariant } from '../sections/backup.js';
import type { InspectRow } from '../sections/inspect.js';
import type { RestoreRow } from '../sections/restore.js';
import type { StartupRow } from '../sections/startup.js';

/** Everything one run measured. */
export interface BenchResults {
  /** The etcd every member ran: the minor asked for (`--etcd`) and the release `etcd --version` printed in the pods. */
  etcd: { minor: string; release: string };
  /** Processors of the machine that ran it (every process of the test cluster shares them). */
  cores?: number;
  backup: BackupRow[];
  inspect?: InspectRow;
  restore?: RestoreRow;
  restoreError?: string;
  startup?: StartupRow;
}

/** One target and whether this run met it. */
export interface Verdict {
  target: string;
  measured: string;
  result: 'met' | 'missed' | 'not measured';
}

const MIB = 1024 * 1024;
const f1 = (x: number) => x.toFixed(1);
const f2 = (x: number) => x.toFixed(2);
/** Keeps table cells short; the JSON result has the full text. */
const clip = (s: string, n = 70) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/** Left-aligned first column, right-aligned others, two spaces apart. */
function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ').trimEnd());
}

const VARIANTS: BackupVariant[] = ['floor', 'plugin --via exec', 'plugin --via stream', ENCRYPTED, 'manual kubectl'];

/** The target verdicts for this run. */
export function verdicts(r: BenchResults): Verdict[] {
  const out: Verdict[] = [];
  const at512 = r.backup.find((b) => b.targetMiB === 512);
  const largest = r.backup[r.backup.length - 1];
  for (const via of ['plugin --via exec', 'plugin --via stream'] as const) {
    if (!at512) out.push({ target: `backup ${via} ≤ 1.3× floor at 512 MiB`, measured: '512 MiB not in this run', result: 'not measured' });
    else {
      const x = at512.figures[via].seconds / at512.figures.floor.seconds;
      out.push({ target: `backup ${via} ≤ 1.3× floor at 512 MiB`, measured: `${f2(x)}×`, result: x <= 1.3 ? 'met' : 'missed' });
    }
    // the issue asks it at 64 MiB and at 512 MiB: a row for every size the run took
    for (const row of r.backup) {
      const x = row.figures[via].seconds / row.figures['manual kubectl'].seconds;
      out.push({ target: `backup ${via} faster than manual (${row.targetMiB} MiB)`, measured: `${f2(x)}× manual`, result: x < 1 ? 'met' : 'missed' });
    }
  }
  const at2g = r.backup.find((b) => b.targetMiB === 2048);
  // Every plugin variant the run timed (the encrypted one too, when the results have it).
  const rss = (b: BackupRow) => Math.max(b.figures['plugin --via exec'].peakRssMiB ?? 0, b.figures['plugin --via stream'].peakRssMiB ?? 0, b.figures[ENCRYPTED]?.peakRssMiB ?? 0);
  if (at2g) out.push({ target: 'plugin peak RSS ≤ 150 MiB at 2 GiB', measured: `${rss(at2g).toFixed(0)} MiB`, result: rss(at2g) <= 150 ? 'met' : 'missed' });
  else out.push({ target: 'plugin peak RSS ≤ 150 MiB at 2 GiB', measured: '2 GiB not run (needs --huge)', result: 'not measured' });
  if (r.backup.length > 1) {
    const first = rss(r.backup[0]!);
    const last = rss(largest!);
    const grow = last - first;
    out.push({
      target: 'plugin peak RSS flat in snapshot size (growth ≤ 10%)',
      measured: `${first.toFixed(0)} → ${last.toFixed(0)} MiB (${r.backup[0]!.targetMiB} → ${largest!.targetMiB} MiB)`,
      result: grow <= first * 0.1 ? 'met' : 'missed',
    });
  }
  const rr = r.restore;
  if (!rr || !rr.available || rr.plugin3 === undefined || rr.plugin1 === undefined || rr.manual3 === undefined) {
    const why = clip(r.restoreError ? `failed: ${r.restoreError}` : rr ? `not available: ${rr.reason ?? 'a plugin row is missing'}` : 'not run', 60);
    out.push({ target: '3-member restore ≤ 1.5× 1-member', measured: why, result: 'not measured' });
    out.push({ target: '3-member restore ≤ 1.0× manual runbook', measured: why, result: 'not measured' });
  } else {
    const a = rr.plugin3 / rr.plugin1;
    const b = rr.plugin3 / rr.manual3;
    out.push({ target: '3-member restore ≤ 1.5× 1-member', measured: `${f2(a)}×`, result: a <= 1.5 ? 'met' : 'missed' });
    out.push({ target: '3-member restore ≤ 1.0× manual runbook', measured: `${f2(b)}×`, result: b <= 1 ? 'met' : 'missed' });
  }
  if (r.inspect) {
    const ref = r.inspect.reference;
    const x = r.inspect.plugin.mbPerSecond / ref.mbPerSecond;
    out.push({ target: `inspect at least as fast as ${ref.tool}`, measured: `${f2(x)}× ${toolName(ref.tool)} MB/s`, result: x >= 1 ? 'met' : 'missed' });
  } else out.push({ target: 'inspect at least as fast as the etcd tool', measured: 'not run', result: 'not measured' });
  const shipped = r.startup?.shippedSeconds;
  if (shipped !== undefined && r.startup) {
    const x = shipped / r.startup.kubectlSeconds;
    out.push({ target: 'shipped binary --help ≤ 1.5× kubectl version --client', measured: `${f2(x)}×`, result: x <= 1.5 ? 'met' : 'missed' });
  } else out.push({ target: 'shipped binary --help ≤ 1.5× kubectl version --client', measured: 'not built (--no-build)', result: 'not measured' });
  return out;
}

/** `etcdutl snapshot status` → `etcdutl`. */
const toolName = (tool: string) => tool.split(' ')[0]!;

/**
 * What the whole machine's CPU says of one size: busy core-seconds per variant, and the shortest
 * time any overlap of save and copy could take when both share the machine's cores, from the
 * manual way's save and copy measured one after the other ((save + copy core-s) / cores).
 */
export function cpuLine(b: BackupRow, cores: number | undefined): string | undefined {
  const busy = VARIANTS.map((v) => [v, b.figures[v]?.cpuSeconds] as const).filter((x): x is readonly [BackupVariant, number] => x[1] !== undefined);
  if (!busy.length) return undefined;
  let line = `CPU (machine busy core-s, median): ${busy.map(([v, s]) => `${v} ${f2(s)}`).join(', ')}`;
  const manual = new Map(b.figures['manual kubectl'].cpuPhases ?? []);
  const save = manual.get('kubectl exec … snapshot save');
  const cp = manual.get('kubectl cp');
  if (cores && save !== undefined && cp !== undefined) {
    line += `; manual save ${f2(save)} + cp ${f2(cp)} core-s, so on ${cores} cores no overlap of the two takes less than ${f2((save + cp) / cores)} s`;
  }
  return line;
}

/** The human table printed at the end of a run. */
export function renderReport(r: BenchResults, header: string[]): string {
  const lines = [...header, ''];
  lines.push('BACKUP (median of alternating runs; × = time ratio, lower is better)');
  const rows: string[][] = [['size', 'variant', 'time s', 'MB/s', '× floor', '× manual', 'peak RSS MiB']];
  for (const b of r.backup) {
    for (const v of VARIANTS) {
      const fig = b.figures[v];
      if (!fig) continue; // results from before the variant existed
      rows.push([
        v === 'floor' ? `${b.targetMiB} MiB (${f1(b.snapshotBytes / MIB)} MiB file)` : '',
        v,
        f2(fig.seconds),
        f1(fig.mbPerSecond),
        f2(fig.seconds / b.figures.floor.seconds),
        f2(fig.seconds / b.figures['manual kubectl'].seconds),
        fig.peakRssMiB !== undefined ? fig.peakRssMiB.toFixed(0) : '-',
      ]);
    }
  }
  lines.push(...table(rows).map((l) => '  ' + l), '');
  lines.push('BACKUP BREAKDOWN (median seconds per phase; the plugin\'s own record, -o json)');
  for (const b of r.backup) {
    for (const v of VARIANTS) {
      const phases = b.figures[v]?.phases;
      if (phases) lines.push(`  ${b.targetMiB} MiB ${v}: ${phases.map(([n, s]) => `${n} ${f2(s)}`).join(', ')}`);
    }
    const cpu = cpuLine(b, r.cores);
    if (cpu) lines.push(`  ${b.targetMiB} MiB ${cpu}`);
  }
  lines.push('');
  lines.push('RESTORE (median wall time until every pod of the namespace is Ready again; checked after)');
  const rr = r.restore;
  const failed = r.restoreError ? clip(`failed: ${r.restoreError}`) : undefined;
  const missing = (x: number | undefined, pluginRow: boolean) =>
    x !== undefined ? f1(x) : failed ?? (pluginRow && rr && !rr.available ? clip(`not available: ${rr.reason ?? ''}`) : 'not run');
  const restoreRows: string[][] = [['variant', 'time s', '× manual', '× 1-member']];
  const cell = (x: number | undefined, base: number | undefined) => (x !== undefined && base !== undefined ? f2(x / base) : '-');
  restoreRows.push(['plugin, anthos (3 members)', missing(rr?.plugin3, true), cell(rr?.plugin3, rr?.manual3), cell(rr?.plugin3, rr?.plugin1)]);
  restoreRows.push([`manual runbook, anthos (3 members, sequential${rr ? `, ${rr.runbookCommand.replace(/^ETCDCTL_API=3 /, '')}` : ''})`, missing(rr?.manual3, false), rr?.manual3 !== undefined ? '1.00' : '-', '-']);
  restoreRows.push(['plugin, single (1 member)', missing(rr?.plugin1, true), cell(rr?.plugin1, rr?.manual3), rr?.plugin1 !== undefined ? '1.00' : '-']);
  lines.push(...table(restoreRows).map((l) => '  ' + l), '');
  if (rr?.breakdown && Object.keys(rr.breakdown).length) {
    lines.push('RESTORE BREAKDOWN (median seconds; per-member steps count their slowest member)');
    for (const [name, phases] of Object.entries(rr.breakdown)) lines.push(`  ${name}: ${phases.map(([n, s]) => `${n} ${f1(s)}`).join(', ')}`);
    lines.push('');
  }
  if (r.inspect) {
    const i = r.inspect;
    const ref = i.reference;
    lines.push(`INSPECT (same ${f1(i.bytes / MIB)} MiB snapshot)`);
    lines.push(...table([
      ['reader', 'time s', 'MB/s', `× ${toolName(ref.tool)} MB/s`, 'peak RSS MiB'],
      ['kubectl etcd inspect', f2(i.plugin.seconds), f1(i.plugin.mbPerSecond), f2(i.plugin.mbPerSecond / ref.mbPerSecond), i.plugin.peakRssMiB?.toFixed(0) ?? '-'],
      [`${ref.tool} (etcd ${r.etcd.minor})`, f2(ref.seconds), f1(ref.mbPerSecond), '1.00', ref.peakRssMiB?.toFixed(0) ?? '-'],
      ...(i.sha256 ? [[`${i.sha256.tool} (inspect's trailer check alone)`, f2(i.sha256.seconds), f1(i.sha256.mbPerSecond), f2(i.sha256.mbPerSecond / ref.mbPerSecond), i.sha256.peakRssMiB?.toFixed(0) ?? '-']] : []),
    ]).map((l) => '  ' + l), '');
  }
  if (r.startup) {
    lines.push('START-UP');
    lines.push(...table([
      ['command', 'time s', '× kubectl'],
      ['kubectl etcd --help', f2(r.startup.pluginSeconds), f2(r.startup.pluginSeconds / r.startup.kubectlSeconds)],
      ...(r.startup.shippedSeconds !== undefined ? [['shipped kubectl-etcd --help', f2(r.startup.shippedSeconds), f2(r.startup.shippedSeconds / r.startup.kubectlSeconds)]] : []),
      ['kubectl version --client', f2(r.startup.kubectlSeconds), '1.00'],
    ]).map((l) => '  ' + l), '');
  }
  lines.push('TARGETS (reported, not asserted)');
  lines.push(...table([['target', 'measured', 'result'], ...verdicts(r).map((v) => [v.target, v.measured, v.result])]).map((l) => '  ' + l));
  return lines.join('\n');
}
