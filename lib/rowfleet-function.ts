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
import { reportQueuePrefix } from '../config/names.ts';
import { DEPLOYED_NODE_MAJOR, LAMBDA_RUNTIME, NODE_TARGET } from '../config/node.ts';
import type { Workers } from './workers.ts';

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
}

/** Read or write access to a set of key prefixes of a bucket. */
export interface BucketAccess {
  /** Prefixes (ending in `/`) the function reads with GetObject. @default none */
  readonly read?: readonly string[];
  /** Prefixes the function writes with PutObject (multipart included). @default none */
  readonly write?: readonly string[];
  /** Prefixes the function deletes objects of (DeleteObject). @default none */
  readonly delete?: readonly string[];
}

export type TableAccess = 'RO' | 'RW';

const TABLE_ACTIONS: Record<TableAccess, readonly string[]> = {
  RO: ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:BatchGetItem'],
  RW: [
    'dynamodb:GetItem',
    'dynamodb:Query',
    'dynamodb:BatchGetItem',
    'dynamodb:PutItem',
    'dynamodb:UpdateItem',
  ],
};

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
      },
      bundling: {
        format: OutputFormat.ESM,
        banner: ESM_REQUIRE_BANNER,
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
    this.addEnvironment('STAGE', stage);
    return this;
  }

  /**
   * BUCKET_NAME, with GetObject on the `read` prefixes, PutObject/AbortMultipartUpload on the `write` prefixes and
   * DeleteObject on the `delete` prefixes.
   */
  bindBucket(bucket: s3.IBucket, access: BucketAccess): this {
    const read = access.read ?? [];
    const write = access.write ?? [];
    const remove = access.delete ?? [];
    if (read.length + write.length === 0)
      throw new Error(`${this.node.path}: bindBucket needs read or write prefixes`);
    if (read.length) {
      this.addToRolePolicy(
        new iam.PolicyStatement({
          actions: ['s3:GetObject'],
          resources: read.map((p) => bucket.arnForObjects(`${p}*`)),
        }),
      );
    }
    if (write.length) {
      this.addToRolePolicy(
        new iam.PolicyStatement({
          actions: ['s3:PutObject', 's3:AbortMultipartUpload'],
          resources: write.map((p) => bucket.arnForObjects(`${p}*`)),
        }),
      );
    }
    if (remove.length) {
      this.addToRolePolicy(
        new iam.PolicyStatement({
          actions: ['s3:DeleteObject'],
          resources: remove.map((p) => bucket.arnForObjects(`${p}*`)),
        }),
      );
    }
    this.addEnvironment('BUCKET_NAME', bucket.bucketName);
    const prefixes = [...new Set([...read, ...write, ...remove])];
    acknowledgeFindings(this.role!, {
      rule: 'AwsSolutions-IAM5',
      match: new RegExp(
        `^Resource::<${Stack.of(this).getLogicalId(bucketResource(bucket))}\\.Arn>/(${prefixes.map(escapeRegExp).join('|')})\\*$`,
      ),
      reason: `Object access is limited to the key prefixes this function uses (${prefixes.join(', ')}); keys below them are per site and per job, so they cannot be listed in advance.`,
    });
    return this;
  }

  /** TABLE_NAME, read-only (GetItem/Query/BatchGetItem) unless `RW` (adds PutItem/UpdateItem). */
  bindTable(table: dynamodb.ITable, access: TableAccess = 'RO'): this {
    // The table itself only: `table.grant` would add every index (`index/*`), which only the reaper reads.
    this.addToRolePolicy(
      new iam.PolicyStatement({ actions: [...TABLE_ACTIONS[access]], resources: [table.tableArn] }),
    );
    this.addEnvironment('TABLE_NAME', table.tableName);
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
    this.addEnvironment('JOBS_TOPIC_ARN', topic.topicArn);
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

  /** FINALIZE_QUEUE_URL; with `send`, also the right to send finalize requests. */
  bindFinalizeQueue(queue: sqs.IQueue, options: { readonly send: boolean }): this {
    if (options.send) queue.grantSendMessages(this);
    this.addEnvironment('FINALIZE_QUEUE_URL', queue.queueUrl);
    return this;
  }

  /**
   * GRANT_REQUESTS_QUEUE_URL and sqs:SendMessage on it: the upload-events queue, where a function that frees
   * worker places (finalize) asks the upload function for a granter pass of the worker budget.
   */
  bindGrantRequests(queue: sqs.IQueue): this {
    queue.grantSendMessages(this);
    this.addEnvironment('GRANT_REQUESTS_QUEUE_URL', queue.queueUrl);
    return this;
  }

  /** DLQ_ARN: only written into the redrive policy of the job queues the code creates (no permission needed). */
  bindDeadLetterQueue(dlq: sqs.IQueue): this {
    this.addEnvironment('DLQ_ARN', dlq.queueArn);
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
