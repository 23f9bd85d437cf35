import type { PipelineDeps } from '../deps.ts';
import { isJobToken } from '../jobs/keys.ts';
import { BadRequestError, NotFoundError } from '../shared/errors.ts';
import { echoed } from '../shared/own.ts';
import { buildTimeline, type Timeline } from '../shared/timeline.ts';

/**
 * GET /jobs/{token}/timeline: where the job's time went, from its spans in the local span store — only ever the
 * caller's site (the job is looked up in the site's partition, the store is read under the site's folder and keeps
 * only spans naming that site). On AWS the spans are in CloudWatch (Transaction Search / X-Ray), not readable here:
 * 404 TIMELINE_NOT_LOCAL names the job's trace id to look up there.
 */
export async function timelineView(deps: PipelineDeps, site: string, token: string): Promise<Timeline> {
  if (!isJobToken(token)) throw new NotFoundError(`No job ${echoed(token)}.`);
  const job = await deps.jobs.get(site, token);
  if (!job) throw new NotFoundError(`No job ${echoed(token)}.`);
  if (!deps.traces) {
    const traceId = /^00-([0-9a-f]{32})-/.exec(job.trace ?? '')?.[1];
    throw new BadRequestError(
      'TIMELINE_NOT_LOCAL',
      `Job timelines are served by the local runtime only. On AWS the job's spans are in CloudWatch: ` +
        (traceId
          ? `open trace ${traceId} in CloudWatch Transaction Search (Application Signals → Transaction Search) or the X-Ray trace map.`
          : 'this job was created before tracing, so it has no trace.'),
      404,
    );
  }
  return buildTimeline(job, await deps.traces.read(site, token));
}
