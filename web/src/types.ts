/**
 * What the console reads from and sends to the API, as JSON on the wire. These are the console's own types (the
 * console's type-check has no Node types, so it cannot read core's modules that use them);
 * test/unit/web/src/types.test.ts checks at compile time that what core answers is assignable to the types
 * here, so the two cannot drift apart unnoticed. The job states come from core (core/jobs/states.ts).
 * web/README.md describes the JSON of each route the console uses (errors, cancel, retry, usage among them).
 */

// The states and which of them are final: the pipeline's own rule (a module without imports, bundled as is).
import { isTerminal, type JobState } from '../../core/jobs/states.ts';
export type { JobState };
export const isFinished = isTerminal;

export interface ApiErrorBody {
  readonly code: string;
  readonly message: string;
  readonly line?: number;
}

/** GET /jobs/{token}; GET /jobs answers a page of them (JobsPage), newest first. */
/** GET /jobs?limit=&cursor=: one page of the site's jobs, newest first. */
export interface JobsPage {
  readonly jobs: JobView[];
  /** The cursor of the older jobs (`?cursor=`); absent on the last page. */
  readonly next?: string;
}

export interface JobView {
  readonly token: string;
  readonly site: string;
  readonly state: JobState;
  readonly fileName?: string;
  readonly office?: string;
  readonly processor: string;
  readonly encoding?: string;
  readonly rows: {
    readonly total: number;
    readonly succeeded: number;
    readonly failed: number;
    readonly rejected: number;
  };
  readonly progress: {
    readonly done: number;
    readonly total?: number;
    readonly chunksDone: number;
    readonly totalChunks?: number;
  };
  readonly error?: ApiErrorBody;
  readonly download?: { readonly url: string; readonly expiresInSeconds: number; readonly bytes?: number };
  readonly receivedAt: string;
  readonly finishedAt?: string;
  /** The job whose failed records this job re-runs (jobs made by an older POST /jobs/{token}/retry). */
  readonly retryOf?: string;
  /** The job's attempts, oldest first: its first run, then one per retry (POST /jobs/{token}/retry). */
  readonly attempts?: readonly AttemptView[];
  /** Records a retry may run now (0 while an attempt runs). */
  readonly retryable?: number;
}

/** One attempt of a job (core/jobs/attempts.ts). */
export interface AttemptView {
  readonly n: number;
  readonly state: JobState;
  /** Records the attempt runs. */
  readonly records: number;
  readonly succeeded?: number;
  readonly failed?: number;
  readonly startedAt: string;
  readonly endedAt?: string;
}

/** POST /uploads → 201. */
export interface PresignedUpload {
  readonly token: string;
  readonly site: string;
  readonly state: 'RECEIVED';
  readonly upload: {
    readonly url: string;
    readonly fields: Record<string, string>;
    readonly maxBytes: number;
  };
}

/** One row of a job's errors.csv: GET /jobs/{token}/errors?limit=&offset=. */
export interface ErrorRow {
  readonly line: number;
  readonly record: number;
  readonly code: string;
  readonly message: string;
  readonly raw: string;
}

export interface ErrorPage {
  readonly token: string;
  /** Every error row of the job (failed and rejected records). */
  readonly total: number;
  readonly offset: number;
  readonly limit: number;
  readonly errors: readonly ErrorRow[];
}

/** The figures the daily usage mail reports (core/usage/store.ts UsageFigures). */
export interface UsageFigures {
  readonly jobs: number;
  readonly rows: number;
  readonly failedRows: number;
  readonly rejectedJobs: number;
}

export interface OfficeLine {
  readonly id: string;
  readonly name: string;
  readonly figures: UsageFigures;
}

/** A period's figures per office and in total (core/usage/mail-content.ts PeriodUsage). */
export interface PeriodUsage {
  readonly offices: readonly OfficeLine[];
  readonly total: UsageFigures;
}

/** GET /usage?from=YYYY-MM-DD&to=YYYY-MM-DD. */
export interface UsageResponse {
  readonly site: { readonly id: string; readonly name: string; readonly timeZone: string };
  readonly from: string;
  readonly to: string;
  /** Every day of the period, oldest first (days without jobs have zero figures). */
  readonly days: readonly (PeriodUsage & { readonly day: string })[];
  /** The whole period. */
  readonly total: PeriodUsage;
  /** The next usage mail as it would be sent now. */
  readonly nextMail: {
    /** The day it reports, YYYY-MM-DD in the site's time zone. */
    readonly day: string;
    /** When the schedule sends it, ISO 8601 with offset. */
    readonly sendAt: string;
    readonly to: readonly string[];
    readonly subject: string;
    readonly text: string;
  };
}

/** Upload options: the query string of POST /jobs, the JSON body of POST /uploads. */
export interface JobOptions {
  readonly processor: string;
  readonly office?: string;
  readonly workers?: number;
  readonly simulateDelayMs?: number;
  readonly simulateErrorRate?: number;
  readonly maxFailureRate?: number;
}

/** Facts of the stage the console was built for, defined once in config/ and core/ and put in at build time. */
export interface ConsoleSettings {
  /** Largest file POST /jobs takes; larger files go through POST /uploads (a presigned S3 POST). */
  readonly directUploadMaxBytes: number;
  readonly processors: readonly string[];
  readonly defaultProcessor: string;
}
