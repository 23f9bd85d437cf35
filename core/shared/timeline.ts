import type { SpanRecord } from './trace-file.ts';
import { ATTR } from './trace.ts';

/**
 * Where one job's time went, from its spans (GET /jobs/{token}/timeline, `rowfleet trace`, the console's job page,
 * the bench): the phases of its current attempt — split, the wait for workers, the workers, the finalize — and one
 * lane per worker with a bar per chunk attempt. Times are ISO strings; `seconds` are rounded to the millisecond.
 */
export interface TimelinePhase {
  readonly start: string;
  /** Absent while the phase runs. */
  readonly end?: string;
  readonly seconds?: number;
}

export type BarOutcome = 'done' | 'retried' | 'gaveUp';

/** One attempt at one chunk, by one worker. */
export interface TimelineBar {
  readonly chunk: number;
  /** Which delivery of the chunk's message this was (1: the first). */
  readonly attempt: number;
  /** The job's attempt (1: its first run; 2, 3, … a retry). */
  readonly jobAttempt: number;
  readonly start: string;
  readonly end: string;
  readonly records: number;
  readonly outcome: BarOutcome;
  readonly succeeded?: number;
  readonly failed?: number;
}

export interface TimelineLane {
  readonly worker: string;
  /** The worker's process start and the moment it was ready to receive (its start span). */
  readonly started?: TimelinePhase;
  readonly bars: readonly TimelineBar[];
}

export interface Timeline {
  readonly token: string;
  readonly site: string;
  readonly state: string;
  /** The job's trace id (find the same trace in CloudWatch Transaction Search / X-Ray on AWS). */
  readonly traceId?: string;
  /** The job's current attempt: the phases are its own. */
  readonly attempt: number;
  readonly startedAt: string;
  /** When the job (its current attempt) ended; absent while it runs. */
  readonly endsAt?: string;
  readonly phases: {
    readonly split?: TimelinePhase;
    readonly queueWait?: TimelinePhase;
    readonly workers?: TimelinePhase;
    readonly finalize?: TimelinePhase;
  };
  readonly lanes: readonly TimelineLane[];
  readonly finalize?: { readonly start: string; readonly end: string };
  readonly zip?: TimelinePhase;
  /** Spans the timeline was drawn from (0: none recorded — tracing off, or a job older than tracing). */
  readonly spans: number;
}

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
