import type { PipelineDeps } from '../deps.ts';
import { attemptsOf, currentAttempt } from '../jobs/attempts.ts';
import { keys } from '../jobs/keys.ts';
import type { Job } from '../jobs/store.ts';
import { decodeChunk, queueChunks, type ChunkMessage } from '../messages/chunk.ts';
import { requestFinalize } from '../messages/finalize-request.ts';
import { askForWorkers, grantWorkers, type GrantDeps } from './grant-workers.ts';

/*
 * Sending a retry's or a resubmission's attempt (core/intake/rerun-failed.ts launchAttempt) is one rule with two
 * callers: the API call whose write started the attempt, and the reaper when that call died before it had sent
 * everything (core/reaper/reaper.ts). It lives here, below both (the layers of docs/DESIGN.md §5), beside the
 * demand for workers it ends with.
 */

/** What sending an attempt uses: its queue and chunks, the job item's mark, the demand and grant of its workers. */
export type AttemptSendDeps = GrantDeps & Pick<PipelineDeps, 'objects' | 'queues'>;

export interface SendOptions {
  /**
   * Who runs a granter pass once the demand is asked: the API call that started the attempt grants at once, as
   * a split does; the reaper grants in its own pass, right after (none here).
   */
  readonly grant?: 'split';
}

/**
 * Sends the current attempt of `job` (the job item as the write that started the attempt left it, or as it is
 * now): its chunk messages on the attempt's queue with the attempt's traceparent, then marks them sent on the job
 * item (core/jobs/attempts.ts markChunksSent, conditional on the attempt), then asks for its workers. An attempt
 * with no chunk (a resubmission whose rows were all rejected) asks for its finalize instead. Safe to repeat, so
 * that the reaper may send again what a dead caller sent in part, or what a slow one is still sending: a chunk
 * sent twice is counted once and its part stored once (core/work/worker.ts settleChunk), a record's side effect is
 * claimed once (core/effects/claims.ts), and a finalize asked twice finalizes once (its lease). Until the mark is
 * written the job item keeps `chunksPendingSince`: the reaper sends the attempt again once that is older than
 * derivedTimings' attemptSendGraceSeconds. The job as it is after.
 */
export async function sendAttempt(
  deps: AttemptSendDeps,
  job: Job,
  chunks: readonly ChunkMessage[],
  o: SendOptions = {},
): Promise<Job> {
  const { site, token } = job;
  const attempt = currentAttempt(job);
  if (chunks.length === 0) {
    // Nothing for a worker: the finalize ends the attempt now (a second ask finds it RUNNING already).
    const running = await deps.jobs.transition(site, token, 'RUNNING', {
      runningAt: new Date().toISOString(),
    });
    await requestFinalize(deps, { site, token, attempt });
    await deps.jobs.markChunksSent(site, token, attempt, new Date().toISOString());
    return running ?? job;
  }
  if (!job.queueName) throw new Error(`job ${site}/${token} has no queue for attempt ${attempt}`);
  // The attempt joins the job's trace through its own span (its summary's), whichever caller sends.
  const trace = attemptsOf(job).at(-1)?.trace;
  const messages = chunks.map(({ traceparent: _stored, ...c }) => (trace ? { ...c, traceparent: trace } : c));
  await queueChunks(deps, site, token, job.queueName, messages);
  // Only once the last send succeeded: a caller dying before leaves the mark unwritten, and the reaper sends again.
  await deps.jobs.markChunksSent(site, token, attempt, new Date().toISOString());
  // A demand lost here (the caller died after the mark) is asked again by the reaper's every pass.
  await askForWorkers(deps, job);
  if (o.grant) await grantWorkers(deps, o.grant);
  return job;
}

/**
 * The reaper's half: sends the current attempt of the job again when its chunks are still unsent — read back as
 * launchAttempt stored them before its write (keys.attemptChunks: the retry's, or the resubmission's under its id).
 * Re-reads the job first, so that an attempt its sender marked meanwhile, or that another attempt replaced, is
 * left alone. The attempt sent again, or undefined when there was nothing to send.
 */
export async function resendAttempt(
  deps: AttemptSendDeps,
  site: string,
  token: string,
): Promise<{ readonly attempt: number; readonly chunks: number } | undefined> {
  const job = await deps.jobs.get(site, token);
  if (!job?.chunksPendingSince || (job.state !== 'QUEUED' && job.state !== 'RUNNING') || job.stop) return;
  const attempt = currentAttempt(job);
  const resubmit = attemptsOf(job).at(-1)?.resubmit;
  const text = (await deps.objects.bytes(keys.attemptChunks(site, token, attempt, resubmit))).toString(
    'utf8',
  );
  const chunks = text
    .split('\n')
    .filter(Boolean)
    .map((l) => decodeChunk(l));
  await sendAttempt(deps, job, chunks);
  return { attempt, chunks: chunks.length };
}
