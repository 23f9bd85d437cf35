/**
 * The usage figures the API sends, as JSON on the wire: type-only and Node-free (it imports only other wire modules and
 * core/jobs/states.ts), because the console's type-check (web/tsconfig.json: DOM, no Node types) reads it through
 * web/src/types.ts; test/unit/web/src/types.test.ts fails if a wire module imports anything else.
 */

/** Usage of a site: what the daily mail reports, per office and in total. */
export interface UsageFigures {
  /** Jobs that ended (SUCCEEDED, PARTIAL, FAILED or REJECTED). */
  readonly jobs: number;
  /** Records processed successfully. */
  readonly rows: number;
  /** Records that failed in a processor or were rejected at the split. */
  readonly failedRows: number;
  /** Jobs whose whole file was rejected (counted in `jobs`, with no records). */
  readonly rejectedJobs: number;
}

/** One line of the mail's table: an office and its figures. */
export interface OfficeLine {
  readonly id: string;
  readonly name: string;
  readonly figures: UsageFigures;
}

/** Figures of a period (a day or a month): per office, and the site's total. */
export interface PeriodUsage {
  readonly offices: readonly OfficeLine[];
  readonly total: UsageFigures;
}
