import { jobLogger, logger } from '../shared/log.ts';
import { publishMetrics } from '../shared/metrics.ts';
import { derivedTimings } from '../../config/index.ts';
import { reportQueuePrefix } from '../../config/names.ts';
import type { PipelineDeps } from '../deps.ts';
import { requestFinalize } from '../messages/finalize-request.ts';
import { expiresAt, type Job } from '../jobs/store.ts';
import { isTerminal } from '../jobs/states.ts';
import { keys, reportQueueName } from '../jobs/keys.ts';
import { currentAttempt } from '../jobs/attempts.ts';
import { askForWorkers, grantWorkers, publishQueueFigures } from '../budget/grant-workers.ts';
import { resendAttempt } from '../budget/attempt-send.ts';
import { errorMessage } from '../shared/errors.ts';
import { jobKey } from '../budget/policy.ts';
import { endJobSpan } from '../shared/trace.ts';
import { publishBacklog } from './backlog.ts';

/** What a reaper pass uses: every job in flight, their queues, leases, grants and workers. */
export type ReaperDeps = Pick<
  PipelineDeps,
  'budget' | 'env' | 'grants' | 'jobs' | 'launcher' | 'limits' | 'objects' | 'queues' | 'timings' | 'tracing'
>;

/** What one pass of the reaper did. */
export interface ReapReport {
  /**
   * Workers the pass's granter launched (`workers` granted, `failed` of them refused): jobs leaving the queue,
   * jobs whose workers died (their places given back by reconciliation), refused launches retried.
   */
  readonly relaunched: { site: string; token: string; workers: number; failed?: number }[];
  /** Places held without a live task (a granter or a worker that died) given back to the budget. */
  readonly placesReclaimed: number;
  /** Jobs whose workers died (their places reclaimed): stalled, until the pass grants them again. */
  readonly stalled: { site: string; token: string }[];
  /** Presigned jobs whose file never came before the form expired (plus a grace): EXPIRED. */
  readonly expired: { site: string; token: string }[];
  /**
   * Attempts (a retry's, a resubmission's) whose chunks were still not all sent past the grace (their sender died
   * between the write that started them and its last send): sent again, `chunks` of them.
   */
  readonly attemptsResent: { site: string; token: string; attempt: number; chunks: number }[];
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
  /**
   * An attempt whose chunks are not all sent this long after it started lost its sender, and is sent again.
   * @default the stage's derived `attemptSendGraceSeconds`
   */
  readonly sendGraceSeconds?: number;
  readonly now?: Date;
}

const age = (iso: string | undefined, now: Date) =>
  iso ? (now.getTime() - Date.parse(iso)) / 1000 : Infinity;

/**
 * Keeps jobs moving where at-least-once delivery and dying tasks leave them: RunTask tasks are never
 * replaced by ECS, a worker can die after counting the last chunk, a finalize can die mid-way.
 * Safe to run any time and concurrently with the pipeline: every action is idempotent or guarded.
 */
export async function reap(deps: ReaperDeps, o: ReapOptions = {}): Promise<ReapReport> {
  const now = o.now ?? new Date();
  const graceSeconds = o.graceSeconds ?? deps.timings.stallGraceSeconds;
  const derived = derivedTimings(deps.timings);
  const leaseSeconds = derived.finalizeLeaseSeconds;
  const sendGraceSeconds = o.sendGraceSeconds ?? derived.attemptSendGraceSeconds;
  const active = await deps.jobs.listActive();
  const listedAt = Date.now();
  const tasks = await deps.launcher.list();

  const finalizeRequested: ReapReport['finalizeRequested'] = [];
  const attemptsResent: ReapReport['attemptsResent'] = [];
  const expired: ReapReport['expired'] = [];
  for (const job of active) {
    const log = jobLogger(job.site, job.token);
    if (job.state === 'RECEIVED') {
      if (await expire(deps, job, now)) expired.push({ site: job.site, token: job.token });
    } else if ((job.state === 'RUNNING' || job.state === 'QUEUED') && job.stop) {
      // Stopped early (cancelled, over its failure rate): no worker is granted; its finalize is asked again.
      log.warn('reaper: the job was stopped and is still queued or running; asking for its finalize');
      await requestFinalize(deps, { site: job.site, token: job.token });
      finalizeRequested.push({ site: job.site, token: job.token });
    } else if (
      (job.state === 'RUNNING' || job.state === 'QUEUED') &&
      job.chunksPendingSince !== undefined &&
      age(job.chunksPendingSince, now) > sendGraceSeconds &&
      // Every chunk counted: every one was sent (its sender died before the mark); its finalize is next, below.
      !(job.totalChunks && job.chunksDone >= job.totalChunks)
    ) {
      // A retry's or a resubmission's attempt whose sender died before it had sent every chunk (or asked for the
      // finalize of an attempt with none): nothing else would ever run them. Sent again, the same messages.
      log.warn('reaper: an attempt was started but its chunks were never all sent; sending them again', {
        attempt: currentAttempt(job),
        pendingSince: job.chunksPendingSince,
      });
      try {
        const resent = await resendAttempt(deps, job.site, job.token);
        if (resent) attemptsResent.push({ site: job.site, token: job.token, ...resent });
      } catch (err) {
        // One job's failure never stops the pass: the next pass tries again.
        log.error('reaper: sending an attempt again failed', { error: errorMessage(err) });
      }
    } else if (
      job.state === 'RUNNING' &&
      job.totalChunks !== undefined &&
      job.chunksDone >= job.totalChunks
    ) {
      log.warn('reaper: every chunk counted but the job is still running; asking for the finalize');
      await requestFinalize(deps, { site: job.site, token: job.token });
      finalizeRequested.push({ site: job.site, token: job.token });
    } else if (job.state === 'RUNNING' || job.state === 'QUEUED') {
      // Its demand kept current (records and chunks left), or asked again if a split died before asking.
      await askForWorkers(deps, job);
    } else if (job.state === 'FINALIZING' && age(job.finalizingAt, now) > leaseSeconds) {
      log.warn('reaper: a finalize died; asking for it again');
      await requestFinalize(deps, { site: job.site, token: job.token });
      finalizeRequested.push({ site: job.site, token: job.token });
    }
  }

  // The budget: places held without a live task (past the grace a starting task gets) go back, then one
  // granter pass grants what is free — to queued jobs, and again to running jobs whose workers died.
  const reclaimed = await deps.grants.reconcile(tasks, listedAt, graceSeconds * 1000);
  const stalled = active
    .filter((j) => reclaimed.jobs.includes(jobKey(j.site, j.token)))
    .map((j) => ({ site: j.site, token: j.token }));
  for (const s of stalled) jobLogger(s.site, s.token).warn('reaper: job stalled (its workers are gone)');
  const pass = await grantWorkers(deps, 'reaper', () => now.getTime());
  const relaunched: ReapReport['relaunched'] = pass.granted.map((g) => {
    const failed = pass.notLaunched.find((n) => n.site === g.site && n.token === g.token)?.count;
    return { site: g.site, token: g.token, workers: g.count, ...(failed ? { failed } : {}) };
  });
  for (const r of relaunched)
    jobLogger(r.site, r.token).info('reaper: workers granted and launched', {
      workers: r.workers,
      failed: r.failed,
    });
  await publishQueueFigures(deps);
  // Each site's backlog, from the jobs in flight listed at the pass's start.
  publishBacklog(deps, active, now.getTime());

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
    // A retry starting fills its attempt's queue a moment before it moves the job (core/intake/rerun-failed.ts).
    if (job && token && q.url.endsWith(`/${reportQueueName(deps.env.stage, token, currentAttempt(job) + 1)}`))
      continue;
    await deps.queues.deleteQueue(q.url);
    queuesDeleted++;
  }
  const report = {
    relaunched,
    placesReclaimed: reclaimed.released,
    stalled,
    expired,
    attemptsResent,
    finalizeRequested,
    tasksStopped,
    queuesDeleted,
  };
  publishMetrics(deps.env.stage, {
    JobsStalled: stalled.length,
    JobsExpired: expired.length,
    FinalizesRequeued: finalizeRequested.length,
    AttemptsResent: attemptsResent.length,
    IdleTasksStopped: tasksStopped,
    OrphanQueuesDeleted: queuesDeleted,
  });
  logger.info('reaper pass', { active: active.length, tasks: tasks.length, ...report });
  return report;
}

/**
 * A presigned job whose upload form expired (plus a grace) without its file arriving: EXPIRED, with nothing to
 * clean (no queue, no worker was ever made for it), its item kept for the retention period. A file that did
 * arrive is left to its split (its S3 event is on the way).
 */
async function expire(
  deps: Pick<PipelineDeps, 'jobs' | 'limits' | 'objects' | 'timings' | 'tracing'>,
  job: Job,
  now: Date,
): Promise<boolean> {
  const t = deps.timings;
  if (job.upload !== 'presigned' || job.sourceKey !== keys.source(job.site, job.token)) return false;
  if (age(job.receivedAt, now) <= t.uploadFormSeconds + t.uploadExpiryGraceSeconds) return false;
  if ((await deps.objects.size(job.sourceKey)) !== undefined) return false;
  const done = await deps.jobs.transition(job.site, job.token, 'EXPIRED', {
    error: {
      code: 'UPLOAD_EXPIRED',
      message: `No file was uploaded before the upload form expired (${t.uploadFormSeconds} s).`,
    },
    finishedAt: now.toISOString(),
    expiresAt: expiresAt(deps.limits.retentionDays, now.getTime()),
  });
  if (done) {
    jobLogger(job.site, job.token).info('reaper: presigned job never uploaded; EXPIRED');
    endJobSpan(deps.tracing, done, 'EXPIRED', now);
  }
  return done !== undefined;
}

/**
 * Releases the finalize leases whose holder is known to be dead (a local runtime that was killed: only one runs
 * per state directory, so any other instance's lease is a dead one) and asks for those finalizes again at once,
 * instead of waiting the lease out. On AWS nothing is known dead: the lease timeout stays the rule.
 */
export async function releaseDeadLeases(
  deps: Pick<PipelineDeps, 'env' | 'jobs' | 'queues'>,
  isDead: (holder: string) => boolean,
): Promise<{ site: string; token: string }[]> {
  const released: { site: string; token: string }[] = [];
  for (const job of await deps.jobs.listActive()) {
    if (job.state !== 'FINALIZING' || !job.finalizingAt || !job.finalizeHolder) continue;
    if (!isDead(job.finalizeHolder)) continue;
    if (!(await deps.jobs.releaseFinalize(job.site, job.token, job.finalizingAt))) continue;
    jobLogger(job.site, job.token).warn('finalize lease of a dead holder released; finalizing again', {
      holder: job.finalizeHolder,
    });
    await requestFinalize(deps, { site: job.site, token: job.token });
    released.push({ site: job.site, token: job.token });
  }
  return released;
}
