import { z } from 'zod';
import { MAX_RECORD_CONCURRENCY, MAX_WORKERS_PER_JOB, officeId, templateName } from '../../config/schema.ts';
import { BadRequestError } from '../shared/errors.ts';
import { PROCESSOR_NAME } from '../processors/types.ts';
import { QUERY_SCHEMAS, queryParameters } from './query.ts';
import { ECHOED_ID_MAX, echoed } from '../shared/own.ts';

const processorName = z
  .string()
  .regex(PROCESSOR_NAME, 'processor names are lower-case letters, digits and dashes');

/**
 * A job request: what a caller may ask for when starting a job — the query string of `POST /jobs`, the JSON body
 * of `POST /uploads`, the options of `rowfleet run`. The one description of its shape: the upload handler and
 * the local API parse with it, the CLI sends it, and the API Gateway model of `POST /uploads` is generated from
 * it (`npm run gen:api-models`; test/infra checks the generated model is current). Rules that depend on the
 * site or the deployment (its offices, the processors installed) are checked after it, in intake/operations.ts.
 */
export const jobRequestSchema = z.strictObject({
  /** The uploaded file's name, kept for the job view and the manifest. */
  fileName: z.string().min(1).max(255).optional(),
  processor: processorName.optional(),
  /** One of the site's offices (default: its first); usage figures are kept per office. */
  office: officeId.optional(),
  /** Workers for this job (default: by size, up to the stage's maxWorkersPerJob, which also caps this). */
  workers: z.number().int().min(1).max(MAX_WORKERS_PER_JOB).optional(),
  /**
   * Records each worker keeps in flight at once (default: the processor's declared concurrency); the stage's
   * `limits.maxRecordConcurrency` caps it.
   */
  concurrency: z.number().int().min(1).max(MAX_RECORD_CONCURRENCY).optional(),
  /** The `mail` processor's template: one of the site's own (default: its first). */
  template: templateName.optional(),
  /** Demo and load-test switches: a delay per record, and a share of records whose first attempt fails. */
  simulateDelayMs: z.number().min(0).max(60_000).optional(),
  simulateErrorRate: z.number().min(0).max(1).optional(),
  /**
   * Stop early: once more than this share of the records processed so far has failed (from MIN_FAILURE_SAMPLE
   * records on, core/stop/rules.ts), the job stops and ends FAILED with the code FAILURE_RATE_EXCEEDED.
   */
  maxFailureRate: z.number().min(0).max(1).optional(),
});

export type JobRequest = z.infer<typeof jobRequestSchema>;

/** The request's keys whose values are numbers (a query string carries them as text). */
const NUMERIC_KEYS = new Set(
  Object.entries(jobRequestSchema.shape)
    .filter(([, s]) => s.unwrap() instanceof z.ZodNumber)
    .map(([k]) => k),
);

/**
 * A query string as a job request's input: numeric keys become numbers when they read as one (anything else
 * stays text and fails the schema with a clear message). Empty values count as absent.
 */
export function jobRequestFromQuery(q: Readonly<Record<string, string | undefined>> | null): unknown {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(q ?? {})) {
    if (v === undefined || v === '') continue;
    const value = NUMERIC_KEYS.has(k) && /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(v.trim()) ? Number(v) : v;
    // An own key whatever its name: `__proto__=…` is an unknown key the schema refuses, not a prototype to set.
    Object.defineProperty(out, k, { value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** The query key of `POST /jobs` that asks for a check of the file instead of a job (core/intake/check.ts). */
export const CHECK_KEY = 'check';

/**
 * The query string of `POST /jobs`: whether it asks for a check (`check=true`; `false` or empty is a run) and the
 * job request the rest of it makes. Any other value of `check` is a 400 INVALID_REQUEST.
 */
export function directJobQuery(q: Readonly<Record<string, string | undefined>> | null): {
  readonly check: boolean;
  readonly input: unknown;
} {
  const { [CHECK_KEY]: flag, ...rest } = q ?? {};
  if (flag !== undefined && !['true', 'false', ''].includes(flag)) {
    throw new BadRequestError(
      'INVALID_REQUEST',
      `Invalid request: ${CHECK_KEY}: true or false, not "${echoed(flag)}".`,
    );
  }
  return { check: flag === 'true', input: jobRequestFromQuery(rest) };
}

/** Parses a job request; a request the schema refuses is a 400 INVALID_REQUEST naming every problem. */
export function parseJobRequest(input: unknown): JobRequest {
  return parseOrBadRequest(jobRequestSchema, input ?? {});
}

/** Parses `input` with `schema`, or throws BadRequestError(INVALID_REQUEST) listing what is wrong. */
export function parseOrBadRequest<T>(schema: z.ZodType<T>, input: unknown): T {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  // Stryker disable next-line StringLiteral: the request's keys are flat, so an issue's path has one element and its separator never shows
  const problems = r.error.issues.map(
    (i) => `${echoed(i.path.join('.')) || '(request)'}: ${echoed(i.message, 2 * ECHOED_ID_MAX)}`,
  );
  throw new BadRequestError('INVALID_REQUEST', `Invalid request: ${problems.join('; ')}.`);
}

/** The API Gateway model of a JSON job request (draft 4, as API Gateway reads it); see scripts/gen-api-models.ts. */
export function jobRequestJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(jobRequestSchema, { target: 'draft-04' }) as Record<string, unknown>;
}

/** What lib/rest-api.ts needs of the request schemas (written to lib/api-models.json by `npm run gen:api-models`). */
export function apiModels() {
  return {
    /** Body model of POST /uploads (JSON Schema draft 4). */
    jobRequest: jobRequestJsonSchema(),
    /** Query parameters of POST /jobs (all optional): the job request's keys and `check`. */
    jobRequestQuery: [...Object.keys(jobRequestSchema.shape), CHECK_KEY].sort(),
    /** Query parameters of the GET routes (config/routes.ts `query`), each with whether it is required. */
    queries: Object.fromEntries(
      Object.entries(QUERY_SCHEMAS).map(([name, schema]) => [name, queryParameters(schema)]),
    ),
  };
}

/**
 * The JSON body of `POST /uploads` as a job request's input. Its options travel in the body only (the model
 * API Gateway validates), so a query string is refused rather than silently ignored; malformed JSON is a 400.
 */
export function jobRequestFromJsonBody(
  body: string,
  query: Readonly<Record<string, string | undefined>> | null,
): unknown {
  if (Object.keys(query ?? {}).length > 0) {
    throw new BadRequestError(
      'INVALID_REQUEST',
      'POST /uploads takes its options in the JSON body, e.g. {"fileName":"a.csv"}, not in the query string.',
    );
  }
  if (body.trim() === '') return {};
  try {
    return JSON.parse(body) as unknown;
  } catch {
    throw new BadRequestError(
      'INVALID_REQUEST',
      'The body of POST /uploads must be JSON, e.g. {"fileName":"a.csv"}.',
    );
  }
}
