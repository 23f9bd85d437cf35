/**
 * The embedded emulators are a boundary (issue 19, point 9): they answer only requests signed with the runtime's
 * credentials and addressed to their own loopback port. Another process of the machine — unsigned, or signed
 * with credentials of its own — gets 403 from each of them: no API token written into DynamoDB, no object listed
 * or read from S3, no queue read, no mail read from the SES store.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateTableCommand, DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import {
  CreateQueueCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { SendEmailCommand, SESv2Client } from '@aws-sdk/client-sesv2';
import { CreateTopicCommand, SNSClient } from '@aws-sdk/client-sns';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { tableDefinition } from '../../../core/jobs/table.ts';
import { startEmulators, type Emulators } from '../../../local/emulators/index.ts';
import { viewerKey, type EmulatorCredentials } from '../../../local/emulator-gate.ts';

const region = 'ap-northeast-1';
const own: EmulatorCredentials = { accessKeyId: 'ROWFLEETLOCALTEST', secretAccessKey: 'the-runtime-secret' };
/** What another process of the machine would sign with: the old dummy credentials, or the right id guessed. */
const foreign: EmulatorCredentials[] = [
  { accessKeyId: 'local', secretAccessKey: 'local' },
  { accessKeyId: own.accessKeyId, secretAccessKey: 'a-guess' },
];
const BUCKET = 'rowfleet-local-data';
const TABLE = 'rowfleet-local-jobs';

let emu: Emulators;
beforeAll(async () => {
  emu = await startEmulators({ region, ...own });
});
afterAll(() => emu.stop());

const cfg = (endpoint: string, credentials: EmulatorCredentials) => ({
  endpoint,
  region,
  credentials,
  maxAttempts: 1,
});
const s3 = (c: EmulatorCredentials, endpoint = emu.endpoints.s3sqs) =>
  new S3Client({ ...cfg(endpoint, c), forcePathStyle: true });
const sqs = (c: EmulatorCredentials) =>
  new SQSClient({ ...cfg(emu.endpoints.s3sqs, c), useQueueUrlAsEndpoint: false });
const ddb = (c: EmulatorCredentials) => new DynamoDBClient(cfg(emu.endpoints.dynamodb, c));
const ses = (c: EmulatorCredentials) => new SESv2Client(cfg(emu.endpoints.ses, c));

/** An API token item of site sakai, as core/intake/tokens.ts writes it. */
const tokenItem = {
  TableName: TABLE,
  Item: { pk: { S: 'APITOKEN#forged' }, sk: { S: 'APITOKEN' }, site: { S: 'sakai' } },
};
const mail = new SendEmailCommand({
  FromEmailAddress: 'rowfleet@example.com',
  Destination: { ToAddresses: ['customer@example.com'] },
  Content: { Simple: { Subject: { Data: 'secret figures' }, Body: { Text: { Data: 'site sakai: 42' } } } },
});

/** A raw HTTP request to 127.0.0.1 with the given Host header (a page that rebound its name to 127.0.0.1). */
function rawGet(url: string, host?: string): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((res, rej) => {
    const req = request(
      { host: '127.0.0.1', port: u.port, path: u.pathname + u.search, headers: host ? { host } : {} },
      (r) => {
        let body = '';
        r.on('data', (c: Buffer) => (body += c.toString()));
        r.on('end', () => res({ status: r.statusCode ?? 0, body }));
      },
    );
    req.once('error', rej);
    req.end();
  });
}

const status = (p: Promise<unknown>) =>
  p.then(
    () => 200,
    (err: { $metadata?: { httpStatusCode?: number } }) => err.$metadata?.httpStatusCode ?? -1,
  );

describe("the runtime's own clients", () => {
  it('use every emulator as before: S3 (multipart and presigned GET too), SQS, SNS, DynamoDB, SES', async () => {
    await s3(own).send(new CreateBucketCommand({ Bucket: BUCKET }));
    await s3(own).send(new PutObjectCommand({ Bucket: BUCKET, Key: 'results/sakai/a b+c.zip', Body: 'zip' }));
    const got = await s3(own).send(new GetObjectCommand({ Bucket: BUCKET, Key: 'results/sakai/a b+c.zip' }));
    expect(await got.Body!.transformToString()).toBe('zip');
    const listed = await s3(own).send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'results/' }));
    expect(listed.Contents?.map((o) => o.Key)).toEqual(['results/sakai/a b+c.zip']);
    const { UploadId } = await s3(own).send(
      new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: 'results/sakai/big.zip' }),
    );
    const part = await s3(own).send(
      new UploadPartCommand({
        Bucket: BUCKET,
        Key: 'results/sakai/big.zip',
        UploadId,
        PartNumber: 1,
        Body: 'part',
      }),
    );
    await s3(own).send(
      new CompleteMultipartUploadCommand({
        Bucket: BUCKET,
        Key: 'results/sakai/big.zip',
        UploadId,
        MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] },
      }),
    );
    for (const endpoint of [emu.endpoints.s3sqs, emu.endpoints.s3sqs.replace('127.0.0.1', 'localhost')]) {
      const url = await getSignedUrl(
        s3(own, endpoint),
        new GetObjectCommand({ Bucket: BUCKET, Key: 'results/sakai/a b+c.zip' }),
        { expiresIn: 60 },
      );
      const res = await fetch(url);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('zip');
    }

    const q = await sqs(own).send(new CreateQueueCommand({ QueueName: 'local-jobs-sakai' }));
    await sqs(own).send(new SendMessageCommand({ QueueUrl: q.QueueUrl, MessageBody: 'chunk 1' }));
    const r = await sqs(own).send(new ReceiveMessageCommand({ QueueUrl: q.QueueUrl }));
    expect(r.Messages?.[0]?.Body).toBe('chunk 1');
    await new SNSClient(cfg(emu.endpoints.s3sqs, own)).send(new CreateTopicCommand({ Name: 'local-jobs' }));

    await ddb(own).send(new CreateTableCommand(tableDefinition(TABLE)));
    expect(
      await status(
        ddb(own).send(
          new PutItemCommand({ ...tokenItem, Item: { ...tokenItem.Item, pk: { S: 'APITOKEN#own' } } }),
        ),
      ),
    ).toBe(200);

    expect((await ses(own).send(mail)).MessageId).toBeTruthy();
    const store = await fetch(`${emu.endpoints.ses}/store`, {
      headers: { 'x-rowfleet-key': viewerKey(own) },
    });
    expect(store.status).toBe(200);
    expect(JSON.stringify(await store.json())).toContain('secret figures');
    // The viewer page opened with ?key= keeps the key in a cookie for its own requests to the store.
    const page = await fetch(`${emu.endpoints.ses}/?key=${viewerKey(own)}`);
    expect(page.status).toBe(200);
    const cookie = page.headers.get('set-cookie')!.split(';')[0]!;
    expect((await fetch(`${emu.endpoints.ses}/store`, { headers: { cookie } })).status).toBe(200);
  });
});

describe('another process of the machine', () => {
  it('cannot read an object, list a bucket or read a queue unsigned (403)', async () => {
    expect((await fetch(`${emu.endpoints.s3sqs}/${BUCKET}/results/sakai/a%20b%2Bc.zip`)).status).toBe(403);
    expect((await fetch(`${emu.endpoints.s3sqs}/${BUCKET}?list-type=2`)).status).toBe(403);
    expect((await fetch(`${emu.endpoints.s3sqs}/${BUCKET}`)).status).toBe(403);
    expect((await fetch(`${emu.endpoints.s3sqs}/`)).status).toBe(403);
    const receive = await fetch(emu.endpoints.s3sqs, {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'AmazonSQS.ListQueues' },
      body: '{}',
    });
    expect(receive.status).toBe(403);
    expect((await fetch(`${emu.endpoints.s3sqs}/_rowfleet/sqs-stats`)).status).toBe(403);
  });

  it('cannot use S3, SQS, DynamoDB or SES with credentials of its own (403)', async () => {
    for (const c of foreign) {
      expect(
        await status(s3(c).send(new GetObjectCommand({ Bucket: BUCKET, Key: 'results/sakai/a b+c.zip' }))),
      ).toBe(403);
      expect(await status(s3(c).send(new ListObjectsV2Command({ Bucket: BUCKET })))).toBe(403);
      expect(
        await status(s3(c).send(new PutObjectCommand({ Bucket: BUCKET, Key: 'uploads/x', Body: 'x' }))),
      ).toBe(403);
      expect(await status(sqs(c).send(new CreateQueueCommand({ QueueName: 'intruder' })))).toBe(403);
      // An API token for site sakai written straight into the table would open the site's API.
      expect(await status(ddb(c).send(new PutItemCommand(tokenItem)))).toBe(403);
      expect(await status(ses(c).send(mail))).toBe(403);
      const url = await getSignedUrl(
        s3(c),
        new GetObjectCommand({ Bucket: BUCKET, Key: 'results/sakai/a b+c.zip' }),
        { expiresIn: 60 },
      );
      expect((await fetch(url)).status).toBe(403);
    }
  });

  it('cannot turn a presigned URL of one object into another object, or use it once expired', async () => {
    const url = await getSignedUrl(
      s3(own),
      new GetObjectCommand({ Bucket: BUCKET, Key: 'results/sakai/a b+c.zip' }),
      { expiresIn: 1 },
    );
    expect((await fetch(url.replace('a%20b%2Bc.zip', 'big.zip'))).status).toBe(403);
    await new Promise((r) => setTimeout(r, 2100));
    expect((await fetch(url)).status).toBe(403);
  });

  it('cannot read the mails of the SES store or its viewer without the viewer key (403)', async () => {
    expect((await fetch(`${emu.endpoints.ses}/store`)).status).toBe(403);
    expect((await fetch(`${emu.endpoints.ses}/`)).status).toBe(403);
    expect(
      (await fetch(`${emu.endpoints.ses}/store`, { headers: { 'x-rowfleet-key': 'guess' } })).status,
    ).toBe(403);
    expect((await fetch(`${emu.endpoints.ses}/clear-store`, { method: 'POST' })).status).toBe(403);
  });

  it('is refused under another Host name, presigned URL and viewer key notwithstanding (DNS rebinding)', async () => {
    const url = await getSignedUrl(
      s3(own),
      new GetObjectCommand({ Bucket: BUCKET, Key: 'results/sakai/a b+c.zip' }),
      { expiresIn: 60 },
    );
    const port = new URL(url).port;
    expect((await rawGet(url)).status).toBe(200);
    expect((await rawGet(url, `rebind.example:${port}`)).status).toBe(403);
    expect((await rawGet(url, `127.0.0.1:1`)).status).toBe(403);
    const store = `${emu.endpoints.ses}/store?key=${viewerKey(own)}`;
    expect((await rawGet(store)).status).toBe(200);
    expect((await rawGet(store, `rebind.example:${new URL(store).port}`)).status).toBe(403);
    const dynamo = new URL(emu.endpoints.dynamodb);
    expect((await rawGet(`${emu.endpoints.dynamodb}/`, `rebind.example:${dynamo.port}`)).status).toBe(403);
  });
});
