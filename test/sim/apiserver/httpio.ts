// Request bodies in, answers out: reading and decoding a request body, writing a JSON (or raw)
// answer, and turning any failure into the metav1.Status error to send.
// Differences from a real API server: JSON only (no CBOR, and protobuf only for the few bodies
// protobuf.ts decodes); a request body in another format gets 415 (for a protobuf body the
// simulator could not decode, the message ends with why, e.g. the field it does not know);
// answers are always JSON or, for the OpenAPI v2 protobuf, raw bytes; HEAD is answered like GET
// without a body.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { protobufToJson } from './protobuf.js';
import { ApiError, badRequest, unsupportedMediaType } from './status.js';

/** What a handler answers: a status code and a JSON body, or raw bytes of another content type. */
export interface Reply {
  code: number;
  body: unknown;
  raw?: { contentType: string; bytes: Buffer };
}

/** The whole request body. */
export function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** The decoded request body (undefined when empty); 415 for a format it cannot read, 400 for bad JSON. */
export function parseBody(buf: Buffer, contentType: string): unknown {
  if (!buf.length) return undefined;
  const type = contentType.split(';')[0].trim().toLowerCase();
  if (type === 'application/vnd.kubernetes.protobuf') {
    let decoded: Record<string, unknown> | undefined;
    let why = '';
    try { decoded = protobufToJson(buf); } catch (err) { why = (err as Error).message; } // not decodable: 415 below
    if (decoded) return decoded;
    const refused = unsupportedMediaType(type);
    throw why ? new ApiError(refused.code, refused.reason, `${refused.message}: ${why}`) : refused;
  }
  if (type && !type.includes('json')) throw unsupportedMediaType(type);
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch (err) {
    throw badRequest(`the request body could not be decoded: ${(err as Error).message}`);
  }
}

/** Answers with a JSON body (none for HEAD). */
export function sendJson(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', 'Content-Length': Buffer.byteLength(text) });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}

/** Answers with a handler's reply: its raw bytes when it has them, else its JSON body. */
export function sendReply(res: ServerResponse, r: Reply): void {
  if (r.raw) {
    res.writeHead(r.code, { 'Content-Type': r.raw.contentType, 'Cache-Control': 'no-cache, private', 'Content-Length': r.raw.bytes.length });
    res.end(res.req.method === 'HEAD' ? undefined : r.raw.bytes);
    return;
  }
  sendJson(res, r.code, r.body);
}

/** The error as an ApiError: itself, or a 500 InternalError for anything else thrown. */
export function asApiError(err: unknown): ApiError {
  return err instanceof ApiError ? err : new ApiError(500, 'InternalError', `Internal error occurred: ${(err as Error).message}`);
}
