import type { PipelineDeps } from '../deps.ts';
import { attemptsOf, currentAttempt } from '../jobs/attempts.ts';
import { keys } from '../jobs/keys.ts';
import type { Job } from '../jobs/store.ts';
import type { ErrorRow, RecordFailure } from '../messages/part.ts';
import { copyLocalEntries, FINALIZE_ENTRIES, type ZipWriter } from '../messages/zip.ts';

/**
 * The finalize of a retry's attempt (core/jobs/attempts.ts) produces the job's results merged over its attempts:
 * the zip of the attempt before with this attempt's records added, errors.csv with each record's latest outcome.
 * What the attempt before left is read from its own objects (its zip, its errors rows, the list of records a retry
 * may run it wrote), which this attempt never writes: a finalize taken over after a crash reads the same inputs.
 */
export interface EarlierResults {
  /** The records this attempt runs (the list its start wrote: keys.runs). */
  readonly runs: ReadonlySet<number>;
  /** The errors.csv rows of the attempt before whose records this attempt does not run: their outcome stands. */
  readonly kept: RecordFailure[];
  /** The job's zip as the attempt before left it: every record that succeeded so far. */
  readonly zipKey: string;
}

/** The entries every job's zip starts with, written by the finalize itself (never copied from an attempt before). */
export const OWN_ENTRIES: ReadonlySet<string> = new Set(Object.values(FINALIZE_ENTRIES));

/** What the attempts before this one left; undefined for a job's first attempt. */
export async function earlierResults(
  deps: Pick<PipelineDeps, 'objects'>,
  job: Job,
): Promise<EarlierResults | undefined> {
  const attempt = currentAttempt(job);
  if (attempt === 1) return undefined;
  const { site, token } = job;
  const before = attempt - 1;
  // A resubmission's attempt keeps its lists under its own id (core/intake/resubmit.ts).
  const id = attemptsOf(job).at(-1)?.resubmit;
  const runsKey = id
    ? keys.resubmit(site, token, attempt, id, 'runs.jsonl')
    : keys.runs(site, token, attempt);
  const runs = new Set<number>();
  for (const l of await lines(deps, runsKey, true)) runs.add(JSON.parse(l) as number);
  // Its rows the split's record rules reject: their outcome in this attempt (counted as it started).
  const kept: RecordFailure[] = id
    ? (await lines(deps, keys.resubmit(site, token, attempt, id, 'rejected.jsonl'), true)).map(
        (l) => JSON.parse(l) as RecordFailure,
      )
    : [];
  for (const l of await lines(deps, keys.errorRows(site, token, before))) {
    const r = JSON.parse(l) as ErrorRow;
    if (!runs.has(r.record)) {
      kept.push({
        n: r.record,
        line: r.line,
        code: r.code as RecordFailure['code'],
        message: r.message,
        raw: r.raw,
      });
    }
  }
  return { runs, kept, zipKey: job.resultKey ?? keys.result(site, token, before) };
}

/**
 * Copies the records of the job's zip as the attempt before left it into this attempt's zip; where its results.csv
 * begins (the outputs of the records it ran are read from it).
 */
export async function copyEarlierEntries(
  deps: Pick<PipelineDeps, 'objects'>,
  earlier: EarlierResults,
  zip: ZipWriter,
): Promise<{ copied: number; resultsAt?: number }> {
  const size = await deps.objects.size(earlier.zipKey);
  if (size === undefined) throw new Error(`the zip of the attempt before is gone: ${earlier.zipKey}`);
  let resultsAt: number | undefined;
  const copied = await copyLocalEntries(
    (start, end) => deps.objects.bytes(earlier.zipKey, { start, end }),
    size,
    zip,
    OWN_ENTRIES,
    undefined,
    (offset, name) => {
      if (name === FINALIZE_ENTRIES.results) resultsAt = offset;
    },
  );
  return { copied, ...(resultsAt !== undefined ? { resultsAt } : {}) };
}

/** The lines of a JSON-lines object; none when it does not exist, unless it is `required`. */
async function lines(deps: Pick<PipelineDeps, 'objects'>, key: string, required = false): Promise<string[]> {
  if (!required && (await deps.objects.size(key)) === undefined) return [];
  return (await deps.objects.bytes(key)).toString('utf8').split('\n').filter(Boolean);
}
