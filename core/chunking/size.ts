import type { Limits, Timings } from '../../config/index.ts';
import type { PipelineDeps } from '../deps.ts';
import type { Job } from '../jobs/store.ts';
import type { MergeLimits } from '../messages/chunk.ts';
import { processorInfo } from '../processors/index.ts';
import { ratePerSecond, workerRecordsPerSecond } from '../processors/settings.ts';
import { simulatedCostMs, simulationOf } from '../processors/simulate.ts';
import type { RowProcessor } from '../processors/types.ts';
import { getStage } from '../../config/index.ts';

/**
 * How big a chunk is, once: the split cuts and joins by it, a resubmission's attempt cuts its records by it, the
 * worker holds CHUNKS_IN_HAND of them, and scripts/simulate sizes its chunks with it. The stage's caps
 * (`limits.chunkMaxBytes`, `chunkMaxRecords`, `timings.chunkTargetSeconds`) are in config/schema.ts.
 */

/** The pieces the split cuts while validating (joined into chunks afterwards). */
export const SUB_CHUNK_BYTES = 64 * 1024;
export const SUB_CHUNK_RECORDS = 1000;
/** Enough chunks per worker that a slow or killed worker's share is picked up by the others. */
export const CHUNKS_PER_WORKER = 4;

/**
 * Chunks a worker starts records of at once: two overlap one chunk's I/O with the other's CPU, while the rest
 * stay on the queue for the other workers (and are not at stake if this one dies). It takes them one per
 * receive, as room frees up — as soon as every record of one has started, so the next is read while the last
 * records run (core/work/worker.ts) — and the last chunks of a job go one to each worker.
 */
export const CHUNKS_IN_HAND = 2;

/** The records a chunk aims at: CHUNKS_PER_WORKER chunks per worker (before the caps of the stage and of the cost). */
export function chunkTargetRecords(records: number, workers: number): number {
  return Math.max(1, Math.ceil(records / Math.max(1, workers * CHUNKS_PER_WORKER)));
}

/** A slow processor's sizes: records per chunk, and per piece (the finer grain the split cuts first). */
export interface CostSizes {
  readonly chunk: number;
  readonly piece: number;
}

/**
 * Most records per chunk for a slow processor (a declared `costMs`, a simulated delay, a rate limit): about
 * `timings.chunkTargetSeconds` of work for one of the {@link CHUNKS_IN_HAND} chunks a worker holds at its
 * concurrency (or at the whole rate, if that is less). So a job's chunks end every few seconds — its progress
 * moves without a write per record — and a few thousand slow records still make chunks for every worker.
 * Undefined for a CPU-bound processor (no cost, no rate): its chunks are cut by size only.
 */
export function chunkRecordsByCost(
  processor: Pick<RowProcessor, 'name' | 'concurrency' | 'costMs' | 'rateLimit'>,
  options: Readonly<Record<string, string>> | undefined,
  stage: { readonly name: string; readonly limits: Limits; readonly timings: Timings },
): CostSizes | undefined {
  const cost = processor.costMs ?? 0;
  const rate = ratePerSecond(processor, getStage(stage.name));
  if (!(cost > 0) && rate === undefined) return undefined;
  const byConcurrency = workerRecordsPerSecond(processor, options, stage.limits);
  const perSecond = Math.min(byConcurrency, rate ?? Infinity) / CHUNKS_IN_HAND;
  const chunk = Math.max(1, Math.floor(stage.timings.chunkTargetSeconds * perSecond));
  return { chunk, piece: Math.max(1, Math.floor(chunk / CHUNKS_PER_WORKER)) };
}

/** {@link chunkRecordsByCost} of a job's processor, with the job's simulated delay counted in. */
export async function jobSizesByCost(
  deps: Pick<PipelineDeps, 'env' | 'limits' | 'timings'>,
  job: Pick<Job, 'processor' | 'options'>,
): Promise<CostSizes | undefined> {
  const sim = simulationOf(job.options);
  const processor = await processorInfo(job.processor, deps.env.stage);
  const stage = { name: deps.env.stage, limits: deps.limits, timings: deps.timings };
  return chunkRecordsByCost(
    sim ? { ...processor, costMs: simulatedCostMs(processor, sim) } : processor,
    job.options,
    stage,
  );
}

/** The pieces the split cuts while it validates. */
export function pieceLimits(
  limits: Pick<Limits, 'chunkMaxBytes' | 'chunkMaxRecords'>,
  byCost: CostSizes | undefined,
): { readonly maxBytes: number; readonly maxRecords: number } {
  return {
    maxBytes: Math.min(SUB_CHUNK_BYTES, limits.chunkMaxBytes),
    maxRecords: Math.min(SUB_CHUNK_RECORDS, limits.chunkMaxRecords, byCost?.piece ?? Infinity),
  };
}

/** The chunks a job's `records` are joined into for `workers`: the target, the stage's caps and the cost's. */
export function chunkLimits(
  limits: Pick<Limits, 'chunkMaxBytes' | 'chunkMaxRecords'>,
  byCost: CostSizes | undefined,
  records: number,
  workers: number,
): MergeLimits {
  return {
    targetRecords: chunkTargetRecords(records, workers),
    maxBytes: limits.chunkMaxBytes,
    maxRecords: Math.min(limits.chunkMaxRecords, byCost?.chunk ?? Infinity),
  };
}
