/**
 * The ObjectStore over S3 (and S3-compatible stores with --s3-endpoint: path-style addressing),
 * with the AWS SDK's default credential chain (environment, shared config and profiles, SSO, the
 * instance role). Loaded with a dynamic import, so commands that do not use object storage never
 * compile the SDK.
 */
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand, DeleteObjectsCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand,
  ListObjectsV2Command, PutObjectCommand, S3Client, S3ServiceException, type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { ForbiddenError, NotFoundError, PluginError } from '../errors.js';
import { OpenUploadError, StoreError, s3Url, type ObjectStore, type StoredObject } from './location.js';

export interface S3StoreOptions {
  bucket: string;
  /** --s3-endpoint: an S3-compatible store, addressed path-style. */
  endpoint?: string;
  /** Parts of this many bytes (at least 5 MiB, S3's minimum); 16 MiB unless told. */
  partSize?: number;
}

const DEFAULT_PART = 16 << 20;

// The SDK warns on stderr that its 2027 releases need Node 22; the plugin's own runtime is pinned, and the line would only confuse.
process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';

/** The region of the default chain (AWS_REGION, the profile's region), else us-east-1: a custom endpoint seldom needs one. */
async function regionOf(): Promise<string> {
  const env = process.env['AWS_REGION'] ?? process.env['AWS_DEFAULT_REGION'];
  if (env) return env;
  try {
    const probe = new S3Client({});
    const r = await probe.config.region();
    probe.destroy();
    return r || 'us-east-1';
  } catch {
    return 'us-east-1';
  }
}

/** Opens the store; nothing is sent until the first call. */
export async function openS3Store(opts: S3StoreOptions): Promise<ObjectStore> {
  // A store that stops answering fails the request (and the SDK retries it) instead of hanging the command.
  const config: S3ClientConfig = { region: await regionOf(), maxAttempts: 3, requestHandler: { connectionTimeout: 10_000, requestTimeout: 120_000 } };
  if (opts.endpoint) {
    Object.assign(config, {
      endpoint: opts.endpoint,
      forcePathStyle: true,
      // Stores other than AWS seldom take the SDK's default trailing checksums (aws-chunked bodies).
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }
  const client = new S3Client(config);
  // KUBECTL_ETCD_S3_PART_MIB: smaller parts (S3's minimum is 5 MiB), for stores that limit request sizes, and for tests.
  const envPart = Number(process.env['KUBECTL_ETCD_S3_PART_MIB']);
  const partSize = opts.partSize ?? (Number.isInteger(envPart) && envPart >= 5 ? envPart << 20 : DEFAULT_PART);
  return new S3Store(client, opts.bucket, partSize, opts.endpoint);
}

/** One line for an SDK error, by what the user can do about it. */
function s3Error(err: unknown, what: string, bucket: string, endpoint?: string, bucketCall = false): PluginError {
  if (err instanceof PluginError) return err;
  const e = err as Error & { name?: string; Code?: string; $metadata?: { httpStatusCode?: number }; code?: string };
  const name = e.name ?? '';
  const status = e.$metadata?.httpStatusCode;
  const where = endpoint ? ` at ${endpoint}` : '';
  if (name === 'CredentialsProviderError' || /Could not load credentials/i.test(e.message ?? '')) {
    return new ForbiddenError(`no AWS credentials found to ${what}`, 'set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with a profile in ~/.aws');
  }
  if (name === 'NoSuchBucket' || (status === 404 && bucketCall)) {
    return new NotFoundError(`bucket "${bucket}" does not exist${where}`, 'create it first, or check the name and --s3-endpoint');
  }
  if (['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'InvalidToken', 'ExpiredToken', 'AccessDenied', 'Forbidden'].includes(name) || status === 403) {
    return new ForbiddenError(`access denied to ${what}${where} (${name && name !== 'Unknown' ? name : `HTTP ${status}`})`, 'check the credentials (AWS_ACCESS_KEY_ID, AWS_PROFILE) and that they may use this bucket');
  }
  if (name === 'NoSuchKey' || name === 'NotFound' || status === 404) {
    return new NotFoundError(`cannot ${what}: it does not exist`, 'list what is there with `kubectl etcd snapshots list s3://BUCKET/PREFIX`');
  }
  const code = e.code ?? (err instanceof S3ServiceException ? name : undefined);
  const detail = (e.message || name || String(err)).split('\n')[0];
  return new PluginError(`cannot ${what}${where}: ${code && !detail.includes(code) ? `${code}: ` : ''}${detail}`, endpoint ? 'check --s3-endpoint and the network' : 'check the network, the region (AWS_REGION) and the bucket');
}

class S3Store implements ObjectStore {
  constructor(private readonly client: S3Client, readonly bucket: string, private readonly partSize: number, private readonly endpoint?: string) {}

  private fail(err: unknown, what: string, bucketCall = false): PluginError {
    return s3Error(err, what, this.bucket, this.endpoint, bucketCall);
  }

  async checkBucket(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      throw this.fail(err, `reach bucket "${this.bucket}"`, true);
    }
  }

  async upload(key: string, body: Readable): Promise<void> {
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: key, Body: body, ContentType: 'application/octet-stream' },
      partSize: this.partSize,
      queueSize: 2,
      // We abort ourselves, once every part in flight has ended (done() settles after them when
      // the body fails), and make sure of it: the library's own abort is best effort.
      leavePartsOnError: true,
    });
    try {
      await upload.done();
    } catch (err) {
      // The body's own error (the snapshot failed) goes back as it is; anything else is the store's.
      let failed: PluginError;
      if (err instanceof PluginError) failed = err;
      else {
        const f = this.fail(err, `upload ${s3Url(this.bucket, key)}`);
        failed = err === body.errored ? f : new StoreError(f.message, f.hint);
      }
      // A refused part: the snapshot stops too (its transport watches this body).
      body.destroy(failed);
      const id = (upload as unknown as { uploadId?: string }).uploadId;
      if (id) await this.abortUpload(key, id, failed);
      throw failed;
    }
  }

  /** Aborts a multipart upload (retried: the network that broke the upload may be back); a failure names the upload to abort by hand. */
  private async abortUpload(key: string, uploadId: string, cause: unknown): Promise<void> {
    let last: unknown;
    for (let attempt = 0; attempt < 4; attempt++) {
      try {
        await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }));
        return;
      } catch (err) {
        if ((err as { name?: string }).name === 'NoSuchUpload') return;
        last = err;
        await new Promise((r) => setTimeout(r, 500 * (attempt + 1)));
      }
    }
    const why = (cause as Error)?.message?.split('\n')[0] ?? String(cause);
    throw new OpenUploadError(
      `the upload to ${s3Url(this.bucket, key)} failed (${why}) and aborting it failed too (${(last as Error)?.message?.split('\n')[0]}): multipart upload ${uploadId} is still open and its parts are billed`,
      `abort it: aws s3api abort-multipart-upload --bucket ${this.bucket} --key '${key}' --upload-id ${uploadId}${this.endpoint ? ` --endpoint-url ${this.endpoint}` : ''}`,
    );
  }

  async put(key: string, text: string): Promise<void> {
    try {
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: text, ContentType: 'application/json' }));
    } catch (err) {
      throw this.fail(err, `write ${s3Url(this.bucket, key)}`);
    }
  }

  async getText(key: string, maxBytes: number): Promise<string | undefined> {
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      if ((r.ContentLength ?? 0) > maxBytes) {
        (r.Body as Readable | undefined)?.destroy();
        return undefined;
      }
      return await r.Body!.transformToString('utf8');
    } catch (err) {
      const name = (err as { name?: string }).name;
      if (name === 'NoSuchKey' || name === 'NotFound') return undefined;
      throw this.fail(err, `read ${s3Url(this.bucket, key)}`);
    }
  }

  async get(key: string): Promise<{ body: Readable; size: number }> {
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return { body: r.Body as Readable, size: r.ContentLength ?? 0 };
    } catch (err) {
      throw this.fail(err, `read ${s3Url(this.bucket, key)}`);
    }
  }

  async head(key: string): Promise<{ size: number } | undefined> {
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { size: r.ContentLength ?? 0 };
    } catch (err) {
      const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
      if (e.name === 'NotFound' || e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404) return undefined;
      throw this.fail(err, `read ${s3Url(this.bucket, key)}`);
    }
  }

  async list(prefix: string): Promise<StoredObject[]> {
    const out: StoredObject[] = [];
    let token: string | undefined;
    try {
      do {
        const r = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, Delimiter: '/', ...(token ? { ContinuationToken: token } : {}) }));
        for (const o of r.Contents ?? []) if (o.Key) out.push({ key: o.Key, size: o.Size ?? 0, ...(o.LastModified ? { lastModified: o.LastModified } : {}) });
        token = r.IsTruncated ? r.NextContinuationToken : undefined;
      } while (token);
    } catch (err) {
      throw this.fail(err, `list ${s3Url(this.bucket, prefix)}`);
    }
    return out;
  }

  async delete(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      try {
        const r = await this.client.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }));
        const failed = r.Errors?.[0];
        if (failed) throw new PluginError(`cannot delete ${s3Url(this.bucket, failed.Key ?? '')}: ${failed.Code ?? ''} ${failed.Message ?? ''}`.trim(), 'check that the credentials may delete objects in this bucket');
      } catch (err) {
        throw this.fail(err, `delete old backups in ${s3Url(this.bucket, '')}`);
      }
    }
  }
}
