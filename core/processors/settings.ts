import { getStage, type Limits, type StageConfig, type Timings } from '../../config/index.ts';
import { DEFAULT_CONCURRENCY, type RowProcessor } from './types.ts';

/**
 * The settings a job's records run with, derived in one place from what the processor declares, what the job
 * asked for and what the stage allows: the worker and the split both read them from here.
 */

/**
 * Chunks a worker holds (and works on at once): two overlap one chunk's I/O with the other's CPU, while the rest
 * stay on the queue for the other workers (and are not at stake if this one dies). It takes them one per
 * receive, as room frees up, so the last chunks of a job go one to each worker.
 */
export const CHUNKS_IN_HAND = 2;

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

/**
 * Most records per chunk for a slow processor (a declared `costMs`, a simulated delay, a rate limit): about
 * `timings.chunkTargetSeconds` of work for one of the {@link CHUNKS_IN_HAND} chunks a worker holds at its
 * concurrency (or at the whole rate, if that is less). So a job's chunks end every few seconds — its progress
 * moves without a write per record — and a few thousand slow records still make chunks for every worker.
 * `piece` is the finer grain the split cuts first, so the chunks can be spread over the workers.
 * Undefined for a CPU-bound processor (no cost, no rate): its chunks are cut by size only.
 */
export function chunkRecordsByCost(
  processor: Pick<RowProcessor, 'name' | 'concurrency' | 'costMs' | 'rateLimit'>,
  options: Readonly<Record<string, string>> | undefined,
  stage: { readonly name: string; readonly limits: Limits; readonly timings: Timings },
  chunksPerWorker: number,
): { readonly chunk: number; readonly piece: number } | undefined {
  const cost = processor.costMs ?? 0;
  const rate = ratePerSecond(processor, getStage(stage.name));
  if (!(cost > 0) && rate === undefined) return undefined;
  const byConcurrency = workerRecordsPerSecond(processor, options, stage.limits);
  const perSecond = Math.min(byConcurrency, rate ?? Infinity) / CHUNKS_IN_HAND;
  const chunk = Math.max(1, Math.floor(stage.timings.chunkTargetSeconds * perSecond));
  return { chunk, piece: Math.max(1, Math.floor(chunk / chunksPerWorker)) };
}
