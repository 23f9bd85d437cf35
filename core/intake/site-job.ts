import type { PipelineDeps } from '../deps.ts';
import { isJobToken } from '../jobs/keys.ts';
import type { Job } from '../jobs/store.ts';
import { NotFoundError } from '../shared/errors.ts';
import { echoed } from '../shared/own.ts';

/**
 * The caller's site's job `token`, or 404: every operation on one job starts here. Another site's token is simply
 * not in this site's partition — the same 404 as no job at all, never its data. A malformed token finds no job
 * either; it is answered without a read.
 */
export async function siteJob(deps: Pick<PipelineDeps, 'jobs'>, site: string, token: string): Promise<Job> {
  if (!isJobToken(token)) throw new NotFoundError(`No job ${echoed(token)}.`);
  const job = await deps.jobs.get(site, token);
  if (!job) throw new NotFoundError(`No job ${echoed(token)}.`);
  return job;
}
