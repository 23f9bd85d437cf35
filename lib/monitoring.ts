import { Duration, Stack } from 'aws-cdk-lib';
import type * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as ecs from 'aws-cdk-lib/aws-ecs';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventTargets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { customMetric, siteMetric, type CustomMetricName } from './metrics.ts';
import { resourceNames } from '../config/names.ts';

export interface MonitoredFunction {
  /** Short name used in alarm names and widget labels (upload, status, …). */
  readonly name: string;
  readonly fn: lambda.IFunction;
  /**
   * Alarm when the function reports errors. @default true
   * (false for the authorizer: refusing a bad token is an error by API Gateway's contract).
   */
  readonly alarmOnErrors?: boolean;
}

export interface MonitoringProps {
  readonly stage: string;
  readonly functions: readonly MonitoredFunction[];
  readonly api: apigw.RestApi;
  readonly deadLetterQueue: sqs.IQueue;
  readonly schedulesDeadLetterQueue: sqs.IQueue;
  readonly finalizeQueue: sqs.IQueue;
  readonly uploadEventsQueue: sqs.IQueue;
  readonly cluster: ecs.ICluster;
  /** Receives before a message goes to the dead-letter queue (named in the DLQ alarm's description). */
  readonly maxReceiveCount: number;
  /** The stage's worker budget (the dashboard draws its use against it) and the queue-wait alarm's threshold. */
  readonly workerBudget: { readonly maxWorkers: number; readonly queueWaitAlarmSeconds: number };
  /** Subscribed by e-mail to the ops topic. @default no subscription */
  readonly opsEmail?: string;
  /** Site ids whose usage mails the dashboard draws (sent and failed per site). @default no usage-mail widget */
  readonly sites?: readonly string[];
}

/** Age after which a message waiting on the finalize or upload-events queue means the pipeline is stuck. */
export const BACKLOG_AGE_ALARM = Duration.minutes(15);

/**
 * Topics (ops alarms; job outcomes), the alarms, the worker-failure rule and the stage's dashboard. Custom
 * metrics are read only through lib/metrics.ts, whose names test/infra checks against core/shared/metrics.ts.
 */
export class Monitoring extends Construct {
  readonly key: kms.Key;
  readonly opsTopic: sns.Topic;
  readonly jobsTopic: sns.Topic;
  readonly dashboard: cloudwatch.Dashboard;
  readonly alarms: cloudwatch.Alarm[] = [];
  readonly workerFailedRule: events.Rule;
  private readonly stage: string;

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    this.stage = props.stage;
    const names = resourceNames(props.stage);

    // SNS encryption with a customer managed key: CloudWatch alarms and EventBridge can only publish to an
    // encrypted topic if the key lets them, which the AWS managed key does not.
    this.key = new kms.Key(this, 'TopicKey', {
      description: `Rowfleet ${props.stage}: encrypts the ops and job-outcome topics`,
      enableKeyRotation: true,
    });
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AlarmsAndRulesPublish',
        principals: [
          new iam.ServicePrincipal('cloudwatch.amazonaws.com'),
          new iam.ServicePrincipal('events.amazonaws.com'),
        ],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
      }),
    );
    this.opsTopic = new sns.Topic(this, 'OpsTopic', {
      topicName: `rowfleet-${props.stage}-ops`,
      displayName: `Rowfleet ${props.stage} ops alarms`,
      masterKey: this.key,
      enforceSSL: true,
    });
    this.jobsTopic = new sns.Topic(this, 'JobsTopic', {
      topicName: `rowfleet-${props.stage}-job-outcomes`,
      displayName: `Rowfleet ${props.stage} job outcomes`,
      masterKey: this.key,
      enforceSSL: true,
    });
    if (props.opsEmail) this.opsTopic.addSubscription(new subscriptions.EmailSubscription(props.opsEmail));

    // Dead-letter queues: anything there is a message the pipeline gave up on.
    const dlqDepth = props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
      statistic: cloudwatch.Stats.MAXIMUM,
      period: Duration.minutes(5),
      label: 'pipeline DLQ',
    });
    const schedulesDlqDepth = props.schedulesDeadLetterQueue.metricApproximateNumberOfMessagesVisible({
      statistic: cloudwatch.Stats.MAXIMUM,
      period: Duration.minutes(5),
      label: 'schedules DLQ',
    });
    this.alarm(
      'DlqNotEmpty',
      dlqDepth,
      1,
      `Messages in ${names.dlq}: a job chunk, finalize request or upload event failed ${props.maxReceiveCount} times. RUNBOOK.md#dlq-not-empty`,
    );
    this.alarm(
      'SchedulesDlqNotEmpty',
      schedulesDlqDepth,
      1,
      `Messages in ${names.schedulesDlq}: a scheduled invocation (usage mail, reaper) failed after its retries. RUNBOOK.md#schedules-dlq-not-empty`,
    );

    for (const f of props.functions) {
      if (f.alarmOnErrors === false) continue;
      this.alarm(
        `${pascal(f.name)}Errors`,
        f.fn.metricErrors({ statistic: cloudwatch.Stats.SUM, period: Duration.minutes(5) }),
        1,
        `The ${f.name} function failed (uncaught error or timeout). RUNBOOK.md#lambda-errors`,
      );
    }

    const api5xx = props.api.metricServerError({
      statistic: cloudwatch.Stats.SUM,
      period: Duration.minutes(5),
    });
    this.alarm(
      'Api5xx',
      api5xx,
      1,
      'The API answered 5xx (handler failure, authorizer failure or timeout). RUNBOOK.md#api-5xx',
    );

    const finalizeAge = props.finalizeQueue.metricApproximateAgeOfOldestMessage({
      statistic: cloudwatch.Stats.MAXIMUM,
      period: Duration.minutes(5),
      label: 'finalize queue: oldest message (s)',
    });
    const uploadEventsAge = props.uploadEventsQueue.metricApproximateAgeOfOldestMessage({
      statistic: cloudwatch.Stats.MAXIMUM,
      period: Duration.minutes(5),
      label: 'upload-events queue: oldest message (s)',
    });
    this.alarm(
      'FinalizeBacklog',
      finalizeAge,
      BACKLOG_AGE_ALARM.toSeconds(),
      'A finalize request has waited over 15 minutes: jobs are not being finished. RUNBOOK.md#finalize-backlog',
    );
    this.alarm(
      'UploadEventsBacklog',
      uploadEventsAge,
      BACKLOG_AGE_ALARM.toSeconds(),
      'A presigned upload has waited over 15 minutes to be split. RUNBOOK.md#upload-events-backlog',
    );

    // Job outcomes: until finalize publishes one message per job, failed jobs raise this alarm on the jobs topic.
    const jobsFailed = customMetric(props.stage, 'JobsFailed');
    const failedJobs = new cloudwatch.Alarm(this, 'JobsFailedAlarm', {
      alarmName: `rowfleet-${props.stage}-jobs-failed`,
      alarmDescription: 'At least one job ended FAILED in the last 5 minutes. RUNBOOK.md#jobs-failed',
      metric: jobsFailed,
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    failedJobs.addAlarmAction(new actions.SnsAction(this.jobsTopic));
    this.alarms.push(failedJobs);

    this.alarm(
      'JobsStalled',
      customMetric(props.stage, 'JobsStalled', { period: Duration.minutes(15) }),
      1,
      'The reaper found a job with chunks left and no live worker and relaunched its workers. RUNBOOK.md#jobs-stalled',
    );
    this.alarm(
      'JobsWaitingForWorkers',
      customMetric(props.stage, 'OldestQueuedWait', {
        statistic: cloudwatch.Stats.MAXIMUM,
        period: Duration.minutes(5),
      }),
      props.workerBudget.queueWaitAlarmSeconds * 1000,
      `A job has waited more than ${props.workerBudget.queueWaitAlarmSeconds} s for its first worker: the stage's worker budget (${props.workerBudget.maxWorkers}) is taken. RUNBOOK.md#jobs-waiting-for-workers`,
    );
    this.alarm(
      'WorkerLaunchFailed',
      customMetric(props.stage, 'WorkersLaunchFailed', { period: Duration.minutes(15) }),
      1,
      'RunTask refused worker tasks (vCPU quota, capacity, throttling); the reaper retries with backoff. RUNBOOK.md#worker-launch-failed',
    );
    for (const site of props.sites ?? []) {
      // The stage-wide wait alarm above says a job waits; this one says whose (the reaper's backlog figures).
      this.alarm(
        `WorkerWait${pascal(site)}`,
        siteMetric(props.stage, site, 'BacklogOldestWait', {
          statistic: cloudwatch.Stats.MAXIMUM,
          period: Duration.minutes(5),
        }),
        props.workerBudget.queueWaitAlarmSeconds * 1000,
        `A job of ${site} has waited more than ${props.workerBudget.queueWaitAlarmSeconds} s for its first worker. RUNBOOK.md#jobs-waiting-for-workers`,
      );
      this.alarm(
        `MailsFailed${pascal(site)}`,
        siteMetric(props.stage, site, 'MailsFailed', { period: Duration.hours(1) }),
        1,
        `SES refused the usage mail of ${site} for good (it is not retried). RUNBOOK.md#mails-failed`,
      );
    }

    // Worker tasks that stop with a non-zero exit code, or never start (image pull, ENI, capacity).
    this.workerFailedRule = new events.Rule(this, 'WorkerFailedRule', {
      ruleName: `rowfleet-${props.stage}-worker-failed`,
      description: `Rowfleet ${props.stage}: a worker task stopped with a non-zero exit code or failed to start`,
      eventPattern: {
        source: ['aws.ecs'],
        detailType: ['ECS Task State Change'],
        detail: {
          clusterArn: [props.cluster.clusterArn],
          lastStatus: ['STOPPED'],
          $or: [{ containers: { exitCode: [{ 'anything-but': 0 }] } }, { stopCode: ['TaskFailedToStart'] }],
        },
      },
      targets: [
        new eventTargets.SnsTopic(this.opsTopic, {
          message: events.RuleTargetInput.fromText(
            `Rowfleet ${props.stage}: worker task ${events.EventField.fromPath('$.detail.taskArn')} ` +
              `(job ${events.EventField.fromPath('$.detail.startedBy')}, ${events.EventField.fromPath('$.detail.group')}) ` +
              `stopped: ${events.EventField.fromPath('$.detail.stoppedReason')}. RUNBOOK.md#worker-failed`,
          ),
        }),
      ],
    });

    this.dashboard = this.buildDashboard(props, {
      dlqDepth,
      schedulesDlqDepth,
      finalizeAge,
      uploadEventsAge,
    });
  }

  private alarm(
    id: string,
    metric: cloudwatch.IMetric,
    threshold: number,
    description: string,
  ): cloudwatch.Alarm {
    const alarm = new cloudwatch.Alarm(this, id, {
      alarmName: `rowfleet-${this.stage}-${kebab(id)}`,
      alarmDescription: description,
      metric,
      threshold,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    alarm.addAlarmAction(new actions.SnsAction(this.opsTopic));
    alarm.addOkAction(new actions.SnsAction(this.opsTopic));
    this.alarms.push(alarm);
    return alarm;
  }

  private buildDashboard(
    props: MonitoringProps,
    m: Record<'dlqDepth' | 'schedulesDlqDepth' | 'finalizeAge' | 'uploadEventsAge', cloudwatch.IMetric>,
  ): cloudwatch.Dashboard {
    const stage = props.stage;
    const sum = (name: CustomMetricName) => customMetric(stage, name);
    const pct = (name: CustomMetricName, stat: string) =>
      customMetric(stage, name, { statistic: stat, label: `${name} ${stat}` });
    const graph = (
      title: string,
      left: cloudwatch.IMetric[],
      extra: Partial<cloudwatch.GraphWidgetProps> = {},
    ) => new cloudwatch.GraphWidget({ title, left, width: 8, height: 6, ...extra });
    const perFunction = (f: (fn: lambda.IFunction) => cloudwatch.Metric) =>
      props.functions.map((x) => f(x.fn).with({ label: x.name }));
    const region = Stack.of(this).region;

    const dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: resourceNames(stage).dashboard,
      defaultInterval: Duration.hours(6),
    });
    dashboard.addWidgets(
      new cloudwatch.TextWidget({
        markdown: `# Rowfleet ${stage}\nJobs, workers and the API of the ${stage} stage (${region}). Alarms: see RUNBOOK.md.`,
        width: 24,
        height: 2,
      }),
    );
    dashboard.addWidgets(
      new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 24, height: 3 }),
    );
    dashboard.addWidgets(
      graph(
        'Jobs by outcome',
        [
          sum('JobsSucceeded'),
          sum('JobsPartial'),
          sum('JobsFailed'),
          sum('JobsRejected'),
          sum('JobsCancelled'),
          sum('JobsStoppedEarly'),
        ],
        {
          stacked: true,
        },
      ),
      graph('Records', [sum('RecordsProcessed'), sum('RecordsFailed'), sum('RecordsRejected')]),
      graph(
        `Worker budget (${props.workerBudget.maxWorkers})`,
        [
          customMetric(stage, 'BudgetInUse', { statistic: cloudwatch.Stats.MAXIMUM, label: 'workers held' }),
          customMetric(stage, 'JobsQueued', { statistic: cloudwatch.Stats.MAXIMUM, label: 'jobs queued' }),
        ],
        {
          right: [
            customMetric(stage, 'OldestQueuedWait', {
              statistic: cloudwatch.Stats.MAXIMUM,
              label: 'oldest queued wait (ms)',
            }),
            ...(props.sites ?? []).map((site) =>
              siteMetric(stage, site, 'QueueWait', { statistic: 'p99', label: `${site} wait p99 (ms)` }),
            ),
          ],
        },
      ),
      graph(
        'Backlog by site (reaper)',
        (props.sites ?? []).flatMap((site) => [
          siteMetric(stage, site, 'BacklogRecords', {
            statistic: cloudwatch.Stats.MAXIMUM,
            period: Duration.minutes(5),
            label: `${site} records left`,
          }),
          siteMetric(stage, site, 'BacklogJobsWaiting', {
            statistic: cloudwatch.Stats.MAXIMUM,
            period: Duration.minutes(5),
            label: `${site} jobs waiting`,
          }),
        ]),
        {
          right: (props.sites ?? []).map((site) =>
            siteMetric(stage, site, 'BacklogOldestWait', {
              statistic: cloudwatch.Stats.MAXIMUM,
              period: Duration.minutes(5),
              label: `${site} longest wait (ms)`,
            }),
          ),
        },
      ),
      graph('Reaper', [
        sum('JobsStalled'),
        sum('FinalizesRequeued'),
        sum('AttemptsResent'),
        sum('IdleTasksStopped'),
        sum('OrphanQueuesDeleted'),
      ]),
      graph(
        'Chunks and workers',
        [sum('ChunksProcessed'), sum('WorkersLaunched'), sum('WorkersLaunchFailed')],
        {
          right: [
            new cloudwatch.Metric({
              namespace: 'ECS/ContainerInsights',
              metricName: 'TaskCount',
              dimensionsMap: { ClusterName: props.cluster.clusterName },
              statistic: cloudwatch.Stats.MAXIMUM,
              period: Duration.minutes(1),
              label: 'worker tasks running',
            }),
          ],
        },
      ),
    );
    dashboard.addWidgets(
      graph('Chunk latency (ms)', [
        pct('ChunkLatency', 'p50'),
        pct('ChunkLatency', 'p90'),
        pct('ChunkLatency', 'Maximum'),
      ]),
      graph('Split duration (ms)', [
        pct('SplitDuration', 'p50'),
        pct('SplitDuration', 'p90'),
        pct('SplitDuration', 'Maximum'),
      ]),
      graph('Finalize duration (ms)', [
        pct('FinalizeDuration', 'p50'),
        pct('FinalizeDuration', 'p90'),
        pct('FinalizeDuration', 'Maximum'),
      ]),
    );
    const api = props.api;
    dashboard.addWidgets(
      graph('API requests', [api.metricCount({ statistic: cloudwatch.Stats.SUM, label: 'requests' })]),
      graph('API errors', [
        api.metricClientError({ statistic: cloudwatch.Stats.SUM, label: '4xx' }),
        api.metricServerError({ statistic: cloudwatch.Stats.SUM, label: '5xx' }),
      ]),
      graph('API latency (ms)', [
        api.metricLatency({ statistic: 'p50', label: 'latency p50' }),
        api.metricLatency({ statistic: 'p90', label: 'latency p90' }),
        api.metricLatency({ statistic: 'p99', label: 'latency p99' }),
        api.metricIntegrationLatency({ statistic: 'p90', label: 'integration p90' }),
      ]),
    );
    dashboard.addWidgets(
      graph(
        'Lambda errors',
        perFunction((fn) => fn.metricErrors({ statistic: cloudwatch.Stats.SUM })),
      ),
      graph(
        'Lambda throttles',
        perFunction((fn) => fn.metricThrottles({ statistic: cloudwatch.Stats.SUM })),
      ),
      graph(
        'Lambda duration p90 (ms)',
        perFunction((fn) => fn.metricDuration({ statistic: 'p90' })),
      ),
    );
    dashboard.addWidgets(
      graph('Dead-letter queues (messages)', [m.dlqDepth, m.schedulesDlqDepth]),
      graph('Queue backlog: oldest message (s)', [m.finalizeAge, m.uploadEventsAge]),
      graph('Worker tasks failed', [
        new cloudwatch.Metric({
          namespace: 'AWS/Events',
          metricName: 'TriggeredRules',
          dimensionsMap: { RuleName: this.workerFailedRule.ruleName },
          statistic: cloudwatch.Stats.SUM,
          label: 'stopped non-zero / failed to start',
        }),
      ]),
    );
    if (props.sites?.length) {
      const sites = props.sites;
      dashboard.addWidgets(
        graph(
          'Usage mails sent per site',
          sites.map((site) => siteMetric(stage, site, 'MailsSent', { label: site })),
          { width: 12 },
        ),
        graph(
          'Usage mails refused by SES per site',
          sites.map((site) => siteMetric(stage, site, 'MailsFailed', { label: site })),
          { width: 12 },
        ),
      );
    }
    return dashboard;
  }
}

function kebab(id: string): string {
  return id.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();
}

function pascal(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_m, _d, c: string) => c.toUpperCase());
}
