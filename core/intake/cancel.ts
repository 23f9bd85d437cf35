import type { PipelineDeps } from '../deps.ts';
import { isTerminal } from '../jobs/states.ts';
import { expiresAt, type Job } from '../jobs/store.ts';
import { stopJob } from '../stop/stop.ts';
import { BadRequestError } from '../shared/errors.ts';
import { jobLogger } from '../shared/log.ts';
import { publishMetrics } from '../shared/metrics.ts';
import { recordJobUsage, usageStoreOf } from '../usage/store.ts';
import { jobView, type JobView } from './operations.ts';
import { siteJob } from './site-job.ts';
import { endJobSpan } from '../shared/trace.ts';

/** What a cancel uses: the job and its stop, the budget's places, the view answered, and an unsplit job's end. */
type CancelDeps = Pick<
  PipelineDeps,
  'env' | 'grants' | 'jobs' | 'limits' | 'notifier' | 'objects' | 'queues' | 'tracing' | 'usage'
>;

export interface CancelAnswer {
  /** 200: the job is CANCELLED (now, or before: a cancel is idempotent); 202: the cancel is taking effect. */
  readonly status: 200 | 202;
  readonly view: JobView;
}

/** A cancel asked while a job's state moved under it is tried again this many times (each step is conditional). */
const ATTEMPTS = 3;

/**
 * DELETE /jobs/{token}: cancels a job of the caller's site.
 *
 * - Not finished: the stop is recorded (core/stop/rules.ts) and the job's finalize asked for; a QUEUED job's demand
 *   leaves the worker budget at once (no worker ever starts for it). The finalize takes the job out of QUEUED or
 *   RUNNING, deletes its queue, stops its workers, gives its places back and zips what was counted; the records
 *   never processed are in errors.csv as CANCELLED (counted as failed, so the counts still add up, and a retry runs
 *   them). 202.
 * - Received, not planned by its split yet (a presigned job waiting for its file, a split just started): it ends
 *   CANCELLED at once, with no records and no zip (nothing was read). 200.
 * - Already CANCELLED, or its cancel under way: the same answer again (idempotent).
 * - Finished otherwise, finalizing (every record is processed; its zip is being written), or stopped by its
 *   failure rate: 409 JOB_FINISHED.
 * - Another site's job, or no such job: 404.
 */
export async function cancelJob(deps: CancelDeps, site: string, token: string): Promise<CancelAnswer> {
  for (let attempt = 1; ; attempt++) {
    const job = await siteJob(deps, site, token);
    const answer = await cancelOnce(deps, job);
    if (answer) return answer;
    if (attempt >= ATTEMPTS) throw new Error(`job ${token}: its state kept changing during the cancel`);
  }
}

/** One attempt; undefined when the job's state changed under it (read it again). */
async function cancelOnce(deps: CancelDeps, job: Job): Promise<CancelAnswer | undefined> {
  const { site, token } = job;
  if (job.state === 'CANCELLED') return { status: 200, view: await jobView(deps, job) };
  if (job.stop?.reason === 'CANCELLED') return { status: 202, view: await jobView(deps, job) };
  if (isTerminal(job.state) || job.state === 'FINALIZING' || job.stop) {
    const why =
      job.state === 'FINALIZING'
        ? 'every record is processed and its zip is being written'
        : job.stop
          ? `it is stopping: ${job.stop.message.replace(/\.$/, '')}`
          : `it ended ${job.state}`;
    throw new BadRequestError('JOB_FINISHED', `Job ${token} cannot be cancelled: ${why}.`, 409);
  }
  const now = new Date();
  const message = `Cancelled by its owner (DELETE /jobs/${token}) at ${now.toISOString()}.`;
  if (job.state === 'RECEIVED' && job.totalRecords === undefined) {
    const ended = await deps.jobs.cancelUnplanned(site, token, {
      stop: { reason: 'CANCELLED', at: now.toISOString(), message },
      finishedAt: now.toISOString(),
      expiresAt: expiresAt(deps.limits.retentionDays, now.getTime()),
    });
    if (!ended) return undefined;
    jobLogger(site, token).info('job cancelled before its split planned it');
    endJobSpan(deps.tracing, ended, 'CANCELLED', now);
    publishMetrics(deps.env.stage, { JobsCancelled: 1 });
    await recordJobUsage(usageStoreOf(deps), ended);
    await deps.notifier?.jobFinished(ended, 'CANCELLED', { total: 0, succeeded: 0, failed: 0, rejected: 0 });
    return { status: 200, view: await jobView(deps, ended) };
  }
  const stopped = await stopJob(deps, site, token, 'CANCELLED', message, now);
  return stopped ? { status: 202, view: await jobView(deps, stopped) } : undefined;
}
