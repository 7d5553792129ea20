// age encryption of snapshots against the reference `age` tool (Debian package `age`), on real
// files, both ways; identities and recipients as a user would pass them; the plaintext copy in
// the state dir removed on every path.
import { execFileSync, spawn } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync, readdirSync, writeFileSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PluginError, UsageError, VerificationError } from '../../src/errors.js';
import { checkRecipients, decryptStream, encryptStream, parseRecipients, readIdentities, storedFormat } from '../../src/crypt/age.js';
import { plaintextDir, sweepStalePlaintext, withPlaintext, withSnapshotFile } from '../../src/crypt/plaintext.js';
import { requireCommand } from '../sim/harness.js';

const REPO = join(import.meta.dirname, '../..');
let dir: string;
let plainFile: string;
const keys: { file: string; recipient: string }[] = [];

function keygen(name: string): { file: string; recipient: string } {
  const file = join(dir, `${name}.txt`);
  const out = execFileSync('age-keygen', ['-o', file], { stdio: ['ignore', 'pipe', 'pipe'] }).toString() + '';
  const pub = execFileSync('age-keygen', ['-y', file]).toString().trim();
  void out;
  return { file, recipient: pub };
}

function sha256(path: string): string {
  return createHash('sha256').update(execFileSync('cat', [path], { maxBuffer: 64 << 20 })).digest('hex');
}

beforeAll(async () => {
  requireCommand('age', 'install the reference age tool: apt-get install age (scripts/setup.sh does)');
  dir = await mkdtemp(join(tmpdir(), 'age-test-'));
  keys.push(keygen('alice'), keygen('bob'), keygen('mallory'));
  plainFile = join(dir, 'plain.db');
  // 3 MiB and a bit: several 64 KiB age chunks and a short last one
  await writeFile(plainFile, randomBytes(3 * 1024 * 1024 + 12345));
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function encryptWithUs(to: string[], out: string): Promise<Uint8Array> {
  const enc = await encryptStream(createReadStream(plainFile), to);
  await pipeline(enc.output, createWriteStream(out));
  return enc.fileKey();
}

describe('recipients and identities', () => {
  it('takes X25519 recipients, once each, and refuses others with a hint', () => {
    expect(parseRecipients([keys[0]!.recipient, keys[1]!.recipient, keys[0]!.recipient])).toEqual([keys[0]!.recipient, keys[1]!.recipient]);
    expect(() => parseRecipients(['age1pq1' + 'q'.repeat(100)])).toThrow(/post-quantum.*age 1\.1/);
    expect(() => parseRecipients(['ssh-ed25519 AAAAC3Nza'])).toThrow(/SSH key/);
    expect(() => parseRecipients(['age1notakey'])).toThrow(UsageError);
  });

  it('reads age-keygen files, never echoes a key, and warns when others can read one', async () => {
    const warnings: string[] = [];
    await chmod(keys[0]!.file, 0o600);
    expect(await readIdentities([keys[0]!.file], (l) => warnings.push(l))).toHaveLength(1);
    expect(warnings).toEqual([]);
    await chmod(keys[1]!.file, 0o644);
    await readIdentities([keys[1]!.file], (l) => warnings.push(l));
    expect(warnings.join()).toMatch(/can be read by group or others \(mode 644\); chmod 600/);
    const bad = join(dir, 'bad.txt');
    await writeFile(bad, '# a comment\nAGE-SECRET-KEY-1NOTAKEY\n', { mode: 0o600 });
    const err = await readIdentities([bad], () => {}).catch((e: unknown) => e as UsageError);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toBe(`identity file "${bad}" line 2 is not an age X25519 identity`);
    expect((err as Error).message).not.toContain('NOTAKEY');
    await expect(readIdentities([join(dir, 'missing.txt')], () => {})).rejects.toThrow(/cannot read identity file .*ENOENT/);
    // A real key with one character changed: right form, wrong checksum. The library's own error
    // would quote the whole key; ours names the line only.
    const real = (await readFile(keys[0]!.file, 'utf8')).split('\n').find((l) => l.startsWith('AGE-SECRET-KEY-1'))!;
    const typo = real.slice(0, 30) + (real[30] === 'Q' ? 'P' : 'Q') + real.slice(31);
    const typoFile = join(dir, 'typo.txt');
    await writeFile(typoFile, `${typo}\n`, { mode: 0o600 });
    const typoErr = await readIdentities([typoFile], () => {}).catch((e: unknown) => e as UsageError);
    expect(typoErr).toBeInstanceOf(UsageError);
    expect(`${(typoErr as Error).message} ${(typoErr as UsageError).hint}`).not.toMatch(/AGE-SECRET-KEY-1[A-Z0-9]/);
  });

  it('a recipient with a wrong checksum (a typo) is refused as a usage error, naming no key but the one given', async () => {
    const r = keys[1]!.recipient;
    const typo = r.slice(0, 20) + (r[20] === 'q' ? 'p' : 'q') + r.slice(21);
    expect(parseRecipients([typo])).toEqual([typo]); // the form is right…
    const err = await checkRecipients([typo]).catch((e: unknown) => e as UsageError);
    expect(err).toBeInstanceOf(UsageError); // …the checksum is not
    expect((err as Error).message).toBe(`"${typo}" is not a valid age recipient (its checksum is wrong: a typo?)`);
    await expect(checkRecipients([r])).resolves.toBeUndefined();
  });
});

describe('interoperability with the reference age tool', () => {
  it('what we encrypt to two recipients, `age -d` decrypts with either identity to the same bytes', async () => {
    const out = join(dir, 'ours.db.age');
    await encryptWithUs([keys[0]!.recipient, keys[1]!.recipient], out);
    expect(await storedFormat(out)).toBe('age');
    for (const k of keys.slice(0, 2)) {
      const back = join(dir, 'back.db');
      execFileSync('age', ['-d', '-i', k.file, '-o', back, out]);
      expect(sha256(back)).toBe(sha256(plainFile));
    }
    // mallory's key was not a recipient
    expect(() => execFileSync('age', ['-d', '-i', keys[2]!.file, '-o', join(dir, 'no.db'), out], { stdio: 'pipe' })).toThrow();
  });

  it('what `age -r` encrypts, we decrypt; a wrong identity is refused at the header, a damaged payload fails the stream', async () => {
    const theirs = join(dir, 'theirs.db.age');
    execFileSync('age', ['-r', keys[1]!.recipient, '-o', theirs, plainFile]);
    const ids = await readIdentities([keys[1]!.file], () => {});
    const plain = await decryptStream(createReadStream(theirs), ids, 'x');
    const hash = createHash('sha256');
    for await (const c of plain) hash.update(c as Buffer);
    expect(hash.digest('hex')).toBe(sha256(plainFile));

    const wrong = await readIdentities([keys[2]!.file], () => {});
    const refused = await decryptStream(createReadStream(theirs), wrong, `snapshot "${theirs}"`).catch((e: unknown) => e as PluginError);
    expect(refused).toBeInstanceOf(PluginError);
    expect((refused as PluginError).exitCode).toBe(1);
    expect((refused as Error).message).toBe(`none of the given identities can decrypt snapshot "${theirs}"`);

    const bytes = await readFile(theirs);
    bytes[bytes.length - 1000] ^= 0x01; // a payload byte of the last chunk
    const broken = join(dir, 'broken.db.age');
    await writeFile(broken, bytes);
    const s = await decryptStream(createReadStream(broken), ids, 'x');
    await expect((async () => { for await (const _ of s) { /* drain */ } })()).rejects.toThrow();
  });

  it.each([1000, 65536 + 7, 1 << 20])('reads of %i bytes (chunks straddling reads, or many in one): `age -d` opens ours, ours opens `age -r`\'s, byte for byte', async (readSize) => {
    const ours = join(dir, `reads-${readSize}.ours.age`);
    const enc = await encryptStream(createReadStream(plainFile, { highWaterMark: readSize }), [keys[0]!.recipient]);
    await pipeline(enc.output, createWriteStream(ours));
    const back = join(dir, `reads-${readSize}.back`);
    execFileSync('age', ['-d', '-i', keys[0]!.file, '-o', back, ours]);
    expect(sha256(back)).toBe(sha256(plainFile));
    const theirs = join(dir, `reads-${readSize}.theirs.age`);
    execFileSync('age', ['-r', keys[0]!.recipient, '-o', theirs, plainFile]);
    const plain = await decryptStream(createReadStream(theirs, { highWaterMark: readSize }), await readIdentities([keys[0]!.file], () => {}), 'x');
    const hash = createHash('sha256');
    for await (const c of plain) hash.update(c as Buffer);
    expect(hash.digest('hex')).toBe(sha256(plainFile));
  });

  it.each([0, 1, 65535, 65536, 65537, 131072, 200_000])('%i bytes: our file opens with `age -d`, and `age -r`\'s file with ours, byte for byte (chunk edges)', async (size) => {
    const src = join(dir, `edge-${size}.bin`);
    await writeFile(src, randomBytes(size));
    const ours = join(dir, `edge-${size}.ours.age`);
    const enc = await encryptStream(createReadStream(src), [keys[0]!.recipient]);
    await pipeline(enc.output, createWriteStream(ours));
    const back = execFileSync('age', ['-d', '-i', keys[0]!.file, ours], { maxBuffer: 1 << 24 }); // (age writes no -o file for an empty plaintext)
    expect(createHash('sha256').update(back).digest('hex')).toBe(createHash('sha256').update(await readFile(src)).digest('hex'));
    const theirs = join(dir, `edge-${size}.theirs.age`);
    execFileSync('age', ['-r', keys[0]!.recipient, '-o', theirs, src]);
    expect((await stat(theirs)).size).toBe((await stat(ours)).size); // same layout: same header size, same chunking
    const plain = await decryptStream(createReadStream(theirs), await readIdentities([keys[0]!.file], () => {}), 'x');
    const hash = createHash('sha256');
    for await (const c of plain) hash.update(c as Buffer);
    expect(hash.digest('hex')).toBe(createHash('sha256').update(await readFile(src)).digest('hex'));
  });

  it('a truncated file fails to decrypt (the last chunk is missing its flag), it never ends quietly', async () => {
    const src = join(dir, 'trunc.bin');
    await writeFile(src, randomBytes(200_000));
    const theirs = join(dir, 'trunc.age');
    execFileSync('age', ['-r', keys[0]!.recipient, '-o', theirs, src]);
    const bytes = await readFile(theirs);
    const cut = join(dir, 'trunc-cut.age');
    await writeFile(cut, bytes.subarray(0, bytes.length - (bytes.length - 200) % 65552 - 16)); // whole chunks only
    const s = await decryptStream(createReadStream(cut), await readIdentities([keys[0]!.file], () => {}), 'x');
    await expect((async () => { for await (const _ of s) { /* drain */ } })()).rejects.toThrow(/does not authenticate|truncated/);
  });

  it('armored files are recognised (and refused by the readers with a way to convert them)', async () => {
    const armored = join(dir, 'armored.age');
    execFileSync('age', ['-a', '-r', keys[0]!.recipient, '-o', armored, plainFile]);
    expect(await storedFormat(armored)).toBe('age-armored');
    const err = await withSnapshotFile(armored, { identityFiles: [keys[0]!.file], stateDir: dir, warn: () => {} }, async () => 'read').catch((e: unknown) => e as Error);
    expect((err as Error).message).toMatch(/ASCII-armored/);
  });
});

describe('streaming', () => {
  it('encrypting and decrypting read the source only as fast as the consumer takes the output (nothing is read ahead into memory)', async () => {
    const MiB = 1 << 20;
    let produced = 0;
    const source = () => new Readable({ highWaterMark: MiB, read() { produced += MiB; this.push(Buffer.alloc(MiB, 1)); if (produced >= 512 * MiB) this.push(null); } });
    const enc = await encryptStream(source(), [keys[0]!.recipient]);
    let consumed = 0;
    for await (const chunk of enc.output) {
      consumed += (chunk as Buffer).length;
      if (consumed >= 8 * MiB) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    // a source read ahead without bound would be at 512 MiB by now
    expect(produced - consumed).toBeLessThan(8 * MiB);
    enc.output.destroy();

    // decrypting: our ciphertext of 512 MiB of zeros, produced as it is read, decrypted slowly
    produced = 0;
    const enc2 = await encryptStream(source(), [keys[0]!.recipient]);
    const ids = await readIdentities([keys[0]!.file], () => {});
    let cipherRead = 0;
    const counted = enc2.output.on('data', (c: Buffer) => { cipherRead += c.length; });
    counted.pause();
    const plain = await decryptStream(counted, ids, 'x');
    consumed = 0;
    for await (const chunk of plain) {
      consumed += (chunk as Buffer).length;
      if (consumed >= 8 * MiB) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(cipherRead - consumed).toBeLessThan(8 * MiB);
    expect(produced - consumed).toBeLessThan(16 * MiB);
  });
});

describe('the plaintext copy in the state dir', () => {
  it('is 0600 while read and gone afterwards, whether the reader succeeds or throws', async () => {
    const enc = join(dir, 'copy.db.age');
    await encryptWithUs([keys[0]!.recipient], enc);
    const state = join(dir, 'state');
    const ids = await readIdentities([keys[0]!.file], () => {});
    let seen = '';
    const got = await withPlaintext(enc, ids, state, async (p) => {
      seen = p;
      expect(((await stat(p)).mode & 0o777).toString(8)).toBe('600');
      expect(((await stat(plaintextDir(state))).mode & 0o777).toString(8)).toBe('700');
      return sha256(p);
    });
    expect(got).toBe(sha256(plainFile));
    expect(existsSync(seen)).toBe(false);
    await expect(withPlaintext(enc, ids, state, async (p) => { seen = p; throw new VerificationError('bad'); })).rejects.toThrow('bad');
    expect(existsSync(seen)).toBe(false);
    expect(readdirSync(plaintextDir(state))).toEqual([]);
  });

  it('an encrypted snapshot without --identity is one line with a hint; a wrong one is refused before any copy is written', async () => {
    const enc = join(dir, 'copy2.db.age');
    await encryptWithUs([keys[0]!.recipient], enc);
    const state = join(dir, 'state2');
    const none = await withSnapshotFile(enc, { identityFiles: [], stateDir: state, warn: () => {} }, async () => 'read').catch((e: unknown) => e as UsageError);
    expect((none as UsageError).message).toBe(`snapshot "${enc}" is age-encrypted`);
    expect((none as UsageError).hint).toMatch(/--identity FILE/);
    const wrong = await withSnapshotFile(enc, { identityFiles: [keys[2]!.file], stateDir: state, warn: () => {} }, async () => 'read').catch((e: unknown) => e as Error);
    expect((wrong as Error).message).toMatch(/none of the given identities can decrypt/);
    expect(existsSync(plaintextDir(state)) ? readdirSync(plaintextDir(state)) : []).toEqual([]);
  });

  it.each(['SIGINT', 'SIGTERM', 'SIGHUP'] as const)('%s while a copy is read: the process ends by that signal and the copy is gone', async (sig) => {
    const enc = join(dir, `signal-${sig}.db.age`);
    await encryptWithUs([keys[0]!.recipient], enc);
    const state = join(dir, `state-${sig}`);
    const script = join(dir, `hold-${sig}.mts`);
    await writeFile(script, [
      `import { withPlaintext } from ${JSON.stringify(join(REPO, 'src/crypt/plaintext.ts'))};`,
      `import { readIdentities } from ${JSON.stringify(join(REPO, 'src/crypt/age.ts'))};`,
      `const ids = await readIdentities([${JSON.stringify(keys[0]!.file)}], () => {});`,
      `await withPlaintext(${JSON.stringify(enc)}, ids, ${JSON.stringify(state)}, async (p) => { console.log(p); await new Promise(() => setInterval(() => {}, 1000)); });`,
    ].join('\n'));
    // one process (the tsx CLI would put a relaying parent between the signal and the code)
    const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
    const path = await new Promise<string>((res) => child.stdout.once('data', (d: Buffer) => res(d.toString().trim())));
    expect(existsSync(path)).toBe(true);
    const ended = new Promise<NodeJS.Signals | null>((res) => child.on('exit', (_code, signal) => res(signal)));
    child.kill(sig);
    expect(await ended).toBe(sig);
    expect(existsSync(path)).toBe(false);
    expect(readdirSync(plaintextDir(state))).toEqual([]);
  }, 30_000);

  it('a copy left by a killed run is removed by the next one; a live run’s copy is not', async () => {
    const d = join(dir, 'sweep');
    await rm(d, { recursive: true, force: true });
    execFileSync('mkdir', ['-p', d]);
    const child = spawn('sleep', ['30']);
    const dead = spawn('true');
    await new Promise((r) => dead.on('exit', r));
    const host = hostname().replace(/[^A-Za-z0-9.-]+/g, '-');
    writeFileSync(join(d, `plaintext-${host}_${dead.pid}-abc123.db`), 'x');
    writeFileSync(join(d, `plaintext-${host}_${dead.pid}-abc124.db.partial`), 'x');
    writeFileSync(join(d, `plaintext-${host}_${child.pid}-abc125.db`), 'x');
    // another host's copy: its pid means nothing here, so it is left to that host
    writeFileSync(join(d, `plaintext-elsewhere_${dead.pid}-abc126.db`), 'x');
    writeFileSync(join(d, 'unrelated.db'), 'x');
    try {
      expect(sweepStalePlaintext(d).sort()).toEqual([`plaintext-${host}_${dead.pid}-abc123.db`, `plaintext-${host}_${dead.pid}-abc124.db.partial`]);
      expect(readdirSync(d).sort()).toEqual([`plaintext-${host}_${child.pid}-abc125.db`, `plaintext-elsewhere_${dead.pid}-abc126.db`, 'unrelated.db'].sort());
    } finally {
      child.kill();
    }
  });
});
