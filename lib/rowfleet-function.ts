import { existsSync } from 'node:fs';
import { CfnElement, Duration, RemovalPolicy, Size, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { MailConfig } from '../config/index.ts';
import { METRIC_NAMESPACE, POWERTOOLS_SERVICE_NAME } from './metrics.ts';
import { PROJECT_ROOT, projectPath } from './paths.ts';
import { acknowledge, acknowledgeFindings, arnFinding, escapeRegExp } from './nag.ts';
import { JOBS_BY_TIME_INDEX } from '../config/job-list.ts';
import { reportQueuePrefix, TABLE_PARTITIONS } from '../config/names.ts';
import { DEPLOYED_NODE_MAJOR, LAMBDA_RUNTIME, NODE_HTTP_ALIAS, NODE_TARGET } from '../config/node.ts';
import type { Workers } from './workers.ts';
import { TRACE_EXPORT_ACK, TRACE_EXPORT_STATEMENT } from './tracing.ts';
import { ENV } from '../config/env.ts';

/** The functions' Lambda runtime: the Node the project deploys on (config/node.ts), by its fixed name. */
export const DEPLOYED_RUNTIME: lambda.Runtime = (() => {
  const runtime = lambda.Runtime.ALL.find((r) => r.name === LAMBDA_RUNTIME && !r.isVariable);
  if (!runtime) throw new Error(`aws-cdk-lib knows no Lambda runtime ${LAMBDA_RUNTIME} (config/node.ts)`);
  return runtime;
})();

/** Lets an ESM bundle load CommonJS dependencies that call `require` (AWS SDK, Powertools, iconv-lite). */
export const ESM_REQUIRE_BANNER =
  "import { createRequire as __rowfleetCreateRequire } from 'node:module'; const require = __rowfleetCreateRequire(import.meta.url);";

export interface RowfleetFunctionProps {
  /** The handler module, relative to the project root (e.g. `lambdas/upload/handler.ts`). It must export `handler`. */
  readonly entry: string;
  readonly description: string;
  /** @default 512 MiB */
  readonly memorySize?: number;
  /** @default 30 seconds */
  readonly timeout?: Duration;
  /** /tmp size. @default 512 MiB (the Lambda minimum) */
  readonly ephemeralStorageSize?: Size;
  /** Retention of the function's own log group. */
  readonly logRetention: logs.RetentionDays;
  /** What happens to the log group when the stack is deleted. */
  readonly logRemovalPolicy: RemovalPolicy;
  /** Name of the log group; `/rowfleet/<stage>/<name>` keeps every stage's logs easy to find. */
  readonly logGroupName: string;
  /**
   * Shell commands run after esbuild bundled the handler (`inputDir`: the project root, `outputDir`: the asset's
   * directory), e.g. to put files next to the bundle. @default none
   */
  readonly afterBundling?: (inputDir: string, outputDir: string) => string[];
  /** esbuild `define`s: global identifiers replaced by JSON values in the bundle. @default none */
  readonly define?: Readonly<Record<string, string>>;
  /** Process settings of the function's runtime (config/names.ts FUNCTION_PROCESS_ENV). @default none */
  readonly processEnv?: Readonly<Record<string, string>>;
}

/**
 * Object access to a bucket by key pattern (core/jobs/keys.ts lays the keys out): a pattern ending in `/` is a
 * prefix (everything below it), any other is an S3 resource pattern as is (`*` between `jobs/` and `/failed.jsonl`:
 * that file of every job).
 */
export interface BucketAccess {
  /** Keys the function reads with GetObject (HeadObject included). @default none */
  readonly read?: readonly string[];
  /** Keys the function writes with PutObject (a multipart upload's parts and completion included). @default none */
  readonly write?: readonly string[];
  /** Keys it writes as multipart uploads, which it aborts when they fail (AbortMultipartUpload). @default none */
  readonly multipart?: readonly string[];
  /** Keys the function deletes (DeleteObject; DeleteObjects needs it per key). @default none */
  readonly delete?: readonly string[];
  /**
   * s3:ListBucket on the bucket: S3 answers a read of a missing key with 404 only to a caller that may list the
   * bucket (403 otherwise), and the function tells a missing key by that 404. @default false
   */
  readonly missingKeys?: boolean;
}

/** The DynamoDB actions a function uses on the job table. */
export type TableAction = 'GetItem' | 'Query' | 'PutItem' | 'UpdateItem' | 'DeleteItem';

/** Partitions of the job table (config/names.ts TABLE_PARTITIONS), as dynamodb:LeadingKeys patterns. */
export type TablePartition = keyof typeof TABLE_PARTITIONS;

export interface TableAccess {
  readonly actions: readonly TableAction[];
  /** The partitions the function addresses: every call's partition key must be in one of them. */
  readonly partitions: readonly TablePartition[];
}

/** dynamodb:LeadingKeys pattern of a partition: the site, token and rate partitions are prefixes, the budget one key. */
const partitionPattern = (p: TablePartition) =>
  p === 'budget' ? TABLE_PARTITIONS.budget : `${TABLE_PARTITIONS[p]}*`;

/**
 * The team's Lambda function: the deployed Node.js (config/node.ts, 24) on ARM64, ESM bundle (minified, source maps) built by the local
 * esbuild, its own log group with retention, its own role (logs only to that group), Powertools settings.
 * Each `bindX` method pairs the grant with the environment variable the code reads, read-only unless it writes.
 */
export class RowfleetFunction extends NodejsFunction {
  /** The handler module (absolute path) this function was built from. */
  readonly entryPath: string;

  constructor(scope: Construct, id: string, props: RowfleetFunctionProps) {
    const entry = projectPath(props.entry);
    if (!existsSync(entry)) {
      throw new Error(
        `RowfleetFunction ${id}: entry ${props.entry} does not exist (relative to ${PROJECT_ROOT})`,
      );
    }
    const logGroup = new logs.LogGroup(scope, `${id}LogGroup`, {
      logGroupName: props.logGroupName,
      retention: props.logRetention,
      removalPolicy: props.logRemovalPolicy,
    });
    const role = new iam.Role(scope, `${id}Role`, {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `${props.description} (Lambda execution role)`,
    });
    logGroup.grantWrite(role);
    super(scope, id, {
      entry,
      handler: 'handler',
      description: props.description,
      runtime: DEPLOYED_RUNTIME,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize ?? 512,
      timeout: props.timeout ?? Duration.seconds(30),
      ephemeralStorageSize: props.ephemeralStorageSize,
      role,
      logGroup,
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: projectPath('package-lock.json'),
      environment: {
        NODE_OPTIONS: '--enable-source-maps',
        POWERTOOLS_SERVICE_NAME,
        POWERTOOLS_METRICS_NAMESPACE: METRIC_NAMESPACE,
        ...props.processEnv,
      },
      bundling: {
        format: OutputFormat.ESM,
        banner: ESM_REQUIRE_BANNER,
        // `node:http` without its ES module facade (config/node-http.cjs); paths from the project root, where the
        // local bundling runs esbuild.
        esbuildArgs: { '--alias': Object.entries(NODE_HTTP_ALIAS).map(([k, v]) => `${k}=${v}`) },
        mainFields: ['module', 'main'],
        target: NODE_TARGET,
        minify: true,
        sourceMap: true,
        sourcesContent: false,
        // The versions the tests ran against are the versions that run: the SDK is bundled, not taken from the runtime.
        bundleAwsSDK: true,
        externalModules: [],
        forceDockerBundling: false,
        ...(props.define ? { define: { ...props.define } } : {}),
        ...(props.afterBundling
          ? {
              commandHooks: {
                beforeBundling: () => [],
                beforeInstall: () => [],
                afterBundling: props.afterBundling,
              },
            }
          : {}),
      },
    });
    this.entryPath = entry;
    acknowledge(this, {
      id: 'AwsSolutions-L1',
      reason: `Node.js ${DEPLOYED_NODE_MAJOR} is the pinned runtime of the whole project (config/node.ts: worker image, local runtime, CI); it moves to a newer LTS everywhere at once.`,
    });
  }

  /** STAGE: the stage name (no permission). */
  bindStage(stage: string): this {
    this.addEnvironment(ENV.stage, stage);
    return this;
  }

  /**
   * BUCKET_NAME, with GetObject on the `read` keys, PutObject on the `write` keys, AbortMultipartUpload on the
   * `multipart` keys, DeleteObject on the `delete` keys, and ListBucket on the bucket with `missingKeys`.
   */
  bindBucket(bucket: s3.IBucket, access: BucketAccess): this {
    const read = access.read ?? [];
    const write = access.write ?? [];
    if (read.length + write.length === 0)
      throw new Error(`${this.node.path}: bindBucket needs read or write keys`);
    const unwritten = (access.multipart ?? []).filter((k) => !write.includes(k));
    if (unwritten.length)
      throw new Error(`${this.node.path}: multipart keys ${unwritten.join(', ')} are not written`);
    const pattern = (k: string) => (k.endsWith('/') ? `${k}*` : k);
    const grants: [string, readonly string[]][] = [
      ['s3:GetObject', read],
      ['s3:PutObject', write],
      ['s3:AbortMultipartUpload', access.multipart ?? []],
      ['s3:DeleteObject', access.delete ?? []],
    ];
    for (const [action, keys] of grants) {
      if (keys.length === 0) continue;
      this.addToRolePolicy(
        new iam.PolicyStatement({
          actions: [action],
          resources: keys.map((k) => bucket.arnForObjects(pattern(k))),
        }),
      );
    }
    if (access.missingKeys) {
      this.addToRolePolicy(
        new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [bucket.bucketArn] }),
      );
    }
    this.addEnvironment(ENV.bucket, bucket.bucketName);
    const patterns = [...new Set(grants.flatMap(([, keys]) => keys.map(pattern)))];
    acknowledgeFindings(this.role!, {
      rule: 'AwsSolutions-IAM5',
      match: new RegExp(
        `^Resource::<${Stack.of(this).getLogicalId(bucketResource(bucket))}\\.Arn>/(${patterns.map(escapeRegExp).join('|')})$`,
      ),
      reason: `Object access is limited to the keys this function uses (${patterns.join(', ')}); keys below them are per site and per job, so they cannot be listed in advance.`,
    });
    return this;
  }

  /**
   * TABLE_NAME, with exactly the actions the function uses on the table itself (not its indexes), and only on
   * items whose partition key is in one of its partitions (dynamodb:LeadingKeys; every call names one).
   */
  bindTable(table: dynamodb.ITable, access: TableAccess): this {
    // The table itself only: `table.grant` would add every index (`index/*`), which only the reaper reads.
    this.addToRolePolicy(
      new iam.PolicyStatement({
        actions: access.actions.map((a) => `dynamodb:${a}`),
        resources: [table.tableArn],
        conditions: {
          'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': access.partitions.map(partitionPattern) },
        },
      }),
    );
    this.addEnvironment(ENV.table, table.tableName);
    return this;
  }

  /**
   * sns:Publish on the job-outcomes topic and the two KMS actions its key needs for that (exact actions:
   * `grantPublish` would add `kms:GenerateDataKey*`), paired with JOBS_TOPIC_ARN.
   */
  bindJobOutcomes(topic: sns.ITopic, key: kms.IKey): this {
    this.addToRolePolicy(new iam.PolicyStatement({ actions: ['sns:Publish'], resources: [topic.topicArn] }));
    this.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['kms:GenerateDataKey', 'kms:Decrypt'], resources: [key.keyArn] }),
    );
    this.addEnvironment(ENV.jobsTopicArn, topic.topicArn);
    return this;
  }

  /** Query on the sparse index of jobs in flight, by its exact ARN (the reaper). */
  bindActiveJobsIndex(table: dynamodb.ITable): this {
    this.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['dynamodb:Query'], resources: [`${table.tableArn}/index/active`] }),
    );
    return this;
  }

  /** Query on the index of each site's jobs by time, by its exact ARN (GET /jobs: config/job-list.ts). */
  bindJobsByTimeIndex(table: dynamodb.ITable): this {
    this.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['dynamodb:Query'],
        resources: [`${table.tableArn}/index/${JOBS_BY_TIME_INDEX.name}`],
        // The index's partition key is the job item's: a site's partition only.
        conditions: {
          'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [partitionPattern('site')] },
        },
      }),
    );
    return this;
  }

  /**
   * ses:SendEmail through the stage's SES identity only, and only from its configured From address (config:
   * the stage's `mail`). The code takes the address from the same configuration, so no variable is needed.
   */
  bindMailSender(mail: MailConfig): this {
    this.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['ses:SendEmail'],
        resources: [
          Stack.of(this).formatArn({ service: 'ses', resource: 'identity', resourceName: mail.identity }),
        ],
        conditions: { StringEquals: { 'ses:FromAddress': mail.from } },
      }),
    );
    return this;
  }

  /**
   * FINALIZE_QUEUE_URL; with `send`, also sqs:SendMessage on it (exactly: `grantSendMessages` would add
   * GetQueueAttributes and GetQueueUrl, which the code never calls: it has the URL).
   */
  bindFinalizeQueue(queue: sqs.IQueue, options: { readonly send: boolean }): this {
    if (options.send) this.grantSend(queue);
    this.addEnvironment(ENV.finalizeQueueUrl, queue.queueUrl);
    return this;
  }

  /**
   * GRANT_REQUESTS_QUEUE_URL and sqs:SendMessage on it: the upload-events queue, where a function that frees
   * worker places (finalize) asks the upload function for a granter pass of the worker budget.
   */
  bindGrantRequests(queue: sqs.IQueue): this {
    this.grantSend(queue);
    this.addEnvironment(ENV.grantRequestsQueueUrl, queue.queueUrl);
    return this;
  }

  private grantSend(queue: sqs.IQueue): void {
    this.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['sqs:SendMessage'], resources: [queue.queueArn] }),
    );
  }

  /**
   * The function consumes a queue (one message per invocation, failures reported per message), with exactly the
   * actions the Lambda service polls it with on the function's role (ReceiveMessage, DeleteMessage,
   * GetQueueAttributes); `SqsEventSource` would also grant ChangeMessageVisibility and GetQueueUrl.
   */
  consumeQueue(queue: sqs.IQueue): this {
    this.addEventSourceMapping(`${queue.node.id}Source`, {
      eventSourceArn: queue.queueArn,
      batchSize: 1,
      reportBatchItemFailures: true,
    });
    this.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'],
        resources: [queue.queueArn],
      }),
    );
    return this;
  }

  /** DLQ_ARN: only written into the redrive policy of the job queues the code creates (no permission needed). */
  bindDeadLetterQueue(dlq: sqs.IQueue): this {
    this.addEnvironment(ENV.dlqArn, dlq.queueArn);
    return this;
  }

  /** sqs:ListQueues, which has no resource-level permission (the reaper lists the stage's job queues by prefix). */
  bindQueueListing(): this {
    this.addToRolePolicy(new iam.PolicyStatement({ actions: ['sqs:ListQueues'], resources: ['*'] }));
    acknowledgeFindings(this.role!, {
      rule: 'AwsSolutions-IAM5',
      match: /^Resource::\*$/,
      reason:
        'sqs:ListQueues supports no resource-level permission; the reaper lists only queues named with its stage prefix and reads nothing else with it.',
    });
    return this;
  }

  /**
   * The function emits its jobs' spans (core/aws/tracing.ts): ROWFLEET_TRACING=otlp sends them, signed, to the region's
   * X-Ray OTLP endpoint, which authorizes them as xray:PutTraceSegments. No `tracing: ACTIVE` (X-Ray's own segments).
   */
  emitTraces(): this {
    this.addToRolePolicy(TRACE_EXPORT_STATEMENT());
    this.addEnvironment(ENV.tracing, 'otlp');
    acknowledgeFindings(this.role!, TRACE_EXPORT_ACK);
    return this;
  }

  /** Actions on the stage's per-job queues (`<stage>-report-*`), which the code creates and deletes at run time. */
  bindReportQueues(stage: string, actions: readonly string[]): this {
    this.addToRolePolicy(
      new iam.PolicyStatement({ actions: [...actions], resources: [reportQueuesArn(this, stage)] }),
    );
    acknowledgeFindings(this.role!, {
      rule: 'AwsSolutions-IAM5',
      match: arnFinding('sqs', `${escapeRegExp(reportQueuePrefix(stage))}\\*`),
      reason: `Per-job queues are created at run time as ${reportQueuePrefix(stage)}<sha1(token)>; the wildcard covers only this stage's job queues.`,
    });
    return this;
  }

  /**
   * The ECS launcher's environment (core/aws/ecs-launcher.ts reads all of it, for launch and stop alike), with
   * RunTask + PassRole of the worker task definition (`launch`) and ListTasks/StopTask on its cluster (`stop`).
   */
  bindWorkers(
    workers: Workers,
    access: { readonly launch?: boolean; readonly stop?: boolean; readonly list?: boolean },
  ): this {
    if (!access.launch && !access.stop)
      throw new Error(`${this.node.path}: bindWorkers needs launch or stop`);
    for (const [k, v] of Object.entries(workers.launcherEnv)) this.addEnvironment(k, v);
    if (access.launch) {
      workers.grantRun(this);
      acknowledgeFindings(this.role!, {
        rule: 'AwsSolutions-IAM5',
        match: arnFinding('ecs', `task-definition/${escapeRegExp(workers.taskDefinition.family)}:\\*`),
        reason:
          'RunTask is allowed for every revision of the worker task definition family (a deployment adds a revision), on this cluster only (ecs:cluster condition).',
      });
    }
    if (access.stop) workers.grantStop(this);
    if (access.list) workers.grantDescribe(this);
    acknowledgeFindings(this.role!, {
      rule: 'AwsSolutions-IAM5',
      match: arnFinding('ecs', 'task/<[A-Za-z0-9]+>/\\*'),
      reason:
        'Worker tasks get their ids when RunTask starts them; the wildcard covers only tasks of the worker cluster (task/<cluster>/*), for tagging at launch or stopping.',
    });
    if (access.stop) {
      acknowledgeFindings(this.role!, {
        rule: 'AwsSolutions-IAM5',
        match: /^Resource::\*$/,
        reason:
          'ecs:ListTasks has no resource-level permission; it is limited to the worker cluster by the ecs:cluster condition.',
      });
    }
    return this;
  }
}

/** ARN pattern of the stage's per-job queues. */
export function reportQueuesArn(scope: Construct, stage: string): string {
  return Stack.of(scope).formatArn({ service: 'sqs', resource: `${reportQueuePrefix(stage)}*` });
}

function bucketResource(bucket: s3.IBucket): CfnElement {
  const cfn = bucket.node.defaultChild;
  if (!(cfn instanceof CfnElement))
    throw new Error(`${bucket.node.path}: bindBucket needs a bucket defined in this app`);
  return cfn;
}
