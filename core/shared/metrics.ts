import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';

/**
 * Every metric the code emits (CloudWatch EMF through Powertools), in namespace {@link METRIC_NAMESPACE},
 * with the dimension `stage` (and `site` where noted). The dashboard and the alarms name metrics only from here.
 */
export const METRIC_NAMESPACE = 'Rowfleet';

export const METRICS = {
  /** Records a worker processed successfully. */
  RecordsProcessed: MetricUnit.Count,
  /** Records a processor failed on. */
  RecordsFailed: MetricUnit.Count,
  /** Records rejected at the split (wrong column count, NUL byte). */
  RecordsRejected: MetricUnit.Count,
  /** Chunks counted (duplicates excluded). */
  ChunksProcessed: MetricUnit.Count,
  /** Time to process and store one chunk. */
  ChunkLatency: MetricUnit.Milliseconds,
  /** Workers started for jobs. */
  WorkersLaunched: MetricUnit.Count,
  /** Time to validate, chunk and enqueue one file. */
  SplitDuration: MetricUnit.Milliseconds,
  /** Time to build and store one job's zip. */
  FinalizeDuration: MetricUnit.Milliseconds,
  JobsSucceeded: MetricUnit.Count,
  JobsPartial: MetricUnit.Count,
  JobsFailed: MetricUnit.Count,
  JobsRejected: MetricUnit.Count,
  /** Jobs the reaper found with chunks left and no live worker (workers relaunched). */
  JobsStalled: MetricUnit.Count,
  /** Finalizes the reaper asked for again (lost request, or a finalize that died). */
  FinalizesRequeued: MetricUnit.Count,
  /** Worker tasks the reaper stopped because their job had ended. */
  IdleTasksStopped: MetricUnit.Count,
  /** Job queues the reaper deleted because their job had ended or is gone. */
  OrphanQueuesDeleted: MetricUnit.Count,
  /** Usage mails SES accepted (dimensions stage and site). */
  MailsSent: MetricUnit.Count,
  /** Usage mails SES refused for good (dimensions stage and site); never retried. */
  MailsFailed: MetricUnit.Count,
} as const;

export type MetricName = keyof typeof METRICS;

const metrics = new Metrics({ namespace: METRIC_NAMESPACE, serviceName: 'rowfleet' });
/** Read once at load: Powertools' own switch (the local CLI turns metrics off). */
const disabled = process.env.POWERTOOLS_METRICS_DISABLED === 'true';

/** Publishes a set of values at once, with the stage as dimension. */
export function publishMetrics(stage: string, values: Partial<Record<MetricName, number>>): void {
  if (disabled) return;
  const m = metrics.singleMetric();
  m.addDimension('stage', stage);
  for (const [name, value] of Object.entries(values) as [MetricName, number][]) {
    if (value !== undefined) m.addMetric(name, METRICS[name], value);
  }
  m.publishStoredMetrics();
}

/** Publishes a set of values with the dimensions stage and site (per-site figures such as the usage mails). */
export function publishSiteMetrics(
  stage: string,
  site: string,
  values: Partial<Record<MetricName, number>>,
): void {
  if (disabled) return;
  const m = metrics.singleMetric();
  m.addDimension('stage', stage);
  m.addDimension('site', site);
  for (const [name, value] of Object.entries(values) as [MetricName, number][]) {
    if (value !== undefined) m.addMetric(name, METRICS[name], value);
  }
  m.publishStoredMetrics();
}
