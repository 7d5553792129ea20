/**
 * The drills of a backup, kept in its record (`<file>.json` beside a file, `<key>.json` beside an
 * object): the last DRILLS_KEPT outcomes, newest last. A file or object without a record of ours
 * is left alone.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PartialFile } from '../backup/partial.js';
import { MAX_SIDECAR_BYTES, ownerOfRecord, readSidecarText, type BackupRecord } from '../backup/record.js';
import { PluginError } from '../errors.js';
import type { ObjectStore } from '../storage/location.js';
import type { DrillReport } from './drill.js';

/** How many drills a record keeps. */
const DRILLS_KEPT = 10;

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

/** The sidecar `<snapshot>.json` of a local file, replaced atomically (a PartialFile renamed over it, 0600). */
export function sidecarPlace(snapshotPath: string): RecordPlace {
  const path = `${snapshotPath}.json`;
  return {
    name: path,
    read: async () => {
      try {
        return await readSidecarText(path);
      } catch (err) {
        throw new PluginError(`cannot read the record "${path}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'fix its permissions');
      }
    },
    write: async (text) => {
      // fsynced, renamed over the old record, directory fsynced: a crash leaves the old record or the new, never an empty one
      const file = await PartialFile.create(path, 'a copy of the backup in a directory you can write');
      try {
        await pipeline(Readable.from([Buffer.from(text)]), file.writable());
        await file.commit();
      } catch (err) {
        await file.discard();
        throw err;
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
