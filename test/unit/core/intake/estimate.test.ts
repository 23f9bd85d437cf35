import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PRICES, pricesAsOf, pricesFor, priceFigures } from '../../../../config/prices.ts';
import { loadConfig } from '../../../../config/index.ts';
import { grantIfAsked, type BudgetState, type Demand } from '../../../../core/budget/plan.ts';
import {
  CPU_BOUND_RECORDS_PER_VCPU_SECOND,
  estimateRun,
  FARGATE_START_SECONDS,
  LOCAL_START_SECONDS,
  processingSeconds,
  type EstimateInput,
} from '../../../../core/intake/estimate.ts';

const TOKYO = PRICES['ap-northeast-1']!;

/** A `mail` job of `records` on the dev stage's defaults (0.5 vCPU ARM workers, SES at 14/s). */
function input(o: Partial<EstimateInput> = {}): EstimateInput {
  return {
    records: 1000,
    bytes: 100_000,
    utf8Copy: false,
    chunks: 8,
    workers: 2,
    workersNow: 2,
    workerRecordsPerSecond: 500,
    ratePerSecond: 14,
    sideEffects: true,
    mails: true,
    outputBytesPerRecord: 150,
    jobItemBytes: 1100,
    worker: { vcpu: 0.5, memoryGb: 1, arm: true },
    local: false,
    idlePolls: 2,
    waitSeconds: 20,
    retentionDays: 14,
    region: 'ap-northeast-1',
    prices: TOKYO,
    pricesAsOf: '2026-09',
    jpyPerUsd: 150,
    ...o,
  };
}

const line = (e: ReturnType<typeof estimateRun>, s: string) => e.breakdown.find((b) => b.service === s)!;

describe('Estimate: time', () => {
  it('times a rate-limited job by its rate: 1,000 mails at 14/s take 71.4 s after the start', () => {
    // Act
    const e = estimateRun(input());

    // Assess
    expect(e.seconds).toBeCloseTo(FARGATE_START_SECONDS + 1000 / 14, 1);
  });

  it('times a slow processor by its cost at its concurrency per worker, and a CPU-bound one by the vCPU', () => {
    // Act: 100 ms per record at 50 in flight = 500/s per worker; CPU-bound: 39,000/s per vCPU
    const slow = processingSeconds(input({ ratePerSecond: undefined, records: 10_000 }));
    const cpu = processingSeconds(input({ ratePerSecond: undefined, workerRecordsPerSecond: Infinity }));

    // Assess
    expect(slow).toBeCloseTo(10_000 / (2 * 500), 6);
    expect(cpu).toBeCloseTo(1000 / (2 * 0.5 * CPU_BOUND_RECORDS_PER_VCPU_SECOND), 9);
  });

  it('times with the workers the budget grants now, else (a full budget) with those the job asks for', () => {
    // Act
    const one = processingSeconds(input({ ratePerSecond: undefined, workersNow: 1 }));
    const full = processingSeconds(input({ ratePerSecond: undefined, workersNow: 0 }));

    // Assess
    expect(one).toBeCloseTo(1000 / 500, 6);
    expect(full).toBeCloseTo(1000 / 1000, 6);
  });

  it('starts local workers in seconds, Fargate tasks in tens of seconds; no records take no time', () => {
    expect(estimateRun(input({ local: true })).seconds).toBeCloseTo(LOCAL_START_SECONDS + 1000 / 14, 1);
    expect(estimateRun(input({ records: 0, chunks: 0, workers: 0, workersNow: 0 })).seconds).toBe(0);
  });
});

describe('Estimate: cost', () => {
  it('prices a 1,000-mail job per service at the Tokyo list prices', () => {
    // Act
    const e = estimateRun(input());

    // Assess: SES $0.10 per 1,000; Fargate 2 tasks × (0.5 × 0.04045 + 1 × 0.00442) $/h × (45 + 71.4 + 40) s
    expect(line(e, 'ses')).toEqual({ service: 'ses', usd: 0.1, basis: '1000 mails' });
    const taskSeconds = FARGATE_START_SECONDS + 1000 / 14 + 2 * 20;
    expect(line(e, 'fargate').usd).toBeCloseTo((2 * taskSeconds * (0.5 * 0.04045 + 0.00442)) / 3600, 6);
    expect(line(e, 'fargate').basis).toBe(`2 tasks × (0.50 vCPU, 1 GB, ARM) × ${Math.round(taskSeconds)} s`);
    // Two claim writes per record dominate DynamoDB: at least 2,000 write units.
    expect(line(e, 'dynamodb').usd).toBeGreaterThanOrEqual(2000 * 0.000000715);
    expect(e.usd).toBeCloseTo(
      e.breakdown.reduce((n, b) => n + b.usd, 0),
      6,
    );
    expect(e.jpy).toBeCloseTo(e.usd * 150, 2);
  });

  it('bills a short task its one-minute minimum, and x86 at the x86 price', () => {
    // Act
    const e = estimateRun(
      input({
        records: 10,
        ratePerSecond: undefined,
        workers: 1,
        workersNow: 1,
        worker: { vcpu: 1, memoryGb: 2, arm: false },
      }),
    );

    // Assess: 45 s start + 0.02 s + 40 s idle = 85 s > 60 s
    expect(line(e, 'fargate').usd).toBeCloseTo((85.02 * (0.05056 + 2 * 0.00553)) / 3600, 6);
    const tiny = estimateRun(
      input({ idlePolls: 0, records: 1, ratePerSecond: undefined, workers: 1, workersNow: 1 }),
    );
    expect(line(tiny, 'fargate').basis).toMatch(/× 60 s$/);
  });

  it('keeps every figure non-negative, the total the sum of the lines, and JPY the rate times USD', () => {
    fc.assert(
      fc.property(
        fc.record({
          records: fc.integer({ min: 0, max: 2_000_000 }),
          workers: fc.integer({ min: 1, max: 100 }),
          workersNow: fc.integer({ min: 0, max: 100 }),
          perWorker: fc.oneof(fc.constant(Infinity), fc.double({ min: 1, max: 100_000, noNaN: true })),
          rate: fc.option(fc.double({ min: 1, max: 1000, noNaN: true }), { nil: undefined }),
          sideEffects: fc.boolean(),
          mails: fc.boolean(),
          jpyPerUsd: fc.double({ min: 50, max: 300, noNaN: true }),
        }),
        (g) => {
          const e = estimateRun(
            input({
              records: g.records,
              chunks: Math.ceil(g.records / 1000),
              bytes: g.records * 60,
              workers: g.workers,
              workersNow: g.workersNow,
              workerRecordsPerSecond: g.perWorker,
              ratePerSecond: g.rate,
              sideEffects: g.sideEffects,
              mails: g.mails,
              jpyPerUsd: g.jpyPerUsd,
            }),
          );
          expect(e.breakdown.every((b) => b.usd >= 0 && Number.isFinite(b.usd))).toBe(true);
          expect(e.usd).toBeCloseTo(
            e.breakdown.reduce((n, b) => n + b.usd, 0),
            5,
          );
          expect(Math.abs(e.jpy - e.usd * g.jpyPerUsd)).toBeLessThanOrEqual(0.005 + 1e-9);
          expect(e.seconds).toBeGreaterThanOrEqual(0);
        },
      ),
    );
  });

  it('never costs less, nor takes less time, for more records (the same job otherwise)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1_000_000 }),
        fc.integer({ min: 0, max: 1_000_000 }),
        fc.option(fc.double({ min: 1, max: 500, noNaN: true }), { nil: undefined }),
        (a, b, rate) => {
          const [lo, hi] = a <= b ? [a, b] : [b, a];
          const of = (records: number) =>
            estimateRun(
              input({
                records,
                chunks: Math.ceil(records / 1000),
                bytes: records * 60,
                ratePerSecond: rate,
                workerRecordsPerSecond: 500,
              }),
            );
          const [x, y] = [of(lo), of(hi)];
          expect(y.seconds).toBeGreaterThanOrEqual(x.seconds);
          expect(y.usd).toBeGreaterThanOrEqual(x.usd);
        },
      ),
    );
  });
});

describe('Prices (config/prices.ts)', () => {
  it('dates and sources every figure; uses Tokyo for a region it has no table for', () => {
    for (const p of Object.values(PRICES))
      for (const f of priceFigures(p)) {
        expect(f.usd).toBeGreaterThan(0);
        expect(f.source.length).toBeGreaterThan(0);
        expect(f.asOf).toMatch(/^\d{4}/);
      }
    expect(priceFigures(TOKYO)).toHaveLength(13);
    expect(pricesAsOf(TOKYO)).toBe('2026-09');
    expect(pricesFor('eu-west-1').region).toBe('ap-northeast-1');
    expect(pricesFor('us-east-1').prices).toBe(PRICES['us-east-1']);
    expect(pricesFor('constructor').region).toBe('ap-northeast-1');
  });

  it('converts at the stage’s configured rate, 150 yen per dollar by default', () => {
    expect(loadConfig().stages.map((s) => s.jpyPerUsd)).toEqual([150, 150, 150, 150]);
  });
});

describe('Budget: grantIfAsked', () => {
  const policy = { maxWorkers: 4 };
  const demand = (token: string, held: number, maxWorkers: number): Demand => ({
    site: 'sakai',
    token,
    arrivedAt: 0,
    requestedAt: 0,
    remaining: 1000,
    maxWorkers,
    ...(held > 0 ? { firstGrantAt: 0 } : {}),
  });

  it('answers what a pass would grant a job asking now: the free places, its fair share, none when full', () => {
    // Prepare: 3 of 4 places held by one job of sakai
    const state: BudgetState = { version: 1, holders: { 'sakai#a': { held: 3, target: 3, grantedAt: 0 } } };

    // Act
    const sameSite = grantIfAsked(
      policy,
      state,
      [demand('a', 3, 3)],
      { site: 'sakai', remaining: 10, maxWorkers: 4 },
      1,
    );
    const otherSite = grantIfAsked(
      policy,
      state,
      [demand('a', 3, 3)],
      { site: 'kawasaki', remaining: 10, maxWorkers: 4 },
      1,
    );
    const empty = grantIfAsked(
      policy,
      { version: 0, holders: {} },
      [],
      { site: 'sakai', remaining: 10, maxWorkers: 2 },
      1,
    );
    const full = grantIfAsked(
      policy,
      { version: 1, holders: { 'sakai#a': { held: 4, target: 4, grantedAt: 0 } } },
      [demand('a', 4, 4)],
      { site: 'kawasaki', remaining: 10, maxWorkers: 2 },
      1,
    );

    // Assess
    expect([sameSite, otherSite, empty, full]).toEqual([1, 1, 2, 0]);
  });
});
