import { describe, expect, it } from 'vitest';
import { recordConcurrency } from '../../../../core/processors/settings.ts';
import { RateLimiter } from '../../../../core/work/rate-limiter.ts';
import { RecordSlots } from '../../../../core/work/slots.ts';
import { DEFAULT_CONCURRENCY } from '../../../../core/processors/types.ts';

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
