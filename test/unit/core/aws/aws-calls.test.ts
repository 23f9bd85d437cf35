/**
 * The AWS call recorder of core/aws/clients.ts (issue 21): SDK commands as the IAM requests AWS authorizes, the
 * role a call runs as, and a client with no middleware at all when recording is off.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterEach, describe, expect, it } from 'vitest';
import {
  asAwsRole,
  awsRole,
  ENFORCE_IAM_ENV,
  iamRequests,
  RECORD_AWS_CALLS_ENV,
  recording,
  type EnforcedPolicies,
} from '../../../../core/aws/aws-calls.ts';

const sqs = (name: string) => `arn:\${AWS::Partition}:sqs:\${AWS::Region}:\${AWS::AccountId}:${name}`;
const table = 'arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/t';

describe('iamRequests: SDK commands as IAM requests', () => {
  it('maps S3 reads, copies, batch deletes and listings to the actions S3 authorizes them by', () => {
    // Act
    const head = iamRequests('s3', 'HeadObjectCommand', { Bucket: 'b', Key: 'uploads/a/t/source.csv' });
    const copy = iamRequests('s3', 'CopyObjectCommand', {
      Bucket: 'b',
      Key: 'jobs/a/t/source.csv',
      CopySource: 'b/uploads%2Fa%2Ft%2Fsource.csv',
    });
    const remove = iamRequests('s3', 'DeleteObjectsCommand', {
      Bucket: 'b',
      Delete: { Objects: [{ Key: 'jobs/a/t/parts/1.part' }, { Key: 'jobs/a/t/parts/2.part' }] },
    });
    const list = iamRequests('s3', 'ListObjectsV2Command', { Bucket: 'b', Prefix: 'jobs/' });
    const part = iamRequests('s3', 'UploadPartCommand', { Bucket: 'b', Key: 'results/a/t/t.zip' });

    // Assess
    expect(head).toEqual([
      { action: 's3:GetObject', resource: 'arn:${AWS::Partition}:s3:::b/uploads/a/t/source.csv' },
    ]);
    expect(copy.map((c) => `${c.action} ${c.resource}`)).toEqual([
      's3:GetObject arn:${AWS::Partition}:s3:::b/uploads/a/t/source.csv',
      's3:PutObject arn:${AWS::Partition}:s3:::b/jobs/a/t/source.csv',
    ]);
    expect(remove.map((c) => c.action)).toEqual(['s3:DeleteObject', 's3:DeleteObject']);
    expect(remove[1]!.resource).toBe('arn:${AWS::Partition}:s3:::b/jobs/a/t/parts/2.part');
    expect(list).toEqual([
      {
        action: 's3:ListBucket',
        resource: 'arn:${AWS::Partition}:s3:::b',
        context: { 's3:prefix': 'jobs/' },
      },
    ]);
    expect(part[0]!.action).toBe('s3:PutObject');
  });

  it('maps document-client and low-level DynamoDB commands to item actions with their leading key', () => {
    // Act
    const get = iamRequests('dynamodb', 'GetItemCommand', {
      TableName: 't',
      Key: { pk: 'SITE#a', sk: 'JOB#1' },
    });
    const marshalled = iamRequests('dynamodb', 'PutItemCommand', {
      TableName: 't',
      Item: { pk: { S: 'BUDGET' } },
    });
    const query = iamRequests('dynamodb', 'QueryCommand', {
      TableName: 't',
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :job)',
      ExpressionAttributeValues: { ':pk': 'SITE#a', ':job': 'JOB#' },
    });
    const index = iamRequests('dynamodb', 'QueryCommand', { TableName: 't', IndexName: 'active' });
    const transaction = iamRequests('dynamodb', 'TransactWriteItemsCommand', {
      TransactItems: [{ Delete: { TableName: 't', Key: { pk: 'RATE#x' } } }],
    });

    // Assess
    expect(get).toEqual([
      { action: 'dynamodb:GetItem', resource: table, context: { 'dynamodb:LeadingKeys': ['SITE#a'] } },
    ]);
    expect(marshalled[0]!.context).toEqual({ 'dynamodb:LeadingKeys': ['BUDGET'] });
    expect(query[0]!.context).toEqual({ 'dynamodb:LeadingKeys': ['SITE#a'] });
    expect(index).toEqual([{ action: 'dynamodb:Query', resource: `${table}/index/active` }]);
    expect(transaction[0]!.action).toBe('dynamodb:DeleteItem');
  });

  it('maps SQS batches, tagged queue creation, SES and ECS launches to what they need', () => {
    // Act
    const batch = iamRequests('sqs', 'SendMessageBatchCommand', {
      QueueUrl: 'http://h:1/000000000000/dev-report-ab',
    });
    const create = iamRequests('sqs', 'CreateQueueCommand', {
      QueueName: 'dev-report-ab',
      tags: { site: 'a' },
    });
    const mail = iamRequests('sesv2', 'SendEmailCommand', { FromEmailAddress: 'Sakai <sakai@example.com>' });
    const run = iamRequests('ecs', 'RunTaskCommand', {
      cluster: 'arn:aws:ecs:r:1:cluster/c',
      taskDefinition: 'arn:aws:ecs:r:1:task-definition/w:3',
      tags: [{ key: 'site', value: 'a' }],
    });

    // Assess
    expect(batch).toEqual([{ action: 'sqs:SendMessage', resource: sqs('dev-report-ab') }]);
    expect(create.map((c) => c.action)).toEqual(['sqs:CreateQueue', 'sqs:TagQueue']);
    expect(mail).toEqual([
      {
        action: 'ses:SendEmail',
        resource: 'arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/example.com',
        context: { 'ses:FromAddress': 'sakai@example.com' },
      },
    ]);
    expect(run.map((c) => c.action)).toEqual(['ecs:RunTask', 'ecs:TagResource']);
    expect(run[0]).toMatchObject({
      resource: 'arn:aws:ecs:r:1:task-definition/w:3',
      context: { 'ecs:cluster': 'arn:aws:ecs:r:1:cluster/c' },
    });
  });
});

describe('recording', () => {
  let dir = '';
  afterEach(() => {
    delete process.env[RECORD_AWS_CALLS_ENV];
    delete process.env[ENFORCE_IAM_ENV];
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('adds nothing to a client when it is off', () => {
    // Act
    const client = recording(new S3Client({ region: 'us-east-1' }), 's3');

    // Assess
    expect(client.middlewareStack.identify().join(' ')).not.toContain('rowfleetRecordAwsCalls');
  });

  it("records a call as the caller's role, and a 404 read as needing s3:ListBucket", async () => {
    // Prepare: a client whose every call answers 404
    dir = mkdtempSync(join(tmpdir(), 'rowfleet-aws-calls-'));
    process.env[RECORD_AWS_CALLS_ENV] = dir;
    const client = recording(
      new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } }),
      's3',
    );
    client.middlewareStack.add(
      () => () =>
        Promise.reject(Object.assign(new Error('NotFound'), { $metadata: { httpStatusCode: 404 } })),
      { step: 'initialize', priority: 'low', name: 'answer404' },
    );

    // Act
    const err = await asAwsRole('reaper', () =>
      client.send(new HeadObjectCommand({ Bucket: 'b', Key: 'uploads/x' })).catch((e: unknown) => e),
    );
    const lines = readdirSync(dir).flatMap((f) =>
      readFileSync(join(dir, f), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as unknown),
    );

    // Assess
    expect((err as Error).message).toBe('NotFound');
    expect(lines).toEqual([
      { role: 'reaper', action: 's3:GetObject', resource: 'arn:${AWS::Partition}:s3:::b/uploads/x' },
      { role: 'reaper', action: 's3:ListBucket', resource: 'arn:${AWS::Partition}:s3:::b' },
    ]);
  });

  it('names the role from the process: a worker by its job, an isolated function by name, else local', () => {
    // Act, Assess
    expect(awsRole({ JOB_TOKEN: 't', ROWFLEET_FUNCTION: 'upload' })).toBe('worker');
    expect(awsRole({ ROWFLEET_FUNCTION: 'finalize' })).toBe('finalize');
    expect(awsRole({})).toBe('local');
    expect(asAwsRole('status', () => awsRole({ JOB_TOKEN: 't' }))).toBe('status');
  });
});

describe('enforcing', () => {
  let dir = '';
  afterEach(() => {
    delete process.env[ENFORCE_IAM_ENV];
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("refuses what the role's policies do not allow, and a missing key without s3:ListBucket answers 403", async () => {
    // Prepare: the reaper may read uploads/ only; every call that gets through answers 404
    dir = mkdtempSync(join(tmpdir(), 'rowfleet-aws-enforce-'));
    const policies: EnforcedPolicies = {
      account: '123456789012',
      roles: {
        reaper: {
          principal: 'arn:aws:iam::123456789012:role/Reaper',
          policies: [
            {
              Version: '2012-10-17',
              Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::b/uploads/*' }],
            },
          ],
        },
      },
      resources: [],
      rename: [['${AWS::Partition}', 'aws']],
    };
    writeFileSync(join(dir, 'policies.json'), JSON.stringify(policies));
    process.env[ENFORCE_IAM_ENV] = join(dir, 'policies.json');
    const client = recording(
      new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } }),
      's3',
    );
    let sent = 0;
    client.middlewareStack.add(
      () => () => {
        sent++;
        return Promise.reject(Object.assign(new Error('NotFound'), { $metadata: { httpStatusCode: 404 } }));
      },
      { step: 'initialize', priority: 'low', name: 'answer404' },
    );
    const head = (role: string, key: string) =>
      asAwsRole(role, () =>
        client.send(new HeadObjectCommand({ Bucket: 'b', Key: key })).then(
          () => new Error('answered'),
          (e: unknown) => e as Error,
        ),
      );

    // Act
    const outside = await head('reaper', 'jobs/x');
    const missing = await head('reaper', 'uploads/x');
    const unchecked = await head('local', 'jobs/x');

    // Assess: refused before it is sent; sent, then its 404 turned into the 403 AWS answers; `local` not checked
    expect(outside).toMatchObject({ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
    expect(outside.message).toContain('s3:GetObject on arn:${AWS::Partition}:s3:::b/jobs/x');
    expect(missing).toMatchObject({ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
    expect(missing.message).toContain('s3:ListBucket');
    expect(unchecked.message).toBe('NotFound');
    expect(sent).toBe(2);
  });
});
