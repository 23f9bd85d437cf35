import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { RecordError, type RowContext, type RowInput, type RowOutput, type RowProcessor } from './types.ts';

/** Job options that make a processor slow or flaky on purpose: for demos, load tests and watching retries. */
export interface Simulation {
  /** Added to every record. */
  readonly delayMs: number;
  /** Share (0..1) of records whose first attempt fails with a transient error; the retry succeeds. */
  readonly errorRate: number;
}

export function simulationOf(options: Record<string, string> | undefined): Simulation | undefined {
  const delayMs = Number(options?.simulateDelayMs ?? 0);
  const errorRate = Number(options?.simulateErrorRate ?? 0);
  if (!(delayMs > 0) && !(errorRate > 0)) return undefined;
  return { delayMs: Math.max(0, delayMs), errorRate: Math.min(1, Math.max(0, errorRate)) };
}

/** Whether record `n` of the job is one of the flaky share: the same answer in every worker and attempt. */
function flaky(token: string, n: number, rate: number): boolean {
  const h = createHash('sha1').update(`${token}:${n}`).digest().readUInt32BE(0);
  return h / 0x1_0000_0000 < rate;
}

/**
 * The simulated failure happens before the processor runs: nothing was done, so it may be retried even for a
 * processor with side effects.
 */
export class TransientSimulatedError extends RecordError {
  override readonly name = 'TransientSimulatedError';
  constructor(message: string) {
    super('PROCESSING_FAILED', message, { retryable: true });
  }
}

/** A processor's cost with the job's simulated delay added (the split sizes its chunks for it). */
export function simulatedCostMs(processor: Pick<RowProcessor, 'costMs'>, sim: Simulation): number {
  return (processor.costMs ?? 0) + sim.delayMs;
}

/**
 * Wraps a processor with the job's simulation; one wrapper per chunk (it counts attempts per record). It keeps
 * everything the processor declares; the delay adds to its cost (so the split sizes its chunks for it).
 */
export function simulated(processor: RowProcessor, sim: Simulation): RowProcessor {
  const attempts = new Map<number, number>();
  return {
    ...processor,
    costMs: simulatedCostMs(processor, sim),
    async process(row: RowInput, ctx: RowContext): Promise<RowOutput[]> {
      const attempt = (attempts.get(row.n) ?? 0) + 1;
      attempts.set(row.n, attempt);
      if (sim.delayMs > 0) {
        try {
          await sleep(sim.delayMs, undefined, { signal: ctx.signal });
        } catch {
          // Timed out or stopped before the processor ran: nothing happened.
          throw new TransientSimulatedError(`record ${row.n}: aborted during the simulated delay`);
        }
      }
      if (attempt === 1 && sim.errorRate > 0 && flaky(ctx.token, row.n, sim.errorRate)) {
        throw new TransientSimulatedError(`simulated transient error on record ${row.n}`);
      }
      return processor.process(row, ctx);
    },
  };
}
