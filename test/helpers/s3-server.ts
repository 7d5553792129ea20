/**
 * A real S3-compatible server for the tests: s3rver (the npm package), on 127.0.0.1, storing in a
 * directory the test owns, with its one account (access key S3RVER, secret S3RVER; its signature
 * check refuses any other). s3rver answers the multipart upload calls an upload makes (create,
 * upload part, complete) but not the ones that prove an upload was cleaned up: it refuses
 * AbortMultipartUpload (405) and ListMultipartUploads / ListParts (501). Those three are added
 * here, in front of its router, on its own on-disk layout (an open upload is a directory
 * `<bucket>/._S3rver_uploads/<uploadId>` holding the key and the parts), as the S3 API reference
 * defines them (AbortMultipartUpload: 204, NoSuchUpload 404; ListMultipartUploads;
 * ListParts).
 *
 * s3rver also takes any secret with a Signature Version 4 request ("Signature version 4
 * calculation is unimplemented" in its authentication middleware), where S3 answers 403
 * SignatureDoesNotMatch: a kinder server than the real one. So every request's SigV4 signature
 * (Authorization header form) is checked here first, as the SigV4 reference defines it
 * (canonical request → string to sign → HMAC chain of the secret, date, region and service), and
 * a request without one is refused (403 AccessDenied, as for a private bucket). Not checked: the
 * payload against x-amz-content-sha256, the scope's date and region, clock skew, presigned URLs.
 */
import { createHash, createHmac } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';

export const S3_ACCESS_KEY = 'S3RVER';
export const S3_SECRET_KEY = 'S3RVER';

export interface TestS3 {
  endpoint: string;
  dir: string;
  /** Environment for the plugin: the server's credentials, no instance metadata lookups, no profile files. */
  env: Record<string, string>;
  /** Open multipart uploads in a bucket (as ListMultipartUploads answers). */
  openUploads(bucket: string): Array<{ key: string; uploadId: string }>;
  stop(): Promise<void>;
}

interface KoaCtx {
  req: { url?: string; headers: Record<string, string | string[] | undefined> };
  method: string;
  path: string;
  query: Record<string, string | undefined>;
  headers: Record<string, string | undefined>;
  status: number;
  type: string;
  body: unknown;
}

const xmlEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function uploadsDir(dir: string, bucket: string): string {
  return join(dir, bucket, '._S3rver_uploads');
}

function listUploads(dir: string, bucket: string): Array<{ key: string; uploadId: string }> {
  const root = uploadsDir(dir, bucket);
  if (!existsSync(root)) return [];
  return readdirSync(root).filter((id) => existsSync(join(root, id, 'key'))).map((uploadId) => ({ uploadId, key: readFileSync(join(root, uploadId, 'key'), 'utf8') }));
}

function xmlError(ctx: KoaCtx, status: number, code: string, message: string): void {
  ctx.status = status;
  ctx.type = 'application/xml';
  ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${xmlEscape(message)}</Message></Error>`;
}

const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data).digest();

/** The SigV4 signature of a request with the header form of authorization, for `secret`. */
export function sigV4(ctx: Pick<KoaCtx, 'req' | 'method'>, secret: string): { provided: string; expected: string } | undefined {
  const auth = String(ctx.req.headers['authorization'] ?? '');
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]+)$/.exec(auth);
  if (!m) return undefined;
  const [, , date, region, service, signedHeaders, provided] = m as unknown as string[];
  const [path, rawQuery = ''] = (ctx.req.url ?? '/').split('?', 2) as [string, string?];
  const query = rawQuery.split('&').filter(Boolean).map((p) => {
    const [k, v = ''] = p.split('=', 2) as [string, string?];
    return [k, v] as const;
  }).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0)).map(([k, v]) => `${k}=${v}`).join('&');
  const names = signedHeaders!.split(';');
  const headers = names.map((n) => {
    const v = ctx.req.headers[n];
    return `${n}:${(Array.isArray(v) ? v.join(',') : v ?? '').trim().replace(/\s+/g, ' ')}\n`;
  }).join('');
  const payload = String(ctx.req.headers['x-amz-content-sha256'] ?? 'UNSIGNED-PAYLOAD');
  const canonical = [ctx.method, path, query, headers, signedHeaders, payload].join('\n');
  const amzDate = String(ctx.req.headers['x-amz-date'] ?? '');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, createHash('sha256').update(canonical).digest('hex')].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, date!), region!), service!), 'aws4_request');
  return { provided: provided!, expected: createHmac('sha256', key).update(toSign).digest('hex') };
}

/** Refuses a SigV4 request whose signature is not the one the server's secret gives (403 SignatureDoesNotMatch, as S3). */
function checkSignature() {
  return async (ctx: KoaCtx, next: () => Promise<void>) => {
    const s = sigV4(ctx, S3_SECRET_KEY);
    // Anonymous or otherwise signed requests (s3rver lets them through) are refused: the tests' buckets are private.
    if (!s) return xmlError(ctx, 403, 'AccessDenied', 'Access Denied');
    if (s.provided !== s.expected) {
      return xmlError(ctx, 403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided. Check your key and signing method.');
    }
    return next();
  };
}

/** The three multipart calls s3rver lacks (see the file comment). */
function multipartExtras(dir: string) {
  return async (ctx: KoaCtx, next: () => Promise<void>) => {
    const m = /^\/([^/]+)(?:\/(.+))?$/.exec(ctx.path);
    const wantsUploads = 'uploads' in ctx.query && ctx.method === 'GET' && m && !m[2];
    const onUpload = ctx.query['uploadId'] !== undefined && m?.[2] && (ctx.method === 'DELETE' || ctx.method === 'GET');
    if (!m || (!wantsUploads && !onUpload)) return next();
    if (!(ctx.headers['authorization'] ?? '').includes(`Credential=${S3_ACCESS_KEY}/`)) return xmlError(ctx, 403, 'InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.');
    const bucket = decodeURIComponent(m[1]!);
    if (!existsSync(join(dir, bucket))) return xmlError(ctx, 404, 'NoSuchBucket', 'The specified bucket does not exist');
    if (wantsUploads) {
      const uploads = listUploads(dir, bucket).map((u) => `<Upload><Key>${xmlEscape(u.key)}</Key><UploadId>${u.uploadId}</UploadId></Upload>`).join('');
      ctx.status = 200;
      ctx.type = 'application/xml';
      ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult><Bucket>${xmlEscape(bucket)}</Bucket><IsTruncated>false</IsTruncated>${uploads}</ListMultipartUploadsResult>`;
      return;
    }
    const id = ctx.query['uploadId']!;
    const up = join(uploadsDir(dir, bucket), id);
    if (!/^[0-9a-f]+$/.test(id) || !existsSync(up)) return xmlError(ctx, 404, 'NoSuchUpload', 'The specified upload does not exist.');
    if (ctx.method === 'DELETE') {
      rmSync(up, { recursive: true, force: true });
      ctx.status = 204;
      ctx.body = '';
      return;
    }
    const parts = readdirSync(up).filter((f) => /^\d+$/.test(f)).sort((a, b) => Number(a) - Number(b))
      .map((n) => `<Part><PartNumber>${n}</PartNumber></Part>`).join('');
    ctx.status = 200;
    ctx.type = 'application/xml';
    ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<ListPartsResult><Bucket>${xmlEscape(bucket)}</Bucket><UploadId>${id}</UploadId><IsTruncated>false</IsTruncated>${parts}</ListPartsResult>`;
  };
}

/** Starts s3rver on a free loopback port with the given buckets. */
export async function startS3(buckets: string[]): Promise<TestS3> {
  const dir = await mkdtemp(join(tmpdir(), 's3-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: dir, configureBuckets: buckets.map((name) => ({ name })), vhostBuckets: false });
  // Before s3rver's router (the last middleware), after its XML and vhost handling.
  const stack = (server as unknown as { middleware: unknown[] }).middleware;
  stack.splice(stack.length - 1, 0, checkSignature(), multipartExtras(dir));
  const addr = (await server.run()) as { address: string; port: number };
  const endpoint = `http://127.0.0.1:${addr.port}`;
  return {
    endpoint,
    dir,
    env: {
      AWS_ACCESS_KEY_ID: S3_ACCESS_KEY, AWS_SECRET_ACCESS_KEY: S3_SECRET_KEY, AWS_REGION: 'us-east-1',
      AWS_EC2_METADATA_DISABLED: 'true', AWS_CONFIG_FILE: join(dir, 'no-aws-config'), AWS_SHARED_CREDENTIALS_FILE: join(dir, 'no-aws-credentials'),
    },
    openUploads: (bucket) => listUploads(dir, bucket),
    async stop() {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
