/** What GET /jobs/{token}/timeline answers, as the console reads it. */

/** The wire shape of core/shared/timeline.ts Timeline (test/unit/web-wire-types.test.ts keeps them in step). */
export interface TimelinePhase {
  readonly start: string;
  readonly end?: string;
  readonly seconds?: number;
}
export interface TimelineBar {
  readonly chunk: number;
  readonly attempt: number;
  readonly jobAttempt: number;
  readonly start: string;
  readonly end: string;
  readonly records: number;
  readonly outcome: 'done' | 'retried' | 'gaveUp';
}
export interface TimelineLane {
  readonly worker: string;
  readonly started?: TimelinePhase;
  readonly bars: readonly TimelineBar[];
}
export interface Timeline {
  readonly token: string;
  readonly state: string;
  readonly traceId?: string;
  readonly startedAt: string;
  readonly endsAt?: string;
  readonly phases: {
    readonly split?: TimelinePhase;
    readonly queueWait?: TimelinePhase;
    readonly workers?: TimelinePhase;
    readonly finalize?: TimelinePhase;
  };
  readonly lanes: readonly TimelineLane[];
  readonly zip?: TimelinePhase;
  readonly spans: number;
}
