import { describe, expect, it } from 'vitest';
import { getStage } from '../../../../config/index.ts';
import {
  CHUNKS_PER_WORKER,
  chunkLimits,
  chunkRecordsByCost,
  chunkTargetRecords,
  pieceLimits,
} from '../../../../core/chunking/size.ts';
import { jsonProcessor } from '../../../../core/processors/json.ts';
import { mailProcessor } from '../../../../core/processors/mail.ts';
import { simulated } from '../../../../core/processors/simulate.ts';

const local = getStage('local');

describe('Function: chunkTargetRecords', () => {
  it('aims at CHUNKS_PER_WORKER chunks per worker, at least one record', () => {
    expect(chunkTargetRecords(1000, 2)).toBe(Math.ceil(1000 / (2 * CHUNKS_PER_WORKER)));
    expect(chunkTargetRecords(3, 10)).toBe(1);
    expect(chunkTargetRecords(0, 0)).toBe(1);
  });
});

describe('Function: pieceLimits and chunkLimits', () => {
  it("cap pieces and chunks by the stage's limits and by the processor's cost", () => {
    // Prepare
    const limits = { chunkMaxBytes: 1 << 20, chunkMaxRecords: 500 };

    // Act + Assess
    expect(pieceLimits(limits, undefined)).toEqual({ maxBytes: 64 * 1024, maxRecords: 500 });
    expect(pieceLimits(limits, { chunk: 80, piece: 20 }).maxRecords).toBe(20);
    expect(chunkLimits(limits, undefined, 10_000, 2)).toEqual({
      targetRecords: chunkTargetRecords(10_000, 2),
      maxBytes: 1 << 20,
      maxRecords: 500,
    });
    expect(chunkLimits(limits, { chunk: 80, piece: 20 }, 10_000, 2).maxRecords).toBe(80);
  });
});

describe('Function: chunkRecordsByCost', () => {
  it('leaves a CPU-bound processor to size-based chunks', () => {
    expect(chunkRecordsByCost(jsonProcessor, {}, local)).toBeUndefined();
  });

  it("cuts a slow processor's chunks to about chunkTargetSeconds of work at its concurrency", () => {
    // Prepare: 100 ms per record, 200 in flight per worker, two chunks in hand: 1,000 records/s per chunk
    const slow = simulated(jsonProcessor, { delayMs: 100, errorRate: 0 });

    // Act
    const sized = chunkRecordsByCost(slow, {}, local);
    const narrow = chunkRecordsByCost(slow, { concurrency: '10' }, local);

    // Assess
    const perChunkPerSecond = (200 * 1000) / 100 / 2;
    expect(sized).toEqual({
      chunk: local.timings.chunkTargetSeconds * perChunkPerSecond,
      piece: (local.timings.chunkTargetSeconds * perChunkPerSecond) / 4,
    });
    expect(narrow!.chunk).toBe(local.timings.chunkTargetSeconds * ((10 * 1000) / 100 / 2));
  });

  it("holds a rate-limited processor's chunks to its share of the stage's rate", () => {
    // Act: mail at the local stage's 200/s
    const sized = chunkRecordsByCost(mailProcessor, {}, local)!;

    // Assess
    expect(sized.chunk).toBeLessThanOrEqual(Math.floor((local.timings.chunkTargetSeconds * 200) / 2));
    expect(sized.chunk).toBeGreaterThan(0);
  });
});
