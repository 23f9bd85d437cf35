import type { Limits } from '../../config/index.ts';
import type { Job } from '../jobs/store.ts';

/** How many workers a job gets at its split: enough for its records, never more than the stage allows. */
export function workerCount(
  records: number,
  limits: Pick<Limits, 'maxWorkersPerJob' | 'recordsPerWorker'>,
  requested?: number,
): number {
  if (records <= 0) return 0;
  const wanted = requested ?? Math.ceil(records / limits.recordsPerWorker);
  return Math.max(1, Math.min(limits.maxWorkersPerJob, wanted));
}

/** How many workers a stalled job gets again: as many as it had, never more than its chunks left (at least 1). */
export function relaunchCount(job: Pick<Job, 'workers' | 'totalChunks' | 'chunksDone'>): number {
  const left = (job.totalChunks ?? job.chunksDone + 1) - job.chunksDone;
  return Math.max(1, Math.min(job.workers ?? 1, left));
}
