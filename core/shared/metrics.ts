import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logger } from './log.ts';

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
  /** Workers asked for and not started (RunTask refused: quota, capacity, throttling); the reaper retries them. */
  WorkersLaunchFailed: MetricUnit.Count,
  /** Time to validate, chunk and enqueue one file. */
  SplitDuration: MetricUnit.Milliseconds,
  /** Time to build and store one job's zip. */
  FinalizeDuration: MetricUnit.Milliseconds,
  JobsSucceeded: MetricUnit.Count,
  JobsPartial: MetricUnit.Count,
  JobsFailed: MetricUnit.Count,
  JobsRejected: MetricUnit.Count,
  /** Jobs that ended CANCELLED (their owner cancelled them: DELETE /jobs/{token}). */
  JobsCancelled: MetricUnit.Count,
  /** Jobs stopped early because their failure rate passed their maxFailureRate (they end FAILED). */
  JobsStoppedEarly: MetricUnit.Count,
  /** Jobs the reaper found with chunks left and no live worker (workers relaunched). */
  JobsStalled: MetricUnit.Count,
  /** Presigned jobs the reaper expired: their file never arrived before the upload form expired. */
  JobsExpired: MetricUnit.Count,
  /** Workers held in the stage's worker budget (granted, starting or running). */
  BudgetInUse: MetricUnit.Count,
  /** Jobs waiting for their first worker (QUEUED). */
  JobsQueued: MetricUnit.Count,
  /** How long the oldest QUEUED job has waited so far (the queue-wait alarm's input). */
  OldestQueuedWait: MetricUnit.Milliseconds,
  /** How long a job waited for its first worker (dimensions stage and site). */
  QueueWait: MetricUnit.Milliseconds,
  /** Records not yet processed over a site's jobs in flight, at each reaper pass (dimensions stage and site). */
  BacklogRecords: MetricUnit.Count,
  /** A site's jobs waiting for their first worker, at each reaper pass (dimensions stage and site). */
  BacklogJobsWaiting: MetricUnit.Count,
  /** How long a site's longest-waiting job has waited for a worker so far (dimensions stage and site). */
  BacklogOldestWait: MetricUnit.Milliseconds,
  /** Finalizes the reaper asked for again (lost request, or a finalize that died). */
  FinalizesRequeued: MetricUnit.Count,
  /** Attempts (retries, resubmissions) the reaper sent again because their sender died before sending them all. */
  AttemptsResent: MetricUnit.Count,
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

/**
 * The process-wide Metrics instance, flushed by the functions' `logMetrics` middleware (the cold-start metric);
 * Powertools honours POWERTOOLS_METRICS_DISABLED (the local CLI sets it). Its own notices go to our logger at
 * debug level: every invocation would otherwise warn that it stored nothing, since the pipeline's figures are
 * published as they happen ({@link publishMetrics}).
 */
export const metrics = new Metrics({
  namespace: METRIC_NAMESPACE,
  serviceName: 'rowfleet',
  logger: {
    debug: (...a: unknown[]) => logger.debug(String(a[0]), { detail: a.slice(1) }),
    info: (...a: unknown[]) => logger.debug(String(a[0]), { detail: a.slice(1) }),
    warn: (...a: unknown[]) => logger.debug(String(a[0]), { detail: a.slice(1) }),
    error: (...a: unknown[]) => logger.error(String(a[0]), { detail: a.slice(1) }),
  },
});

/** Publishes a set of values at once, with the stage as dimension. */
export function publishMetrics(stage: string, values: Partial<Record<MetricName, number>>): void {
  publish({ stage }, values);
}

/** Publishes a set of values with the dimensions stage and site (per-site figures such as the usage mails). */
export function publishSiteMetrics(
  stage: string,
  site: string,
  values: Partial<Record<MetricName, number>>,
): void {
  publish({ stage, site }, values);
}

/**
 * One EMF record with its own dimension set, flushed at once (the worker has no handler to flush at its end, and
 * concurrent jobs must not share dimensions). Powertools' singleMetric() would write one record per value.
 */
function publish(dimensions: Record<string, string>, values: Partial<Record<MetricName, number>>): void {
  const entries = (Object.entries(values) as [MetricName, number | undefined][]).filter(
    (e): e is [MetricName, number] => e[1] !== undefined,
  );
  if (entries.length === 0) return;
  const m = new Metrics({
    namespace: METRIC_NAMESPACE,
    serviceName: 'rowfleet',
    defaultDimensions: dimensions,
  });
  for (const [name, value] of entries) m.addMetric(name, METRICS[name], value);
  m.publishStoredMetrics();
}
