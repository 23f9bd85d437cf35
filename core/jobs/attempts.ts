import { type TableRef, updateIf } from '../shared/dynamo.ts';
import type { JobState } from './states.ts';
import type { AttemptSummary } from './wire.ts';
// The wire shapes are defined Node-free in ./wire.ts (the console reads them); their names stay importable here.
export type { AttemptSummary };

/**
 * Attempts of a job. A job's first run is its attempt 1; a retry (POST /jobs/{token}/retry) is another attempt of
 * the same job — same token, same site, same idempotency scope (effect claims are keyed by the job's token, so a
 * record whose effect was claimed in any attempt is never run again) — that runs only the records a retry may run,
 * read from the job's original validated source with their original numbers and lines. One attempt at a time:
 * an attempt starts with one conditional write on the job item ({@link beginAttempt}) that only a finished job
 * at the expected attempt passes. The job item's counts stay the job's (succeeded + failed + rejected = total
 * over every attempt); its chunk bookkeeping (totalChunks, chunksDone, the chunk sets, the queue) is the current
 * attempt's, reset by that write; parts, results and the finalize lease are per attempt (keys.ts, lease.ts).
 */

/** The states a job may be retried from: finished with a zip (its failures listed, the records a retry may run). */
export const RETRYABLE_FROM: readonly JobState[] = ['SUCCEEDED', 'PARTIAL', 'FAILED', 'CANCELLED'];

/** The fields of the job item this module reads. */
interface AttemptedJob {
  readonly state: JobState;
  readonly attempt?: number;
  readonly attempts?: readonly AttemptSummary[];
  readonly totalRecords?: number;
  readonly rejected?: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly receivedAt: string;
  readonly finishedAt?: string;
}

/** The job's current attempt (1 until a retry started another). */
export const currentAttempt = (job: Pick<AttemptedJob, 'attempt'>): number => job.attempt ?? 1;

/**
 * The job's attempts, oldest first, the current one as it is now. A job never retried keeps no list: its one
 * attempt is the job itself.
 */
export function attemptsOf(job: AttemptedJob): AttemptSummary[] {
  const list = job.attempts?.length ? [...job.attempts] : [firstAttempt(job)];
  const i = list.length - 1;
  const cur = list[i]!;
  // The current attempt's state is the job's (the list is written when an attempt starts and when it ends).
  list[i] = cur.endedAt ? cur : { ...cur, state: job.state };
  return list;
}

/** A job's first run as an attempt (from the job item: a job never retried has no list). */
export function firstAttempt(job: AttemptedJob): AttemptSummary {
  const records = (job.totalRecords ?? 0) - (job.rejected ?? 0);
  return {
    n: 1,
    state: job.state,
    records,
    ...(job.finishedAt ? { succeeded: job.succeeded, failed: job.failed, endedAt: job.finishedAt } : {}),
    startedAt: job.receivedAt,
  };
}

/** The current attempt ended as `state`: its own figures (what it added to the job's counts since it began). */
export function endedAttempt(
  job: AttemptedJob,
  state: JobState,
  counts: { readonly succeeded: number },
  endedAt: string,
): AttemptSummary[] {
  const list = attemptsOf(job);
  const cur = list[list.length - 1]!;
  const succeeded = counts.succeeded - (cur.before?.succeeded ?? 0);
  list[list.length - 1] = { ...cur, state, succeeded, failed: cur.records - succeeded, endedAt };
  return list;
}

export interface AttemptStart {
  /** The attempt the job is at now (the write fails if another attempt started since it was read). */
  readonly from: number;
  /** The counting sets of the attempt the job is at now (they go: chunk-count.ts chunkSetNames). */
  readonly fromChunkSets: readonly string[];
  /** The job's attempts with the new one last. */
  readonly attempts: readonly AttemptSummary[];
  readonly queueName: string;
  readonly totalChunks: number;
  /** The job's failed count without the records the new attempt runs (they are counted again by it). */
  readonly failed: number;
  /**
   * The job's rejected count when it changes (a resubmission runs records the split rejected, and rejects rows of
   * its own): counted as the attempt starts. Absent: unchanged.
   */
  readonly rejected?: number;
  readonly at: string;
}

/**
 * Starts the next attempt of a finished job (one of RETRYABLE_FROM, at attempt `from`): one conditional write,
 * so of two retries asked at once exactly one starts an attempt. The job goes back to QUEUED (and into the index
 * of jobs in flight) with the new attempt's chunk bookkeeping; its stop, error and finalize lease of the attempt
 * before go. The attempt's chunks are not sent yet: `chunksPendingSince` says so until {@link markChunksSent}
 * (the reaper sends them again when that takes longer than a caller may live: core/reaper/reaper.ts). The job item as it is now, or undefined when the job is not finished or another attempt started.
 */
export async function beginAttempt(
  ref: TableRef,
  key: Record<string, string>,
  s: AttemptStart,
): Promise<Record<string, unknown> | undefined> {
  const sets = s.fromChunkSets;
  const names: Record<string, string> = { '#state': 'state', '#stop': 'stop', '#error': 'error' };
  sets.forEach((name, i) => (names[`#c${i}`] = name));
  const values: Record<string, unknown> = {
    ':queued': 'QUEUED',
    ':next': s.from + 1,
    ':attempts': s.attempts,
    ':queue': s.queueName,
    ':chunks': s.totalChunks,
    ':zero': 0,
    ':failed': s.failed,
    ':at': s.at,
    ':active': 'Y',
    ...(s.rejected !== undefined ? { ':rejected': s.rejected } : {}),
  };
  RETRYABLE_FROM.forEach((st, i) => (values[`:from${i}`] = st));
  if (s.from > 1) values[':cur'] = s.from;
  const remove = [
    '#stop',
    '#error',
    'finishedAt',
    'finalizingAt',
    'finalizeHolder',
    'runningAt',
    'gaveUpChunks',
    'totalSeen',
    'retryable',
    'launchFailures',
    'lastLaunchAt',
    'nextLaunchAt',
    'lastLaunchError',
    'chunksSentAt',
    ...sets.map((_, i) => `#c${i}`),
  ];
  const r = await updateIf(ref, key, {
    UpdateExpression:
      'SET #state = :queued, attempt = :next, attempts = :attempts, queueName = :queue, totalChunks = :chunks, ' +
      'chunksDone = :zero, failed = :failed, queuedAt = :at, active = :active, chunksPendingSince = :at' +
      (s.rejected !== undefined ? ', rejected = :rejected ' : ' ') +
      `REMOVE ${remove.join(', ')}`,
    ConditionExpression:
      `attribute_exists(pk) AND #state IN (${RETRYABLE_FROM.map((_, i) => `:from${i}`).join(', ')}) AND ` +
      (s.from > 1 ? 'attempt = :cur' : 'attribute_not_exists(attempt)'),
    ExpressionAttributeNames: names,
    ExpressionAttributeValues: values,
    ReturnValues: 'ALL_NEW',
  });
  return r?.Attributes;
}

/**
 * The condition that a write belongs to attempt `attempt` of the job (counting a chunk, taking the finalize
 * lease): a late message of an attempt before never touches the current one.
 */
export function attemptCondition(attempt: number): {
  readonly expression: string;
  readonly values: Record<string, number>;
} {
  return attempt > 1
    ? { expression: 'attempt = :attempt', values: { ':attempt': attempt } }
    : { expression: 'attribute_not_exists(attempt)', values: {} };
}

/**
 * Attempt `attempt`'s chunks were all sent (or, for an attempt with none, its finalize asked for): `chunksSentAt`
 * set and `chunksPendingSince` gone, so the reaper leaves the attempt to its workers. Conditional on the attempt:
 * a sender late for an attempt before never marks a later one, whose chunks may still be unsent. False when the
 * job is at another attempt (or gone).
 */
export async function markChunksSent(
  ref: TableRef,
  key: Record<string, string>,
  attempt: number,
  at: string,
): Promise<boolean> {
  const own = attemptCondition(attempt);
  const r = await updateIf(ref, key, {
    UpdateExpression: 'SET chunksSentAt = :at REMOVE chunksPendingSince',
    ConditionExpression: `attribute_exists(pk) AND ${own.expression}`,
    ExpressionAttributeValues: { ...own.values, ':at': at },
  });
  return r !== undefined;
}
