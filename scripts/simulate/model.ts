/** What the simulation models: its jobs and workers, its fixed constants, and what a policy sees of the day. */
import type { Upload } from './workload.ts';

// Fixed model constants (stated in the header of scripts/simulate.ts and printed with the table).
export const START_DELAY_S: readonly [number, number] = [30, 60];
export const CHUNKS_PER_RECEIVE = 2;
export const LONG_POLL_S = 20;
export const IDLE_EXIT_S = 160; // visibility 120 s + 2 long polls: core/work/worker.ts's "waited out"
export const REAPER_S = 300;
export const REAPER_GRACE_S = 180;
export const SPLIT_RECORDS_PER_S = 150_000;
export const SMALL = 1000; // "small job": fewer records
export const LARGE = 100_000; // "large job": at least this many records
export const WINDOW_S = 300; // fairness is measured per window of contended time

export type PolicyName = 'ours' | 'today' | 'fifo';

/** The options of a run (printed with its results). */
export interface SimParams {
  readonly seed: number;
  readonly jobs: number;
  readonly sites: number;
  readonly budget: number;
  readonly recordMs: number;
  readonly limits: { readonly maxWorkersPerJob: number; readonly recordsPerWorker: number };
  readonly chunkMaxRecords: number;
}

export interface SimJob {
  readonly u: Upload;
  readonly key: string;
  readonly ready: number;
  readonly workers: number;
  readonly chunkRecords: number;
  readonly totalChunks: number;
  handed: number;
  done: number;
  finished?: number;
  firstWorkerAt?: number;
  firstRunningAt?: number;
  duringLarge: boolean;
  readonly live: Set<SimWorker>;
}

export interface SimWorker {
  readonly job: SimJob;
  alive: boolean;
  busy: boolean;
  idleSince?: number;
  /** Its place was already given back (it left through the shed rule). */
  released: boolean;
}

/** The workers a job can use now: its own number, at most one per chunk left. */
export const usableOf = (job: SimJob) => Math.min(job.workers, job.totalChunks - job.done);

/** What a policy sees of the simulated day, and the launcher it launches with. */
export interface World {
  readonly budget: number;
  /** The simulated clock, seconds after 00:00. */
  readonly now: number;
  /** Tasks holding a place (starting or running). */
  readonly alive: number;
  readonly jobs: readonly SimJob[];
  /** Jobs whose split ended and that have not finished. */
  readonly active: ReadonlySet<SimJob>;
  /** Launches `count` tasks for `job`; past the account's quota (the budget) a task is refused. */
  launch(job: SimJob, count: number): void;
}
