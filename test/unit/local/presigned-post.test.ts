import { Readable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { IncomingMessage } from 'node:http';
import { S3Client } from '@aws-sdk/client-s3';
import { createPresignedPost } from '@aws-sdk/s3-presigned-post';
import { describe, expect, it } from 'vitest';
import { handlePresignedPost } from '../../../local/presigned-post.ts';

const SECRET = 'local';
const BUCKET = 'rowfleet-local-data';
const KEY = 'uploads/sakai/0f8fad5b-d9cb-469f-a165-70867728950e/source.csv';
const s3 = new S3Client({
  region: 'ap-northeast-1',
  endpoint: 'http://127.0.0.1:1',
  forcePathStyle: true,
  credentials: { accessKeyId: 'local', secretAccessKey: SECRET },
});

/** The fields of a presigned POST for KEY of at most `maxBytes` (signed offline, as Objects.presignPost signs). */
async function presigned(maxBytes: number): Promise<Record<string, string>> {
  const post = await createPresignedPost(s3, {
    Bucket: BUCKET,
    Key: KEY,
    Conditions: [
      ['content-length-range', 1, maxBytes],
      ['eq', '$key', KEY],
    ],
    Fields: { 'Content-Type': 'text/csv' },
    Expires: 60,
  });
  return post.fields;
}

/** V8's full garbage collection, for measuring what is still held. */
function forcedGc(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** A multipart/form-data request: the fields, then a file made of `pieces` (generated as they are read). */
function request(
  fields: Record<string, string>,
  pieces: () => Iterable<Buffer>,
  contentLength?: number,
): IncomingMessage {
  const boundary = 'rowfleet-test-boundary';
  function* body() {
    for (const [k, v] of Object.entries(fields))
      yield Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`);
    yield Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="source.csv"\r\nContent-Type: text/csv\r\n\r\n`,
    );
    yield* pieces();
    yield Buffer.from(`\r\n--${boundary}--\r\n`);
  }
  const req = Readable.from(body(), { objectMode: false }) as unknown as IncomingMessage;
  req.headers = {
    'content-type': `multipart/form-data; boundary=${boundary}`,
    ...(contentLength ? { 'content-length': String(contentLength) } : {}),
  };
  return req;
}

describe('Function: handlePresignedPost', () => {
  it.each([
    ['with a Content-Length', true],
    ['without a Content-Length (chunked)', false],
  ])('stores the file of a valid POST once, byte for byte (%s)', async (_, withLength) => {
    // Prepare
    const fields = await presigned(10 * 1024 * 1024);
    const file = Buffer.from('id,name\r\n1,山田\r\n'.repeat(200_000));
    const pieces = () =>
      Array.from({ length: Math.ceil(file.length / 65536) }, (_, i) =>
        file.subarray(i * 65536, (i + 1) * 65536),
      );
    const stored: { key: string; body: Buffer; type: string }[] = [];

    // Act
    const r = await handlePresignedPost(
      request(fields, pieces, withLength ? file.length + 4096 : undefined),
      BUCKET,
      SECRET,
      (key, body, type) => stored.push({ key, body, type }),
    );

    // Assess
    expect(r.status).toBe(204);
    expect(stored).toHaveLength(1);
    expect(stored[0]!.key).toBe(KEY);
    expect(stored[0]!.type).toBe('text/csv');
    expect(stored[0]!.body.equals(file)).toBe(true);
  });

  it('refuses a POST far over the limit without holding what it read', async () => {
    // Prepare: 64 MiB in 1,024 pieces of 64 KiB against a limit of 1 MiB; the memory the pieces still
    // hold is sampled (after a full GC) as they are read
    const fields = await presigned(1024 * 1024);
    const gc = forcedGc();
    gc();
    const base = process.memoryUsage().arrayBuffers;
    let held = 0;
    function* pieces() {
      for (let i = 0; i < 1024; i++) {
        if (i % 128 === 127) {
          gc();
          held = Math.max(held, process.memoryUsage().arrayBuffers - base);
        }
        yield Buffer.alloc(65536, 0x41);
      }
    }
    const stored: string[] = [];

    // Act
    const r = await handlePresignedPost(
      request(fields, pieces, 64 * 1024 * 1024 + 4096),
      BUCKET,
      SECRET,
      (key) => stored.push(key),
    );

    // Assess
    expect(r.status).toBe(400);
    expect(r.body).toContain('EntityTooLarge');
    expect(r.body).toContain('1048576');
    expect(stored).toEqual([]);
    // Far below the 64 MiB read (the buffering code held ~59 MiB); the margin absorbs what the test process
    // itself allocates meanwhile when other test files run beside it.
    expect(held).toBeLessThan(16 * 1024 * 1024);
  });

  it('refuses a POST whose signature does not match before keeping any of its file', async () => {
    // Prepare
    const fields = { ...(await presigned(1024)), 'X-Amz-Signature': '0'.repeat(64) };
    const stored: string[] = [];

    // Act
    const r = await handlePresignedPost(
      request(fields, () => [Buffer.from('a,b\n1,2\n')]),
      BUCKET,
      SECRET,
      (key) => stored.push(key),
    );

    // Assess
    expect(r.status).toBe(403);
    expect(r.body).toContain('SignatureDoesNotMatch');
    expect(stored).toEqual([]);
  });

  it('answers EntityTooLarge before AccessDenied when both apply, as the policy lists them', async () => {
    // Prepare: a file over the limit, to another key than the signed one
    const fields = { ...(await presigned(10)), key: 'uploads/kawasaki/x/source.csv' };

    // Act
    const r = await handlePresignedPost(
      request(fields, () => [Buffer.alloc(100, 0x41)]),
      BUCKET,
      SECRET,
      () => {
        throw new Error('must not store');
      },
    );

    // Assess
    expect(r.status).toBe(400);
    expect(r.body).toContain('EntityTooLarge');
  });
});
