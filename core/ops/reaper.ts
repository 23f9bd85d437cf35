import { jobLogger, logger } from '../shared/log.ts';
import { publishMetrics } from '../shared/metrics.ts';
import { derivedTimings } from '../../config/index.ts';
import { reportQueuePrefix } from '../../config/names.ts';
import type { PipelineDeps } from '../deps.ts';
import { requestFinalize } from '../messages/finalize-request.ts';
import type { Job } from '../jobs/store.ts';
import { isTerminal } from '../jobs/states.ts';
import { relaunchCount } from '../split/worker-count.ts';

/** What one pass of the reaper did. */
export interface ReapReport {
  /** Jobs with chunks left and no live worker: workers started again. */
  readonly relaunched: { site: string; token: string; workers: number }[];
  /** Jobs whose every chunk was counted but whose finalize was never asked for (or died): asked again. */
  readonly finalizeRequested: { site: string; token: string }[];
  /** Worker tasks still running for jobs that are no longer running. */
  readonly tasksStopped: number;
  /** Job queues whose job is gone or finished. */
  readonly queuesDeleted: number;
}

export interface ReapOptions {
  /**
   * A job is stalled only once it has been running without a worker this long (workers take time to start).
   * @default the stage's `stallGraceSeconds`
   */
  readonly graceSeconds?: number;
  readonly now?: Date;
}

const age = (iso: string | undefined, now: Date) =>
  iso ? (now.getTime() - Date.parse(iso)) / 1000 : Infinity;

/**
 * Keeps jobs moving where at-least-once delivery and dying tasks leave them: RunTask tasks are never
 * replaced by ECS, a worker can die after counting the last chunk, a finalize can die mid-way.
 * Safe to run any time and concurrently with the pipeline: every action is idempotent or guarded.
 */
export async function reap(deps: PipelineDeps, o: ReapOptions = {}): Promise<ReapReport> {
  const now = o.now ?? new Date();
  const graceSeconds = o.graceSeconds ?? deps.timings.stallGraceSeconds;
  const leaseSeconds = derivedTimings(deps.timings).finalizeLeaseSeconds;
  const active = await deps.jobs.listActive();
  const tasks = await deps.launcher.list();
  const live = new Map<string, number>();
  for (const t of tasks) live.set(t.token, (live.get(t.token) ?? 0) + 1);

  const relaunched: ReapReport['relaunched'] = [];
  const finalizeRequested: ReapReport['finalizeRequested'] = [];
  for (const job of active) {
    const log = jobLogger(job.site, job.token);
    if (job.state === 'RUNNING' && job.totalChunks !== undefined && job.chunksDone >= job.totalChunks) {
      log.warn('reaper: every chunk counted but the job is still running; asking for the finalize');
      await requestFinalize(deps, { site: job.site, token: job.token });
      finalizeRequested.push({ site: job.site, token: job.token });
    } else if (job.state === 'RUNNING' && stalled(job, live, now, graceSeconds)) {
      const workers = relaunchCount(job);
      log.warn('reaper: job stalled (chunks left, no live worker); relaunching workers', { workers });
      await deps.launcher.launch({ site: job.site, token: job.token, count: workers });
      relaunched.push({ site: job.site, token: job.token, workers });
    } else if (job.state === 'FINALIZING' && age(job.finalizingAt, now) > leaseSeconds) {
      log.warn('reaper: a finalize died; asking for it again');
      await requestFinalize(deps, { site: job.site, token: job.token });
      finalizeRequested.push({ site: job.site, token: job.token });
    }
  }

  // Tasks and queues of jobs that are not running any more.
  const running = new Set(active.filter((j) => j.state === 'RUNNING').map((j) => j.token));
  let tasksStopped = 0;
  for (const token of new Set(tasks.map((t) => t.token))) {
    if (running.has(token)) continue;
    const site = tasks.find((t) => t.token === token)!.site;
    tasksStopped += await deps.launcher.stop(site, token);
  }
  let queuesDeleted = 0;
  const inFlight = new Set(active.map((j) => j.token));
  for (const q of await deps.queues.listWithTags(reportQueuePrefix(deps.env.stage))) {
    const { site, token } = q.tags;
    if (token && inFlight.has(token)) continue;
    // Orphaned: its job is finished or unknown. (A job being split owns its queue a moment before it
    // is RUNNING, so RECEIVED jobs keep theirs.)
    const job = site && token ? await deps.jobs.get(site, token) : undefined;
    if (job && !isTerminal(job.state)) continue;
    await deps.queues.deleteQueue(q.url);
    queuesDeleted++;
  }
  const report = { relaunched, finalizeRequested, tasksStopped, queuesDeleted };
  publishMetrics(deps.env.stage, {
    JobsStalled: relaunched.length,
    FinalizesRequeued: finalizeRequested.length,
    IdleTasksStopped: tasksStopped,
    OrphanQueuesDeleted: queuesDeleted,
  });
  logger.info('reaper pass', { active: active.length, tasks: tasks.length, ...report });
  return report;
}

function stalled(job: Job, live: Map<string, number>, now: Date, graceSeconds: number): boolean {
  if ((live.get(job.token) ?? 0) > 0) return false;
  return age(job.runningAt, now) > graceSeconds;
}
