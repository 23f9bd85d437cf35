/**
 * A record's status in results.csv, as the resubmit answer names it, as JSON on the wire: type-only and Node-free (it imports only other wire modules and
 * core/jobs/states.ts), because the console's type-check (web/tsconfig.json: DOM, no Node types) reads it through
 * web/src/types.ts; test/unit/web/src/types.test.ts fails if a wire module imports anything else.
 */

/** A record's status column in results.csv (core/finalize/results-sheet.ts statusOf). */
export type RecordStatus = 'succeeded' | 'failed' | 'rejected' | 'in_doubt' | 'cancelled' | 'stopped_early';
