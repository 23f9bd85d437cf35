/**
 * The errors.csv row the API sends, as JSON on the wire: type-only and Node-free (it imports only other wire modules and
 * core/jobs/states.ts), because the console's type-check (web/tsconfig.json: DOM, no Node types) reads it through
 * web/src/types.ts; test/unit/web/src/types.test.ts fails if a wire module imports anything else.
 */

/** One row of errors.csv as the API answers it (GET /jobs/{token}/errors): the values as they are, not neutralised. */
export interface ErrorRow {
  readonly line: number;
  readonly record: number;
  readonly code: string;
  readonly message: string;
  readonly raw: string;
}
