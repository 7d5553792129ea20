/**
 * age encryption of snapshots (https://age-encryption.org/v1), streaming, with the `age-encryption`
 * library (typage) for the header (recipients, stanzas, MAC) and node:crypto for the payload
 * (stream.ts): pull-based generators, so what is in memory is a few chunks of the snapshot.
 *
 * Recipients are X25519 (`age1…`) only: they are what `age-keygen` makes and what every age
 * implementation decrypts. The library's post-quantum hybrid recipients (`age1pq1…`) are refused:
 * Debian's age 1.1 cannot decrypt them, and a backup nobody can decrypt is lost.
 */
import { open, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { PluginError, UsageError, VerificationError } from '../errors.js';
import { movedBytes } from '../memory.js';
import { PayloadOpener, PayloadSealer, payloadKey } from './stream.js';

/** The first line of every binary age file. */
export const AGE_MAGIC = 'age-encryption.org/v1\n';
const ARMOR_BEGIN = '-----BEGIN AGE ENCRYPTED FILE-----';
/** bech32 data characters; an X25519 recipient is `age1` + 58 of them (32 bytes + checksum). */
const X25519_RECIPIENT = /^age1[qpzry9x8gf2tvdw0s3jn54khce6mua7l]{58}$/;
const IDENTITY_LINE = /^AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}$/;

/** How a snapshot file is stored. */
export type StoredFormat = 'plain' | 'age' | 'age-armored';

/** Reads the first bytes of a file: a binary age file, an armored one, or anything else (plain). */
export async function storedFormat(path: string): Promise<StoredFormat> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch {
    return 'plain'; // the reader that follows says what is wrong with the path
  }
  try {
    const buf = Buffer.alloc(ARMOR_BEGIN.length);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    const head = buf.subarray(0, bytesRead).toString('latin1');
    if (head.startsWith(AGE_MAGIC)) return 'age';
    if (head.startsWith(ARMOR_BEGIN)) return 'age-armored';
    return 'plain';
  } finally {
    await fh.close();
  }
}

/** Lazily loaded: the library is only needed when something is encrypted or decrypted. */
async function lib(): Promise<typeof import('age-encryption')> {
  return import('age-encryption');
}

/**
 * Checks the form of `--encrypt-to` values (no library needed: this runs while flags are parsed);
 * returns them without duplicates. Throws a UsageError naming the bad one. checkRecipients then
 * checks their bech32 checksums, before anything is taken.
 */
export function parseRecipients(values: string[]): string[] {
  const out: string[] = [];
  for (const raw of values) {
    const v = raw.trim();
    if (v.startsWith('age1pq1')) {
      throw new UsageError(`recipient "${v.slice(0, 16)}…" is a post-quantum age recipient, which age 1.1 (Debian's) cannot decrypt`, 'pass an X25519 recipient (age1…, as age-keygen prints it)');
    }
    if (/^(ssh-|ecdsa-|sk-)/.test(v)) {
      throw new UsageError(`recipient "${v.slice(0, 16)}…" is an SSH key; only age X25519 recipients are supported`, 'make a key with age-keygen and pass its public key (age1…)');
    }
    if (!X25519_RECIPIENT.test(v)) {
      throw new UsageError(`"${v}" is not an age X25519 recipient`, 'pass the public key age-keygen prints ("Public key: age1…")');
    }
    if (!out.includes(v)) out.push(v);
  }
  return out;
}

/** Refuses a recipient whose checksum is wrong (a typo), as a UsageError, before any snapshot is taken. */
export async function checkRecipients(recipients: string[]): Promise<void> {
  const { Encrypter } = await lib();
  for (const r of recipients) {
    try {
      new Encrypter().addRecipient(r);
    } catch {
      throw new UsageError(`"${r}" is not a valid age recipient (its checksum is wrong: a typo?)`, 'copy the public key again from age-keygen -y KEYFILE');
    }
  }
}

/**
 * Reads age identities (`AGE-SECRET-KEY-1…` lines, `#` comments and blank lines allowed, as
 * age-keygen writes them) from each file. Never prints a key. Warns when group or others can read a file.
 */
export async function readIdentities(files: string[], warn: (line: string) => void): Promise<string[]> {
  const keys: string[] = [];
  for (const file of files) {
    let text: string;
    try {
      const st = await stat(file);
      if (!st.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'not a regular file' });
      if (st.size > 1 << 20) throw Object.assign(new Error('too big'), { code: 'bigger than 1 MiB' });
      if ((st.mode & 0o077) !== 0) warn(`identity file "${file}" can be read by group or others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`);
      const fh = await open(file, 'r');
      try {
        text = await fh.readFile('utf8');
      } finally {
        await fh.close();
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new UsageError(`cannot read identity file "${file}": ${code}`, 'pass a file written by age-keygen');
    }
    if (text.startsWith(AGE_MAGIC) || text.startsWith(ARMOR_BEGIN)) {
      throw new UsageError(`identity file "${file}" is itself age-encrypted`, 'decrypt it first (age -d), into a file only you can read');
    }
    let found = 0;
    for (const [i, line] of text.split(/\r?\n/).entries()) {
      const l = line.trim();
      if (!l || l.startsWith('#')) continue;
      if (!IDENTITY_LINE.test(l) || !(await validIdentity(l))) {
        throw new UsageError(`identity file "${file}" line ${i + 1} is not an age X25519 identity`, 'pass a file written by age-keygen (AGE-SECRET-KEY-1… lines)');
      }
      keys.push(l);
      found++;
    }
    if (found === 0) throw new UsageError(`identity file "${file}" holds no age identity`, 'pass a file written by age-keygen (AGE-SECRET-KEY-1… lines)');
  }
  return keys;
}

/** Whether the library takes the key (its bech32 checksum); its error would quote the key, so it is never shown. */
async function validIdentity(key: string): Promise<boolean> {
  const { identityToRecipient } = await lib();
  try {
    await identityToRecipient(key);
    return true;
  } catch {
    return false;
  }
}

/** Library messages may quote what they failed to parse: never let a secret key through to a log. */
export function scrubSecrets(message: string): string {
  return message.replace(/AGE-SECRET-KEY-[0-9A-Z-]+/gi, 'AGE-SECRET-KEY-…');
}

/** The public recipient of each identity, in order (to say which keys a file was tried with, never the keys). */
export async function recipientsOf(identities: string[]): Promise<string[]> {
  const { identityToRecipient } = await lib();
  return Promise.all(identities.map((i) => identityToRecipient(i)));
}

/** What encrypt hands back: the ciphertext, and the file key once the header is written (to check our own output). */
export interface Encryption {
  output: Readable;
  /** The random file key of this file; known once output has been read from. Never logged or stored. */
  fileKey(): Uint8Array;
}

/**
 * Encrypts `input` to every recipient (X25519 strings checked by parseRecipients), streaming. The
 * library writes the header (it encrypts an empty file, whose output is header, payload nonce and
 * one empty sealed chunk); the payload is sealed with node:crypto (stream.ts).
 */
export async function encryptStream(input: Readable, recipients: string[]): Promise<Encryption> {
  const { Encrypter } = await lib();
  const e = new Encrypter();
  for (const r of recipients) e.addRecipient(r);
  let key: Uint8Array | undefined;
  // A recipient that writes no stanza and keeps the file key: with it we seal the payload, and
  // read back our own ciphertext before it is committed, without any of the recipients' identities.
  e.addRecipient({ wrapFileKey: (k: Uint8Array) => { key = Uint8Array.from(k); return []; } });
  const empty = await e.encrypt(new Uint8Array(0));
  const headerAndNonce = Buffer.from(empty.subarray(0, empty.length - 16));
  const fileKey = key!;
  const sealer = new PayloadSealer(payloadKey(fileKey, headerAndNonce.subarray(headerAndNonce.length - 16)));
  async function* sealed(): AsyncGenerator<Buffer> {
    yield headerAndNonce;
    for await (const chunk of input) {
      movedBytes((chunk as Buffer).length);
      for (const c of sealer.push(chunk as Buffer)) yield c;
    }
    yield* sealer.end();
  }
  return { output: Readable.from(sealed(), { objectMode: false, highWaterMark: 1 << 20 }), fileKey: () => fileKey };
}

/** An identity that knows one file's key (from encryptStream). */
export function fileKeyIdentity(key: Uint8Array): { unwrapFileKey(): Uint8Array } {
  return { unwrapFileKey: () => key };
}

/** The longest header we read before deciding the input is not an age file (a header holds a few stanzas). */
const MAX_HEADER = 64 * 1024;

/**
 * Decrypts an age stream. The header is read before this resolves: an identity that does not match
 * is refused here, before the caller does anything else. A damaged payload fails the returned stream.
 */
export async function decryptStream(input: Readable, identities: (string | { unwrapFileKey(): Uint8Array })[], what: string): Promise<Readable> {
  const { Decrypter } = await lib();
  const d = new Decrypter();
  const it = input[Symbol.asyncIterator]();
  let opener: PayloadOpener;
  let rest: Buffer;
  try {
    for (const i of identities) d.addIdentity(i);
    // The header ends with the line "--- <MAC>\n"; the 16-byte payload nonce follows.
    let head = Buffer.alloc(0);
    let end = -1;
    for (;;) {
      const mac = head.indexOf('\n--- ');
      end = mac < 0 ? -1 : head.indexOf('\n', mac + 1);
      if (end >= 0 && head.length >= end + 1 + 16) break;
      if (head.length > MAX_HEADER) throw new Error('no age header end within 64 KiB');
      const { value, done } = await it.next();
      if (done) throw new Error('the file ends inside the age header');
      head = Buffer.concat([head, value as Buffer]);
    }
    const fileKey = await d.decryptHeader(head.subarray(0, end + 1));
    opener = new PayloadOpener(payloadKey(fileKey, head.subarray(end + 1, end + 17)));
    rest = head.subarray(end + 17);
  } catch (err) {
    input.destroy();
    const msg = scrubSecrets((err as Error).message ?? String(err));
    if (/no identity matched/i.test(msg)) {
      throw new PluginError(`none of the given identities can decrypt ${what}`, 'pass the --identity file whose public key the backup was encrypted to (its .json record lists the recipients)');
    }
    throw new VerificationError(`${what} is not a valid age file: ${msg.split('\n')[0]}`, 'the file is damaged or not an age file; use another backup');
  }
  async function* opened(): AsyncGenerator<Buffer> {
    try {
      for (const c of opener.push(rest)) yield c;
      for (;;) {
        const { value, done } = await it.next();
        if (done) break;
        movedBytes((value as Buffer).length);
        for (const c of opener.push(value as Buffer)) yield c;
      }
      yield* opener.end();
    } finally {
      await it.return?.();
    }
  }
  return Readable.from(opened(), { objectMode: false, highWaterMark: 1 << 20 });
}

/** Turns an error from a decrypting stream into what the user sees: a damaged (or truncated) ciphertext. */
export function decryptFailure(err: unknown, what: string): PluginError {
  if (err instanceof PluginError) return err;
  const msg = scrubSecrets((err as Error)?.message ?? String(err));
  return new VerificationError(`${what} could not be decrypted: ${msg.split('\n')[0]}`, 'the encrypted file is damaged or truncated; use another backup');
}
