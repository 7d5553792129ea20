/**
 * The drills of a backup, kept in its record (`<file>.json` beside a file, `<key>.json` beside an
 * object): the last DRILLS_KEPT outcomes, newest last. A file or object without a record of ours
 * is left alone.
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { MAX_SIDECAR_BYTES, ownerOfRecord, type BackupRecord } from '../backup/record.js';
import { PluginError } from '../errors.js';
import type { ObjectStore } from '../storage/location.js';
import type { DrillReport } from './drill.js';

/** How many drills a record keeps. */
export const DRILLS_KEPT = 10;

/** Where a backup's record is read and written. */
export interface RecordPlace {
  /** The record's path or URL, for messages. */
  name: string;
  read(): Promise<string | undefined>;
  write(text: string): Promise<void>;
}

/** Adds the drill to the record; returns where, or undefined when there is no record of ours. */
export async function addDrillToRecord(place: RecordPlace, drill: DrillReport): Promise<string | undefined> {
  const text = await place.read();
  if (text === undefined || !ownerOfRecord(text)) return undefined;
  const record = JSON.parse(text) as BackupRecord;
  record.drills = [...(Array.isArray(record.drills) ? record.drills : []), drill].slice(-DRILLS_KEPT);
  await place.write(JSON.stringify(record, null, 2) + '\n');
  return place.name;
}

/** The sidecar `<snapshot>.json` of a local file, replaced atomically (a new 0600 file renamed over it). */
export function sidecarPlace(snapshotPath: string): RecordPlace {
  const path = `${snapshotPath}.json`;
  return {
    name: path,
    read: async () => {
      try {
        const buf = await readFile(path);
        return buf.length > MAX_SIDECAR_BYTES ? undefined : buf.toString('utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw new PluginError(`cannot read the record "${path}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'fix its permissions');
      }
    },
    write: async (text) => {
      const temp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
      try {
        const fh = await open(temp, 'wx', 0o600);
        try {
          await fh.writeFile(text);
          await fh.sync(); // on disk before it replaces the record: a crash leaves the old record or the new, never an empty one
        } finally {
          await fh.close();
        }
        await rename(temp, path);
      } catch (err) {
        await rm(temp, { force: true });
        throw new PluginError(`cannot update the record "${path}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'free space or fix the directory\'s permissions');
      }
    },
  };
}

/** The record object `<key>.json` beside a stored backup. */
export function storedRecordPlace(store: ObjectStore, key: string, url: string): RecordPlace {
  return {
    name: `${url}.json`,
    read: () => store.getText(`${key}.json`, MAX_SIDECAR_BYTES),
    write: (text) => store.put(`${key}.json`, text),
  };
}
