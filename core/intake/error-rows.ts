import { createInterface } from 'node:readline';
import type { PipelineDeps } from '../deps.ts';
import { keys } from '../jobs/keys.ts';
import { isTerminal } from '../jobs/states.ts';
import type { ErrorRow } from '../messages/part.ts';
import { BadRequestError, NotFoundError } from '../shared/errors.ts';
import { ERRORS_PAGE_DEFAULT, errorsPageQuery, queryInput } from './query.ts';
import { parseOrBadRequest } from './request.ts';
import type { ErrorPage } from './wire.ts';
import { siteJob } from './site-job.ts';
// The wire shapes are defined Node-free in ./wire.ts (the console reads them); their names stay importable here.
export type { ErrorPage };

/**
 * The rows of a finished job's errors.csv from `offset`, at most `limit` (1..100), in the file's order (by record),
 * with the values as they are: `raw` is the record's text, not neutralised for spreadsheets as in errors.csv. Read
 * from the JSON lines the finalize writes next to the zip (core/messages/part.ts errorRowsJsonl), stopping after
 * the page. A job not finished yet answers 409 JOB_NOT_FINISHED (its errors are known once its zip is); while a
 * retry's attempt runs, the rows of the attempt before are served.
 */
export async function errorsPage(
  deps: Pick<PipelineDeps, 'jobs' | 'objects'>,
  site: string,
  token: string,
  query: Readonly<Record<string, string | undefined>> | null,
): Promise<ErrorPage> {
  const q = parseOrBadRequest(errorsPageQuery, queryInput(query));
  const limit = q.limit ?? ERRORS_PAGE_DEFAULT;
  const offset = q.offset ?? 0;
  const job = await siteJob(deps, site, token);
  // While a retry's attempt runs, the rows are those the attempt before left (core/jobs/attempts.ts).
  const finished = isTerminal(job.state) ? job.attempt : job.attempt && job.attempt > 1 ? job.attempt - 1 : 0;
  if (finished === 0) {
    throw new BadRequestError(
      'JOB_NOT_FINISHED',
      `Job ${token} is ${job.state}: its errors are known once it is finished.`,
      409,
    );
  }
  if (job.errorRows === undefined && job.resultKey && job.failed + (job.rejected ?? 0) > 0) {
    throw new NotFoundError(
      `Job ${token} was finalized before the API kept the rows of its errors.csv: they are in its zip only.`,
    );
  }
  // Jobs that ended without a zip (REJECTED, EXPIRED, cancelled before their split) have no errors.csv rows.
  const total = job.errorRows ?? 0;
  const page = { token, total, offset, limit };
  if (total === 0 || offset >= total) return { ...page, errors: [] };
  const errors: ErrorRow[] = [];
  const body = await deps.objects.stream(keys.errorRows(site, token, finished));
  const lines = createInterface({ input: body, crlfDelay: Infinity });
  let i = 0;
  try {
    for await (const line of lines) {
      if (!line) continue;
      if (i++ < offset) continue;
      errors.push(JSON.parse(line) as ErrorRow);
      if (errors.length >= limit) break;
    }
  } finally {
    lines.close();
    body.destroy();
  }
  return { ...page, errors };
}
