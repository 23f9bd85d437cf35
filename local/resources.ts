import {
  CreateBucketCommand,
  HeadBucketCommand,
  PutBucketNotificationConfigurationCommand,
} from '@aws-sdk/client-s3';
import {
  CreateTableCommand,
  DescribeTableCommand,
  ResourceNotFoundException,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
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
  try {
    await s3.send(new HeadBucketCommand({ Bucket: names.bucket }));
  } catch {
    await s3.send(new CreateBucketCommand({ Bucket: names.bucket }));
  }
  try {
    await ddb.send(new DescribeTableCommand({ TableName: names.table }));
  } catch (err) {
    if (
      !(err instanceof ResourceNotFoundException) &&
      (err as { name?: string }).name !== 'ResourceNotFoundException'
    )
      throw err;
    await ddb.send(new CreateTableCommand(tableDefinition(names.table)));
    // A new table is CREATING for a moment; requests before it is ACTIVE fail.
    await waitUntilTableExists(
      { client: ddb, maxWaitTime: 30, minDelay: 0.05, maxDelay: 0.2 },
      { TableName: names.table },
    );
  }
  const queue = async (name: string, attrs: Record<string, string> = {}) =>
    (await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attrs }))).QueueUrl!;
  const dlqUrl = await queue(names.dlq, { MessageRetentionPeriod: String(14 * 24 * 3600) });
  const dlqArn = (
    await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }))
  ).Attributes!.QueueArn!;
  const redrive = JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: timings.maxReceiveCount });
  const derived = derivedTimings(timings);
  const finalizeQueueUrl = await queue(names.finalizeQueue, {
    VisibilityTimeout: String(derived.finalizeVisibilitySeconds),
    RedrivePolicy: redrive,
  });
  const uploadEventsUrl = await queue(names.uploadEventsQueue, {
    VisibilityTimeout: String(derived.uploadEventsVisibilitySeconds),
    RedrivePolicy: redrive,
  });
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
  const jobsTopicArn = (await snsClient().send(new CreateTopicCommand({ Name: names.jobsTopic }))).TopicArn!;
  return { finalizeQueueUrl, dlqArn, uploadEventsUrl, jobsTopicArn };
}
