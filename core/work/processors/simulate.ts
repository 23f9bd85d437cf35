import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RowContext, RowInput, RowOutput, RowProcessor } from './types.ts';

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

export class TransientSimulatedError extends Error {
  override readonly name = 'TransientSimulatedError';
}

/** Wraps a processor with the job's simulation; one wrapper per chunk (it counts attempts per record). */
export function simulated(processor: RowProcessor, sim: Simulation): RowProcessor {
  const attempts = new Map<number, number>();
  return {
    name: processor.name,
    description: processor.description,
    async process(row: RowInput, ctx: RowContext): Promise<RowOutput[]> {
      const attempt = (attempts.get(row.n) ?? 0) + 1;
      attempts.set(row.n, attempt);
      if (sim.delayMs > 0) await sleep(sim.delayMs);
      if (attempt === 1 && sim.errorRate > 0 && flaky(ctx.token, row.n, sim.errorRate)) {
        throw new TransientSimulatedError(`simulated transient error on record ${row.n}`);
      }
      return processor.process(row, ctx);
    },
  };
}
