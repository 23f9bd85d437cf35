import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
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
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
} from '@aws-sdk/client-sqs';
import type {
  APIGatewayProxyEvent,
  APIGatewayProxyResult,
  SQSBatchResponse,
  SQSEvent,
  SQSRecord,
} from 'aws-lambda';
import { derivedTimings, getStage, type Timings } from '../config/index.ts';
import { API_ROUTES } from '../config/api.ts';
import { localResourceNames } from '../config/names.ts';
import { ApiTokens } from '../core/intake/tokens.ts';
import { CreateTopicCommand } from '@aws-sdk/client-sns';
import { dynamoClient, s3Client, snsClient, sqsClient } from '../core/aws/clients.ts';
import { errorMessage } from '../core/shared/errors.ts';
import { reap } from '../core/ops/reaper.ts';
import { tableDefinition } from '../core/jobs/table.ts';
import type { PipelineDeps } from '../core/deps.ts';
import { depsFromEnv } from '../core/deps.ts';
import {
  usageMailDepsFromEnv,
  type UsageMailDeps,
  type UsageMailInput,
  type UsageMailResult,
} from '../core/usage/mail.ts';
import { createUsageMailHandler } from '../lambdas/usage-mail/handler.ts';
import { localContext } from '../lambdas/shared/middleware.ts';
import { LocalApi } from './api.ts';
import { IsolatedFunction, inProcess, localLauncher, type FunctionName, type Invoke } from './functions.ts';
import type { LocalTaskLauncher } from './launcher.ts';
import type { EmulatorOptions } from './emulators.ts';

const TSX = import.meta.resolve('tsx');
const EMULATOR_HOST = fileURLToPath(new URL('./emulator-host.ts', import.meta.url));

export interface RuntimeOptions {
  /** Local state (objects, queues, DynamoDB, API tokens, worker logs). */
  readonly stateDir: string;
  /** An AWS-compatible endpoint (e.g. LocalStack) to use instead of the embedded emulators. */
  readonly endpoint?: string;
  readonly stage?: string;
  /** Run each function in its own process (as separate Lambda sandboxes) instead of in this one. */
  readonly isolateFunctions?: boolean;
  /** Seconds between reaper passes; 0 turns the reaper off. @default the stage's `reaperIntervalSeconds` */
  readonly reaperSeconds?: number;
}

async function startEmulatorHost(
  options: EmulatorOptions,
): Promise<{ child: ChildProcess; endpoints: Record<string, string> }> {
  const child = fork(EMULATOR_HOST, [], {
    execArgv: ['--import', TSX],
    env: { ...process.env, ROWFLEET_EMULATOR_OPTIONS: JSON.stringify(options) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    // Its own process group: a terminal's Ctrl-C reaches only the CLI, which stops the emulators in order (state
    // saved). If the CLI dies, the host still stops on its own when the IPC channel closes.
    detached: true,
  });
  const endpoints = await new Promise<Record<string, string>>((res, rej) => {
    child.once('message', (m: { type: string; endpoints: Record<string, string> }) => res(m.endpoints));
    child.once('exit', (code) => rej(new Error(`embedded emulators exited during start (code ${code})`)));
  });
  child.removeAllListeners('exit');
  return { child, endpoints };
}

/**
 * The embedded local runtime: emulators (or an external endpoint), the stage's resources, the real
 * handlers behind a local API Gateway, the S3-event and finalize-queue wiring, and workers as processes.
 */
export class LocalRuntime {
  private pollers: Promise<void>[] = [];
  private stopped = false;

  private constructor(
    readonly stage: string,
    readonly stateDir: string,
    readonly api: LocalApi,
    readonly deps: PipelineDeps,
    readonly launcher: LocalTaskLauncher,
    private readonly tokens: ApiTokens,
    private readonly emulatorHost: ChildProcess | undefined,
    readonly endpoints: Record<string, string>,
    private readonly isolated: IsolatedFunction[],
    /** The usage mail's dependencies (the CLI's `mail send/preview` use them directly). */
    readonly mailDeps: UsageMailDeps,
    /** The usage-mail function (lambdas/usage-mail/handler.ts), invoked with the input its schedule sends. */
    readonly usageMail: (input: UsageMailInput) => Promise<UsageMailResult>,
  ) {}

  /** The embedded SES emulator's mail viewer (its root page); undefined on an external endpoint. */
  get mailViewerUrl(): string | undefined {
    return this.endpoints.ses ? `${this.endpoints.ses}/` : undefined;
  }

  /** Peak RSS per isolated function, in bytes (empty unless `isolateFunctions`). */
  functionMemory(): Record<string, number> {
    return Object.fromEntries(this.isolated.map((f) => [f.name, f.maxRss]));
  }

  get apiUrl(): string {
    return this.api.url;
  }

  static async start(o: RuntimeOptions): Promise<LocalRuntime> {
    const stage = o.stage ?? 'local';
    const stageConfig = getStage(stage);
    const stateDir = resolve(o.stateDir);
    mkdirSync(stateDir, { recursive: true });
    const names = localResourceNames(stage);
    process.env.AWS_REGION ??= stageConfig.region;
    process.env.AWS_ACCESS_KEY_ID ??= 'local';
    process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
    process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';

    let host: ChildProcess | undefined;
    let endpoints: Record<string, string>;
    if (o.endpoint) {
      process.env.AWS_ENDPOINT_URL = o.endpoint;
      endpoints = { all: o.endpoint };
    } else {
      const started = await startEmulatorHost({
        stateDir: join(stateDir, 'emulators'),
        region: process.env.AWS_REGION,
        secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY,
        notify: { bucket: names.bucket, prefix: 'uploads/', queueName: names.uploadEventsQueue },
      });
      host = started.child;
      endpoints = started.endpoints;
      process.env.AWS_ENDPOINT_URL_S3 = endpoints.s3sqs;
      process.env.AWS_ENDPOINT_URL_SQS = endpoints.s3sqs;
      process.env.AWS_ENDPOINT_URL_SNS = endpoints.s3sqs;
      process.env.AWS_ENDPOINT_URL_DYNAMODB = endpoints.dynamodb;
      process.env.AWS_ENDPOINT_URL_SESV2 = endpoints.ses;
    }

    let resources: Awaited<ReturnType<typeof ensureResources>>;
    try {
      resources = await ensureResources(names, stageConfig.timings, Boolean(o.endpoint));
    } catch (err) {
      host?.kill();
      throw new Error(
        `could not prepare local resources at ${JSON.stringify(endpoints)}: ${errorMessage(err)}`,
        { cause: err },
      );
    }
    const { finalizeQueueUrl, dlqArn, uploadEventsUrl, jobsTopicArn } = resources;
    const resourceEnv = {
      STAGE: stage,
      BUCKET_NAME: names.bucket,
      TABLE_NAME: names.table,
      FINALIZE_QUEUE_URL: finalizeQueueUrl,
      JOBS_TOPIC_ARN: jobsTopicArn,
      DLQ_ARN: dlqArn,
    };
    Object.assign(process.env, resourceEnv);

    const launcher = localLauncher(stateDir);
    const deps = depsFromEnv(launcher);
    const isolated = o.isolateFunctions
      ? (['upload', 'status', 'finalize'] as const).map((n) => new IsolatedFunction(n, stateDir))
      : [];
    const fn = (name: FunctionName): Invoke =>
      isolated.find((f) => f.name === name)?.invoke ?? inProcess(name, launcher);
    const upload = fn('upload') as (
      e: APIGatewayProxyEvent | SQSEvent,
    ) => Promise<APIGatewayProxyResult | undefined>;
    const status = fn('status') as (e: APIGatewayProxyEvent) => Promise<APIGatewayProxyResult>;
    const finalize = fn('finalize') as (e: SQSEvent) => Promise<SQSBatchResponse>;
    const tokens = new ApiTokens(names.table);
    const handlers = { upload, status };
    const api = new LocalApi(
      API_ROUTES.map((r) => ({
        method: r.method,
        resource: r.path,
        handler: handlers[r.function],
        auth: r.auth,
      })),
      (h) => tokens.authenticate(h),
      stage,
    );
    await api.listen();
    const mailDeps = usageMailDepsFromEnv();
    const usageMail = createUsageMailHandler(mailDeps);
    const rt = new LocalRuntime(
      stage,
      stateDir,
      api,
      deps,
      launcher,
      tokens,
      host,
      endpoints,
      isolated,
      mailDeps,
      (input) => usageMail(input, localContext('usage-mail')),
    );
    rt.poll(finalizeQueueUrl, async (e) =>
      (await finalize(e)).batchItemFailures.map((f) => f.itemIdentifier),
    );
    rt.poll(uploadEventsUrl, async (e) => {
      await upload(e);
      return [];
    });
    const reaperSeconds = o.reaperSeconds ?? stageConfig.timings.reaperIntervalSeconds;
    if (reaperSeconds > 0) rt.every(reaperSeconds, () => reap(deps));
    return rt;
  }

  /** Issues a new API token bound to `site`. */
  issueToken(site: string): Promise<string> {
    return this.tokens.issue(site, 'cli');
  }

  /** A bearer token for the site, issued once and kept in the state directory. */
  async tokenFor(site: string): Promise<string> {
    const file = join(this.stateDir, 'api-tokens.json');
    const saved = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>) : {};
    const known = saved[site];
    if (known && (await this.tokens.authenticate(`Bearer ${known}`)) === site) return known;
    const token = await this.tokens.issue(site, 'local');
    writeFileSync(file, JSON.stringify({ ...saved, [site]: token }, null, 2), { mode: 0o600 });
    return token;
  }

  /** Delivers a queue's messages to a handler as SQS events (the Lambda event source mapping). */
  /** Runs `task` every `seconds` until the runtime stops (the reaper's schedule, locally). */
  private every(seconds: number, task: () => Promise<unknown>): void {
    const loop = async () => {
      while (!this.stopped) {
        for (let waited = 0; waited < seconds * 1000 && !this.stopped; waited += 100) {
          await new Promise((r) => setTimeout(r, 100));
        }
        if (this.stopped) return;
        try {
          await task();
        } catch (err) {
          process.stderr.write(`local runtime: reaper failed: ${errorMessage(err)}\n`);
        }
      }
    };
    this.pollers.push(loop());
  }

  private poll(queueUrl: string, deliver: (e: SQSEvent) => Promise<string[]>): void {
    const sqs = sqsClient();
    const loop = async () => {
      while (!this.stopped) {
        try {
          const r = await sqs.send(
            new ReceiveMessageCommand({
              QueueUrl: queueUrl,
              MaxNumberOfMessages: 10,
              WaitTimeSeconds: 1,
              MessageAttributeNames: ['All'],
            }),
          );
          const msgs = r.Messages ?? [];
          if (msgs.length === 0 || this.stopped) continue;
          const records = msgs.map(
            (m) =>
              ({
                messageId: m.MessageId!,
                receiptHandle: m.ReceiptHandle!,
                body: m.Body ?? '',
                attributes: {},
                messageAttributes: {},
                md5OfBody: m.MD5OfBody ?? '',
                eventSource: 'aws:sqs',
                eventSourceARN: queueUrl,
                awsRegion: process.env.AWS_REGION ?? '',
              }) as unknown as SQSRecord,
          );
          let failed: string[];
          try {
            failed = await deliver({ Records: records });
          } catch (err) {
            process.stderr.write(`local runtime: handler failed: ${errorMessage(err)}\n`);
            failed = records.map((x) => x.messageId);
          }
          const done = msgs.filter((m) => !failed.includes(m.MessageId!));
          if (done.length) {
            await sqs.send(
              new DeleteMessageBatchCommand({
                QueueUrl: queueUrl,
                Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
              }),
            );
          }
        } catch (err) {
          if (!this.stopped) {
            process.stderr.write(`local runtime: polling ${queueUrl} failed: ${errorMessage(err)}\n`);
            await new Promise((r) => setTimeout(r, 500));
          }
        }
      }
    };
    this.pollers.push(loop());
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.launcher.stopAll();
    await Promise.all(this.pollers);
    await this.api.close();
    await Promise.all(this.isolated.map((f) => f.stop()));
    const host = this.emulatorHost;
    if (host && host.exitCode === null && host.signalCode === null && host.connected) {
      await new Promise<void>((r) => {
        host.once('exit', () => r());
        host.send({ type: 'stop' });
      });
    }
  }
}

async function ensureResources(
  names: ReturnType<typeof localResourceNames>,
  timings: Timings,
  external: boolean,
) {
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
