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
  /** The template of a processor that fills one (mail): one of the site's (default: its first). */
  readonly template?: string;
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

/** One problem of the whole file the check found (e.g. PROCESSOR_FIELDS_MISSING naming the columns). */
export interface CheckProblem {
  readonly code: string;
  readonly message: string;
  readonly columns?: readonly string[];
  readonly line?: number;
}

/** One record the split would reject. */
export interface CheckRejected {
  readonly record: number;
  readonly line: number;
  readonly code: string;
  readonly message: string;
}

/** A record's output rendered as the run would make it, without its side effect. */
export type CheckOutput =
  | {
      readonly kind: 'mail';
      readonly from: string;
      readonly to: string;
      readonly subject: string;
      readonly text: string;
      readonly html?: string;
    }
  | {
      readonly kind: 'entries';
      readonly entries: readonly {
        readonly name: string;
        readonly contentType: string;
        readonly text: string;
      }[];
    }
  | { readonly kind: 'none'; readonly reason: string }
  /** The record would fail with this code (as errors.csv would say), e.g. MAIL_INVALID_ADDRESS. */
  | { readonly kind: 'error'; readonly code: string; readonly message: string };

export interface CheckSample {
  readonly record: number;
  readonly line: number;
  readonly output: CheckOutput;
}

/** What the run would take and cost at list prices. */
export interface CheckEstimate {
  /** Workers the job would run with. */
  readonly workers: number;
  /** Workers the budget would give now. */
  readonly workersNow: number;
  readonly seconds: number;
  readonly region: string;
  readonly usd: number;
  readonly jpy: number;
  readonly jpyPerUsd: number;
  /** When the prices used were read (YYYY-MM-DD). */
  readonly pricesAsOf: string;
  readonly breakdown: readonly { readonly service: string; readonly usd: number; readonly basis: string }[];
}

/** POST /jobs?check=true → 200: the whole-file validation, three rendered samples and the estimate; no job. */
export interface CheckResult {
  readonly check: true;
  readonly site: string;
  readonly processor: string;
  readonly template?: string;
  readonly fileName?: string;
  /** Absent when the file was refused before its encoding was known. */
  readonly encoding?: string;
  readonly delimiter: string;
  readonly header: readonly string[];
  readonly records: number;
  readonly valid: number;
  /** Whether a run of this file can start (no problem of the whole file). */
  readonly ok: boolean;
  readonly problems: readonly CheckProblem[];
  readonly rejected: { readonly count: number; readonly first: readonly CheckRejected[] };
  /** The columns the processor needs from the header, and those of them the header lacks. */
  readonly needs: { readonly columns: readonly string[]; readonly missing: readonly string[] };
  readonly samples: readonly CheckSample[];
  readonly estimate?: CheckEstimate;
}

/** A record of the corrections that is not run again, and why (it succeeded, or is in doubt). */
export interface NotRun {
  readonly record: number;
  readonly status: string;
  readonly reason: string;
}

/** POST /jobs/{token}/resubmit (body: the corrected results.csv) → 202: the job's next attempt. */
export interface ResubmitResult {
  readonly token: string;
  readonly attempt: number;
  /** Records the attempt runs. */
  readonly run: number;
  /** The first records not run again. */
  readonly notRun: readonly NotRun[];
  readonly notRunCount: number;
  readonly job: JobView;
}

/** GET /jobs/{token}/results: a link to the job's latest results.csv. */
export interface ResultsLink {
  readonly url: string;
  readonly fileName: string;
}
