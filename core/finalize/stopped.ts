import type { PipelineDeps } from '../deps.ts';
import type { Job, JobError } from '../jobs/store.ts';
import { UNPROCESSED_CODE, type JobStop } from '../stop/rules.ts';
import type { PartMeta, RecordFailure } from '../messages/part.ts';
import { jobLogger } from '../shared/log.ts';
import { claimOutcome, EffectClaims } from '../effects/claims.ts';
import { withRecordText } from './record-text.ts';
import { dosDateTime, LocalEntries } from '../messages/zip.ts';

/**
 * The finalize of a job stopped early (core/stop/rules.ts: cancelled, or over its failure rate). It holds the
 * finalize lease, so the job is out of RUNNING and nothing more is counted: what was counted is final. The zip
 * holds the counted chunks' results; every other record (neither in a counted chunk nor rejected by the split)
 * is reported by its effect claim when it has one (done: in the zip; failed or in doubt: in errors.csv, never run
 * again), and otherwise listed in errors.csv as never processed and counted as failed — a retry runs those
 * again. succeeded + failed + rejected = total still holds.
 */
export interface StoppedFinalize {
  /** The chunks counted before the stop, ascending: only their parts go into the zip. */
  readonly chunks: readonly number[];
  readonly state: 'CANCELLED' | 'FAILED';
  readonly stop: JobStop;
}

/**
 * First step of a stopped job's finalize: its workers take nothing more (the queue goes, then the workers are
 * stopped — they leave at once, see fargate-worker/main.ts), and the chunks counted before the stop are read.
 */
export async function haltStopped(
  deps: Pick<PipelineDeps, 'queues' | 'launcher' | 'jobs'>,
  job: Job & { stop: JobStop },
): Promise<StoppedFinalize> {
  const { site, token } = job;
  const queueUrl = job.queueName ? await deps.queues.queueUrl(job.queueName) : undefined;
  if (queueUrl) await deps.queues.deleteQueue(queueUrl);
  const stopped = await deps.launcher.stop(site, token);
  const chunks = await deps.jobs.countedChunks(site, token, job.totalChunks ?? 0);
  jobLogger(site, token).info('finalizing a job stopped early', {
    reason: job.stop.reason,
    chunksCounted: chunks.length,
    totalChunks: job.totalChunks,
    stoppedWorkers: stopped,
  });
  return {
    chunks,
    state: job.stop.reason === 'CANCELLED' ? 'CANCELLED' : 'FAILED',
    stop: job.stop,
  };
}

/**
 * What a stopped job's records that no counted chunk accounts for became. A record whose effect was claimed
 * (core/effects/claims.ts) is reported by its claim — `claimOutcome`: DONE is a success whose kept outputs go into
 * the zip, FAILED keeps its code, CLAIMED is IN_DOUBT — and only a record never touched (no claim, or RELEASED)
 * is CANCELLED / STOPPED_EARLY, the only ones a retry runs again.
 */
export interface UncountedRecords {
  /** errors.csv lines: failures by claim, IN_DOUBT, and the records never processed. */
  readonly failures: RecordFailure[];
  /** Records whose claim is DONE with its outputs: counted as succeeded, their entries in {@link entries}. */
  readonly succeeded: number;
  /** The DONE records' zip entries, in record order (appended after the counted chunks' entries). */
  readonly entries: Buffer;
  /** Records never processed (CANCELLED / STOPPED_EARLY). */
  readonly untouched: number;
}

/**
 * The records of a stopped job that nothing accounts for — not rejected by the split, not in a counted chunk's
 * range — resolved as {@link UncountedRecords} says, with one Query of the job's effect claims (none for a
 * processor without side effects: the Query finds nothing). Failures have their line and text read again from
 * the job's validated source (same decoder and scanner, so the same numbering); if that read fails, they are
 * listed by number alone (line 0) rather than not at all.
 *
 * The claims are read after the job's workers were told to stop (haltStopped). The local launcher waits for them
 * to exit; on ECS a task may still claim a record in the moment between StopTask and its SIGTERM (a worker of a
 * stopped job then aborts its records at once): such a record is listed as never processed, but its claim stays,
 * so a retry within the job's idempotency scope finds it and does not run it again. The DONE records' outputs
 * are held in memory until the zip is written: at most the records of the chunks in flight at the stop, each
 * with at most 64 KiB kept.
 */
export async function uncountedRecords(
  deps: Pick<PipelineDeps, 'env' | 'limits' | 'objects'>,
  job: Job,
  stop: JobStop,
  metas: readonly PartMeta[],
  failures: readonly RecordFailure[],
  /** The records the job's current attempt runs (a retry's attempt: core/jobs/attempts.ts); all when absent. */
  only?: ReadonlySet<number>,
  claims: Pick<EffectClaims, 'ofJob'> = new EffectClaims(deps.env.table, deps.limits.retentionDays),
): Promise<UncountedRecords> {
  const total = job.totalRecords ?? 0;
  const covered = new Uint8Array(total + 1);
  for (const f of failures) if (f.n >= 1 && f.n <= total) covered[f.n] = 1;
  for (const m of metas) {
    if (m.first === undefined || m.records === undefined) continue;
    for (let n = m.first; n < m.first + m.records && n <= total; n++) covered[n] = 1;
  }
  const entries = new LocalEntries(dosDateTime(new Date(job.receivedAt)));
  const uncounted = (n: number) => n >= 1 && n <= total && !covered[n] && (!only || only.has(n));
  if (covered.indexOf(0, 1) === -1)
    return { failures: [], succeeded: 0, entries: entries.bytes(), untouched: 0 };

  const claimed = await claims.ofJob(job.site, job.token, uncounted);
  const code = UNPROCESSED_CODE[stop.reason];
  const message = {
    CANCELLED: 'not processed: the job was cancelled first',
    FAILURE_RATE_EXCEEDED: 'not processed: the job stopped early (failure rate above maxFailureRate)',
    PROCESSOR_BROKEN: `not processed: the job's processor does not load (${stop.message})`,
  }[stop.reason];
  const missing = new Map<number, RecordFailure>();
  let succeeded = 0;
  let untouched = 0;
  for (let n = 1; n <= total; n++) {
    if (!uncounted(n)) continue;
    const outcome = claimOutcome(claimed.get(n));
    if (!outcome) {
      untouched++;
      missing.set(n, { n, line: 0, code, message, raw: '' });
    } else if ('outputs' in outcome) {
      for (const o of outcome.outputs) entries.add(o.name, o.data);
      succeeded++;
    } else missing.set(n, { n, line: 0, code: outcome.code, message: outcome.message, raw: '' });
  }
  const resolved = { succeeded, entries: entries.bytes(), untouched };
  if (missing.size === 0) return { failures: [], ...resolved };
  return { failures: await withRecordText(deps, job, [...missing.values()]), ...resolved };
}

/**
 * The job's error: why it stopped, with how many records were processed before the stop, how many of the rest
 * were reported by their effect claims, and how many never were processed.
 */
export function stoppedError(
  stop: JobStop,
  done: number,
  uncounted: Pick<UncountedRecords, 'failures' | 'succeeded' | 'untouched'>,
): JobError {
  const byClaim = uncounted.succeeded + uncounted.failures.length - uncounted.untouched;
  const claims =
    byClaim > 0
      ? `${byClaim} more had their effect claimed (reported by their claim: ${uncounted.succeeded} done, ` +
        `the others failed or IN_DOUBT; never run again); `
      : '';
  const tail =
    `${done} records were processed before the stop; ${claims}${uncounted.untouched} never were ` +
    `(errors.csv lists them as ${UNPROCESSED_CODE[stop.reason]}; a retry runs them again).`;
  return { code: stop.reason, message: `${stop.message} ${tail}` };
}
