import { randomUUID } from 'node:crypto';
/**
 * Embedded emulators for integration tests: one set per test file (vitest runs each file in its own fork).
 * `startTestAws` sets the standard AWS environment before any SDK client exists (core/aws/clients.ts
 * caches one client per process), then creates the stage's shared resources as local/runtime.ts does.
 */
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll } from 'vitest';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { keys, newJobToken } from '../../core/jobs/keys.ts';
import { tableDefinition } from '../../core/jobs/table.ts';
import { CreateQueueCommand, GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { getStage, type Limits } from '../../config/index.ts';
import { dynamoClient, s3Client, sqsClient } from '../../core/aws/clients.ts';
import { Objects } from '../../core/aws/objects.ts';
import { Queues } from '../../core/aws/queues.ts';
import { JobStore, type Job } from '../../core/jobs/store.ts';
import type { LaunchRequest, TaskInfo, TaskLauncher } from '../../core/aws/task-launcher.ts';
import type { PipelineDeps } from '../../core/deps.ts';
import { workerBudgetOf, type ResolvedWorkerBudget } from '../../config/budget.ts';
import { GrantStore } from '../../core/budget/store.ts';
import { startEmulators, type Emulators } from '../../local/emulators/index.ts';

export const TEST_STAGE = 'local';
/** The test stage's timings (the local override). */
export const TEST_TIMINGS = getStage(TEST_STAGE).timings;

export interface TestAws {
  readonly emulators: Emulators;
  readonly bucket: string;
  readonly table: string;
  readonly finalizeQueueUrl: string;
  readonly dlqArn: string;
  stop(): Promise<void>;
}

let counter = 0;

export async function startTestAws(): Promise<TestAws> {
  process.env.AWS_REGION ??= 'ap-northeast-1';
  process.env.AWS_ACCESS_KEY_ID ??= 'local';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
  const emulators = await startEmulators({
    region: process.env.AWS_REGION,
    accessKeyId: process.env.AWS_ACCESS_KEY_ID,
    secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY,
  });
  process.env.AWS_ENDPOINT_URL_S3 = emulators.endpoints.s3sqs;
  process.env.AWS_ENDPOINT_URL_SQS = emulators.endpoints.s3sqs;
  process.env.AWS_ENDPOINT_URL_SNS = emulators.endpoints.s3sqs;
  process.env.AWS_ENDPOINT_URL_DYNAMODB = emulators.endpoints.dynamodb;
  process.env.AWS_ENDPOINT_URL_SESV2 = emulators.endpoints.ses;

  const suffix = `${process.pid}-${++counter}`;
  const bucket = `rowfleet-test-data-${suffix}`;
  const table = `rowfleet-test-jobs-${suffix}`;
  await s3Client().send(new CreateBucketCommand({ Bucket: bucket }));
  await dynamoClient().send(new CreateTableCommand(tableDefinition(table)));
  const sqs = sqsClient();
  const dlqUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `${TEST_STAGE}-dlq-${suffix}` })))
    .QueueUrl!;
  const dlqArn = (
    await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }))
  ).Attributes!.QueueArn!;
  const finalizeQueueUrl = (
    await sqs.send(
      new CreateQueueCommand({
        QueueName: `${TEST_STAGE}-finalize-${suffix}`,
        Attributes: { VisibilityTimeout: '120' },
      }),
    )
  ).QueueUrl!;
  return { emulators, bucket, table, finalizeQueueUrl, dlqArn, stop: () => emulators.stop() };
}

/** A TaskLauncher that starts nothing and records what it was asked to do. */
export class RecordingLauncher implements TaskLauncher {
  readonly launches: LaunchRequest[] = [];
  readonly stops: { site: string; token: string }[] = [];

  async launch(req: LaunchRequest): Promise<string[]> {
    this.launches.push(req);
    return Array.from({ length: req.count }, (_, i) => `stub-${req.token}-${i}`);
  }

  async stop(site: string, token: string): Promise<number> {
    this.stops.push({ site, token });
    return 0;
  }

  async list(): Promise<TaskInfo[]> {
    return [];
  }
}

/** The pipeline's dependencies on the test resources. */
export function testDeps(
  aws: TestAws,
  o: { limits?: Partial<Limits>; launcher?: TaskLauncher; budget?: Partial<ResolvedWorkerBudget> } = {},
): PipelineDeps & { launcher: TaskLauncher } {
  return {
    env: {
      stage: TEST_STAGE,
      bucket: aws.bucket,
      table: aws.table,
      finalizeQueueUrl: aws.finalizeQueueUrl,
      dlqArn: aws.dlqArn,
    },
    limits: { ...getStage(TEST_STAGE).limits, ...o.limits },
    timings: TEST_TIMINGS,
    // A budget no test reaches unless it sets its own, in a partition of its own (core/budget/store.ts on the
    // test table): one scenario's jobs are never granted, launched or reclaimed by another's passes.
    budget: { ...workerBudgetOf(getStage(TEST_STAGE), 1000), ...o.budget },
    grants: new GrantStore(aws.table, undefined, `BUDGET#test-${randomUUID()}`),
    jobs: new JobStore(aws.table),
    objects: new Objects(aws.bucket),
    queues: new Queues(),
    launcher: o.launcher ?? new RecordingLauncher(),
  };
}

/** A new job record (RECEIVED, direct upload, json processor) for `site`. */
export function createTestJob(jobs: JobStore, site: string): Promise<Job> {
  const token = newJobToken();
  return jobs.create({
    site,
    token,
    upload: 'direct',
    processor: 'json',
    sourceKey: keys.source(site, token),
    receivedAt: new Date().toISOString(),
  });
}

/**
 * The test file's emulators: started before its tests, stopped after. The returned object is filled in
 * `beforeAll`, so tests (and later `beforeAll` hooks) use it as it is.
 */
export function useTestAws(): TestAws {
  const aws = {} as TestAws;
  beforeAll(async () => {
    Object.assign(aws, await startTestAws());
  });
  afterAll(async () => {
    await aws.stop?.();
  });
  return aws;
}
