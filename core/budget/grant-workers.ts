import { isTerminal } from '../jobs/states.ts';
import type { PipelineDeps } from '../deps.ts';
import type { Job } from '../jobs/store.ts';
import { jobLogger, logger } from '../shared/log.ts';
import { publishMetrics, publishSiteMetrics } from '../shared/metrics.ts';
import { launchWorkers } from './launch.ts';
import { demandOfJob, queueStats, type Grant } from './plan.ts';
import type { PassReport } from './store.ts';
import { startJobSpan } from '../shared/trace.ts';

/** What a granter pass uses: the budget and its grants, the jobs it starts, the launcher of their workers. */
export type GrantDeps = Pick<
  PipelineDeps,
  'budget' | 'env' | 'grants' | 'jobs' | 'launcher' | 'timings' | 'tracing'
>;

/** The body of a grant-pass request on the upload-events queue (the upload function runs the pass). */
export const GRANT_PASS_REQUEST = { rowfleet: 'grant-pass' } as const;

/** Whether an upload-events message is a grant-pass request (anything else is an S3 event notification). */
export function isGrantPassRequest(body: string): boolean {
  try {
    return (JSON.parse(body) as { rowfleet?: unknown }).rowfleet === GRANT_PASS_REQUEST.rowfleet;
  } catch {
    return false;
  }
}

/**
 * Asks for a granter pass where workers can be launched (the upload function): a worker that left or a job that
 * ended freed places, and a job waiting in the queue should get them now, not at the reaper's next pass. Without
 * a queue to ask through (a process outside the stage), nothing is asked: the reaper's pass grants anyway.
 */
export async function requestGrantPass(deps: Pick<PipelineDeps, 'env' | 'queues'>): Promise<void> {
  const url = deps.env.grantRequestsQueueUrl;
  if (!url) return;
  await deps.queues.sendOne(url, JSON.stringify(GRANT_PASS_REQUEST));
}

type ReleaseDeps = Pick<PipelineDeps, 'env' | 'grants' | 'queues'>;

/** A job ended: its places in the stage's worker budget go back, and a pass gives them to queued jobs. */
export async function releaseJobPlaces(deps: ReleaseDeps, site: string, token: string): Promise<void> {
  if ((await deps.grants.finish(site, token)) > 0) await requestGrantPass(deps);
}

/**
 * A job's demand for workers, from its record: asked when its split is done, kept current by the reaper (records
 * and chunks left), so that the budget grants it at most what it can use.
 */
export async function askForWorkers(deps: Pick<PipelineDeps, 'grants'>, job: Job): Promise<void> {
  // A stopped job (cancelled, over its failure rate) asks for none: its finalize is coming (core/stop/stop.ts).
  if (job.stop) return;
  const d = demandOfJob(job, job.workers ?? 1);
  if (!d) return;
  if (await deps.grants.refresh(job.site, job.token, d)) return;
  await deps.grants.request({
    site: job.site,
    token: job.token,
    arrivedAt: Date.parse(job.receivedAt),
    ...d,
  });
}

/**
 * One granter pass of the stage's worker budget (core/budget/store.ts): targets by fair share, the free places
 * granted, and each grant launched — a QUEUED job becomes RUNNING with its first workers; a launch refused for
 * some of its tasks gives their places back and waits out its backoff (launchWorkers records it). Publishes the
 * budget's figures: workers held, jobs queued, and each first grant's wait per site.
 */
export async function grantWorkers(
  deps: GrantDeps,
  by: 'split' | 'reaper' | 'request',
  now?: () => number,
): Promise<PassReport> {
  const report = await deps.grants.pass(deps.budget, {
    launcher: deps.launcher,
    ...(now ? { now } : {}),
    beforeLaunch: (g) => startIfQueued(deps, g),
    launch: async (g) => {
      const job = await deps.jobs.get(g.site, g.token);
      // Stopped since it asked: no worker starts (the grant's places go back; its finalize releases the rest).
      if (!job || job.state !== 'RUNNING' || job.stop) return 0;
      const r = await launchWorkers(deps, job, g.count, by === 'split' ? 'split' : 'reaper');
      if (r.failed > 0) {
        const again = await deps.jobs.get(g.site, g.token);
        if (again?.nextLaunchAt) await deps.grants.defer(g.site, g.token, Date.parse(again.nextLaunchAt));
      }
      return r.started;
    },
  });
  for (const g of report.granted) {
    if (g.first && g.waitedMs !== undefined)
      publishSiteMetrics(deps.env.stage, g.site, { QueueWait: g.waitedMs });
  }
  if (report.used !== undefined)
    publishMetrics(deps.env.stage, { BudgetInUse: report.used, JobsQueued: report.queued ?? 0 });
  if (report.gaveUp) logger.warn('granter pass lost every race; the next pass grants', { by, ...report });
  return report;
}

/**
 * Before a grant's workers start: a QUEUED job becomes RUNNING; a job that ended, or a queued one that was stopped
 * (cancelled while it waited), wants none any more.
 */
async function startIfQueued(deps: Pick<PipelineDeps, 'jobs' | 'tracing'>, g: Grant): Promise<boolean> {
  const job = await deps.jobs.get(g.site, g.token);
  if (!job || isTerminal(job.state) || job.state === 'FINALIZING') return false;
  if (job.state === 'QUEUED' && job.stop) return false;
  if (job.state === 'RUNNING') return true;
  if (job.state !== 'QUEUED') return false;
  const running = await deps.jobs.transition(g.site, g.token, 'RUNNING', {
    runningAt: new Date().toISOString(),
  });
  if (running) {
    jobLogger(g.site, g.token).info('workers granted; job running', { workers: g.count });
    // The wait for workers, QUEUED → RUNNING, recorded by the one granter whose move won.
    const waited = startJobSpan(deps.tracing, 'rowfleet.queued', running, {
      startTime: new Date(running.queuedAt ?? running.receivedAt),
    });
    waited.setAttribute('rowfleet.workers_granted', g.count);
    waited.end(new Date(running.runningAt ?? Date.now()));
  }
  // Another granter may have moved it first: running either way.
  return (running ?? (await deps.jobs.get(g.site, g.token)))?.state === 'RUNNING';
}

/** The reaper's figures of the budget: the oldest wait of a queued job (the alarm's input). */
export async function publishQueueFigures(
  deps: Pick<PipelineDeps, 'env' | 'grants'>,
  now = Date.now(),
): Promise<void> {
  const { state, demand } = await deps.grants.read(false);
  const s = queueStats(state, demand, now);
  publishMetrics(deps.env.stage, {
    BudgetInUse: s.used,
    JobsQueued: s.queued,
    OldestQueuedWait: s.oldestWaitMs,
  });
}
