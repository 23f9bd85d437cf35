import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { s3Client } from '../../../../core/aws/clients.ts';
import { Objects } from '../../../../core/aws/objects.ts';
import { batchBodies, Queues } from '../../../../core/aws/queues.ts';
import { newJobToken, reportQueueName } from '../../../../core/jobs/keys.ts';
import { TEST_TIMINGS, useTestAws } from '../../../helpers/aws.ts';

const aws = useTestAws();
const MIB = 1024 * 1024;

async function drain(
  queues: Queues,
  url: string,
  expected: number,
): Promise<{ body: string; receipt: string; site?: string; token?: string }[]> {
  const out: { body: string; receipt: string; site?: string; token?: string }[] = [];
  for (let i = 0; i < 20 && out.length < expected; i++) {
    for (const m of await queues.receive(url, { max: 10, waitSeconds: 1, visibilitySeconds: 30 })) {
      out.push({
        body: m.Body ?? '',
        receipt: m.ReceiptHandle!,
        site: m.MessageAttributes?.site?.StringValue,
        token: m.MessageAttributes?.token?.StringValue,
      });
    }
  }
  return out;
}

describe('Class: Queues', () => {
  it('creates a job queue, sends a batch, receives it with the tenant attributes, deletes messages and the queue', async () => {
    // Prepare
    const queues = new Queues();
    const token = newJobToken();
    const name = reportQueueName('local', token);
    const url = await queues.createJobQueue({
      name,
      site: 'sakai',
      token,
      dlqArn: aws.dlqArn,
      timings: TEST_TIMINGS,
    });
    const bodies = ['{"a":1}', '山田', 'x'.repeat(1000)];

    // Act
    await queues.sendBatch(url, 'sakai', token, bodies);
    const received = await drain(queues, url, 3);
    for (const m of received) await queues.delete(url, m.receipt);
    const after = await queues.receive(url, { max: 10, waitSeconds: 0 });
    await queues.deleteQueue(url);

    // Assess
    expect(await queues.queueUrl(name)).toBeUndefined();
    expect(received.map((m) => m.body).sort()).toEqual([...bodies].sort());
    expect(received.every((m) => m.site === 'sakai' && m.token === token)).toBe(true);
    expect(after).toEqual([]);
    expect(queues.requests).toBeGreaterThanOrEqual(7);
    await expect(queues.deleteQueue(url)).resolves.toBeUndefined();
  });

  it('finds a queue URL by name', async () => {
    // Prepare
    const queues = new Queues();
    const token = newJobToken();
    const name = reportQueueName('local', token);

    // Act
    const before = await queues.queueUrl(name);
    const url = await queues.createJobQueue({
      name,
      site: 'kawasaki',
      token,
      dlqArn: aws.dlqArn,
      timings: TEST_TIMINGS,
    });

    // Assess
    expect(before).toBeUndefined();
    expect(await queues.queueUrl(name)).toBe(url);
  });

  it('sends large bodies in the groups batchBodies makes, which SQS accepts (a naive batch is refused)', async () => {
    // Prepare: seven 300 KiB bodies; SQS takes at most 1 MiB per SendMessageBatch
    const queues = new Queues();
    const token = newJobToken();
    const url = await queues.createJobQueue({
      name: reportQueueName('local', token),
      site: 'sakai',
      token,
      dlqArn: aws.dlqArn,
      timings: TEST_TIMINGS,
    });
    const bodies = Array.from({ length: 7 }, (_, i) => String(i).repeat(300 * 1024));

    // Act
    const naive = await queues
      .sendBatch(url, 'sakai', token, bodies.slice(0, 4))
      .catch((err: unknown) => err as Error);
    const groups = batchBodies(bodies);
    for (const g of groups) await queues.sendBatch(url, 'sakai', token, g);
    const received = await drain(queues, url, 7);

    // Assess
    expect(naive).toBeInstanceOf(Error);
    expect(String((naive as Error).name) + (naive as Error).message).toMatch(
      /BatchRequestTooLong|longer than/,
    );
    expect(groups.length).toBe(3);
    expect(received.map((m) => m.body).sort()).toEqual([...bodies].sort());
  });

  it('keeps a message hidden while its visibility is extended', async () => {
    // Prepare
    const queues = new Queues();
    const token = newJobToken();
    const url = await queues.createJobQueue({
      name: reportQueueName('local', token),
      site: 'sakai',
      token,
      dlqArn: aws.dlqArn,
      timings: TEST_TIMINGS,
    });
    await queues.sendOne(url, 'work', 'sakai', token);
    const [m] = await queues.receive(url, { max: 1, waitSeconds: 1, visibilitySeconds: 2 });

    // Act
    await queues.extendVisibility(url, m!.ReceiptHandle!, 30);
    await new Promise((r) => setTimeout(r, 2500));
    const again = await queues.receive(url, { max: 1, waitSeconds: 0 });

    // Assess
    expect(m?.Body).toBe('work');
    expect(again).toEqual([]);
  });
});

describe('Class: Objects', () => {
  it('puts, reads whole and by range, and sizes objects', async () => {
    // Prepare
    const objects = new Objects(aws.bucket);
    const data = Buffer.from('0123456789山田', 'utf8');

    // Act
    await objects.put('t/a.bin', data);

    // Assess
    expect((await objects.bytes('t/a.bin')).equals(data)).toBe(true);
    expect((await objects.bytes('t/a.bin', { start: 2, end: 4 })).toString()).toBe('234');
    expect((await objects.bytes('t/a.bin', { start: 10 })).toString()).toBe('山田');
    expect(await objects.size('t/a.bin')).toBe(data.length);
    expect(await objects.size('t/missing.bin')).toBeUndefined();
  });

  it('stores with putNew only where no object is: the first writer is kept, concurrent writers too', async () => {
    // Prepare
    const objects = new Objects(aws.bucket);
    const key = `t/${newJobToken()}.part`;

    // Act
    const first = await objects.putNew(key, 'first');
    const second = await objects.putNew(key, 'second');
    const racing = await Promise.all(['a', 'b', 'c', 'd'].map((body) => objects.putNew(`${key}.race`, body)));

    // Assess
    expect([first, second]).toEqual([true, false]);
    expect((await objects.bytes(key)).toString()).toBe('first');
    expect(racing.filter(Boolean)).toHaveLength(1);
    const winner = ['a', 'b', 'c', 'd'][racing.indexOf(true)];
    expect((await objects.bytes(`${key}.race`)).toString()).toBe(winner);
  });

  it('streams a multipart upload of several parts that reads back byte-exact', async () => {
    // Prepare: 19 MiB in 1 MiB writes → parts of 8, 8 and 3 MiB
    const objects = new Objects(aws.bucket);
    const pieces = Array.from({ length: 19 }, () => randomBytes(1024 * 1024));
    const expected = createHash('sha256').update(Buffer.concat(pieces)).digest('hex');

    // Act
    const upload = objects.multipart('t/big.zip', 'application/zip');
    for (const p of pieces) await upload.write(p);
    const etag = await upload.done();

    // Assess: S3's multipart ETag, the MD5 of the parts' MD5 digests and the part count
    const back = await objects.bytes('t/big.zip');
    expect(back.length).toBe(19 * 1024 * 1024);
    expect(createHash('sha256').update(back).digest('hex')).toBe(expected);
    const partMd5 = [0, 8, 16].map((mib) =>
      createHash('md5')
        .update(back.subarray(mib * MIB, Math.min(back.length, (mib + 8) * MIB)))
        .digest(),
    );
    expect(etag).toBe(`"${createHash('md5').update(Buffer.concat(partMd5)).digest('hex')}-3"`);
  });

  describe('the embedded S3 completes a multipart upload as S3 does', () => {
    const s3 = s3Client();
    async function partsOf(key: string, sizes: number[]) {
      const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: aws.bucket, Key: key }));
      const parts = [];
      for (const [i, size] of sizes.entries()) {
        const r = await s3.send(
          new UploadPartCommand({
            Bucket: aws.bucket,
            Key: key,
            UploadId,
            PartNumber: i + 1,
            Body: Buffer.alloc(size, i + 1),
          }),
        );
        parts.push({ PartNumber: i + 1, ETag: r.ETag });
      }
      return { UploadId: UploadId!, parts };
    }
    const complete = (key: string, UploadId: string, Parts: { PartNumber: number; ETag?: string }[]) =>
      s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: aws.bucket,
          Key: key,
          UploadId,
          MultipartUpload: { Parts },
        }),
      );

    it('refuses a part under 5 MiB that is not the last (EntityTooSmall)', async () => {
      const { UploadId, parts } = await partsOf('t/small-parts', [1024, 1024]);
      await expect(complete('t/small-parts', UploadId, parts)).rejects.toMatchObject({
        name: 'EntityTooSmall',
      });
    });

    it('refuses a part whose ETag is not the one it got (InvalidPart), and parts out of order', async () => {
      const { UploadId, parts } = await partsOf('t/bad-etag', [5 * MIB, 10]);
      await expect(
        complete('t/bad-etag', UploadId, [
          parts[0]!,
          { ...parts[1]!, ETag: '"00000000000000000000000000000000"' },
        ]),
      ).rejects.toMatchObject({ name: 'InvalidPart' });
      await expect(complete('t/bad-etag', UploadId, [parts[1]!, parts[0]!])).rejects.toMatchObject({
        name: 'InvalidPartOrder',
      });
      await complete('t/bad-etag', UploadId, parts);
      await expect(complete('t/bad-etag', UploadId, parts)).rejects.toMatchObject({ name: 'NoSuchUpload' });
      expect(await new Objects(aws.bucket).size('t/bad-etag')).toBe(5 * MIB + 10);
    });
  });

  it('presigns a GET that downloads the object', async () => {
    // Prepare
    const objects = new Objects(aws.bucket);
    await objects.put('results/sakai/x/x.zip', Buffer.from('zip-bytes'));

    // Act
    const url = await objects.presignGet('results/sakai/x/x.zip', 60, 'x.zip');
    const res = await fetch(url);

    // Assess
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).toString()).toBe('zip-bytes');
  });

  describe('Method: presignPost', () => {
    async function post(
      upload: { url: string; fields: Record<string, string> },
      body: Buffer,
      fields: Record<string, string> = {},
    ) {
      const form = new FormData();
      for (const [k, v] of Object.entries({ ...upload.fields, ...fields })) form.append(k, v);
      form.append('file', new Blob([body]), 'source.csv');
      const res = await fetch(upload.url, { method: 'POST', body: form });
      return { status: res.status, text: await res.text() };
    }

    it('accepts a POST of the presigned key within the size range', async () => {
      // Prepare
      const objects = new Objects(aws.bucket);
      const key = `uploads/sakai/${newJobToken()}/source.csv`;
      const upload = await objects.presignPost(key, 1000, 900);
      const body = Buffer.from('id,name\n1,山田\n');

      // Act
      const r = await post(upload, body);

      // Assess
      expect(r.status).toBe(204);
      expect((await objects.bytes(key)).equals(body)).toBe(true);
    });

    it('refuses a POST over the content-length-range', async () => {
      // Prepare
      const objects = new Objects(aws.bucket);
      const key = `uploads/sakai/${newJobToken()}/source.csv`;
      const upload = await objects.presignPost(key, 1000, 900);

      // Act
      const r = await post(upload, Buffer.alloc(1001, 0x41));

      // Assess
      expect(r.status).toBe(400);
      expect(r.text).toContain('EntityTooLarge');
      expect(await objects.size(key)).toBeUndefined();
    });

    it('refuses a POST to another key than the presigned one', async () => {
      // Prepare
      const objects = new Objects(aws.bucket);
      const key = `uploads/sakai/${newJobToken()}/source.csv`;
      const other = `uploads/kawasaki/${newJobToken()}/source.csv`;
      const upload = await objects.presignPost(key, 1000, 900);

      // Act
      const r = await post(upload, Buffer.from('a,b\n1,2\n'), { key: other });

      // Assess
      expect(r.status).toBe(403);
      expect(r.text).toContain('AccessDenied');
      expect(await objects.size(other)).toBeUndefined();
      expect(await objects.size(key)).toBeUndefined();
    });

    it('refuses a POST whose policy was tampered with', async () => {
      // Prepare: a policy allowing 10 MB, signed for 1000 bytes
      const objects = new Objects(aws.bucket);
      const key = `uploads/sakai/${newJobToken()}/source.csv`;
      const upload = await objects.presignPost(key, 1000, 900);
      const policy = JSON.parse(Buffer.from(upload.fields.Policy!, 'base64').toString()) as {
        conditions: unknown[];
      };
      policy.conditions = policy.conditions.map((c) =>
        Array.isArray(c) && c[0] === 'content-length-range' ? [c[0], 1, 10_000_000] : c,
      );

      // Act
      const r = await post(upload, Buffer.alloc(5000, 0x41), {
        Policy: Buffer.from(JSON.stringify(policy)).toString('base64'),
      });

      // Assess
      expect(r.status).toBe(403);
      expect(r.text).toContain('SignatureDoesNotMatch');
      expect(await objects.size(key)).toBeUndefined();
    });
  });
});
