// The wire shape of GET /jobs/{token}/timeline, Node-free: the console re-exports it (web/src/types.ts).

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
