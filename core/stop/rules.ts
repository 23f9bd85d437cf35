import { type TableRef, updateIf } from '../shared/dynamo.ts';

/**
 * Stopping a job before its last record: the rules shared by a cancel (DELETE /jobs/{token}) and by a job whose
 * failure rate passed its `maxFailureRate`. A stop is recorded once on the job item; from then on the job takes no
 * new work (its workers leave, the reaper relaunches none) and its finalize zips what was counted before it began,
 * reports each other record whose effect was claimed by its claim (core/effects/claims.ts `claimOutcome`), and lists
 * every record never processed in errors.csv (core/finalize/stopped.ts).
 */

/** Why a job stopped early. */
export type StopReason = 'CANCELLED' | 'FAILURE_RATE_EXCEEDED' | 'PROCESSOR_BROKEN';

export interface JobStop {
  readonly reason: StopReason;
  /** When the stop was recorded (ISO 8601). */
  readonly at: string;
  /** What the caller or the rule said (kept for the job's error). */
  readonly message: string;
}

/**
 * The error code of a record a stopped job never processed (no effect claim, or a released one): in errors.csv,
 * counted as failed (so succeeded + failed + rejected = total still holds), and run again by a retry (POST
 * /jobs/{token}/retry) like a processing failure. A record whose effect was claimed never gets it.
 */
export const UNPROCESSED_CODE: Record<StopReason, 'CANCELLED' | 'STOPPED_EARLY' | 'PROCESSOR_BROKEN'> = {
  CANCELLED: 'CANCELLED',
  FAILURE_RATE_EXCEEDED: 'STOPPED_EARLY',
  // A worker could not load the job's processor (core/work/worker.ts): nothing of the job ran.
  PROCESSOR_BROKEN: 'PROCESSOR_BROKEN',
};

/**
 * The codes of records a retry runs again: they failed in processing, or were never processed. A record reported
 * by its effect claim (IN_DOUBT, DONE_RESULT_NOT_KEPT, a processor's own code) never has one of them.
 */
export const RETRIED_CODES: readonly string[] = [
  'PROCESSING_FAILED',
  'CHUNK_FAILED',
  ...Object.values(UNPROCESSED_CODE),
];

/**
 * Records a job must have processed before its failure rate can stop it: the first few records of a file say
 * little about the rest (a bad header row, a first chunk of odd records), and 100 keeps a 10 % threshold from
 * tripping on fewer than 11 failures.
 */
export const MIN_FAILURE_SAMPLE = 100;

/**
 * Whether a job must stop for its failure rate: more than `maxRate` of the records processed so far failed, once
 * at least MIN_FAILURE_SAMPLE were. Records rejected by the split are not processed and do not count. No rate
 * (undefined) never stops; 0 stops on the first failure after the sample, 1 never.
 */
export function failureRateExceeded(
  maxRate: number | undefined,
  processed: { readonly succeeded: number; readonly failed: number },
): boolean {
  if (maxRate === undefined || !Number.isFinite(maxRate)) return false;
  const n = processed.succeeded + processed.failed;
  return n >= MIN_FAILURE_SAMPLE && processed.failed > maxRate * n;
}

/** The job's `maxFailureRate` option (kept as text with the other worker options), or undefined. */
export function maxFailureRateOf(options: Readonly<Record<string, string>> | undefined): number | undefined {
  const v = options?.maxFailureRate;
  return v === undefined || v === '' ? undefined : Number(v);
}

/**
 * Records a stop on a job that is not finished and not stopped yet (RECEIVED, QUEUED or RUNNING): one conditional write,
 * so of a cancel and a failure-rate stop racing, one wins. The job item as it is now, or undefined when the job is
 * finishing, finished, already stopped or unknown.
 */
export async function recordStop(
  ref: TableRef,
  key: Record<string, string>,
  stop: JobStop,
): Promise<Record<string, unknown> | undefined> {
  const r = await updateIf(ref, key, {
    UpdateExpression: 'SET #stop = :stop',
    ConditionExpression:
      'attribute_exists(pk) AND attribute_not_exists(#stop) AND #state IN (:received, :queued, :running)',
    ExpressionAttributeNames: { '#stop': 'stop', '#state': 'state' },
    ExpressionAttributeValues: {
      ':stop': stop,
      ':received': 'RECEIVED',
      ':queued': 'QUEUED',
      ':running': 'RUNNING',
    },
    ReturnValues: 'ALL_NEW',
  });
  return r?.Attributes;
}

/**
 * Ends a RECEIVED job whose split has not planned it yet (no totals recorded) as CANCELLED, at once: nothing was
 * read, queued or started for it, so there is nothing to zip. A split under way then finds the job no longer
 * RECEIVED and stops. The job item as it is now, or undefined when the split planned it first.
 */
export async function cancelUnplanned(
  ref: TableRef,
  key: Record<string, string>,
  fields: { readonly stop: JobStop; readonly finishedAt: string; readonly expiresAt: number },
): Promise<Record<string, unknown> | undefined> {
  const r = await updateIf(ref, key, {
    UpdateExpression:
      'SET #state = :cancelled, #stop = :stop, #error = :error, finishedAt = :at, expiresAt = :exp REMOVE active',
    ConditionExpression: 'attribute_exists(pk) AND #state = :received AND attribute_not_exists(totalRecords)',
    ExpressionAttributeNames: { '#state': 'state', '#stop': 'stop', '#error': 'error' },
    ExpressionAttributeValues: {
      ':cancelled': 'CANCELLED',
      ':received': 'RECEIVED',
      ':stop': fields.stop,
      ':error': { code: 'CANCELLED', message: fields.stop.message },
      ':at': fields.finishedAt,
      ':exp': fields.expiresAt,
    },
    ReturnValues: 'ALL_NEW',
  });
  return r?.Attributes;
}
