import type { Limits } from '../../config/index.ts';

/**
 * How many workers a job gets at its split: the number it asked for, else enough for its records up to the stage's
 * default; never more than the stage allows.
 */
export function workerCount(
  records: number,
  limits: Pick<Limits, 'maxWorkersPerJob' | 'recordsPerWorker' | 'defaultWorkersPerJob'>,
  requested?: number,
): number {
  if (records <= 0) return 0;
  const wanted =
    requested ??
    Math.min(Math.ceil(records / limits.recordsPerWorker), limits.defaultWorkersPerJob ?? Infinity);
  return Math.max(1, Math.min(limits.maxWorkersPerJob, wanted));
}
