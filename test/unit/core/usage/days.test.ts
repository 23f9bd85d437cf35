import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  addDays,
  isDay,
  japaneseDate,
  localDay,
  monthRange,
  monthToReport,
  reportedDay,
} from '../../../../core/usage/days.ts';

const TOKYO = 'Asia/Tokyo';

describe('Function: reportedDay', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("reports the Tokyo day before the firing, not the UTC date's day before", () => {
    // Prepare: 07:00 JST on 2026-11-22 is 22:00 UTC on 2026-11-21
    const scheduledTime = '2026-11-21T22:00:00Z';

    // Act
    const day = reportedDay(scheduledTime, TOKYO);

    // Assess
    expect(day).toBe('2026-11-21');
    expect(addDays(scheduledTime.slice(0, 10), -1)).not.toBe(day); // the naive UTC answer would be wrong
  });

  it('reports the same day for a late invocation and for every retry of one firing (the clock is never read)', () => {
    // Prepare: one firing, invoked at several wall-clock times (late, retried after the next Tokyo midnight)
    const scheduledTime = '2026-11-21T22:00:00Z';
    const wallClocks = [
      '2026-11-21T22:00:03Z',
      '2026-11-22T01:59:00Z',
      '2026-11-22T15:30:00Z',
      '2026-11-23T21:59:59Z',
    ];
    vi.useFakeTimers();

    // Act
    const days = wallClocks.map((now) => {
      vi.setSystemTime(new Date(now));
      return reportedDay(scheduledTime, TOKYO);
    });

    // Assess
    expect(days).toEqual(['2026-11-21', '2026-11-21', '2026-11-21', '2026-11-21']);
  });

  it('reads any offset form of the same instant alike', () => {
    // Act
    const forms = ['2026-11-21T22:00:00Z', '2026-11-22T07:00:00+09:00', '2026-11-21T22:00:00.000Z'].map((t) =>
      reportedDay(t, TOKYO),
    );

    // Assess
    expect(forms).toEqual(['2026-11-21', '2026-11-21', '2026-11-21']);
  });

  it.each([
    // the days other zones change their clocks: Tokyo has no DST, 07:00 JST stays 22:00Z the day before
    ['2026-03-07T22:00:00Z', '2026-03-07'],
    ['2026-03-28T22:00:00Z', '2026-03-28'],
    ['2026-10-24T22:00:00Z', '2026-10-24'],
    ['2026-10-31T22:00:00Z', '2026-10-31'],
  ])('is DST-free in Asia/Tokyo: firing %s reports %s', (scheduledTime, expected) => {
    // Act, Assess
    expect(reportedDay(scheduledTime, TOKYO)).toBe(expected);
  });

  it('follows a zone with DST: 07:00 in New York the day clocks spring forward reports the day before', () => {
    // Prepare: 2026-03-08 07:00 EDT = 11:00Z (it would be 12:00Z a day earlier, EST)
    const scheduledTime = '2026-03-08T11:00:00Z';

    // Act, Assess
    expect(reportedDay(scheduledTime, 'America/New_York')).toBe('2026-03-07');
    expect(reportedDay('2026-03-07T12:00:00Z', 'America/New_York')).toBe('2026-03-06');
  });

  it.each([
    ['2026-11-30T22:00:00Z', '2026-11-30', '2026-11'], // sent 2026-12-01
    ['2026-12-31T22:00:00Z', '2026-12-31', '2026-12'], // sent on New Year's Day
    ['2028-02-29T22:00:00Z', '2028-02-29', '2028-02'], // leap year
    ['2027-02-28T22:00:00Z', '2027-02-28', '2027-02'],
  ])('on the 1st (firing %s) reports %s and the month %s', (scheduledTime, day, month) => {
    // Act
    const reported = reportedDay(scheduledTime, TOKYO);

    // Assess
    expect(reported).toBe(day);
    expect(monthToReport(reported)).toBe(month);
    expect(monthRange(month)).toEqual({ from: `${month}-01`, to: day });
  });

  it('adds no month on other days, the 1st itself included', () => {
    // Act, Assess
    expect(monthToReport('2026-11-21')).toBeUndefined();
    expect(monthToReport('2026-12-01')).toBeUndefined();
    expect(monthToReport('2028-02-28')).toBeUndefined();
  });

  it('refuses an invalid scheduledTime instead of guessing', () => {
    // Act, Assess
    expect(() => reportedDay('not a time', TOKYO)).toThrow(/invalid scheduledTime/);
  });
});

describe('Function: localDay', () => {
  it("counts a job that finished at 00:30 JST on the Tokyo day, not on UTC's", () => {
    // Act, Assess
    expect(localDay(new Date('2026-11-21T15:30:00Z'), TOKYO)).toBe('2026-11-22');
    expect(localDay(new Date('2026-11-21T14:59:59Z'), TOKYO)).toBe('2026-11-21');
  });
});

describe('Calendar helpers', () => {
  it('validate and format days', () => {
    // Act, Assess
    expect(isDay('2026-11-21')).toBe(true);
    expect(isDay('2026-02-30')).toBe(false);
    expect(isDay('2026-1-2')).toBe(false);
    expect(addDays('2026-12-31', 1)).toBe('2027-01-01');
    expect(addDays('2026-03-01', -1)).toBe('2026-02-28');
    expect(japaneseDate('2026-11-21')).toBe('2026年11月21日（土）');
    expect(() => addDays('2026-13-01', 1)).toThrow(/YYYY-MM-DD/);
  });
});
