import { describe, expect, it } from 'vitest';
import {
  failureRateExceeded,
  maxFailureRateOf,
  MIN_FAILURE_SAMPLE,
  RETRIED_CODES,
  UNPROCESSED_CODE,
} from '../../../../core/stop/rules.ts';
import {
  errorsPageQuery,
  queryParameters,
  USAGE_MAX_DAYS,
  usageQuery,
} from '../../../../core/intake/query.ts';
import { daysBetween, nextSendAt, withOffset } from '../../../../core/usage/days.ts';

describe('Function: failureRateExceeded', () => {
  it.each([
    ['no rate set', undefined, 0, 500, false],
    ['below the sample, every record failed', 0.1, 0, MIN_FAILURE_SAMPLE - 1, false],
    ['at the sample, every record failed', 0.1, 0, MIN_FAILURE_SAMPLE, true],
    ['exactly the share (not more)', 0.1, 900, 100, false],
    ['one failure more than the share', 0.1, 899, 101, true],
    ['0: any failure after the sample', 0, 1000, 1, true],
    ['0: no failure', 0, 1000, 0, false],
    ['1: never', 1, 0, 1000, false],
  ] as const)('%s', (_what, rate, succeeded, failed, expected) => {
    // Act
    const stop = failureRateExceeded(rate, { succeeded, failed });

    // Assess
    expect(stop).toBe(expected);
  });

  it("reads the job's option from its worker options (text), absent as undefined", () => {
    // Act, Assess
    expect(maxFailureRateOf({ maxFailureRate: '0.25' })).toBe(0.25);
    expect(maxFailureRateOf({ maxFailureRate: '0' })).toBe(0);
    expect(maxFailureRateOf({})).toBeUndefined();
    expect(maxFailureRateOf(undefined)).toBeUndefined();
  });

  it('re-runs in a retry the processing failures and the records a stop left, nothing else', () => {
    // Assess
    expect([...RETRIED_CODES].sort()).toEqual(
      ['CANCELLED', 'CHUNK_FAILED', 'PROCESSING_FAILED', 'PROCESSOR_BROKEN', 'STOPPED_EARLY'].sort(),
    );
    expect(UNPROCESSED_CODE).toEqual({
      CANCELLED: 'CANCELLED',
      FAILURE_RATE_EXCEEDED: 'STOPPED_EARLY',
      PROCESSOR_BROKEN: 'PROCESSOR_BROKEN',
    });
    expect(RETRIED_CODES).not.toContain('IN_DOUBT');
    expect(RETRIED_CODES).not.toContain('COLUMN_COUNT');
  });
});

describe('Query schemas', () => {
  it('say which parameters exist and which are required (what API Gateway validates)', () => {
    // Act, Assess
    expect(queryParameters(errorsPageQuery)).toEqual({ limit: false, offset: false });
    expect(queryParameters(usageQuery)).toEqual({ from: true, to: true });
  });

  it.each([
    [{}, true],
    [{ limit: '20', offset: '0' }, true],
    [{ limit: '100' }, true],
    [{ limit: '0' }, false],
    [{ limit: '101' }, false],
    [{ limit: '1.5' }, false],
    [{ limit: '-1' }, false],
    [{ offset: 'x' }, false],
    [{ page: '2' }, false],
  ])('errors page %j → %s', (q, ok) => {
    // Act, Assess
    expect(errorsPageQuery.safeParse(q).success).toBe(ok);
  });

  it.each([
    [{ from: '2026-11-01', to: '2026-11-21' }, true],
    [{ from: '2026-02-30', to: '2026-03-01' }, false],
    [{ from: '2026-11-01' }, false],
    [{ from: '20261101', to: '2026-11-21' }, false],
    [{ from: '2026-11-01', to: '2026-11-21', site: 'kawasaki' }, false],
  ])('usage %j → %s', (q, ok) => {
    // Act, Assess
    expect(usageQuery.safeParse(q).success).toBe(ok);
  });

  it('bounds the usage period to a year with its leap day', () => {
    // Act, Assess
    expect(USAGE_MAX_DAYS).toBe(366);
    expect(daysBetween('2024-01-01', '2024-12-31')).toHaveLength(366);
    expect(daysBetween('2026-11-30', '2026-12-02')).toEqual(['2026-11-30', '2026-12-01', '2026-12-02']);
    expect(daysBetween('2026-12-02', '2026-11-30')).toEqual([]);
  });
});

describe('Function: nextSendAt', () => {
  it("fires at the site's local send time: later today, or tomorrow once it has passed", () => {
    // Prepare: 06:59 and 07:01 in Tokyo on 2026-11-21
    const before = new Date('2026-11-20T21:59:00Z');
    const after = new Date('2026-11-20T22:01:00Z');

    // Act
    const a = nextSendAt({ hour: 7, minute: 0 }, 'Asia/Tokyo', before);
    const b = nextSendAt({ hour: 7, minute: 0 }, 'Asia/Tokyo', after);

    // Assess
    expect(withOffset(a, 'Asia/Tokyo')).toBe('2026-11-21T07:00:00+09:00');
    expect(withOffset(b, 'Asia/Tokyo')).toBe('2026-11-22T07:00:00+09:00');
    expect(withOffset(new Date('2026-07-01T12:00:00Z'), 'UTC')).toBe('2026-07-01T12:00:00+00:00');
    expect(withOffset(new Date('2026-07-01T12:00:00Z'), 'America/New_York')).toBe(
      '2026-07-01T08:00:00-04:00',
    );
  });
});
