import type { StageConfig } from '../../config/index.ts';
import type { PreviewEntry, RowPreview } from './wire.ts';
// The wire shapes are defined Node-free in ./wire.ts (the console reads them); their names stay importable here.
export type { PreviewEntry, RowPreview };

/** What a processor sees of one record. */
export interface RowInput {
  readonly n: number;
  readonly line: number;
  readonly fields: readonly string[];
}

/** The job a record belongs to, and the record's own handles (a new context per record and attempt). */
export interface RowContext {
  readonly site: string;
  readonly token: string;
  readonly header: readonly string[];
  /** The job's options as its request set them (e.g. `template` for `mail`, the simulation switches). */
  readonly options: Readonly<Record<string, string>>;
  /**
   * `<site>#<token>#<n>`: the same for every attempt and every delivery of the record, different for every
   * record of every job. Pass it on to an API that deduplicates (an `Idempotency-Key` header).
   */
  readonly idempotencyKey: string;
  /** Aborted when the attempt times out (`timeoutMs`) or the worker must stop: pass it to `fetch`, SDK calls. */
  readonly signal: AbortSignal;
  /** 1 for the first attempt at the record in this delivery, 2 for its first retry, … */
  readonly attempt: number;
}

/** One file in the result zip. */
export interface RowOutput {
  readonly name: string;
  readonly data: string | Buffer;
}

/** What a processor's `preview` sees of a record's job: no token yet (see {@link PREVIEW_TOKEN}), no signal. */
export type PreviewContext = Pick<RowContext, 'site' | 'token' | 'header' | 'options'>;

/** The token a preview's context carries: the check creates no job, so there is none yet. */
export const PREVIEW_TOKEN = 'check';

/** The content type of a zip entry, by its name's extension (a preview shows it as text). */
export function entryContentType(name: string): string {
  const ext = name.slice(name.lastIndexOf('.') + 1).toLowerCase();
  if (ext === 'json') return 'application/json';
  if (ext === 'html' || ext === 'htm') return 'text/html; charset=utf-8';
  if (ext === 'csv') return 'text/csv; charset=utf-8';
  return 'text/plain; charset=utf-8';
}

/** A pure processor's outputs as a preview: every entry, its data as UTF-8 text. */
export function entriesPreview(outputs: readonly RowOutput[]): RowPreview {
  return {
    kind: 'entries',
    entries: outputs.map((o) => ({
      name: o.name,
      contentType: entryContentType(o.name),
      text: typeof o.data === 'string' ? o.data : o.data.toString('utf8'),
    })),
  };
}

/** What a processor needs of a job's file to be able to succeed on any record. */
export interface ProcessorNeeds {
  /** Header columns every record needs (e.g. the mail template's placeholders and its recipient column). */
  readonly columns: readonly string[];
}

/** A job as a processor's job-level hooks see it (before any record is read). */
export interface JobOf {
  readonly site: string;
  readonly options: Readonly<Record<string, string>>;
}

/** A limit on records per second, shared by every worker of every job of the stage (e.g. an API's quota). */
export interface RateLimit {
  /**
   * The limiter's name: processors naming the same limiter share one budget (the SES sending rate is `ses`).
   * It is not per site: the quota it models belongs to the stage's account. @default the processor's name
   */
  readonly key?: string;
  /** Records per second, a number or read from the stage's configuration. */
  readonly perSecond: number | ((stage: StageConfig) => number);
}

/**
 * A row processor turns one record into zero or more zip entries. It is a plain object: drop a file exporting
 * one (default export) into `processors/` at the root of the repository and it is picked up by the CLI, the
 * local runtime, the API and the worker image; `rowfleet processors` lists it. The file is named after the
 * processor (`processors/<name>.ts`). See docs/processors.md.
 *
 * Throwing fails only that record (listed in errors.csv): a {@link RecordError} with its own code, anything
 * else as PROCESSING_FAILED after {@link RECORD_ATTEMPTS} attempts — unless the processor has side effects
 * (see `sideEffects`).
 */
export interface RowProcessor {
  /** Lower-case letters, digits and dashes (it appears in the API, the CLI and the manifest). */
  readonly name: string;
  readonly description: string;
  /**
   * Records of one worker in flight at once. A job's `concurrency` option overrides it; the stage's
   * `limits.maxRecordConcurrency` caps both. It only matters for processors that wait (return a promise):
   * a synchronous `process` runs one record after the other whatever it says. @default DEFAULT_CONCURRENCY
   */
  readonly concurrency?: number;
  /**
   * What one record typically takes, waiting included, in milliseconds. Chunks of a slow processor are cut
   * smaller (about `timings.chunkTargetSeconds` of work each), so every worker gets work and progress moves.
   * @default 0 (CPU-bound: chunks by size only)
   */
  readonly costMs?: number;
  /** Records per second across the stage (every worker of every job), through a DynamoDB limiter. @default none */
  readonly rateLimit?: RateLimit;
  /**
   * The processor changes something outside the job (sends a mail, calls an API that acts). Each record is then
   * claimed in DynamoDB before `process` runs and its outcome recorded after it, so a redelivered chunk never
   * repeats an effect: a record done before is replayed from its recorded outcome, and a record whose claim has
   * no outcome (its worker died in the middle) is reported as IN_DOUBT, never tried again. A thrown
   * {@link RecordError} must mean "nothing happened" (it may be retried if `retryable`); any other error leaves
   * the outcome unknown (IN_DOUBT, not retried). @default false
   */
  readonly sideEffects?: boolean;
  /** Time one attempt may take before its `signal` is aborted and the attempt counts as failed. @default 30 s */
  readonly timeoutMs?: number;
  /**
   * The processor fills a template named by the job's `template` option (as `mail` does); a request naming a
   * template for any other processor is refused (400 TEMPLATE_NOT_TAKEN). @default false
   */
  readonly takesTemplate?: boolean;
  /**
   * Checks a job request for this processor before the job is accepted (throw a BadRequestError). A user's runs in
   * a separate process per request (core/processors/users.ts), locally; the API on AWS holds manifests only.
   */
  checkJob?(job: JobOf): void;
  /**
   * What the job's file must hold for any record to succeed: the split refuses a file whose header lacks one of
   * `columns` (the job ends REJECTED, PROCESSOR_FIELDS_MISSING naming them, `422` through the API) before any
   * queue or worker, instead of failing every record. A function of the job (site, options: the `mail`
   * processor's template) for built-in processors; a user's processor declares a static value (its manifest
   * carries it: the API never runs a user's code). @default nothing needed
   */
  readonly needs?: ProcessorNeeds | ((job: JobOf) => ProcessorNeeds);
  process(row: RowInput, ctx: RowContext): RowOutput[] | Promise<RowOutput[]>;
  /**
   * What `process` would produce for the record, without any side effect (the check shows the first records'
   * before the job runs): the same code path as `process` up to the effect — the mail `mail` would send, the
   * entries a pure processor writes. Throw a {@link RecordError} where `process` would (the check shows its
   * code). Without it, the check shows nothing for the record and never calls `process`. @default none
   */
  preview?(row: RowInput, ctx: PreviewContext): RowPreview | Promise<RowPreview>;
}

/** The header columns of `needs` that `header` lacks (in the order the processor names them, each once). */
export function missingColumns(
  needs: RowProcessor['needs'],
  job: JobOf,
  header: readonly string[],
): string[] {
  const have = new Set(header);
  return neededColumns(needs, job).filter((c) => !have.has(c));
}

/** The header columns a processor's `needs` names for a job, each once, in its order. */
export function neededColumns(needs: RowProcessor['needs'], job: JobOf): string[] {
  if (!needs) return [];
  const { columns } = typeof needs === 'function' ? needs(job) : needs;
  return [...new Set(columns)];
}

/** Processor names: lower-case words (they appear in the API, the CLI, the manifest and file names). */
export const PROCESSOR_NAME = /^[a-z][a-z0-9-]{0,31}$/;

/** Records of one worker in flight at once when a processor does not say. */
export const DEFAULT_CONCURRENCY = 16;
/** Time one attempt at a record may take when a processor does not say. */
export const DEFAULT_TIMEOUT_MS = 30_000;

/** The brand of a {@link RecordError}, the same symbol in every copy of the class. */
const RECORD_ERROR = Symbol.for('rowfleet.RecordError');

/**
 * A record's failure with its own code in errors.csv (upper-case letters, digits and `_`, e.g.
 * `MAIL_INVALID_ADDRESS`). For a processor with side effects it also says that the effect did not happen:
 * `retryable` lets the worker try the record again (after a short backoff), otherwise the code is final.
 */
export class RecordError extends Error {
  override readonly name: string = 'RecordError';
  readonly retryable: boolean;
  /**
   * Each user's processor is built on its own (its own copy of this class, see core/processors/index.ts):
   * `instanceof` checks a brand every copy sets, not the class object.
   */
  static override [Symbol.hasInstance](v: unknown): boolean {
    // A subclass (TransientSimulatedError) is checked as usual.
    if (this !== RecordError) return Function.prototype[Symbol.hasInstance].call(this, v);
    return typeof v === 'object' && v !== null && (v as Record<symbol, unknown>)[RECORD_ERROR] === true;
  }

  constructor(
    readonly code: string,
    message: string,
    options: { readonly retryable?: boolean; readonly cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    if (!/^[A-Z][A-Z0-9_]{1,39}$/.test(code)) throw new Error(`invalid record error code "${code}"`);
    this.retryable = options.retryable ?? false;
    Object.defineProperty(this, RECORD_ERROR, { value: true });
  }
}

/**
 * A built-in processor whose record's outputs are a pure function of the record (`json`, `report`): CPU-bound
 * and synchronous, so its concurrency binds only under a simulated delay; its preview is its output.
 */
export function pureProcessor(
  name: string,
  description: string,
  outputsOf: (row: RowInput, ctx: Pick<RowContext, 'site' | 'token' | 'header'>) => RowOutput[],
) {
  return {
    name,
    description,
    concurrency: 200,
    process: outputsOf,
    preview: (row: RowInput, ctx: Pick<RowContext, 'site' | 'token' | 'header'>) =>
      entriesPreview(outputsOf(row, ctx)),
  } satisfies RowProcessor;
}
