import { CfnOutput, Duration, RemovalPolicy, Stack, Tags, type StackProps } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { derivedTimings, type SiteConfig, type StageConfig } from '../config/index.ts';
import { workerBudgetOf } from '../config/budget.ts';
import { RowfleetApi } from './api.ts';
import { Monitoring } from './monitoring.ts';
import { KEY_PREFIXES } from '../config/names.ts';
import { RowfleetFunction } from './rowfleet-function.ts';
import { Schedules } from './schedules.ts';
import { Storage } from './storage.ts';
import { Workers } from './workers.ts';

export interface RowfleetStackProps extends StackProps {
  readonly stage: StageConfig;
  readonly sites: readonly SiteConfig[];
}

/** Lambda entry points, relative to the project root; each exports `handler`. */
export const FUNCTION_ENTRIES = {
  upload: 'lambdas/upload/handler.ts',
  status: 'lambdas/status/handler.ts',
  finalize: 'lambdas/finalize/handler.ts',
  authorizer: 'lambdas/authorizer/handler.ts',
  usageMail: 'lambdas/usage-mail/handler.ts',
  reaper: 'lambdas/reaper/handler.ts',
  console: 'lambdas/console/handler.ts',
} as const;

export type FunctionName = keyof typeof FUNCTION_ENTRIES;

/** Name of the stack of a stage. */
export function stackName(stage: string): string {
  return `Rowfleet-${stage}`;
}

/**
 * One stage of Rowfleet on AWS: storage, the row workers (ECS on Fargate), the functions, the REST API,
 * the schedules and the monitoring. Everything the code addresses reaches it through the environment
 * (core/shared/env.ts resourceEnv, core/aws/ecs-launcher.ts).
 */
export class RowfleetStack extends Stack {
  readonly storage: Storage;
  readonly workers: Workers;
  readonly functions: Record<FunctionName, RowfleetFunction>;
  readonly api: RowfleetApi;
  readonly schedules: Schedules;
  readonly monitoring: Monitoring;

  constructor(scope: Construct, id: string, props: RowfleetStackProps) {
    const { stage: stageConfig, sites: _sites, ...stackProps } = props;
    super(scope, id, {
      description: `Rowfleet ${stageConfig.name}: CSV in, one result per row from Fargate workers, a zip out`,
      terminationProtection: stageConfig.infra.retainData,
      ...stackProps,
    });
    const stage = props.stage.name;
    const { infra, limits, timings } = props.stage;
    const derived = derivedTimings(timings);
    Tags.of(this).add('app', 'rowfleet');
    Tags.of(this).add('stage', stage);

    const logRetention = infra.logRetentionDays as logs.RetentionDays;
    const logRemovalPolicy = infra.retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
    const fnTimeout = {
      upload: Duration.seconds(timings.uploadTimeoutSeconds),
      finalize: Duration.seconds(timings.finalizeTimeoutSeconds),
    };

    this.storage = new Storage(this, 'Storage', {
      stage,
      retentionDays: limits.retentionDays,
      logRetentionDays: infra.logRetentionDays,
      retainData: infra.retainData,
      // Visibility at least the consumer's timeout (+ margin), so a message is never handled twice at once.
      uploadEventsVisibility: Duration.seconds(derived.uploadEventsVisibilitySeconds),
      finalizeVisibility: Duration.seconds(derived.finalizeVisibilitySeconds),
      maxReceiveCount: timings.maxReceiveCount,
      dataEncryption: infra.dataEncryption,
    });
    const { bucket, table, finalizeQueue, deadLetterQueue, uploadEventsQueue } = this.storage;

    this.workers = new Workers(this, 'Workers', {
      stage,
      infra,
      timings,
      bucket,
      table,
      finalizeQueue,
      grantRequestsQueue: uploadEventsQueue,
      deadLetterQueue,
      logBucket: this.storage.logBucket,
      logRetention,
      logRemovalPolicy,
      mail: props.stage.mail,
      bulkMailSenders: props.sites.flatMap((s) => (s.bulkMail ? [s.bulkMail.from] : [])),
    });

    const fn = (
      name: FunctionName,
      description: string,
      extra: Partial<ConstructorParameters<typeof RowfleetFunction>[2]> = {},
    ) =>
      new RowfleetFunction(this, `${name[0]!.toUpperCase()}${name.slice(1)}Function`, {
        entry: FUNCTION_ENTRIES[name],
        description: `Rowfleet ${stage}: ${description}`,
        logRetention,
        logRemovalPolicy,
        logGroupName: `/rowfleet/${stage}/lambda/${name}`,
        ...extra,
      });

    // upload, the API's writes: POST /jobs (direct), POST /uploads (presigned POST), DELETE /jobs/{token} (cancel:
    // records the stop, asks for the finalize), POST /jobs/{token}/retry (reads the failed records' numbers and the
    // source, stores a new source, splits it inline); S3 events of presigned uploads → split.
    const upload = fn('upload', 'upload and split', {
      memorySize: 2048,
      timeout: fnTimeout.upload,
    })
      .bindStage(stage)
      // The split moves a presigned upload to jobs/ (CopyObject, then DeleteObject of the upload) and reads it there.
      .bindBucket(bucket, {
        read: [KEY_PREFIXES.uploads, KEY_PREFIXES.jobs],
        write: [KEY_PREFIXES.uploads, KEY_PREFIXES.jobs],
        delete: [KEY_PREFIXES.uploads],
      })
      .bindTable(table, 'RW')
      .bindFinalizeQueue(finalizeQueue, { send: true })
      .bindDeadLetterQueue(deadLetterQueue)
      .bindReportQueues(stage, ['sqs:CreateQueue', 'sqs:GetQueueUrl', 'sqs:SendMessage', 'sqs:TagQueue'])
      .bindWorkers(this.workers, { launch: true });
    // A failed split reports its message (Powertools batch): it is retried, then goes to the DLQ.
    upload.addEventSource(
      new SqsEventSource(uploadEventsQueue, { batchSize: 1, reportBatchItemFailures: true }),
    );

    // status, the API's reads: GET /health, GET /jobs, GET /jobs/{token} (presigned download URL of results/),
    // GET /jobs/{token}/errors (results/<site>/<token>/errors.jsonl), GET /usage (usage counters in the table).
    const status = fn('status', 'job status')
      .bindStage(stage)
      .bindBucket(bucket, { read: [KEY_PREFIXES.results] })
      .bindTable(table, 'RO')
      .bindFinalizeQueue(finalizeQueue, { send: false })
      .bindDeadLetterQueue(deadLetterQueue);

    // finalize: finalize queue → zip of the parts into results/, delete the job queue, stop the workers. A job stopped
    // early (cancelled, over its failure rate) also has its source read again (uploads/ for direct uploads, jobs/ for
    // presigned ones), for the lines and text of the records it never processed (core/finalize/stopped.ts).
    const finalize = fn('finalize', 'finalize jobs', { memorySize: 2048, timeout: fnTimeout.finalize })
      .bindStage(stage)
      .bindBucket(bucket, {
        read: [KEY_PREFIXES.jobs, KEY_PREFIXES.uploads],
        write: [KEY_PREFIXES.results],
      })
      .bindTable(table, 'RW')
      .bindFinalizeQueue(finalizeQueue, { send: false })
      .bindDeadLetterQueue(deadLetterQueue)
      .bindReportQueues(stage, ['sqs:GetQueueUrl', 'sqs:DeleteQueue'])
      .bindWorkers(this.workers, { stop: true })
      .bindGrantRequests(uploadEventsQueue);
    // One job per invocation: a large zip never shares a timeout with another job.
    finalize.addEventSource(
      new SqsEventSource(finalizeQueue, { batchSize: 1, reportBatchItemFailures: true }),
    );

    const authorizer = fn('authorizer', 'API token authorizer', {
      memorySize: 256,
      timeout: Duration.seconds(10),
    }).bindTable(table, 'RO');

    // usageMail: invoked by one schedule per site with {site, scheduledTime} → that site's usage mail through SES.
    // It reads usage counters and writes mail markers in the job table; nothing in S3, SQS or ECS.
    const usageMail = fn('usageMail', 'daily usage mail per site', {
      memorySize: 256,
      timeout: Duration.minutes(1),
    })
      .bindStage(stage)
      .bindTable(table, 'RW')
      .bindMailSender(props.stage.mail);

    // reaper (every 5 minutes): relaunch stalled jobs, re-ask lost finalizes, stop idle tasks, delete orphan queues.
    const reaper = fn('reaper', 'reaper of stalled jobs, idle tasks and orphan queues', {
      memorySize: 512,
      timeout: Duration.minutes(2),
    })
      .bindStage(stage)
      // HeadObject of uploads/: a presigned job whose file never came expires.
      .bindBucket(bucket, { read: [KEY_PREFIXES.uploads] })
      .bindTable(table, 'RW')
      .bindActiveJobsIndex(table)
      .bindFinalizeQueue(finalizeQueue, { send: true })
      .bindDeadLetterQueue(deadLetterQueue)
      .bindReportQueues(stage, ['sqs:GetQueueUrl', 'sqs:ListQueueTags', 'sqs:DeleteQueue'])
      .bindQueueListing()
      .bindWorkers(this.workers, { launch: true, stop: true, list: true });

    // console: GET /console, GET /console/{proxy+} — the web console, built for the stage into the bundle
    // (web/build.ts), served with its security headers; no AWS access at all. Its CSP allows the bucket's origin
    // (presigned uploads from the browser).
    const consoleFn = fn('console', 'web console', {
      memorySize: 256,
      timeout: Duration.seconds(10),
      afterBundling: (inputDir, outputDir) => [
        `node --import tsx "${inputDir}/web/build.ts" --stage ${stage} --out "${outputDir}/console"`,
      ],
    });
    consoleFn.addEnvironment('UPLOAD_ORIGIN', `https://${bucket.bucketRegionalDomainName}`);

    this.functions = { upload, status, finalize, authorizer, usageMail, reaper, console: consoleFn };

    // The data key (infra.dataEncryption `KMS`), for exactly the roles that read or write objects of the data
    // bucket (their key prefixes are granted above and in lib/workers.ts). The reaper only heads uploads/
    // (HeadObject needs no key); the authorizer, the usage mail and the console never touch the bucket.
    this.storage.grantDataKey(upload, { read: true, write: true }); // split, copy, retry, presigned POST forms
    this.storage.grantDataKey(status, { read: true }); // errors.jsonl, presigned GET URLs of results/
    this.storage.grantDataKey(finalize, { read: true, write: true }); // parts and sources in, the zip out
    this.storage.grantDataKey(this.workers.taskDefinition.taskRole, { read: true, write: true }); // chunks, parts

    this.api = new RowfleetApi(this, 'Api', {
      stage,
      upload,
      status,
      console: consoleFn,
      authorizer,
      rateLimit: infra.apiRateLimit,
      burstLimit: infra.apiBurstLimit,
      logRetention,
      logRemovalPolicy,
    });
    // The console (served by this API) POSTs presigned uploads straight to the bucket: a cross-origin request with a
    // preflight, which the bucket allows from the API's own origin only.
    bucket.addCorsRule({
      allowedMethods: [s3.HttpMethods.POST],
      allowedOrigins: [`https://${this.api.api.restApiId}.execute-api.${this.region}.${this.urlSuffix}`],
      allowedHeaders: ['*'],
      maxAge: 3600,
    });
    // Schedules: the usage mail, one schedule per site (07:00 in the site's time zone, input naming the site).
    // And the reaper, every 5 minutes.
    this.schedules = new Schedules(this, 'Schedules', { stage });
    this.schedules.addSiteSchedules('UsageMail', usageMail, props.sites);
    this.schedules.addRecurring('Reaper', reaper, Duration.seconds(timings.reaperIntervalSeconds));

    this.monitoring = new Monitoring(this, 'Monitoring', {
      stage,
      functions: [
        { name: 'upload', fn: upload },
        { name: 'status', fn: status },
        { name: 'finalize', fn: finalize },
        { name: 'authorizer', fn: authorizer, alarmOnErrors: false },
        { name: 'usage-mail', fn: usageMail },
        { name: 'reaper', fn: reaper },
        { name: 'console', fn: consoleFn },
      ],
      api: this.api.api,
      deadLetterQueue,
      schedulesDeadLetterQueue: this.schedules.deadLetterQueue,
      finalizeQueue,
      uploadEventsQueue,
      cluster: this.workers.cluster,
      maxReceiveCount: timings.maxReceiveCount,
      workerBudget: workerBudgetOf(props.stage),
      opsEmail: infra.opsEmail,
      sites: props.sites.map((s) => s.id),
    });
    // Job outcomes (core/ops/notify.ts): finalize announces finished jobs, the split rejected files.
    for (const f of [finalize, upload]) f.bindJobOutcomes(this.monitoring.jobsTopic, this.monitoring.key);

    const out = (id: string, value: string, description: string) =>
      new CfnOutput(this, id, { value, description });
    out('ApiUrl', this.api.url, 'Base URL of the REST API (rowfleet smoke --api <url>)');
    out('ConsoleUrl', `${this.api.url}console/`, 'The web console (sign in with a site API token)');
    out('BucketName', bucket.bucketName, 'Data bucket (uploads/, jobs/, results/)');
    out('TableName', table.tableName, 'Job table (jobs, chunk markers, API token hashes)');
    out('ClusterName', this.workers.cluster.clusterName, 'ECS cluster of the row workers');
    out('FinalizeQueueUrl', finalizeQueue.queueUrl, 'Finalize queue');
    out('DeadLetterQueueUrl', deadLetterQueue.queueUrl, 'Shared dead-letter queue');
    out(
      'SchedulesDeadLetterQueueUrl',
      this.schedules.deadLetterQueue.queueUrl,
      'Dead-letter queue of the schedules',
    );
    out('OpsTopicArn', this.monitoring.opsTopic.topicArn, 'SNS topic of the ops alarms');
    out('JobsTopicArn', this.monitoring.jobsTopic.topicArn, 'SNS topic of job outcomes');
    out('DashboardName', this.monitoring.dashboard.dashboardName, 'CloudWatch dashboard');
    out('WorkerLogGroup', this.workers.logGroup.logGroupName, 'Log group of the Fargate workers');
  }
}
