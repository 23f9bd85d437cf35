import { BadRequestError } from '../shared/errors.ts';
import { getJobView, type JobView } from './operations.ts';
import { keys, reportQueueName } from '../jobs/keys.ts';
import type { PipelineDeps } from '../deps.ts';
import { isTerminal } from '../jobs/states.ts';
import { asRanges, decodeChunk, rangeNumbers, type ChunkMessage } from '../messages/chunk.ts';
import { attemptsOf, currentAttempt, RETRYABLE_FROM, type AttemptSummary } from '../jobs/attempts.ts';
import type { Job } from '../jobs/store.ts';
import { sendAttempt, type AttemptSendDeps } from '../budget/attempt-send.ts';
import { jobLogger } from '../shared/log.ts';
import { attemptTraceparent } from '../shared/trace.ts';
import { siteJob } from './site-job.ts';

/** What starting an attempt uses: its records list and chunks, the job, its queue, the grant of its workers. */
export type AttemptDeps = AttemptSendDeps;

/**
 * POST /jobs/{token}/retry (and `rowfleet retry`): the next attempt of a finished job (core/jobs/attempts.ts), of
 * the records a retry may run — those whose latest outcome is a processing failure (PROCESSING_FAILED,
 * CHUNK_FAILED) or "never processed" because an attempt stopped early (CANCELLED, STOPPED_EARLY):
 * core/stop/rules.ts RETRIED_CODES, listed by the finalize of the job's latest attempt. Never rejected records
 * (they would be rejected again), nor records whose outcome is unknown (IN_DOUBT) or that a processor refused with
 * a code of its own. Same token and site: records keep their numbers and lines, and a record whose side effect
 * was claimed in any attempt is never run again (its claim answers). One attempt at a time: while one runs
 * (the first included) the answer is 409 ATTEMPT_RUNNING naming it; a job with nothing a retry may run answers
 * 409 NOTHING_TO_RETRY.
 */
export async function retryFailedRecords(deps: AttemptDeps, site: string, token: string): Promise<JobView> {
  const job = await siteJob(deps, site, token);
  if (!isTerminal(job.state)) throw attemptRunning(job);
  // A retry re-reads the split's ranges: the values of the job's file. A record a resubmission gave other values
  // must not run with the old ones (an address the user corrected): sending the sheet back runs the failed records
  // again with the values each last ran with (core/intake/resubmit.ts).
  if (attemptsOf(job).some((a) => a.resubmit !== undefined)) {
    throw new BadRequestError(
      'RETRY_AFTER_RESUBMIT',
      `Job ${token} ran a resubmitted sheet: a retry would run its records with the file's first values. Resubmit ` +
        'its latest results.csv instead (GET /jobs/{token}/results, then POST /jobs/{token}/resubmit): the records ' +
        'that did not succeed run again with the values they last ran with.',
      409,
    );
  }
  const failedKey = keys.failed(site, token, currentAttempt(job));
  if (
    !RETRYABLE_FROM.includes(job.state) ||
    job.failed === 0 ||
    (await deps.objects.size(failedKey)) === undefined
  ) {
    throw new BadRequestError(
      'NOTHING_TO_RETRY',
      `Job ${token} is ${job.state} with ${job.failed} failed records, none of which a retry runs again ` +
        '(processing failures and records never processed are; rejected, IN_DOUBT and refused ones are not).',
      409,
    );
  }
  const wanted: number[] = [];
  const text = (await deps.objects.bytes(failedKey)).toString('utf8');
  for (const line of text.split('\n')) if (line) wanted.push((JSON.parse(line) as { n: number }).n);
  await startAttempt(deps, job, wanted);
  return getJobView(deps, site, token);
}

/** 409 naming the job's attempt under way. */
export function attemptRunning(job: Job): BadRequestError {
  const n = currentAttempt(job);
  return new BadRequestError(
    'ATTEMPT_RUNNING',
    `Job ${job.token} is ${job.state}: attempt ${n} is under way; one attempt runs at a time (retry once it is finished).`,
    409,
  );
}

/**
 * Starts the next attempt of a finished job over `records` (record numbers of the job, each in one of the split's
 * chunks): the general form of a retry ("run these records of the job again"). The chunks of the split's plan
 * (keys.chunkPlan) holding any of them are sent again on the attempt's own queue, each naming the attempt and
 * the records it runs, so the workers read the same byte ranges of the same validated source (same key and ETag)
 * and keep every record's number and line. One conditional write decides which of two concurrent callers starts
 * it (the other gets 409 ATTEMPT_RUNNING); only the winner then sends the attempt's chunks, so that an attempt is
 * normally sent once. A caller that dies between the write and its last send (the upload function's timeout, an
 * OOM) leaves the job marked `chunksPendingSince`: the reaper sends the attempt's kept chunks again once
 * `attemptSendGraceSeconds` has passed (core/budget/attempt-send.ts), and the attempt runs to its end. Sending
 * twice is safe: a chunk's part is stored once (S3 If-None-Match) and counted once, even for two deliveries
 * processed at once, and a record's side effect is claimed once (core/effects/claims.ts). The job as the attempt
 * left it queued.
 */
export async function startAttempt(deps: AttemptDeps, job: Job, records: readonly number[]): Promise<Job> {
  const { site, token } = job;
  const plan = await chunkPlan(deps, job);
  const attempt = currentAttempt(job) + 1;
  const chunks = attemptChunks(
    plan,
    [...new Set(records)].sort((a, b) => a - b),
    attempt,
  );
  // The records the attempt runs are those its chunks name (a number in no chunk of the job is none of its records).
  const runs = chunks.flatMap((c) => rangeNumbers(c.run ?? []));
  return launchAttempt(deps, job, {
    chunks,
    runs,
    runsKey: keys.runs(site, token, attempt),
    failed: job.failed - runs.length,
  });
}

/** What an attempt runs: its chunk messages and records, and the job's counts without them. */
export interface AttemptPlan {
  /** The attempt's chunk messages (numbered from 0, naming the attempt). */
  readonly chunks: readonly ChunkMessage[];
  /** Every record the attempt accounts for (the finalize reads the list: keys.runs, or a resubmission's own). */
  readonly runs: readonly number[];
  readonly runsKey: string;
  /** The job's failed count without the records the attempt runs (they are counted again by it). */
  readonly failed: number;
  /** The job's rejected count as the attempt starts, when it changes (a resubmission). */
  readonly rejected?: number;
  /** The resubmission's id (core/intake/resubmit.ts): the attempt runs its file. */
  readonly resubmit?: string;
}

/**
 * Starts the next attempt of a finished job with `plan` (a retry's or a resubmission's), one at a time: the
 * attempt's records list and chunk messages are written first, then one conditional write starts the attempt (a
 * concurrent caller gets 409 ATTEMPT_RUNNING), then only the winner sends the chunks and marks them sent
 * (sendAttempt, which the reaper runs again for a winner that died first: see {@link startAttempt}). An attempt
 * with no chunk (every row of a resubmission rejected) asks for its finalize at once. The job as the attempt left
 * it.
 */
export async function launchAttempt(deps: AttemptDeps, job: Job, plan: AttemptPlan): Promise<Job> {
  const { site, token } = job;
  const from = currentAttempt(job);
  const attempt = from + 1;
  const { runs } = plan;
  // The attempt joins the job's trace: its own span (a child of the job span) that its chunks link to, put on
  // them as they are sent (core/budget/attempt-send.ts); they are kept without the split's.
  const trace = attemptTraceparent(job.trace);
  const chunks = plan.chunks.map(({ traceparent: _first, ...c }) => c);
  const at = new Date().toISOString();
  const before = { succeeded: job.succeeded, failed: plan.failed };
  const next: AttemptSummary = {
    n: attempt,
    state: 'QUEUED',
    records: runs.length,
    startedAt: at,
    before,
    ...(trace ? { trace } : {}),
    ...(plan.resubmit ? { resubmit: plan.resubmit } : {}),
  };
  const queueName = reportQueueName(deps.env.stage, token, attempt);
  // The attempt's records list first: the same for every caller at this attempt (the finalize reads it). And its
  // chunk messages, for the reaper to send again if this caller dies before it has sent them all.
  await deps.objects.put(plan.runsKey, runs.join('\n') + '\n', 'application/x-ndjson');
  await deps.objects.put(
    keys.attemptChunks(site, token, attempt, plan.resubmit),
    chunks.map((c) => JSON.stringify(c) + '\n').join(''),
    'application/x-ndjson',
  );
  const started = await deps.jobs.beginAttempt(site, token, {
    from,
    fromChunks: job.totalChunks ?? 0,
    attempts: [...attemptsOf(job), next],
    queueName,
    totalChunks: chunks.length,
    failed: before.failed,
    ...(plan.rejected !== undefined ? { rejected: plan.rejected } : {}),
    at,
  });
  if (!started) {
    const now = await deps.jobs.get(site, token);
    if (now && !isTerminal(now.state)) throw attemptRunning(now);
    throw new BadRequestError(
      'RETRY_CONFLICT',
      `Job ${token} changed while its retry was being started (another attempt ran); ask again.`,
      409,
    );
  }
  // Only the caller whose write started the attempt sends it (the reaper sends it again if this one dies first).
  const sent = await sendAttempt(deps, started, chunks, { grant: 'split' });
  jobLogger(site, token).info('retry: attempt started', {
    attempt,
    records: runs.length,
    chunks: chunks.length,
    ...(plan.resubmit ? { resubmit: plan.resubmit } : {}),
  });
  return sent;
}

/** The split's chunk messages of a job (a job split before they were kept cannot be retried). */
async function chunkPlan(deps: Pick<PipelineDeps, 'objects'>, job: Job): Promise<ChunkMessage[]> {
  const key = keys.chunkPlan(job.site, job.token);
  if ((await deps.objects.size(key)) === undefined) {
    throw new BadRequestError(
      'NOTHING_TO_RETRY',
      `Job ${job.token} was split before its chunk plan was kept: it cannot be retried as an attempt.`,
      409,
    );
  }
  const text = (await deps.objects.bytes(key)).toString('utf8');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => decodeChunk(l));
}

/**
 * An attempt's chunk messages: each chunk of the split's plan that holds any of `runs` (sorted record numbers),
 * numbered from 0, naming the attempt and the records of its range it runs.
 */
export function attemptChunks(
  plan: readonly ChunkMessage[],
  runs: readonly number[],
  attempt: number,
): ChunkMessage[] {
  const out: ChunkMessage[] = [];
  let i = 0;
  for (const c of plan) {
    const mine: number[] = [];
    while (i < runs.length && runs[i]! < c.n) i++;
    while (i < runs.length && runs[i]! < c.n + c.records) mine.push(runs[i++]!);
    if (mine.length > 0) out.push({ ...c, chunk: out.length, attempt, run: asRanges(mine) });
  }
  return out;
}
