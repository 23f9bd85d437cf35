/**
 * What the console reads from and sends to the API, as JSON on the wire. The answers of the routes are core's own
 * types, defined once in core's Node-free wire modules (core/intake/wire.ts and the wire.ts beside each owner:
 * type-only, importing nothing from Node or the SDK, so this DOM-only type-check can read them); the names the
 * console uses for some of them are aliases. What only the console sends or is given (upload options, its build
 * settings) is defined here. web/README.md describes the JSON of each route the console uses.
 */

// The states and which of them are final: the pipeline's own rule (a module without imports, bundled as is).
import { isTerminal, type JobState } from '../../core/jobs/states.ts';
export type { JobState };
export const isFinished = isTerminal;

export type { AttemptSummary as AttemptView } from '../../core/jobs/wire.ts';
export type { ErrorRow } from '../../core/messages/wire.ts';
export type { Timeline, TimelineBar, TimelineLane, TimelinePhase } from '../../core/shared/wire.ts';
export type { OfficeLine, PeriodUsage, UsageFigures } from '../../core/usage/wire.ts';
export type {
  CheckAnswer as CheckResult,
  CheckProblem,
  CheckRejected,
  CheckSample,
  Estimate as CheckEstimate,
  ErrorPage,
  JobsPage,
  JobView,
  NotRun,
  ResubmitAnswer as ResubmitResult,
  SampleOutput as CheckOutput,
  UsageAnswer as UsageResponse,
} from '../../core/intake/wire.ts';

export interface ApiErrorBody {
  readonly code: string;
  readonly message: string;
  readonly line?: number;
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

/** GET /jobs/{token}/results: a link to the job's latest results.csv. */
export interface ResultsLink {
  readonly url: string;
  readonly fileName: string;
}
