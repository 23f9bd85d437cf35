/**
 * The job shapes the API sends, as JSON on the wire: type-only and Node-free (it imports only other wire modules and
 * core/jobs/states.ts), because the console's type-check (web/tsconfig.json: DOM, no Node types) reads it through
 * web/src/types.ts; test/unit/web/src/types.test.ts fails if a wire module imports anything else.
 */
import type { JobState } from './states.ts';

/** Why a job failed or was refused, as the job item keeps it and the API answers it. */
export interface JobError {
  readonly code: string;
  readonly message: string;
  readonly line?: number;
}

/** One attempt of a job as the job item keeps it and the job view shows it (core/jobs/attempts.ts). */
export interface AttemptSummary {
  /** 1 for the job's first run, then 2, 3, … */
  readonly n: number;
  /** The attempt's state while it is the job's current one (QUEUED … FINALIZING), then how it ended. */
  readonly state: JobState;
  /** Records the attempt runs (the first: every record the split accepted). */
  readonly records: number;
  /** Of those, how many succeeded and how many did not (known once the attempt ended). */
  readonly succeeded?: number;
  readonly failed?: number;
  readonly startedAt: string;
  readonly endedAt?: string;
  /** The job's counts when the attempt started (what it counted is added to them). */
  readonly before?: { readonly succeeded: number; readonly failed: number };
  /** A retry's attempt span context (traceparent, in the job's trace): its split, chunks and finalize hang from it. */
  readonly trace?: string;
  /**
   * The attempt runs a resubmitted file (core/intake/resubmit.ts): the id of its objects (keys.resubmit), whose
   * records run with the values the file gave them. Absent: a retry's attempt (the job's own values).
   */
  readonly resubmit?: string;
}
