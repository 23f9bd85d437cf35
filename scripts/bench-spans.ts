/**
 * The bench's phases from the pipeline's own records (issue 22): the end-to-end job's spans in the local span store.
 * Tracing's own cost is measured by running the bench with ROWFLEET_TRACING=off and without, alternated.
 */
import { join } from 'node:path';
import { readSpans } from '../core/shared/trace-file.ts';
import { buildTimeline } from '../core/shared/timeline.ts';

/**
 * The end-to-end job's phases in seconds, from its spans: upload and event (the run's start to the split's), split,
 * queue wait, workers (grant to last chunk), finalize, download (the job's end to the run's). Undefined when no span
 * was recorded (ROWFLEET_TRACING=off): the bench then falls back to the job's timestamps.
 */
export async function spanPhases(
  stateDir: string,
  job: { site: string; token: string; state: string; receivedAt: string; finishedAt?: string },
  runStart: number,
  runEnd: number,
): Promise<Record<string, number> | undefined> {
  const spans = await readSpans(join(stateDir, 'traces'), job.site, job.token);
  if (spans.length === 0) return undefined;
  const tl = buildTimeline(job, spans);
  const p = tl.phases;
  if (!p.split?.end || !p.finalize?.end) return undefined;
  const end = tl.endsAt ? Date.parse(tl.endsAt) : Date.parse(p.finalize.end);
  const s = (x: number) => +(x / 1000).toFixed(2);
  return {
    uploadAndEvent: s(Date.parse(p.split.start) - runStart),
    split: p.split.seconds ?? 0,
    queueWait: p.queueWait?.seconds ?? 0,
    workers: p.workers?.seconds ?? 0,
    finalize: p.finalize.seconds ?? 0,
    zip: tl.zip?.seconds ?? 0,
    download: s(runEnd - end),
  };
}
