import { formatBytes } from '../../ui/bytes.js';
import { renderTable } from '../../ui/table.js';
import type { SnapshotFacts } from './facts.js';

/** Note shown for a raw bbolt file without the trailer `etcdctl snapshot save` appends. */
export const NO_TRAILER_NOTE = 'no sha256 trailer (not produced by snapshot save); restore needs --skip-hash-check';

/** One line describing integrity, as the human table shows it. */
export function describeIntegrity(facts: SnapshotFacts): string {
  if (facts.outcome === 'corrupt') return `corrupt: ${facts.problems[0]}`;
  if (facts.trailer === 'mismatch') return 'damaged: sha256 trailer does not match the content';
  if (facts.trailer === 'absent') return `valid bbolt file; ${NO_TRAILER_NOTE}`;
  return 'valid: sha256 trailer matches';
}

/** Renders the facts as kubectl-style tables: a summary, then objects per resource (or per namespace). */
export function renderFactsTable(facts: SnapshotFacts, byNamespace: boolean): string {
  const num = (n: number | undefined) => (n === undefined ? '-' : String(n));
  const summary: string[][] = [
    ['snapshot', facts.path],
    ['file size', `${facts.fileSize} (${formatBytes(facts.fileSize)})`],
    ['integrity', describeIntegrity(facts)],
  ];
  if (facts.status) {
    summary.push(
      ['hash', num(facts.status.hash)],
      ['revision', num(facts.status.revision)],
      ['total keys', num(facts.status.totalKey)],
      ['total size', `${facts.status.totalSize} (${formatBytes(facts.status.totalSize)})`],
    );
  }
  if (facts.objects) {
    const o = facts.objects;
    summary.push(['live keys', `${o.liveKeys} (${o.objects} kubernetes objects, ${o.other} other)`]);
  }
  let out = summary.map(([k, v]) => `${k.toUpperCase().padEnd(12)}${v}`).join('\n') + '\n';
  if (!facts.objects) return out;
  out += '\n';
  if (byNamespace) {
    const rows: string[][] = [];
    for (const ns of Object.keys(facts.objects.byNamespace).sort()) {
      const perResource = facts.objects.byNamespace[ns];
      for (const r of Object.keys(perResource).sort()) rows.push([ns || '(cluster)', r, String(perResource[r])]);
    }
    if (facts.objects.other > 0) rows.push(['(other)', '(other)', String(facts.objects.other)]);
    return out + renderTable(['namespace', 'resource', 'objects'], rows);
  }
  const rows = Object.keys(facts.objects.byResource)
    .sort()
    .map((r) => [r, String(facts.objects!.byResource[r])]);
  if (facts.objects.other > 0) rows.push(['(other)', String(facts.objects.other)]);
  return out + renderTable(['resource', 'objects'], rows);
}
