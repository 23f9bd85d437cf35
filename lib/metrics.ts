import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';

/**
 * The custom metrics the dashboard and the alarms read. The code emits them (CloudWatch EMF through Powertools)
 * from the catalogue in core/shared/metrics.ts; lib may not import core, so the names are repeated here and
 * test/infra checks that every one of them is in that catalogue, with the same namespace and dimensions.
 */
export const METRIC_NAMESPACE = 'Rowfleet';

/** Powertools adds the service name as a dimension; core/shared/metrics.ts sets it to this value. */
export const POWERTOOLS_SERVICE_NAME = 'rowfleet';

export const CUSTOM_METRICS = [
  'RecordsProcessed',
  'RecordsFailed',
  'RecordsRejected',
  'ChunksProcessed',
  'ChunkLatency',
  'WorkersLaunched',
  'WorkersLaunchFailed',
  'SplitDuration',
  'FinalizeDuration',
  'JobsSucceeded',
  'JobsPartial',
  'JobsFailed',
  'JobsRejected',
  'JobsCancelled',
  'JobsStoppedEarly',
  'JobsStalled',
  'FinalizesRequeued',
  'AttemptsResent',
  'IdleTasksStopped',
  'OrphanQueuesDeleted',
  'BudgetInUse',
  'JobsQueued',
  'OldestQueuedWait',
] as const;

export type CustomMetricName = (typeof CUSTOM_METRICS)[number];

/** The dimension set every custom metric is published with (see publishMetrics in core/shared/metrics.ts). */
export function customMetricDimensions(stage: string): Record<string, string> {
  return { service: POWERTOOLS_SERVICE_NAME, stage };
}

export function customMetric(
  stage: string,
  name: CustomMetricName,
  options: { readonly statistic?: string; readonly period?: Duration; readonly label?: string } = {},
): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: METRIC_NAMESPACE,
    metricName: name,
    dimensionsMap: customMetricDimensions(stage),
    statistic: options.statistic ?? cloudwatch.Stats.SUM,
    period: options.period ?? Duration.minutes(5),
    label: options.label ?? name,
  });
}

/** Metrics published per site (publishSiteMetrics in core/shared/metrics.ts): dimensions service, stage and site. */
export const SITE_METRICS = [
  'MailsSent',
  'MailsFailed',
  'QueueWait',
  'BacklogRecords',
  'BacklogJobsWaiting',
  'BacklogOldestWait',
] as const;

export type SiteMetricName = (typeof SITE_METRICS)[number];

export function siteMetricDimensions(stage: string, site: string): Record<string, string> {
  return { ...customMetricDimensions(stage), site };
}

export function siteMetric(
  stage: string,
  site: string,
  name: SiteMetricName,
  options: { readonly statistic?: string; readonly period?: Duration; readonly label?: string } = {},
): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: METRIC_NAMESPACE,
    metricName: name,
    dimensionsMap: siteMetricDimensions(stage, site),
    statistic: options.statistic ?? cloudwatch.Stats.SUM,
    period: options.period ?? Duration.hours(1),
    label: options.label ?? `${name} ${site}`,
  });
}
