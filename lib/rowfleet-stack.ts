import { CfnOutput, Duration, RemovalPolicy, Stack, Tags, type StackProps } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { derivedTimings, type SiteConfig, type StageConfig } from '../config/index.ts';
import { workerBudgetOf } from '../config/budget.ts';
import { RowfleetApi } from './rest-api.ts';
import { Monitoring } from './monitoring.ts';
import { FUNCTION_PROCESS_ENV, KEY_PREFIXES } from '../config/names.ts';
import { RowfleetFunction } from './rowfleet-function.ts';
import { Schedules } from './schedules.ts';
import { Storage } from './storage.ts';
import { Workers } from './workers.ts';
import { processorManifests } from './processors.ts';
import { ENV } from '../config/env.ts';

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
        processEnv: FUNCTION_PROCESS_ENV[name],
        ...extra,
      });

    // Keys of one job's files under jobs/<site>/<token>/ (core/jobs/keys.ts): grants name the files, not the prefix.
    const jobFile = (name: string) => `${KEY_PREFIXES.jobs}*/${name}`;

    // upload, the API's writes: POST /jobs (direct), POST /uploads (presigned POST), DELETE /jobs/{token} (cancel:
    // records the stop, asks for the finalize), POST /jobs/{token}/retry (reads the failed records' numbers and the
    // source, stores a new source, splits it inline); S3 events of presigned uploads → split. Its budget passes grant
    // worker places and drop the demands of jobs that want no workers any more (DeleteItem).
    const upload = fn('upload', 'upload and split', {
      memorySize: 2048,
      timeout: fnTimeout.upload,
      // What users' processors declare (a broken file fails the synth, naming it): the API checks requests against
      // it and never imports a user's module (core/processors/users.ts bundledManifests).
      define: { __ROWFLEET_PROCESSORS__: JSON.stringify(processorManifests(stage)) },
    })
      .bindStage(stage)
      // The split moves a presigned upload to jobs/ (CopyObject, then DeleteObject of the upload) and reads it there;
      // a source that is not UTF-8 gets a UTF-8 copy (a multipart upload); rejected records are written beside it. A retry with nothing to retry is told by
      // the 404 of its missing failed-records file.
      .bindBucket(bucket, {
        // A retry's attempt reads the split's chunk plan and writes the records it runs (core/intake/rerun-failed.ts);
        // a resubmission reads the job's latest errors.csv rows (the outcome of each record) and writes its own
        // source.csv, runs.jsonl and rejected.jsonl under the attempt (core/intake/resubmit.ts).
        read: [
          KEY_PREFIXES.uploads,
          jobFile('source.csv'),
          jobFile('failed.jsonl'),
          jobFile('chunks.jsonl'),
          `${KEY_PREFIXES.results}*/errors.jsonl`,
        ],
        write: [
          KEY_PREFIXES.uploads,
          jobFile('source.csv'),
          jobFile('source.utf8.csv'),
          jobFile('rejected.jsonl'),
          jobFile('chunks.jsonl'),
          jobFile('runs.jsonl'),
        ],
        multipart: [jobFile('source.utf8.csv')],
        delete: [KEY_PREFIXES.uploads],
        missingKeys: true,
      })
      .bindTable(table, {
        actions: ['GetItem', 'Query', 'PutItem', 'UpdateItem', 'DeleteItem'],
        partitions: ['site', 'budget'],
      })
      .bindFinalizeQueue(finalizeQueue, { send: true })
      .bindDeadLetterQueue(deadLetterQueue)
      // CreateQueue with tags needs TagQueue too.
      .bindReportQueues(stage, ['sqs:CreateQueue', 'sqs:SendMessage', 'sqs:TagQueue'])
      .bindWorkers(this.workers, { launch: true })
      // Split and queue-wait spans, and the job span of a job cancelled before its split (issue 22).
      .emitTraces()
      // A failed split reports its message (Powertools batch): it is retried, then goes to the DLQ.
      .consumeQueue(uploadEventsQueue);

    // status, the API's reads: GET /health, GET /jobs, GET /jobs/{token} (presigned download URL of results/),
    // GET /jobs/{token}/results (presigned download URL of the results.csv beside the zip),
    // GET /jobs/{token}/errors (results/<site>/<token>/errors.jsonl), GET /usage (usage counters in the table).
    const status = fn('status', 'job status')
      .bindStage(stage)
      .bindBucket(bucket, { read: [KEY_PREFIXES.results] })
      // Jobs and usage of the caller's site; the budget's demands (where a queued job stands).
      .bindTable(table, { actions: ['GetItem', 'Query'], partitions: ['site', 'budget'] })
      .bindJobsByTimeIndex(table)
      .bindFinalizeQueue(finalizeQueue, { send: false })
      .bindDeadLetterQueue(deadLetterQueue);

    // finalize: finalize queue → zip of the parts into results/, delete the job queue, stop the workers, delete the
    // parts, give the job's worker places back (its demand deleted). A job stopped early (cancelled, over its failure
    // rate) also has its source read again (uploads/ for direct uploads, jobs/ for presigned ones), for the lines and
    // text of the records it never processed (core/finalize/stopped.ts), and the numbers of the records a retry runs
    // again written to jobs/<site>/<token>/failed.jsonl.
    const finalize = fn('finalize', 'finalize jobs', { memorySize: 2048, timeout: fnTimeout.finalize })
      .bindStage(stage)
      .bindBucket(bucket, {
        // results/: a retry's attempt copies the records of the zip before it into its own (core/finalize/attempts.ts).
        read: [KEY_PREFIXES.jobs, KEY_PREFIXES.uploads, KEY_PREFIXES.results],
        write: [KEY_PREFIXES.results, jobFile('failed.jsonl')],
        multipart: [KEY_PREFIXES.results, jobFile('failed.jsonl')],
        delete: [jobFile('parts/*')],
      })
      // Query: a stopped job's effect claims, one Query of its site partition (core/effects/claims.ts ofJob).
      .bindTable(table, {
        actions: ['GetItem', 'Query', 'UpdateItem', 'DeleteItem'],
        partitions: ['site', 'budget'],
      })
      .bindFinalizeQueue(finalizeQueue, { send: false })
      .bindDeadLetterQueue(deadLetterQueue)
      .bindReportQueues(stage, ['sqs:GetQueueUrl', 'sqs:DeleteQueue'])
      .bindWorkers(this.workers, { stop: true })
      .bindGrantRequests(uploadEventsQueue)
      // Finalize, zip and job spans.
      .emitTraces()
      // One job per invocation: a large zip never shares a timeout with another job.
      .consumeQueue(finalizeQueue);

    const authorizer = fn('authorizer', 'API token authorizer', {
      memorySize: 256,
      timeout: Duration.seconds(10),
    }).bindTable(table, { actions: ['GetItem'], partitions: ['apiToken'] });

    // usageMail: invoked by one schedule per site with {site, scheduledTime} → that site's usage mail through SES.
    // It reads usage counters and writes mail markers in the job table; nothing in S3, SQS or ECS.
    const usageMail = fn('usageMail', 'daily usage mail per site', {
      memorySize: 256,
      timeout: Duration.minutes(1),
    })
      .bindStage(stage)
      .bindTable(table, { actions: ['GetItem', 'Query', 'PutItem', 'UpdateItem'], partitions: ['site'] })
      .bindMailSender(props.stage.mail);

    // reaper (every 5 minutes): relaunch stalled jobs, re-ask lost finalizes, stop idle tasks, delete orphan queues.
    const reaper = fn('reaper', 'reaper of stalled jobs, idle tasks and orphan queues', {
      memorySize: 512,
      timeout: Duration.minutes(2),
    })
      .bindStage(stage)
      // HeadObject of uploads/: a presigned job whose file never came (a 404) expires. An attempt whose sender died
      // before sending it all is sent again from the chunk messages it kept (jobs/…/a<k>/[resubmit-<id>/]chunks.jsonl).
      .bindBucket(bucket, { read: [KEY_PREFIXES.uploads, jobFile('chunks.jsonl')], missingKeys: true })
      .bindTable(table, {
        actions: ['GetItem', 'Query', 'PutItem', 'UpdateItem', 'DeleteItem'],
        partitions: ['site', 'budget'],
      })
      .bindActiveJobsIndex(table)
      .bindFinalizeQueue(finalizeQueue, { send: true })
      .bindDeadLetterQueue(deadLetterQueue)
      // Orphan job queues: listed with their tags, deleted by URL. An attempt sent again: its queue created (with its
      // tags) if its sender died first, its chunks sent (core/budget/attempt-send.ts).
      .bindReportQueues(stage, [
        'sqs:ListQueueTags',
        'sqs:DeleteQueue',
        'sqs:CreateQueue',
        'sqs:TagQueue',
        'sqs:SendMessage',
      ])
      .bindQueueListing()
      .bindWorkers(this.workers, { launch: true, stop: true, list: true })
      // Queue-wait spans of its granter passes, the job span of a job it expires.
      .emitTraces();

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
    consoleFn.addEnvironment(ENV.consoleUploadOrigin, `https://${bucket.bucketRegionalDomainName}`);

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
    // Job outcomes (core/jobs/notify.ts): finalize announces finished jobs, the split rejected files.
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
