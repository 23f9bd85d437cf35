import { createHmac } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import busboy from 'busboy';

/**
 * S3 "POST object" (browser-based upload with a presigned POST policy), which the embedded S3 emulator
 * lacks. Checks what S3 checks: the policy signature (SigV4), its expiry, the exact key and the
 * content-length-range; then hands the file to `store` (the emulator keeps objects in memory: the file is
 * held once, never more than the policy allows).
 */
export interface PostResult {
  readonly status: number;
  readonly body: string;
}

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

function s3Error(status: number, code: string, message: string): PostResult {
  return {
    status,
    body: `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`,
  };
}

interface Policy {
  expiration: string;
  conditions: unknown[];
}

function checkPolicy(
  policy: Policy,
  fields: Record<string, string>,
  bucket: string,
  size: number,
): PostResult | undefined {
  if (Date.parse(policy.expiration) < Date.now())
    return s3Error(403, 'AccessDenied', 'Invalid according to Policy: Policy expired.');
  for (const c of policy.conditions) {
    if (Array.isArray(c) && c[0] === 'content-length-range') {
      const [min, max] = [Number(c[1]), Number(c[2])];
      if (size > max)
        return s3Error(
          400,
          'EntityTooLarge',
          `Your proposed upload exceeds the maximum allowed size (${max} bytes).`,
        );
      if (size < min)
        return s3Error(
          400,
          'EntityTooSmall',
          `Your proposed upload is smaller than the minimum allowed size (${min} bytes).`,
        );
    } else if (Array.isArray(c) && c[0] === 'eq') {
      const name = String(c[1]).replace(/^\$/, '');
      if (fields[name] !== String(c[2]))
        return s3Error(
          403,
          'AccessDenied',
          `Invalid according to Policy: Policy Condition failed: ["eq", "$${name}", "${c[2]}"]`,
        );
    } else if (c && typeof c === 'object' && !Array.isArray(c)) {
      for (const [k, v] of Object.entries(c)) {
        const actual = k === 'bucket' ? bucket : fields[k];
        if (actual !== v)
          return s3Error(
            403,
            'AccessDenied',
            `Invalid according to Policy: Policy Condition failed: {"${k}": "${String(v)}"}`,
          );
      }
    }
  }
  return undefined;
}

/** S3's own limit for a POST upload (5 GiB): busboy stops reading the file there. */
const MAX_POST_BYTES = 5 * 1024 ** 3;

/** What a policy allows at most (the smallest maximum of its content-length-range conditions). */
function largestAllowed(policy: Policy): number {
  let max = MAX_POST_BYTES;
  for (const c of policy.conditions)
    if (Array.isArray(c) && c[0] === 'content-length-range') max = Math.min(max, Number(c[2]));
  return Number.isFinite(max) ? Math.max(0, max) : 0;
}

/**
 * The file of a POST, written into one buffer as it arrives, up to `limit` bytes (sized from the
 * request's Content-Length when it has one, so it is neither grown nor copied); beyond the limit the
 * bytes are only counted: the upload will be refused, and nothing of it is held.
 */
class FileBody {
  size = 0;
  private buf: Buffer | undefined;

  constructor(
    private readonly limit: number,
    private readonly expected: number,
  ) {}

  write(d: Buffer): void {
    const end = this.size + d.length;
    this.size = end;
    if (end > this.limit) {
      this.buf = undefined;
      return;
    }
    if (!this.buf || this.buf.length < end) {
      const capacity = Math.min(this.limit, Math.max(end, this.buf ? 2 * this.buf.length : this.expected));
      const bigger = Buffer.allocUnsafe(capacity);
      this.buf?.copy(bigger, 0, 0, end - d.length);
      this.buf = bigger;
    }
    d.copy(this.buf, end - d.length);
  }

  /** The file, when it stayed within the limit. */
  body(): Buffer | undefined {
    if (this.size > this.limit) return undefined;
    return this.buf ? this.buf.subarray(0, this.size) : Buffer.alloc(0);
  }
}

/** The checks made before the policy's conditions, in S3's order; the policy once they pass. */
function authenticate(
  fields: Record<string, string>,
  secretAccessKey: string,
): { refused: PostResult } | { policy: Policy } {
  const policyB64 = fields.Policy ?? fields.policy;
  const credential = fields['X-Amz-Credential'];
  const signature = fields['X-Amz-Signature'];
  if (!policyB64 || !credential || !signature || !fields.key)
    return {
      refused: s3Error(
        400,
        'InvalidArgument',
        'POST requires key, Policy, X-Amz-Credential and X-Amz-Signature.',
      ),
    };
  const [, date, region, service] = credential.split('/');
  const signingKey = hmac(
    hmac(hmac(hmac(`AWS4${secretAccessKey}`, date ?? ''), region ?? ''), service ?? ''),
    'aws4_request',
  );
  if (hmac(signingKey, policyB64).toString('hex') !== signature) {
    return {
      refused: s3Error(
        403,
        'SignatureDoesNotMatch',
        'The request signature we calculated does not match the signature you provided.',
      ),
    };
  }
  return { policy: JSON.parse(Buffer.from(policyB64, 'base64').toString('utf8')) as Policy };
}

/**
 * Handles a multipart POST upload. As S3 does, it takes the form fields that come before the file (fields
 * after it are ignored), authenticates them when the file starts, and streams the file into a single
 * buffer bounded by what the policy allows; the policy's conditions are then checked on the real size.
 * A refused upload is read to its end but not kept.
 */
export async function handlePresignedPost(
  req: IncomingMessage,
  bucket: string,
  secretAccessKey: string,
  store: (key: string, body: Buffer, contentType: string) => void,
): Promise<PostResult> {
  const fields: Record<string, string> = {};
  let auth: ReturnType<typeof authenticate> | undefined;
  let file: FileBody | undefined;
  let truncated = false;
  await new Promise<void>((resolve, reject) => {
    const bb = busboy({ headers: req.headers, limits: { files: 1, fileSize: MAX_POST_BYTES } });
    bb.on('field', (name, value) => {
      if (!auth) fields[name] = value;
    });
    bb.on('file', (_name, stream) => {
      auth = authenticate(fields, secretAccessKey);
      if ('refused' in auth) {
        stream.resume();
        return;
      }
      const f = (file = new FileBody(
        largestAllowed(auth.policy),
        Number(req.headers['content-length']) || 1024 * 1024,
      ));
      stream.on('data', (d: Buffer) => f.write(d));
      stream.on('limit', () => (truncated = true));
    });
    bb.on('close', resolve);
    bb.on('error', reject);
    req.pipe(bb);
  });
  // No file: the form is checked as it is (S3 answers the same way about missing fields).
  auth ??= authenticate(fields, secretAccessKey);
  if ('refused' in auth) return auth.refused;
  const size = truncated ? Infinity : (file?.size ?? 0);
  const refused = checkPolicy(auth.policy, fields, bucket, size);
  if (refused) return refused;
  const body = truncated ? undefined : file?.body();
  if (!body)
    return s3Error(
      400,
      'EntityTooLarge',
      `Your proposed upload exceeds the maximum allowed size (${MAX_POST_BYTES} bytes).`,
    );
  store(fields.key!, body, fields['Content-Type'] ?? 'application/octet-stream');
  return { status: 204, body: '' };
}
