/**
 * The bench's phases from the pipeline's own records (issue 22): the end-to-end job's spans in the local span store,
 * or its timestamps when the run had tracing off (`npm run bench -- --tracing off`: tracing's own cost is that run
 * against one with `--tracing file`, alternated).
 */
import { join } from 'node:path';
import { readSpans } from '../core/shared/trace-file.ts';
import { buildTimeline, type TimelineJob } from '../core/shared/timeline.ts';

/** The bench's `--tracing`: the runtime's span store (`file`, as a user's local runtime has it) or none. */
export type BenchTracing = 'file' | 'off';

export function benchTracing(value: string | undefined): BenchTracing {
  if (value === undefined || value === 'file') return 'file';
  if (value === 'off') return 'off';
  throw new Error(`--tracing must be file or off, not "${value}"`);
}

/** The job's fields the phases are read from (core/jobs/store.ts Job). */
export interface PhaseJob extends TimelineJob {
  readonly splitStartedAt?: string;
  readonly splitDoneAt?: string;
  readonly finalizingAt?: string;
}

/**
 * The end-to-end job's phases in seconds and where they come from: its spans when tracing was on and the job's
 * split and finalize spans are there, else its timestamps. Those are coarser: the queue wait is inside the workers'
 * time, and the finalize's phase runs to its state change (`finishedAt`, after the zip is written), not to its end.
 */
export async function jobPhases(
  stateDir: string,
  job: PhaseJob,
  runStart: number,
  runEnd: number,
  tracing: BenchTracing,
): Promise<{ source: 'spans' | 'timestamps'; seconds: Record<string, number> }> {
  const fromSpans = tracing === 'off' ? undefined : await spanPhases(stateDir, job, runStart, runEnd);
  if (fromSpans) {
    const seconds = Object.fromEntries(Object.entries(fromSpans).map(([k, v]) => [k, +v.toFixed(2)]));
    return { source: 'spans', seconds };
  }
  const at = (iso: string | undefined) => (iso ? Date.parse(iso) : NaN);
  const s = (ms: number) => +(ms / 1000).toFixed(2);
  return {
    source: 'timestamps',
    seconds: {
      uploadAndEvent: s(at(job.splitStartedAt) - runStart),
      split: s(at(job.splitDoneAt) - at(job.splitStartedAt)),
      workersAfterSplit: s(at(job.finalizingAt) - at(job.splitDoneAt)),
      finalize: s(at(job.finishedAt) - at(job.finalizingAt)),
      download: s(runEnd - at(job.finishedAt)),
    },
  };
}

/**
 * The end-to-end job's phases in seconds, from its spans: upload and event (the run's start to the split's), split,
 * queue wait, workers (grant to last chunk), finalize, download (the job's end to the run's). Undefined when no span
 * was recorded, or not the split's and the finalize's.
 */
async function spanPhases(
  stateDir: string,
  job: PhaseJob,
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
