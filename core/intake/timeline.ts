import type { PipelineDeps } from '../deps.ts';
import { BadRequestError } from '../shared/errors.ts';
import { buildTimeline, type Timeline } from '../shared/timeline.ts';
import { siteJob } from './site-job.ts';

/** What the timeline reads: the job, and the local span store (absent on AWS). */
type TimelineDeps = Pick<PipelineDeps, 'jobs' | 'traces'>;

/**
 * GET /jobs/{token}/timeline: where the job's time went, from its spans in the local span store — only ever the
 * caller's site (the job is looked up in the site's partition, the store is read under the site's folder and keeps
 * only spans naming that site). On AWS the spans are in CloudWatch (Transaction Search / X-Ray), not readable here:
 * 404 TIMELINE_NOT_LOCAL names the job's trace id to look up there.
 */
export async function timelineView(deps: TimelineDeps, site: string, token: string): Promise<Timeline> {
  const job = await siteJob(deps, site, token);
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
