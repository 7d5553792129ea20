/**
 * Where backups live when they leave the machine: `s3://BUCKET/PREFIX` (a folder of backups) or
 * `s3://BUCKET/KEY` (one snapshot). Pure parsing; the client is in s3.ts, loaded only when used.
 */
import type { Readable } from 'node:stream';
import { PluginError, UsageError } from '../errors.js';

/** A failure of the store itself (a refused or broken request), as opposed to the body it was given. */
export class StoreError extends PluginError {}

/** An upload that failed and whose abort failed too: the message names the upload left open and how to abort it. */
export class OpenUploadError extends StoreError {}

/** A bucket and a key prefix (no leading slash; empty, or ending in `/` for a folder). */
export interface S3Location {
  bucket: string;
  /** The key (one object) or prefix (a folder), as written after the bucket. */
  key: string;
}

/** True for anything that starts like an object-storage URL. */
export function isS3Url(s: string): boolean {
  return /^s3:\/\//i.test(s);
}

// Bucket names as S3 allows them (3–63 of lowercase letters, digits, dots and hyphens); stores
// such as MinIO and R2 follow the same rules. Anything else is a typo worth one line.
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** Parses `s3://BUCKET[/KEY]`; a UsageError names what is wrong. */
export function parseS3Url(url: string): S3Location {
  const m = /^s3:\/\/([^/]*)(?:\/(.*))?$/i.exec(url);
  if (!m) throw new UsageError(`"${url}" is not an s3:// URL`, 'write it as s3://BUCKET/PREFIX');
  const bucket = m[1]!;
  if (!BUCKET.test(bucket)) {
    throw new UsageError(`"${bucket}" in "${url}" is not a valid bucket name`, 'bucket names are 3 to 63 lowercase letters, digits, dots and hyphens: s3://BUCKET/PREFIX');
  }
  const key = m[2] ?? '';
  if (key.startsWith('/') || key.split('/').some((p, i, all) => p === '' && i < all.length - 1) || /(^|\/)\.\.?(\/|$)/.test(key)) {
    throw new UsageError(`the key "${key}" in "${url}" has an empty, "." or ".." part`, 'write the prefix as s3://BUCKET/a/b/');
  }
  return { bucket, key };
}

/** A prefix as a folder: `''` or ending in `/`. */
export function asFolder(key: string): string {
  return key === '' || key.endsWith('/') ? key : `${key}/`;
}

/** `s3://bucket/key` for messages and records. */
export function s3Url(bucket: string, key: string): string {
  return `s3://${bucket}/${key}`;
}

/** One object of a listing. */
export interface StoredObject {
  key: string;
  size: number;
  lastModified?: Date;
}

/**
 * What backup, prune, list and inspect need of an object store (s3.ts implements it with the AWS
 * SDK; tests may pass their own). Every error is a PluginError with one line and a hint.
 */
export interface ObjectStore {
  readonly bucket: string;
  /** Proves the bucket exists and the credentials may use it, before anything is taken. */
  checkBucket(): Promise<void>;
  /**
   * Streams `body` into `key` as a multipart upload (a single PUT when it is small). On any error
   * (the body's own, a refused part) the upload is aborted, so no object and no open multipart
   * upload stay behind; an abort that itself fails is named in the error with its id. A failed
   * part destroys `body` with the error.
   */
  upload(key: string, body: Readable): Promise<void>;
  /** Writes a small object (a record). */
  put(key: string, text: string): Promise<void>;
  /** Reads a small object as text; undefined when it does not exist. */
  getText(key: string, maxBytes: number): Promise<string | undefined>;
  /** A stream of an object's bytes and its size. */
  get(key: string): Promise<{ body: Readable; size: number }>;
  /** An object's size; undefined when it does not exist. */
  head(key: string): Promise<{ size: number } | undefined>;
  /** Every object under the prefix (all pages), not below a further `/`. */
  list(prefix: string): Promise<StoredObject[]>;
  /** Deletes the objects (missing ones are fine). */
  delete(keys: string[]): Promise<void>;
}

/** --s3-endpoint: an http(s) URL of an S3-compatible store. */
export function parseEndpoint(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`--s3-endpoint "${raw}" is not a URL`, 'pass it as https://HOST[:PORT] (path-style addressing is used)');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new UsageError(`--s3-endpoint "${raw}" is not an http(s) URL`, 'pass it as https://HOST[:PORT]');
  if (url.username || url.password) throw new UsageError('--s3-endpoint must not carry credentials', 'pass them as AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile (AWS_PROFILE)');
  return url.toString().replace(/\/$/, '');
}
