import type { Limits } from '../../config/index.ts';

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
