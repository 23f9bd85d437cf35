import { S3Client } from '@aws-sdk/client-s3';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Objects } from '../../../../core/aws/objects.ts';

const MIB = 1024 * 1024;

/** An S3 client that answers the multipart requests, failing the UploadPart numbered `failPart`. */
function fakeS3(failPart?: number) {
  const calls: string[] = [];
  const bodies = new Map<number, Buffer>();
  const client = {
    send: async (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
      const name = command.constructor.name.replace(/Command$/, '');
      const input = command.input;
      calls.push(name + (input.PartNumber ? ` ${String(input.PartNumber)}` : ''));
      await new Promise((r) => setTimeout(r, 1));
      if (name === 'CreateMultipartUpload') return { UploadId: 'u1' };
      if (name === 'UploadPart') {
        if (input.PartNumber === failPart) throw new Error('part refused');
        // A copy: the upload fills the same buffers again once a part is sent.
        bodies.set(input.PartNumber as number, Buffer.from(input.Body as Buffer));
        return { ETag: `"e${String(input.PartNumber)}"` };
      }
      if (name === 'PutObject') bodies.set(1, Buffer.from(input.Body as Buffer));
      return { ETag: '"done"' };
    },
  } as unknown as S3Client;
  return { client, calls, bodies };
}

describe('Method: Objects.multipart (parts filled in buffers used again)', () => {
  it('sends the requests lib-storage sent and every byte once, in its part, though the buffers are used again', async () => {
    // Prepare: 43 MiB in writes of 3 MiB + 1 byte (across part boundaries) → parts of 8 × 5 and 3
    const s3 = fakeS3();
    const data = Buffer.alloc(43 * MIB);
    for (let i = 0; i < data.length; i += 4) data.writeUInt32LE(i, i);
    const upload = new Objects('b', s3.client).multipart('k', 'application/zip', 2);

    // Act
    for (let o = 0; o < data.length; o += 3 * MIB + 1) await upload.write(data.subarray(o, o + 3 * MIB + 1));
    const etag = await upload.done();

    // Assess
    expect(etag).toBe('"done"');
    expect(s3.calls[0]).toBe('CreateMultipartUpload');
    expect(s3.calls.at(-1)).toBe('CompleteMultipartUpload');
    expect(s3.calls.filter((c) => c.startsWith('UploadPart')).sort()).toEqual(
      [1, 2, 3, 4, 5, 6].map((n) => `UploadPart ${n}`),
    );
    const parts = [1, 2, 3, 4, 5, 6].map((n) => s3.bodies.get(n)!);
    expect(parts.map((p) => p.length / MIB)).toEqual([8, 8, 8, 8, 8, 3]);
    expect(Buffer.concat(parts).equals(data)).toBe(true);
  });

  it('is one PutObject when it all fits in a part, and a part of exactly 8 MiB is the last one', async () => {
    // Prepare
    const small = fakeS3();
    const exact = fakeS3();

    // Act
    const a = new Objects('b', small.client).multipart('k', 'text/csv');
    await a.write(Buffer.alloc(MIB, 1));
    await a.done();
    const b = new Objects('b', exact.client).multipart('k', 'text/csv');
    await b.write(Buffer.alloc(8 * MIB, 2));
    await b.done();

    // Assess
    expect(small.calls).toEqual(['PutObject']);
    expect(small.bodies.get(1)?.equals(Buffer.alloc(MIB, 1))).toBe(true);
    expect(exact.calls).toEqual(['PutObject']);
  });

  it('aborts the upload when a part fails, and refuses the writes after it', async () => {
    // Prepare
    const s3 = fakeS3(2);
    const upload = new Objects('b', s3.client).multipart('k', 'application/zip', 1);

    // Act
    let failed: unknown;
    try {
      for (let i = 0; i < 10; i++) await upload.write(Buffer.alloc(8 * MIB, i));
    } catch (err) {
      failed = err;
    }
    const done = await upload.done().catch((e: unknown) => e);

    // Assess
    expect(failed).toMatchObject({ message: 'part refused' });
    expect(done).toMatchObject({ message: 'part refused' });
    expect(s3.calls).toContain('AbortMultipartUpload');
    expect(s3.calls).not.toContain('CompleteMultipartUpload');
    expect(s3.calls.filter((c) => c.startsWith('UploadPart')).length).toBeLessThan(10);
  });
});

describe('Method: Objects.multipart (signing)', () => {
  it("signs its parts' requests and a worker's part (putNew) without hashing their bodies (UNSIGNED-PAYLOAD), other requests as before", async () => {
    // Prepare: a client whose requests are answered here, their signed headers kept
    const seen: Record<string, string>[] = [];
    const s3 = new S3Client({
      region: 'ap-northeast-1',
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
      requestHandler: {
        handle: (request: { headers: Record<string, string> }) => {
          seen.push(request.headers);
          return Promise.resolve({
            response: { statusCode: 200, headers: { etag: '"e"' }, body: Readable.from([]) },
          });
        },
      },
    });
    const objects = new Objects('b', s3);

    // Act
    const upload = objects.multipart('k', 'text/csv');
    await upload.write(Buffer.from('a,b\r\n'));
    await upload.done();
    await objects.putNew('part', Buffer.from('part bytes'));
    await objects.put('other', 'x');

    // Assess
    expect(seen.map((h) => h['x-amz-content-sha256'])).toEqual([
      'UNSIGNED-PAYLOAD',
      'UNSIGNED-PAYLOAD',
      '2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881',
    ]);
    expect(seen[0]!.authorization).toContain('x-amz-content-sha256');
    expect(seen[1]!['if-none-match']).toBe('*');
  });
});
