/**
 * Job states. QUEUED: split, its chunks on its queue, waiting for workers from the stage's budget. REJECTED: a
 * file-level problem; no queue or worker was ever created. EXPIRED: a presigned job whose file never arrived before
 * its upload form expired (plus a grace); nothing was created for it either. CANCELLED: stopped by its owner
 * (DELETE /jobs/{token}); a job cancelled before its split planned it ends at once, one split (QUEUED or RUNNING)
 * is finalized with what was done (core/finalize/stopped.ts).
 */
export type JobState =
  | 'RECEIVED'
  | 'QUEUED'
  | 'RUNNING'
  | 'FINALIZING'
  | 'SUCCEEDED'
  | 'PARTIAL'
  | 'FAILED'
  | 'REJECTED'
  | 'EXPIRED'
  | 'CANCELLED';

const TRANSITIONS: Record<JobState, readonly JobState[]> = {
  RECEIVED: ['QUEUED', 'RUNNING', 'REJECTED', 'FAILED', 'EXPIRED', 'CANCELLED'],
  // Split and on its queue, waiting for its first worker from the stage's budget (core/budget/store.ts). Stopped
  // there (cancelled), it goes to its finalize with no worker ever started (core/jobs/lease.ts beginFinalize).
  QUEUED: ['RUNNING', 'FAILED', 'FINALIZING'],
  RUNNING: ['FINALIZING', 'FAILED'],
  FINALIZING: ['SUCCEEDED', 'PARTIAL', 'FAILED', 'CANCELLED'],
  // Terminal: no way out.
  SUCCEEDED: [],
  PARTIAL: [],
  FAILED: [],
  REJECTED: [],
  EXPIRED: [],
  CANCELLED: [],
};

/** The states a job never leaves: those the table gives no way out of (one table says both). */
export const TERMINAL_STATES: readonly JobState[] = (Object.keys(TRANSITIONS) as JobState[]).filter(
  (s) => TRANSITIONS[s].length === 0,
);

export function isTerminal(state: JobState): boolean {
  return TERMINAL_STATES.includes(state);
}

/** The states a job may be in for it to move to `to` (used as the condition of the write). */
export function allowedFrom(to: JobState): JobState[] {
  return (Object.keys(TRANSITIONS) as JobState[]).filter((from) => TRANSITIONS[from].includes(to));
}

export interface RowCounts {
  /** Every numbered record, rejected ones included. */
  readonly total: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly rejected: number;
}

/** The invariant of every finished job: each numbered record succeeded, failed or was rejected, once. */
export function countsAgree(c: RowCounts): boolean {
  return c.succeeded + c.failed + c.rejected === c.total;
}

/** SUCCEEDED when every record succeeded, FAILED when none did, PARTIAL otherwise. */
export function outcome(c: RowCounts): 'SUCCEEDED' | 'PARTIAL' | 'FAILED' {
  if (c.succeeded === 0) return 'FAILED';
  return c.failed + c.rejected === 0 ? 'SUCCEEDED' : 'PARTIAL';
}
