import { loadConfig } from '../../config/index.ts';
import type { PipelineDeps } from '../deps.ts';
import type { Job } from '../jobs/store.ts';
import { publishSiteMetrics } from '../shared/metrics.ts';

/** One site's backlog at a reaper pass: what an operator asks first when a site says "my jobs are slow". */
export interface SiteBacklog {
  readonly site: string;
  /** Records not yet processed over the site's jobs in flight (QUEUED and RUNNING; a retry: what it still runs). */
  readonly records: number;
  /** Jobs waiting for their first worker (QUEUED). */
  readonly jobsWaiting: number;
  /** How long the longest-waiting of them has waited so far (0 when none waits). */
  readonly oldestWaitMs: number;
}

type BacklogJob = Pick<
  Job,
  'site' | 'state' | 'totalRecords' | 'rejected' | 'succeeded' | 'failed' | 'queuedAt' | 'receivedAt'
>;

/**
 * The backlog of every site in `sites` (zeros included: a site whose backlog cleared reports 0, so its alarm
 * clears too) and of any other site a job in flight names.
 */
export function backlogBySite(
  jobs: readonly BacklogJob[],
  sites: readonly string[],
  now: number,
): SiteBacklog[] {
  const by = new Map<string, { records: number; jobsWaiting: number; oldestWaitMs: number }>();
  for (const s of sites) by.set(s, { records: 0, jobsWaiting: 0, oldestWaitMs: 0 });
  for (const j of jobs) {
    if (j.state !== 'QUEUED' && j.state !== 'RUNNING') continue;
    let b = by.get(j.site);
    if (!b) by.set(j.site, (b = { records: 0, jobsWaiting: 0, oldestWaitMs: 0 }));
    if (j.totalRecords !== undefined)
      b.records += Math.max(0, j.totalRecords - (j.rejected ?? 0) - j.succeeded - j.failed);
    if (j.state === 'QUEUED') {
      b.jobsWaiting++;
      b.oldestWaitMs = Math.max(b.oldestWaitMs, now - Date.parse(j.queuedAt ?? j.receivedAt));
    }
  }
  return [...by].map(([site, b]) => ({ site, ...b }));
}

/** Publishes each site's backlog (dimensions stage and site): the dashboard's backlog graph and its alarms. */
export function publishBacklog(
  deps: Pick<PipelineDeps, 'env'>,
  jobs: readonly BacklogJob[],
  now: number,
): SiteBacklog[] {
  const backlog = backlogBySite(
    jobs,
    loadConfig().sites.map((s) => s.id),
    now,
  );
  for (const b of backlog) {
    publishSiteMetrics(deps.env.stage, b.site, {
      BacklogRecords: b.records,
      BacklogJobsWaiting: b.jobsWaiting,
      BacklogOldestWait: b.oldestWaitMs,
    });
  }
  return backlog;
}
