/**
 * A record's preview as the check sends it, as JSON on the wire: type-only and Node-free (it imports only other wire modules and
 * core/jobs/states.ts), because the console's type-check (web/tsconfig.json: DOM, no Node types) reads it through
 * web/src/types.ts; test/unit/web/src/types.test.ts fails if a wire module imports anything else.
 */

/** One zip entry as a preview shows it. */
export interface PreviewEntry {
  readonly name: string;
  readonly contentType: string;
  readonly text: string;
}

/**
 * What a record would produce, shown before the job runs (the check, POST /jobs?check=true): the mail it would
 * send, the zip entries it would write, or nothing shown (a processor without a side-effect-free preview).
 */
export type RowPreview =
  | {
      readonly kind: 'mail';
      readonly from: string;
      readonly to: string;
      readonly subject: string;
      readonly text: string;
      readonly html: string;
    }
  | { readonly kind: 'entries'; readonly entries: readonly PreviewEntry[] }
  | { readonly kind: 'none'; readonly reason: string };
