import { describe, expect, it } from 'vitest';
import { getStage } from '../../../../config/index.ts';
import { chunkRecordsByCost, recordConcurrency } from '../../../../core/processors/settings.ts';
import { RateLimiter } from '../../../../core/work/rate-limiter.ts';
import { RecordSlots } from '../../../../core/work/slots.ts';
import { DEFAULT_CONCURRENCY } from '../../../../core/processors/types.ts';
import { mailProcessor } from '../../../../core/processors/mail.ts';
import { jsonProcessor } from '../../../../core/processors/json.ts';
import { simulated } from '../../../../core/processors/simulate.ts';

const local = getStage('local');
const limits = { maxRecordConcurrency: 200 };

describe('Function: recordConcurrency', () => {
  it("takes the job's concurrency, else the processor's, else the default, capped by the stage", () => {
    expect(recordConcurrency({ concurrency: 32 }, { concurrency: '8' }, limits)).toBe(8);
    expect(recordConcurrency({ concurrency: 32 }, {}, limits)).toBe(32);
    expect(recordConcurrency({}, undefined, limits)).toBe(DEFAULT_CONCURRENCY);
    expect(recordConcurrency({ concurrency: 32 }, { concurrency: '5000' }, limits)).toBe(200);
    expect(recordConcurrency({ concurrency: 32 }, { concurrency: 'x' }, limits)).toBe(32);
  });
});

describe('Function: chunkRecordsByCost', () => {
  it('leaves a CPU-bound processor to size-based chunks', () => {
    expect(chunkRecordsByCost(jsonProcessor, {}, local, 4)).toBeUndefined();
  });

  it("cuts a slow processor's chunks to about chunkTargetSeconds of work at its concurrency", () => {
    // Prepare: 100 ms per record, 200 in flight per worker, two chunks in hand: 1,000 records/s per chunk
    const slow = simulated(jsonProcessor, { delayMs: 100, errorRate: 0 });

    // Act
    const sized = chunkRecordsByCost(slow, {}, local, 4);
    const narrow = chunkRecordsByCost(slow, { concurrency: '10' }, local, 4);

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
    const sized = chunkRecordsByCost(mailProcessor, {}, local, 4)!;

    // Assess
    expect(sized.chunk).toBeLessThanOrEqual(Math.floor((local.timings.chunkTargetSeconds * 200) / 2));
    expect(sized.chunk).toBeGreaterThan(0);
  });
});

describe('Class: RateLimiter (windows)', () => {
  it.each([1, 3, 14, 200, 1000, 12.5])(
    'hands out exactly the rate per second (%s/s) in windows of ≥ 50 ms',
    (rate) => {
      // Prepare
      const l = new RateLimiter('t', 'x', rate, {} as never);
      const perSecond = Math.round(1000 / l.windowMs);

      // Act: every one-second span of windows, and its largest window
      const sums: number[] = [];
      let biggest = 0;
      for (let start = 1_000_000; start < 1_000_000 + 60; start++) {
        let sum = 0;
        for (let w = start; w < start + perSecond; w++) {
          sum += l.capacity(w);
          biggest = Math.max(biggest, l.capacity(w));
        }
        sums.push(sum);
      }

      // Assess: within one window's share (+1 for rounding) of the rate over any span of a second
      expect(l.windowMs).toBeGreaterThanOrEqual(50);
      for (const s of sums)
        expect(Math.abs(s - (rate * perSecond * l.windowMs) / 1000)).toBeLessThanOrEqual(1);
      expect(biggest).toBeLessThanOrEqual(Math.ceil((rate * l.windowMs) / 1000));
    },
  );
});

describe('Class: RecordSlots', () => {
  it('hands freed slots to waiters in order and never more than its size', async () => {
    // Prepare
    const slots = new RecordSlots(2);
    const order: number[] = [];

    // Act
    expect(slots.tryTake()).toBe(true);
    expect(slots.tryTake()).toBe(true);
    expect(slots.tryTake()).toBe(false);
    const a = slots.take().then(() => order.push(1));
    const b = slots.take().then(() => order.push(2));
    slots.give();
    await a;
    expect(slots.tryTake()).toBe(false);
    slots.give();
    await b;

    // Assess
    expect(order).toEqual([1, 2]);
    expect(slots.inUse).toBe(2);
    expect(slots.peak).toBe(2);
  });
});
