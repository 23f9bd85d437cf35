import type { SpanRecord } from './trace-file.ts';
import { ATTR } from './trace.ts';

import type { BarOutcome, Timeline, TimelineBar, TimelineLane, TimelinePhase } from './wire.ts';
// The timeline's wire shapes are defined Node-free in ./wire.ts (the console reads them); their names stay importable here.
export type { BarOutcome, Timeline, TimelineBar, TimelineLane, TimelinePhase };

/** The job fields a timeline needs besides its spans. */
export interface TimelineJob {
  readonly token: string;
  readonly site: string;
  readonly state: string;
  readonly receivedAt: string;
  readonly finishedAt?: string;
  readonly queuedAt?: string;
  readonly attempt?: number;
  readonly trace?: string;
  readonly attempts?: readonly { readonly n: number; readonly startedAt: string }[];
}

const iso = (ms: number) => new Date(ms).toISOString();
const seconds = (start: number, end: number) => Math.round(end - start) / 1000;
const phase = (start: number, end?: number): TimelinePhase =>
  end === undefined
    ? { start: iso(start) }
    : { start: iso(start), end: iso(end), seconds: seconds(start, end) };
const num = (v: unknown, fallback = 0) => (typeof v === 'number' ? v : fallback);

const OUTCOMES: Record<string, BarOutcome> = {
  done: 'done',
  duplicate: 'done',
  retried: 'retried',
  released: 'retried',
  gaveUp: 'gaveUp',
};

export function buildTimeline(job: TimelineJob, spans: readonly SpanRecord[]): Timeline {
  const n = job.attempt ?? 1;
  const ofAttempt = (s: SpanRecord) => num(s.attrs[ATTR.attempt], 1) === n;
  const last = (name: string) =>
    spans
      .filter((s) => s.name === name && ofAttempt(s))
      .sort((a, b) => a.start - b.start)
      .at(-1);
  const split = last('rowfleet.split');
  const queued = last('rowfleet.queued');
  const fin = last('rowfleet.finalize');
  const zip = last('rowfleet.zip');
  const ended = last(n > 1 ? 'rowfleet.attempt' : 'rowfleet.job');

  const lanes = new Map<string, { started?: TimelinePhase; bars: TimelineBar[] }>();
  const lane = (id: string) => {
    let l = lanes.get(id);
    if (!l) lanes.set(id, (l = { bars: [] }));
    return l;
  };
  for (const s of spans) {
    const worker = s.attrs[ATTR.workerId];
    if (typeof worker !== 'string') continue;
    if (s.name === 'rowfleet.worker.start') lane(worker).started = phase(s.start, s.end);
    if (s.name !== 'rowfleet.chunk') continue;
    const outcome = OUTCOMES[String(s.attrs[ATTR.outcome])];
    if (!outcome) continue;
    lane(worker).bars.push({
      chunk: num(s.attrs[ATTR.chunk]),
      attempt: num(s.attrs[ATTR.receiveCount], 1),
      jobAttempt: num(s.attrs[ATTR.attempt], 1),
      start: iso(s.start),
      end: iso(s.end),
      records: num(s.attrs[ATTR.records]),
      outcome,
      ...(typeof s.attrs[ATTR.succeeded] === 'number' ? { succeeded: num(s.attrs[ATTR.succeeded]) } : {}),
      ...(typeof s.attrs[ATTR.failed] === 'number' ? { failed: num(s.attrs[ATTR.failed]) } : {}),
    });
  }
  const sorted = [...lanes]
    .map(([worker, l]) => ({
      worker,
      ...(l.started ? { started: l.started } : {}),
      bars: l.bars.sort((a, b) => a.start.localeCompare(b.start)),
    }))
    .sort((a, b) =>
      (a.started?.start ?? a.bars[0]?.start ?? '').localeCompare(b.started?.start ?? b.bars[0]?.start ?? ''),
    );

  // The workers' phase: from the grant (RUNNING) to the end of the attempt's last chunk; open while chunks may come.
  const chunks = spans.filter((s) => s.name === 'rowfleet.chunk' && ofAttempt(s));
  const firstWork = queued?.end ?? Math.min(...chunks.map((s) => s.start));
  const lastChunk = chunks.length > 0 ? Math.max(...chunks.map((s) => s.end)) : undefined;
  const workers = Number.isFinite(firstWork)
    ? phase(firstWork, fin ? (lastChunk ?? fin.start) : undefined)
    : undefined;
  // Still waiting for a worker place (live): the wait so far, from the job item.
  const waiting = !queued && job.state === 'QUEUED' && job.queuedAt ? { start: job.queuedAt } : undefined;

  const startedAt =
    n > 1 ? (job.attempts?.find((a) => a.n === n)?.startedAt ?? job.receivedAt) : job.receivedAt;
  const endsAt = ended ? iso(ended.end) : job.finishedAt;
  const traceId = spans[0]?.traceId ?? /^00-([0-9a-f]{32})-/.exec(job.trace ?? '')?.[1];
  return {
    token: job.token,
    site: job.site,
    state: job.state,
    ...(traceId ? { traceId } : {}),
    attempt: n,
    startedAt,
    ...(endsAt ? { endsAt } : {}),
    phases: {
      ...(split ? { split: phase(split.start, split.end) } : {}),
      ...(queued ? { queueWait: phase(queued.start, queued.end) } : waiting ? { queueWait: waiting } : {}),
      ...(workers ? { workers } : {}),
      ...(fin ? { finalize: phase(fin.start, fin.end) } : {}),
    },
    lanes: sorted,
    ...(fin ? { finalize: { start: iso(fin.start), end: iso(fin.end) } } : {}),
    ...(zip ? { zip: phase(zip.start, zip.end) } : {}),
    spans: spans.length,
  };
}
