/**
 * The answers of the API's routes, as JSON on the wire: type-only and Node-free (it imports only other wire modules and
 * core/jobs/states.ts), because the console's type-check (web/tsconfig.json: DOM, no Node types) reads it through
 * web/src/types.ts; test/unit/web/src/types.test.ts fails if a wire module imports anything else.
 */
import type { RecordStatus } from '../finalize/wire.ts';
import type { AttemptSummary, JobError } from '../jobs/wire.ts';
import type { JobState } from '../jobs/states.ts';
import type { ErrorRow } from '../messages/wire.ts';
import type { RowPreview } from '../processors/wire.ts';
import type { PeriodUsage } from '../usage/wire.ts';

/** GET /jobs/{token} (core/intake/operations.ts jobView); GET /jobs answers a page of them. */
export interface JobView {
  readonly token: string;
  readonly site: string;
  readonly state: JobState;
  readonly fileName?: string;
  readonly office?: string;
  readonly processor: string;
  readonly encoding?: string;
  readonly rows: { total: number; succeeded: number; failed: number; rejected: number };
  readonly progress: { done: number; total?: number; chunksDone: number; totalChunks?: number };
  readonly error?: JobError;
  readonly download?: { url: string; expiresInSeconds: number; bytes?: number };
  /**
   * A job waiting for or running workers (the single-job view only): the workers it holds in the stage's budget,
   * how many it should have, and its place in the queue while it has none (1 = next).
   */
  readonly workers?: { held: number; target: number; position?: number; queued: number };
  readonly receivedAt: string;
  readonly finishedAt?: string;
  /** The job whose failed records this job re-runs (jobs made by an older POST /jobs/{token}/retry). */
  readonly retryOf?: string;
  /**
   * The job's attempts, oldest first: its first run, then one per retry (POST /jobs/{token}/retry), each with
   * its state, the records it ran and (once ended) how many of them succeeded and failed.
   */
  readonly attempts: readonly AttemptSummary[];
  /** Records a retry may run now: 0 while an attempt runs or when none failed in a way a retry runs again. */
  readonly retryable: number;
}

/** GET /jobs: one page of the site's jobs, newest first, and the cursor of the next page when there is one. */
export interface JobsPage {
  readonly jobs: JobView[];
  /** Pass as `?cursor=` for the older jobs; absent on the last page. */
  readonly next?: string;
}

/** GET /jobs/{token}/errors: a page of the job's errors.csv rows. */
export interface ErrorPage {
  readonly token: string;
  /** Rows of the job's errors.csv (failed, rejected and never processed records). */
  readonly total: number;
  readonly offset: number;
  readonly limit: number;
  readonly errors: readonly ErrorRow[];
}

/** GET /usage: the site's usage per day and office, and the usage mail its schedule sends next. */
export interface UsageAnswer {
  readonly site: { readonly id: string; readonly name: string; readonly timeZone: string };
  readonly from: string;
  readonly to: string;
  /** Every day of the period, oldest first (days without jobs have zero figures). */
  readonly days: readonly (PeriodUsage & { readonly day: string })[];
  /** The whole period. */
  readonly total: PeriodUsage;
  readonly nextMail: {
    /** The day it reports (the day before the one it is sent on, in the site's time zone). */
    readonly day: string;
    /** When the site's schedule sends it, ISO 8601 with the time zone's offset. */
    readonly sendAt: string;
    /** Active recipients (the operators' BCC is not shown). */
    readonly to: readonly string[];
    readonly subject: string;
    readonly text: string;
  };
}

/** What a sample record would produce: its preview, or the record's refusal (its code, as errors.csv would say). */
export type SampleOutput =
  RowPreview | { readonly kind: 'error'; readonly code: string; readonly message: string };

/** A file-level problem: the run would be refused up front (`422`, REJECTED) with this code. */
export interface CheckProblem {
  readonly code: string;
  readonly message: string;
  readonly line?: number;
  /** PROCESSOR_FIELDS_MISSING: the header columns the processor needs and the file lacks. */
  readonly columns?: readonly string[];
}

/** A record the split would reject. */
export interface CheckRejected {
  readonly record: number;
  readonly line: number;
  readonly code: string;
  readonly message: string;
}

/** A sample record and what it would produce. */
export interface CheckSample {
  readonly record: number;
  readonly line: number;
  readonly output: SampleOutput;
}

/** The answer of POST /jobs?check=true (docs/check.md). */
export interface CheckAnswer {
  readonly check: true;
  readonly site: string;
  readonly processor: string;
  /** The template the run would fill (processors that take one). */
  readonly template?: string;
  readonly fileName?: string;
  /** As the job view names it (core/source/decode.ts); absent when the file was refused before it was known. */
  readonly encoding?: string;
  readonly delimiter: string;
  readonly header: readonly string[];
  /** Numbered records, rejected ones included (up to where the file was refused, for a refused file). */
  readonly records: number;
  /** Records the run would process (not rejected by the split). */
  readonly valid: number;
  /** False when the run would be refused up front: `problems` says why. */
  readonly ok: boolean;
  readonly problems: readonly CheckProblem[];
  readonly rejected: {
    readonly count: number;
    readonly first: readonly CheckRejected[];
  };
  readonly needs: { readonly columns: readonly string[]; readonly missing: readonly string[] };
  /** The first accepted records' outputs, as the run would produce them; empty when `ok` is false. */
  readonly samples: readonly CheckSample[];
  readonly estimate: Estimate;
}

/** A service the estimate prices. */
export type Service = 'fargate' | 'lambda' | 'sqs' | 'dynamodb' | 's3' | 'ses';

export interface CostLine {
  readonly service: Service;
  readonly usd: number;
  /** How the figure was reached, e.g. "2 tasks × 0.5 vCPU, 1 GB × 60 s". */
  readonly basis: string;
}

/** What the run would take and cost at list prices (core/intake/estimate.ts estimateRun). */
export interface Estimate {
  readonly workers: number;
  readonly workersNow: number;
  /** From the first worker's start to the last record (a wait for the budget not counted). */
  readonly seconds: number;
  readonly region: string;
  readonly usd: number;
  readonly jpy: number;
  readonly jpyPerUsd: number;
  readonly pricesAsOf: string;
  readonly breakdown: readonly CostLine[];
}

/** A record of the file that is not run, and why. */
export interface NotRun {
  readonly record: number;
  /** Its status in the job's latest results.csv. */
  readonly status: RecordStatus;
  readonly reason: string;
}

/** The answer (202): the attempt started, how many records it runs, those it does not run, and the job. */
export interface ResubmitAnswer {
  readonly token: string;
  readonly attempt: number;
  /** Records the attempt accounts for: those it runs, and rows the split's record rules reject (rejected in it). */
  readonly run: number;
  /** The first NOT_RUN_LISTED (core/intake/resubmit.ts) records not run, by record number. */
  readonly notRun: readonly NotRun[];
  readonly notRunCount: number;
  readonly job: JobView;
}
