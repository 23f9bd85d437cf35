import { z } from 'zod';
import type { PipelineDeps } from '../deps.ts';
import { isJobToken } from '../jobs/keys.ts';
import type { JobPosition } from '../jobs/store.ts';
import { BadRequestError } from '../shared/errors.ts';
import { jobView } from './operations.ts';
import { JOBS_PAGE_DEFAULT, jobsPageQuery, queryInput } from './query.ts';
import { parseOrBadRequest } from './request.ts';
import type { JobsPage } from './wire.ts';
// The wire shapes are defined Node-free in ./wire.ts (the console reads them); their names stay importable here.
export type { JobsPage };

/** What a cursor holds: the site it was given to, and the position of the last job of its page. */
const cursorSchema = z.strictObject({
  s: z.string().min(1).max(64),
  r: z.iso.datetime(),
  t: z.string().refine(isJobToken),
});

/** A page's cursor: opaque to callers (base64url of the site and the position), good for its own site only. */
export function encodeCursor(site: string, p: JobPosition): string {
  return Buffer.from(JSON.stringify({ s: site, r: p.receivedAt, t: p.token })).toString('base64url');
}

/**
 * The position a cursor names, for the caller's site. A cursor that is not one of ours, or was given to another
 * site, is a 400 INVALID_CURSOR. (A page always starts in the caller's own partition whatever the cursor says:
 * the store takes the site from the caller, never from the cursor.)
 */
export function decodeCursor(site: string, cursor: string): JobPosition {
  const invalid = () =>
    new BadRequestError(
      'INVALID_CURSOR',
      'Invalid cursor: pass the `next` of an earlier GET /jobs as it is.',
    );
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  const c = cursorSchema.safeParse(parsed);
  if (
    !c.success ||
    c.data.s !== site ||
    encodeCursor(site, { receivedAt: c.data.r, token: c.data.t }) !== cursor
  )
    throw invalid();
  return { receivedAt: c.data.r, token: c.data.t };
}

/** GET /jobs?limit=&cursor=: one Query of the site's jobs by time (core/jobs/store.ts page), never its history. */
export async function jobsPage(
  deps: Pick<PipelineDeps, 'jobs' | 'objects'>,
  site: string,
  query: Readonly<Record<string, string | undefined>> | null,
): Promise<JobsPage> {
  const q = parseOrBadRequest(jobsPageQuery, queryInput(query));
  const after = q.cursor === undefined ? undefined : decodeCursor(site, q.cursor);
  const page = await deps.jobs.page(site, q.limit ?? JOBS_PAGE_DEFAULT, after);
  const jobs = await Promise.all(page.jobs.map((j) => jobView(deps, j)));
  return { jobs, ...(page.after ? { next: encodeCursor(site, page.after) } : {}) };
}
