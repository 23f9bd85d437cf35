import {
  CreateBucketCommand,
  HeadBucketCommand,
  PutBucketNotificationConfigurationCommand,
} from '@aws-sdk/client-s3';
import {
  CreateTableCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  ResourceNotFoundException,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, ScanCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { CreateQueueCommand, GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { CreateTopicCommand } from '@aws-sdk/client-sns';
import { derivedTimings, getStage, type Timings } from '../config/index.ts';
import type { localResourceNames } from '../config/names.ts';
import { dynamoClient, s3Client, snsClient, sqsClient } from '../core/aws/clients.ts';
import { tableDefinition } from '../core/jobs/table.ts';

/**
 * The AWS settings every process of the local runtime uses unless the environment says otherwise: the stage's
 * region, and dummy credentials (the emulators check none).
 */
export function setLocalAwsDefaults(stage: string): void {
  process.env.AWS_REGION ??= getStage(stage).region;
  process.env.AWS_ACCESS_KEY_ID ??= 'local';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
  process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
}

async function createTable(ddb: DynamoDBDocumentClient, name: string): Promise<void> {
  await ddb.send(new CreateTableCommand(tableDefinition(name)));
  // A new table is CREATING for a moment; requests before it is ACTIVE fail.
  await waitUntilTableExists(
    { client: ddb, maxWaitTime: 30, minDelay: 0.05, maxDelay: 0.2 },
    { TableName: name },
  );
}

/**
 * A table of an older local state lacks an index of core/jobs/table.ts (e.g. the jobs-by-time index of GET
 * /jobs), and the embedded DynamoDB cannot add one to a table: its items are read, the table made again with
 * every index, and the items written back.
 */
async function rebuildTable(doc: DynamoDBDocumentClient, name: string): Promise<void> {
  const items: Record<string, unknown>[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const r = await doc.send(new ScanCommand({ TableName: name, ExclusiveStartKey: start }));
    items.push(...(r.Items ?? []));
    start = r.LastEvaluatedKey;
  } while (start);
  await doc.send(new DeleteTableCommand({ TableName: name }));
  await createTable(doc, name);
  for (let i = 0; i < items.length; i += 25) {
    let batch: Record<string, unknown>[] = items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } }));
    while (batch.length > 0) {
      const r = await doc.send(new BatchWriteCommand({ RequestItems: { [name]: batch as never } }));
      batch = (r.UnprocessedItems?.[name] ?? []) as Record<string, unknown>[];
    }
  }
}

/** The stage's shared resources as the local runtime uses them. */
export interface StageResources {
  readonly finalizeQueueUrl: string;
  readonly dlqArn: string;
  readonly uploadEventsUrl: string;
  readonly jobsTopicArn: string;
}

/**
 * Creates the stage's shared resources where they do not exist yet (bucket, table, DLQ, finalize and
 * upload-events queues, the job-outcomes topic; on an external endpoint also the bucket's S3 event
 * notification), with the names and timings of config/, and returns what the handlers address them by.
 */
export async function ensureResources(
  names: ReturnType<typeof localResourceNames>,
  timings: Timings,
  external: boolean,
): Promise<StageResources> {
  const s3 = s3Client();
  const sqs = sqsClient();
  const ddb = dynamoClient();
  const bucket = async () => {
    try {
      await s3.send(new HeadBucketCommand({ Bucket: names.bucket }));
    } catch {
      await s3.send(new CreateBucketCommand({ Bucket: names.bucket }));
    }
  };
  const table = async () => {
    try {
      const table = (await ddb.send(new DescribeTableCommand({ TableName: names.table }))).Table;
      const indexes = new Set((table?.GlobalSecondaryIndexes ?? []).map((i) => i.IndexName));
      const missing = tableDefinition(names.table).GlobalSecondaryIndexes!.some(
        (i) => !indexes.has(i.IndexName),
      );
      if (missing) await rebuildTable(ddb, names.table);
    } catch (err) {
      if (
        !(err instanceof ResourceNotFoundException) &&
        (err as { name?: string }).name !== 'ResourceNotFoundException'
      )
        throw err;
      await createTable(ddb, names.table);
    }
  };
  const queue = async (name: string, attrs: Record<string, string> = {}) =>
    (await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attrs }))).QueueUrl!;
  const queues = async () => {
    const dlqUrl = await queue(names.dlq, { MessageRetentionPeriod: String(14 * 24 * 3600) });
    const dlqArn = (
      await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }))
    ).Attributes!.QueueArn!;
    const redrive = JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: timings.maxReceiveCount });
    const derived = derivedTimings(timings);
    const [finalizeQueueUrl, uploadEventsUrl] = await Promise.all([
      queue(names.finalizeQueue, {
        VisibilityTimeout: String(derived.finalizeVisibilitySeconds),
        RedrivePolicy: redrive,
      }),
      queue(names.uploadEventsQueue, {
        VisibilityTimeout: String(derived.uploadEventsVisibilitySeconds),
        RedrivePolicy: redrive,
      }),
    ]);
    return { dlqArn, finalizeQueueUrl, uploadEventsUrl };
  };
  const topic = async () =>
    (await snsClient().send(new CreateTopicCommand({ Name: names.jobsTopic }))).TopicArn!;
  // Independent of each other: made at once (one after the other, they were most of a runtime's start).
  const [, , { dlqArn, finalizeQueueUrl, uploadEventsUrl }, jobsTopicArn] = await Promise.all([
    bucket(),
    table(),
    queues(),
    topic(),
  ]);
  if (external) {
    // A real S3 API (LocalStack) raises the ObjectCreated events itself.
    const arn = (
      await sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: uploadEventsUrl, AttributeNames: ['QueueArn'] }),
      )
    ).Attributes!.QueueArn!;
    await s3.send(
      new PutBucketNotificationConfigurationCommand({
        Bucket: names.bucket,
        NotificationConfiguration: {
          QueueConfigurations: [
            {
              QueueArn: arn,
              Events: ['s3:ObjectCreated:*'],
              Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: 'uploads/' }] } },
            },
          ],
        },
      }),
    );
  }
  return { finalizeQueueUrl, dlqArn, uploadEventsUrl, jobsTopicArn };
}
