/**
 * Kept copies: the old `member/` dir every restore moves aside on the member's volume
 * (`member.pre-restore-<stamp>`, with Bitnami's start files in `<copy>.start-files`), and the old
 * data a `member replace` sets aside there (`member.pre-replace-<stamp>`, with what a start in
 * between made of the emptied data dir in `<copy>.started-meanwhile`). Where they live, how they
 * are measured (one `du -sk` exec, the way preflight reads free space with `df`), and which of
 * them a prune may delete. Pure, apart from the argv it builds.
 */
import type { EtcdMember } from '../etcd/topology.js';

/** Prefix of the directory name of every copy a restore keeps. */
export const KEPT_COPY_PREFIX = 'member.pre-restore-';
/** Prefix of the directory name of every copy a member replace keeps (replace-plan.ts). */
export const KEPT_REPLACE_PREFIX = 'member.pre-replace-';

/**
 * A kept copy's name: the prefix, the stamp, and an optional companion dir: `.start-files`
 * (a restore of a Bitnami member), `.started-meanwhile` (a replace of one).
 */
const KEPT_NAME = /^member\.pre-(restore|replace)-(\d{8}T\d{6}Z)(\.start-files|\.started-meanwhile)?$/;

/** One kept copy on a member volume: its directories (the copy, and its companion when any), stamp and size. */
export interface KeptCopy {
  /** `member.pre-restore-<stamp>` or `member.pre-replace-<stamp>`. */
  name: string;
  /** What kept it: a restore of the whole cluster, or a member replace of this member. */
  kind: 'restore' | 'replace';
  /** The restore's or replace's stamp (compact UTC): the newer copy has the greater stamp. */
  stamp: string;
  /** Directory names in the kept-copies dir that belong to this copy (the copy first). */
  dirs: string[];
  bytes: number;
}

/** What the volume of one member holds besides its free space: its live data and its kept copies. */
export interface MemberSpace {
  /** Size of the live `member/` dir: what this restore keeps as its new copy. */
  liveBytes?: number;
  keptCopies: KeptCopy[];
  keptBytes: number;
}

/** Joins a directory and a name. */
export function joinPath(dir: string, name: string): string {
  return dir.endsWith('/') ? `${dir}${name}` : `${dir}/${name}`;
}

/** True when path is dir or lies below it. */
export function within(path: string, dir: string): boolean {
  const d = dir.replace(/\/+$/, '');
  return path === d || path.startsWith(`${d}/`);
}

/**
 * Where a member's kept copies live: the volume root when the data dir is a sub-folder of the
 * volume (start scripts such as Bitnami's wipe the data dir), else the data dir; always the same
 * volume, so the old data is moved, never copied.
 */
export function keptCopiesDirOf(member: EtcdMember): string {
  return member.dataVolume && within(member.dataDir, member.dataVolume.mountPath) ? member.dataVolume.mountPath : member.dataDir;
}

/** The kept copy a restore of this stamp makes. */
export function keptCopyPath(member: EtcdMember, stamp: string): string {
  return joinPath(keptCopiesDirOf(member), `${KEPT_COPY_PREFIX}${stamp}`);
}

// `du -sk` of the live member dir (first line, marked) and of every kept-copy dir; paths as arguments.
const MEASURE_SCRIPT = [
  'dir="$1"; live="$2"',
  'if [ -d "$live" ]; then printf "live "; du -sk "$live"; fi',
  `for d in "$dir"/${KEPT_COPY_PREFIX}* "$dir"/${KEPT_REPLACE_PREFIX}*; do [ -d "$d" ] && du -sk "$d"; done`,
  'true',
].join('\n');

/** argv that measures a member's live data and kept copies (in its etcd container or a utility pod). */
export function measureKeptArgv(member: EtcdMember): string[] {
  return ['sh', '-c', MEASURE_SCRIPT, 'sh', keptCopiesDirOf(member), joinPath(member.dataDir, 'member')];
}

/** Reads what measureKeptArgv printed; names that are not kept copies are ignored. */
export function parseKeptListing(stdout: string): MemberSpace {
  const byStamp = new Map<string, KeptCopy>();
  let liveBytes: number | undefined;
  for (const line of stdout.split('\n')) {
    const m = /^(live )?(\d+)\s+(.+)$/.exec(line.trim());
    if (!m) continue;
    const bytes = Number(m[2]) * 1024;
    if (m[1]) {
      liveBytes = bytes;
      continue;
    }
    const name = m[3]!.slice(m[3]!.lastIndexOf('/') + 1);
    const k = KEPT_NAME.exec(name);
    if (!k) continue;
    const kind = k[1] as KeptCopy['kind'];
    const stamp = k[2]!;
    const key = `${kind} ${stamp}`;
    const copy = byStamp.get(key) ?? { name: `member.pre-${kind}-${stamp}`, kind, stamp, dirs: [], bytes: 0 };
    if (k[3]) copy.dirs.push(name);
    else copy.dirs.unshift(name);
    copy.bytes += bytes;
    byStamp.set(key, copy);
  }
  const keptCopies = [...byStamp.values()].sort((a, b) => a.stamp.localeCompare(b.stamp) || a.kind.localeCompare(b.kind));
  return { liveBytes, keptCopies, keptBytes: keptCopies.reduce((n, c) => n + c.bytes, 0) };
}

/** Why a kept copy stays. */
export type KeepReason = 'newest' | 'not-verified' | 'replace-open';

/** What a prune does on one member: the copies it deletes and the ones it keeps, with why. */
export interface PruneSelection {
  prune: KeptCopy[];
  keep: Array<{ copy: KeptCopy; reason: KeepReason }>;
}

/**
 * Which kept copies a prune deletes: never the newest `keep` (by stamp, restore and replace copies
 * together), only a restore's copy whose restore is recorded as finished and verified, and only a
 * replace's copy when no replace of the member is under way (`replaceOpen`: its journal is there;
 * a replace deletes its journal once the member is healthy as its new ID). Anything else stays.
 */
export function selectPrunable(copies: KeptCopy[], verified: ReadonlySet<string>, keep: number, replaceOpen = false): PruneSelection {
  const newestFirst = [...copies].sort((a, b) => b.stamp.localeCompare(a.stamp) || b.kind.localeCompare(a.kind));
  const selection: PruneSelection = { prune: [], keep: [] };
  newestFirst.forEach((copy, i) => {
    if (i < keep) selection.keep.push({ copy, reason: 'newest' });
    else if (copy.kind === 'replace' && replaceOpen) selection.keep.push({ copy, reason: 'replace-open' });
    else if (copy.kind === 'restore' && !verified.has(copy.stamp)) selection.keep.push({ copy, reason: 'not-verified' });
    else selection.prune.push(copy);
  });
  return selection;
}

// Removes named kept-copy dirs inside DIR; refuses any other name, so the live member/ dir and
// anything else on the volume cannot be reached whatever the caller passes.
const REMOVE_SCRIPT = [
  'dir="$1"; shift',
  'for name in "$@"; do',
  '  case "$name" in',
  `    */*|..*) echo "refusing to remove $name: not a kept copy" >&2; exit 2;;`,
  `    ${KEPT_COPY_PREFIX}*|${KEPT_REPLACE_PREFIX}*) ;;`,
  '    *) echo "refusing to remove $name: not a kept copy" >&2; exit 2;;',
  '  esac',
  '  rm -rf -- "$dir/$name"',
  '  if [ -e "$dir/$name" ]; then echo "$dir/$name is still there" >&2; exit 1; fi',
  'done',
].join('\n');
// No sync: a removal lost in a crash only leaves the copy for the next prune, and sync flushes
// every filesystem of the node under the running etcd members.

/** argv that removes these kept copies (their dirs) of a member; names are checked again in the pod. */
export function removeKeptArgv(member: EtcdMember, copies: KeptCopy[]): string[] {
  const names = copies.flatMap((c) => c.dirs);
  for (const n of names) if (!KEPT_NAME.test(n)) throw new Error(`"${n}" is not a kept copy`);
  return ['sh', '-ec', REMOVE_SCRIPT, 'sh', keptCopiesDirOf(member), ...names];
}

/** The bytes available to a member (restore's preflight, member replace's space check) from `df -Pk` output (the Available column of its last line). */
export function parseDfAvailable(stdout: string): number | undefined {
  const last = stdout.trim().split('\n').at(-1)?.trim().split(/\s+/) ?? [];
  const kib = last.length >= 6 ? Number(last[3]) : NaN;
  return Number.isFinite(kib) && /^\d+$/.test(last[3] ?? '') ? kib * 1024 : undefined;
}
