import type { PipelineDeps } from '../deps.ts';
import type { Job } from '../jobs/store.ts';
import { errorMessage } from '../shared/errors.ts';
import { jobLogger } from '../shared/log.ts';
import { publishMetrics } from '../shared/metrics.ts';
import { LaunchFailedError } from '../aws/task-launcher.ts';

export interface LaunchOutcome {
  readonly started: number;
  /** Workers asked for and not started: the reaper launches them later (with backoff). */
  readonly failed: number;
}

/** Seconds until the next attempt after `failures` failed launches in a row: base · 2^(failures-1), capped. */
export function launchBackoffSeconds(
  failures: number,
  t: { readonly launchRetryBaseSeconds: number; readonly launchRetryMaxSeconds: number },
): number {
  return Math.min(t.launchRetryMaxSeconds, t.launchRetryBaseSeconds * 2 ** Math.max(0, failures - 1));
}

/**
 * Starts `count` workers of a running job: the one way the pipeline launches (the split once a job's chunks and
 * totals are recorded, the reaper for stalled jobs and refused launches). A launch that fails, wholly or for some
 * of its tasks, never throws: it is logged, counted (WorkersLaunchFailed), and recorded on the job — the workers
 * still owed, the failures in a row, when to try again — so the reaper retries exactly the rest, with backoff,
 * until it succeeds or the job leaves RUNNING.
 */
export async function launchWorkers(
  deps: Pick<PipelineDeps, 'env' | 'jobs' | 'launcher' | 'timings'>,
  job: Pick<Job, 'site' | 'token' | 'launchFailures'>,
  count: number,
  by: 'split' | 'reaper',
): Promise<LaunchOutcome> {
  const { site, token } = job;
  if (count <= 0) return { started: 0, failed: 0 };
  const log = jobLogger(site, token);
  const at = new Date();
  try {
    await deps.launcher.launch({ site, token, count });
    publishMetrics(deps.env.stage, { WorkersLaunched: count });
    if (job.launchFailures || by === 'reaper')
      await deps.jobs.recordLaunch(site, token, { launchFailures: 0, lastLaunchAt: at });
    return { started: count, failed: 0 };
  } catch (err) {
    const started = err instanceof LaunchFailedError ? err.started.length : 0;
    const failed = count - started;
    const failures = (job.launchFailures ?? 0) + 1;
    const retryIn = launchBackoffSeconds(failures, deps.timings);
    log.error('worker launch failed; the reaper retries it', {
      by,
      asked: count,
      started,
      failed,
      failures,
      retryInSeconds: retryIn,
      error: err as Error,
    });
    publishMetrics(deps.env.stage, { WorkersLaunched: started, WorkersLaunchFailed: failed });
    await deps.jobs.recordLaunch(site, token, {
      launchFailures: failures,
      lastLaunchAt: at,
      nextLaunchAt: new Date(at.getTime() + retryIn * 1000),
      lastLaunchError: errorMessage(err).slice(0, 500),
    });
    return { started, failed };
  }
}
