import type { Limits, StageConfig } from '../../config/index.ts';
import { DEFAULT_CONCURRENCY, type RowProcessor } from './types.ts';

/**
 * The settings a job's records run with, derived in one place from what the processor declares, what the job
 * asked for and what the stage allows: the worker and the split both read them from here.
 */

/** Records one worker keeps in flight: the job's `concurrency`, else the processor's, capped by the stage. */
export function recordConcurrency(
  processor: Pick<RowProcessor, 'concurrency'>,
  options: Readonly<Record<string, string>> | undefined,
  limits: Pick<Limits, 'maxRecordConcurrency'>,
): number {
  const asked = Number(options?.concurrency);
  const wanted =
    Number.isInteger(asked) && asked >= 1 ? asked : (processor.concurrency ?? DEFAULT_CONCURRENCY);
  return Math.max(1, Math.min(limits.maxRecordConcurrency, wanted));
}

/**
 * Records one worker gets through per second by the processor's declared cost at the job's concurrency (a
 * simulated delay counted in by the caller); Infinity for a CPU-bound processor (no cost declared). The split cuts
 * a slow processor's chunks by it, and the check's estimate times the run by it.
 */
export function workerRecordsPerSecond(
  processor: Pick<RowProcessor, 'concurrency' | 'costMs'>,
  options: Readonly<Record<string, string>> | undefined,
  limits: Pick<Limits, 'maxRecordConcurrency'>,
): number {
  const cost = processor.costMs ?? 0;
  return cost > 0 ? (recordConcurrency(processor, options, limits) * 1000) / cost : Infinity;
}

/** The processor's limit in records per second on the stage, if it has one. */
export function ratePerSecond(
  processor: Pick<RowProcessor, 'rateLimit'>,
  stage: StageConfig,
): number | undefined {
  const r = processor.rateLimit;
  if (!r) return undefined;
  return typeof r.perSecond === 'function' ? r.perSecond(stage) : r.perSecond;
}

/** The limiter a rate-limited processor takes from: its declared key, else its name (never a site's). */
export function limiterName(processor: Pick<RowProcessor, 'name' | 'rateLimit'>): string {
  return processor.rateLimit?.key ?? processor.name;
}
