/**
 * What the synth hands the upload function about users' processors (lib/processors.ts → an esbuild `define`) and
 * what their inspection reports (core/processors/users.ts): a contract between the CDK app and the code, so it
 * lives here, below both.
 */

/** What a user's processor declares, as its inspection read it (functions evaluated or reduced to a flag). */
export interface ProcessorManifest {
  readonly name: string;
  readonly description: string;
  readonly concurrency?: number;
  readonly costMs?: number;
  /** `perSecond` as the stage of the inspection reads it. */
  readonly rateLimit?: { readonly key?: string; readonly perSecond: number };
  readonly sideEffects?: boolean;
  readonly takesTemplate?: boolean;
  readonly timeoutMs?: number;
  /** The header columns it needs (a static `needs`; a function of the job is not run for the manifest). */
  readonly needs?: { readonly columns: readonly string[] };
  /** Whether it has a `checkJob` (run in an inspection process, never in the asking one). */
  readonly checkJob: boolean;
}

/** A user's processor as inspected: its manifest, or what is wrong with its file. */
export type Inspected =
  | { readonly ok: true; readonly file: string; readonly manifest: ProcessorManifest }
  | { readonly ok: false; readonly file: string; readonly error: string };
