import { z } from 'zod';
import { isDay } from '../usage/days.ts';

/**
 * The query parameters of the API's GET routes, as zod schemas: the handlers parse with them (a bad value is a
 * 400 INVALID_REQUEST naming it), and `npm run gen:api-models` writes which of them exist and which are required
 * into lib/api-models.json, where API Gateway's request validator checks them (it checks presence only: values
 * are the handler's). Unknown parameters are refused.
 */

/** A whole number written in decimal, between `min` and `max`. */
const wholeNumber = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d{1,10}$/, 'a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

/** A calendar day, YYYY-MM-DD. */
const day = z.string().refine(isDay, 'a day as YYYY-MM-DD');

/** Rows of errors.csv one GET /jobs/{token}/errors answers at most. */
export const ERRORS_PAGE_MAX = 100;
export const ERRORS_PAGE_DEFAULT = 20;

/** GET /jobs/{token}/errors?limit=&offset= */
export const errorsPageQuery = z.strictObject({
  /** Rows to answer, 1..100 (default 20). */
  limit: wholeNumber(1, ERRORS_PAGE_MAX).optional(),
  /** Rows to skip first (default 0). */
  offset: wholeNumber(0, 1_000_000_000).optional(),
});

/** Jobs one GET /jobs answers at most, and by default. */
export const JOBS_PAGE_MAX = 100;
export const JOBS_PAGE_DEFAULT = 50;

/** GET /jobs?limit=&cursor= */
export const jobsPageQuery = z.strictObject({
  /** Jobs to answer, 1..100 (default 50). */
  limit: wholeNumber(1, JOBS_PAGE_MAX).optional(),
  /** Where the page starts: the `next` of the page before (opaque; checked by core/intake/job-list.ts). */
  cursor: z.string().min(1).max(512).optional(),
});

/** The longest period GET /usage answers: a year, one leap day included. */
export const USAGE_MAX_DAYS = 366;

/** GET /usage?from=YYYY-MM-DD&to=YYYY-MM-DD: both days included, in the site's time zone. */
export const usageQuery = z.strictObject({ from: day, to: day });

/** The query schemas by the name a route of config/routes.ts gives (`query`). */
export const QUERY_SCHEMAS = {
  errorsPage: errorsPageQuery,
  jobsPage: jobsPageQuery,
  usage: usageQuery,
} as const;

/** Each parameter of a query schema and whether it is required (for API Gateway's request parameters). */
export function queryParameters(schema: z.ZodObject): Record<string, boolean> {
  return Object.fromEntries(
    Object.entries(schema.shape)
      .map(([k, s]) => [k, !(s as z.ZodType).safeParse(undefined).success] as const)
      .sort(([a], [b]) => a.localeCompare(b)),
  );
}

/** A query string as a schema's input: absent (null) is an empty object; every value stays text. */
export function queryInput(q: Readonly<Record<string, string | undefined>> | null): Record<string, string> {
  return Object.fromEntries(Object.entries(q ?? {}).filter(([, v]) => v !== undefined)) as Record<
    string,
    string
  >;
}
