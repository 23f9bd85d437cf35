import type { PipelineDeps } from '../deps.ts';
import { requestFinalize } from '../messages/finalize-request.ts';
import type { Job } from '../jobs/store.ts';
import {
  failureRateExceeded,
  maxFailureRateOf,
  MIN_FAILURE_SAMPLE,
  type JobStop,
  type StopReason,
} from './rules.ts';
import { jobLogger } from '../shared/log.ts';
import { publishMetrics } from '../shared/metrics.ts';

/** What a stop uses: the job's stop, its finalize request, the budget's places. */
type StopDeps = Pick<PipelineDeps, 'env' | 'grants' | 'jobs' | 'queues'>;

/**
 * The stop-early machinery, shared by a cancel and by the failure-rate rule: the stop is recorded once on the job
 * (core/stop/rules.ts), then its finalize is asked for. The finalize takes the job out of QUEUED or RUNNING (nothing
 * more is counted from then on), deletes its queue, stops its workers, gives its places in the worker budget back
 * and zips what was counted, listing every record never processed (core/finalize/stopped.ts). A RECEIVED job whose
 * split is still planning is finalized once its split queued it: the split finds the stop and asks instead of asking
 * for workers (core/split/split.ts), and the reaper asks again for any queued or running job with a stop whose
 * finalize request was lost.
 */
export async function stopJob(
  deps: StopDeps,
  site: string,
  token: string,
  reason: StopReason,
  message: string,
  now = new Date(),
): Promise<Job | undefined> {
  const stop: JobStop = { reason, at: now.toISOString(), message };
  const job = await deps.jobs.recordStop(site, token, stop);
  if (!job) return undefined;
  jobLogger(site, token).warn('job stopped early', { reason, state: job.state, message });
  if (reason === 'FAILURE_RATE_EXCEEDED') publishMetrics(deps.env.stage, { JobsStoppedEarly: 1 });
  // A queued job has no worker to stop: its demand leaves the stage's budget now, so no granter pass starts
  // workers for it (one racing this finds the stop: core/budget/grant-workers.ts), and its finalize ends it.
  if (job.state === 'QUEUED') await deps.grants.finish(site, token);
  // A running job's workers are leaving: it asks for no more (their places go back as they leave, the rest when
  // its finalize ends it).
  if (job.state === 'RUNNING') await deps.grants.refresh(site, token, { remaining: 0, maxWorkers: 0 });
  if (job.state === 'RUNNING' || job.state === 'QUEUED') await requestFinalize(deps, { site, token });
  return job;
}

/**
 * The failure-rate rule, after a chunk was counted: with the job's totals so far (the counting write's answer),
 * a job whose `maxFailureRate` is passed (core/stop/rules.ts failureRateExceeded) is stopped. True when this call
 * stopped it.
 */
export async function stopOnFailureRate(
  deps: StopDeps,
  job: Pick<Job, 'site' | 'token' | 'options' | 'stop'>,
  totals: { readonly succeeded: number; readonly failed: number },
): Promise<boolean> {
  const maxRate = maxFailureRateOf(job.options);
  if (job.stop || !failureRateExceeded(maxRate, totals)) return false;
  const processed = totals.succeeded + totals.failed;
  const share = ((100 * totals.failed) / processed).toFixed(1);
  const message =
    `${totals.failed} of the ${processed} records processed so far failed (${share} %), more than ` +
    `maxFailureRate ${maxRate} allows (checked from ${MIN_FAILURE_SAMPLE} records on): the job stopped early.`;
  return (await stopJob(deps, job.site, job.token, 'FAILURE_RATE_EXCEEDED', message)) !== undefined;
}

/**
 * A worker starting on a job that was stopped takes nothing: it asks for the job's finalize (the split may have made
 * the job RUNNING after the stop was recorded, when nobody had asked yet) and leaves. True when the job is stopped.
 */
export async function leaveStoppedJob(
  deps: Pick<PipelineDeps, 'env' | 'queues'>,
  job: Job,
): Promise<boolean> {
  if (!job.stop) return false;
  if (job.state === 'RUNNING') await requestFinalize(deps, { site: job.site, token: job.token });
  return true;
}
