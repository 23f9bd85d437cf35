import { createHmac } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import busboy from 'busboy';

/**
 * S3 "POST object" (browser-based upload with a presigned POST policy), which the embedded S3 emulator
 * lacks. Checks what S3 checks: the policy signature (SigV4), its expiry, the exact key and the
 * content-length-range; then hands the file to `store`.
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

export async function handlePresignedPost(
  req: IncomingMessage,
  bucket: string,
  secretAccessKey: string,
  store: (key: string, body: Buffer, contentType: string) => void,
): Promise<PostResult> {
  const fields: Record<string, string> = {};
  const chunks: Buffer[] = [];
  let size = 0;
  await new Promise<void>((resolve, reject) => {
    const bb = busboy({ headers: req.headers });
    bb.on('field', (name, value) => (fields[name] = value));
    bb.on('file', (_name, file) => {
      file.on('data', (d: Buffer) => {
        chunks.push(d);
        size += d.length;
      });
    });
    bb.on('close', resolve);
    bb.on('error', reject);
    req.pipe(bb);
  });
  const policyB64 = fields.Policy ?? fields.policy;
  const credential = fields['X-Amz-Credential'];
  const signature = fields['X-Amz-Signature'];
  if (!policyB64 || !credential || !signature || !fields.key)
    return s3Error(
      400,
      'InvalidArgument',
      'POST requires key, Policy, X-Amz-Credential and X-Amz-Signature.',
    );
  const [, date, region, service] = credential.split('/');
  const signingKey = hmac(
    hmac(hmac(hmac(`AWS4${secretAccessKey}`, date ?? ''), region ?? ''), service ?? ''),
    'aws4_request',
  );
  if (hmac(signingKey, policyB64).toString('hex') !== signature) {
    return s3Error(
      403,
      'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided.',
    );
  }
  const policy = JSON.parse(Buffer.from(policyB64, 'base64').toString('utf8')) as Policy;
  const refused = checkPolicy(policy, fields, bucket, size);
  if (refused) return refused;
  store(fields.key, Buffer.concat(chunks), fields['Content-Type'] ?? 'application/octet-stream');
  return { status: 204, body: '' };
}
