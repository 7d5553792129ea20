/**
 * Plaintext copies of encrypted snapshots, for the readers that need random access (the bbolt
 * walk of inspect and of restore's checks). A copy lives in `<state dir>/tmp` (0700), is created
 * 0600 with O_EXCL, and is removed on every way out: normal return, error, SIGINT/SIGTERM (removed
 * synchronously, then the signal's default action), SIGHUP/SIGQUIT and exit (trackTemporary), and,
 * after a SIGKILL, by the next run on this host, which removes copies whose process is gone.
 */
import { createReadStream, readdirSync, rmSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PartialFile } from '../backup/partial.js';
import { PluginError, UsageError } from '../errors.js';
import { decryptFailure, decryptStream, readIdentities, storedFormat } from './age.js';

const PREFIX = 'plaintext-';

/** Where plaintext copies go under the state dir. */
export function plaintextDir(stateDir: string): string {
  return join(stateDir, 'tmp');
}

/** This host, as a file-name part: a state dir shared by several hosts never sweeps another host's live copy or drill directory. */
export function hostTag(): string {
  return hostname().replace(/[^A-Za-z0-9.-]+/g, '-') || 'host';
}

/** A new plaintext copy's file name: host, pid and a random part (see sweepStalePlaintext). */
function plaintextName(): string {
  return `${PREFIX}${hostTag()}_${process.pid}-${randomBytes(6).toString('hex')}.db`;
}

/** Removes this host's copies and drill directories left by runs that were killed (their pid, in the name, no longer alive). */
export function sweepStalePlaintext(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    // A plaintext copy, or a restore drill's directory (verify/drill.ts) whose member was killed with it.
    const m = /^(?:plaintext|drill)-(.+)_(\d+)-[0-9a-f]+(\.db(\.partial)?)?$/.exec(name);
    if (!m || m[1] !== hostTag() || isLive(Number(m[2]))) continue;
    try {
      rmSync(join(dir, name), { recursive: true, force: true });
      removed.push(name);
    } catch {
      // another run removed it
    }
  }
  return removed;
}

/** This process, or another live one. */
function isLive(pid: number): boolean {
  return pid === process.pid || pidAlive(pid);
}

/** Whether a process with this pid runs on this machine (one we may not signal counts). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Plaintext files of this process, removed synchronously when it exits (an uncaught error
 * included) or is hung up on (SIGHUP: a closed terminal or ssh session; SIGQUIT). SIGINT and
 * SIGTERM are left to the command's own handling (which must remove them too), so one Ctrl-C is
 * never counted twice.
 */
const tracked = new Map<string, (() => void) | undefined>();
const HANGUPS = ['SIGHUP', 'SIGQUIT'] as const;

function removeTrackedSync(): void {
  for (const [p, beforeRemove] of tracked) {
    try {
      beforeRemove?.();
      rmSync(p, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 });
    } catch {
      // already gone, or not ours to remove any more
    }
  }
}

function onHangup(sig: NodeJS.Signals): void {
  removeTrackedSync();
  tracked.clear();
  uninstall();
  // quit as the signal asks, unless someone else handles it
  if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
}

function install(): void {
  if (tracked.size !== 1) return;
  process.on('exit', removeTrackedSync);
  for (const sig of HANGUPS) process.on(sig, onHangup);
}

function uninstall(): void {
  process.off('exit', removeTrackedSync);
  for (const sig of HANGUPS) process.off(sig, onHangup);
}

/**
 * Tracks a plaintext file, or a directory holding one (a restore drill's), until the returned
 * function is called (after it is removed); `beforeRemove` stops what writes into it first.
 */
export function trackTemporary(path: string, beforeRemove?: () => void): () => void {
  tracked.set(path, beforeRemove);
  install();
  return () => {
    if (!tracked.delete(path)) return;
    if (tracked.size === 0) uninstall();
  };
}

/**
 * A 0600 temporary file in the state dir (a PartialFile: O_EXCL, never committed) that is removed
 * on every exit path.
 */
export class TempPlaintext {
  private removed = false;
  private readonly untrack: () => void;
  private readonly onSignal = (sig: NodeJS.Signals) => {
    this.removeSync();
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
    // Nothing else to undo (this copy exists only before any change): quit as the signal asks,
    // unless another handler takes care of it (re-sending would count one Ctrl-C twice there).
    if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
  };

  private constructor(readonly file: PartialFile) {
    this.untrack = trackTemporary(file.path);
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
  }

  /** Creates the file (empty) in `<stateDir>/tmp`. */
  static async create(stateDir: string): Promise<TempPlaintext> {
    const dir = await ensurePlaintextDir(stateDir);
    return new TempPlaintext(await PartialFile.create(join(dir, plaintextName()), '--state-dir on a disk with room for one snapshot'));
  }

  get path(): string {
    return this.file.path;
  }

  removeSync(): void {
    if (this.removed) return;
    this.removed = true;
    this.file.discardSync();
    this.untrack();
  }

  /** Closes and removes the file (also after removeSync, which cannot close it). */
  async remove(): Promise<void> {
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
    this.removed = true;
    await this.file.discard();
    this.untrack();
  }
}

/** Creates `<stateDir>/tmp` (0700) and sweeps copies killed runs left there; returns it. */
async function ensurePlaintextDir(stateDir: string): Promise<string> {
  const dir = plaintextDir(stateDir);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new PluginError(`cannot create "${dir}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'pass a --state-dir you can write to');
  }
  sweepStalePlaintext(dir);
  return dir;
}

/**
 * Decrypts the age file `path` into a TempPlaintext and runs `use` on it; the copy is removed
 * whatever happens. A wrong identity is refused while the header is read, before `use` runs.
 */
export async function withPlaintext<T>(path: string, identities: string[], stateDir: string, use: (plain: string) => Promise<T>, label = path): Promise<T> {
  const what = `snapshot "${label}"`;
  const plain = await decryptStream(createReadStream(path), identities, what);
  let temp: TempPlaintext;
  try {
    temp = await TempPlaintext.create(stateDir);
  } catch (err) {
    plain.destroy();
    throw err;
  }
  try {
    try {
      await pipeline(plain, temp.file.writable());
      await temp.file.closeForReading();
    } catch (err) {
      throw decryptFailure(err, what); // a write error (ENOSPC …) is already a PluginError naming --state-dir
    }
    return await use(temp.path);
  } finally {
    await temp.remove();
  }
}

/** Refuses, before any change, identities that cannot open the file (reads only its header). */
export async function requireDecryptable(path: string, identities: string[]): Promise<void> {
  const plain = await decryptStream(createReadStream(path), identities, `snapshot "${path}"`);
  plain.destroy();
}

/** A Readable of the decrypted snapshot, opened afresh each time (restore copies it once per member). */
export function openDecrypted(path: string, identities: string[]): () => Readable {
  return () => {
    // decryptStream is async (it reads the header first); the copy needs a stream at once.
    const out = new PassThrough({ highWaterMark: 1 << 20 });
    decryptStream(createReadStream(path), identities, `snapshot "${path}"`)
      .then((plain) => pipeline(plain, out))
      .catch((err: unknown) => out.destroy(decryptFailure(err, `snapshot "${path}"`)));
    return out;
  };
}

/** What a command that reads snapshots was given to decrypt them with. */
export interface DecryptOptions {
  /** `--identity` files (age-keygen output). */
  identityFiles: string[];
  stateDir: string;
  warn: (line: string) => void;
  /** What messages call the snapshot (an s3:// URL read from a downloaded copy). */
  label?: string;
}

/** Refuses an encrypted snapshot the command cannot decrypt; returns the identities to use (none for a plain file). */
export async function identitiesFor(file: string, opts: DecryptOptions): Promise<string[] | undefined> {
  const format = await storedFormat(file);
  if (format === 'plain') return undefined;
  const path = opts.label ?? file;
  if (format === 'age-armored') {
    throw new UsageError(`snapshot "${path}" is ASCII-armored age, which cannot be read in place`, `convert it without writing plaintext: age -d -i KEYFILE ${path} | age -r RECIPIENT > snapshot.db.age`);
  }
  if (opts.identityFiles.length === 0) {
    throw new UsageError(`snapshot "${path}" is age-encrypted`, 'pass --identity FILE: the age-keygen file of one of its recipients');
  }
  return readIdentities(opts.identityFiles, opts.warn);
}

/**
 * Runs `use` on a readable plaintext snapshot: the file itself, or, for an age file, a decrypted
 * copy in the state dir that is removed afterwards. Refusals (no or wrong identity) come first.
 */
export async function withSnapshotFile<T>(path: string, opts: DecryptOptions, use: (plainPath: string, encrypted: boolean) => Promise<T>): Promise<T> {
  const identities = await identitiesFor(path, opts);
  if (!identities) return use(path, false);
  return withPlaintext(path, identities, opts.stateDir, (p) => use(p, true), opts.label ?? path);
}
