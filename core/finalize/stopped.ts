import type { PipelineDeps } from '../deps.ts';
import type { Job, JobError } from '../jobs/store.ts';
import { UNPROCESSED_CODE, type JobStop } from '../jobs/stop.ts';
import type { PartMeta, RecordFailure } from '../messages/part.ts';
import { recordToRaw } from '../source/csv.ts';
import { decodeToUtf8 } from '../source/decode.ts';
import { scanRecordBatches } from '../source/scan.ts';
import { errorMessage } from '../shared/errors.ts';
import { jobLogger } from '../shared/log.ts';

/**
 * The finalize of a job stopped early (core/jobs/stop.ts: cancelled, or over its failure rate). It holds the
 * finalize lease, so the job is out of RUNNING and nothing more is counted: what was counted is final. The zip
 * holds exactly the counted chunks' results; every other record (neither in a counted chunk nor rejected by the
 * split) is listed in errors.csv as never processed and counted as failed, so succeeded + failed + rejected =
 * total still holds, and a retry runs them again.
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
  deps: PipelineDeps,
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
 * The records of a stopped job that nothing accounts for: not rejected by the split, not in a counted chunk's
 * range. Each is a failure with the stop's code (CANCELLED, or STOPPED_EARLY for a failure-rate stop), with its
 * line and text read again from the job's validated source (same decoder and scanner, so the same numbering); if
 * that read fails, they are listed by number alone (line 0) rather than not at all.
 */
export async function unprocessedRecords(
  deps: PipelineDeps,
  job: Job,
  stop: JobStop,
  metas: readonly PartMeta[],
  failures: readonly RecordFailure[],
  /** The records the job's current attempt runs (a retry's attempt: core/jobs/attempts.ts); all when absent. */
  only?: ReadonlySet<number>,
): Promise<RecordFailure[]> {
  const total = job.totalRecords ?? 0;
  const covered = new Uint8Array(total + 1);
  for (const f of failures) if (f.n >= 1 && f.n <= total) covered[f.n] = 1;
  for (const m of metas) {
    if (m.first === undefined || m.records === undefined) continue;
    for (let n = m.first; n < m.first + m.records && n <= total; n++) covered[n] = 1;
  }
  const code = UNPROCESSED_CODE[stop.reason];
  const message =
    stop.reason === 'CANCELLED'
      ? 'not processed: the job was cancelled first'
      : 'not processed: the job stopped early (failure rate above maxFailureRate)';
  const missing = new Map<number, RecordFailure>();
  for (let n = 1; n <= total; n++) {
    if (!covered[n] && (!only || only.has(n))) missing.set(n, { n, line: 0, code, message, raw: '' });
  }
  if (missing.size === 0) return [];
  try {
    const utf8 = decodeToUtf8(await deps.objects.stream(job.sourceKey));
    const opts = { maxRecordBytes: deps.limits.maxRecordBytes, withFields: true };
    for await (const batch of scanRecordBatches(utf8, opts)) {
      for (const ev of batch) {
        if (ev.kind !== 'record' || !missing.has(ev.n)) continue;
        missing.set(ev.n, {
          n: ev.n,
          line: ev.line,
          code,
          message,
          raw: recordToRaw(ev.fields ?? [], job.delimiter),
        });
      }
    }
  } catch (err) {
    jobLogger(job.site, job.token).warn(
      'unprocessed records listed without their lines: the source could not be read',
      {
        error: errorMessage(err),
      },
    );
  }
  return [...missing.values()];
}

/** The job's error: why it stopped, with how many records it did and did not process. */
export function stoppedError(stop: JobStop, done: number, unprocessed: number): JobError {
  const tail =
    `${done} records were processed before the stop; ${unprocessed} never were ` +
    `(errors.csv lists them as ${UNPROCESSED_CODE[stop.reason]}; a retry runs them again).`;
  return { code: stop.reason, message: `${stop.message} ${tail}` };
}
