import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../../../config/index.ts';
import { parseSendAt } from '../../../../config/schema.ts';
import type { UsageMailDeps } from '../../../../core/usage/mail.ts';
import { reportedDay } from '../../../../core/usage/days.ts';
import { createUsageMailHandler } from '../../../../lambdas/usage-mail/handler.ts';
import { usageMailInput, type UsageMailInput } from '../../../../core/usage/mail.ts';
import { localContext } from '../../../../lambdas/shared/middleware.ts';
import {
  dailyCronPattern,
  LocalSiteSchedules,
  schedulerTime,
  type SiteScheduleInput,
} from '../../../../local/scheduler.ts';
import { caught } from '../../../helpers/streams.ts';

const sites = loadConfig().sites;

describe('Handler: usage-mail input', () => {
  // Invalid input is refused before any dependency is touched.
  const handler = createUsageMailHandler({} as UsageMailDeps);

  it.each([
    [{ scheduledTime: '2026-11-21T22:00:00Z' }, /site/],
    [{ site: 'sakai' }, /scheduledTime/],
    [{ site: 'sakai', scheduledTime: 'yesterday' }, /scheduledTime/],
    [{ site: 'Sakai!', scheduledTime: '2026-11-21T22:00:00Z' }, /site/],
    [null, /Failed to parse schema/],
  ])('refuses %j', async (event, message) => {
    // Act
    const err = await caught(() => handler(event as UsageMailInput, localContext('usage-mail')));

    // Assess: the parser's error names what is wrong (its cause lists the schema's issues)
    expect(`${err.message} ${JSON.stringify(err.cause)}`).toMatch(message);
  });

  it('refuses a well-formed but unknown site', async () => {
    // Act
    const err = await caught(() =>
      handler({ site: 'nowhere', scheduledTime: '2026-11-21T22:00:00Z' }, localContext('usage-mail')),
    );

    // Assess
    expect(err.message).toMatch(/Unknown site "nowhere"/);
  });
});

describe('Class: LocalSiteSchedules', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('turns sendAt into a daily pattern and refuses malformed times', () => {
    // Act, Assess
    expect(dailyCronPattern(parseSendAt('07:00')!)).toBe('0 0 7 * * *');
    expect(dailyCronPattern(parseSendAt('23:05')!)).toBe('0 5 23 * * *');
    expect(parseSendAt('7:00')).toBeUndefined();
  });

  it('plans every site at 07:00 Asia/Tokyo, 22:00 UTC the day before, all year (no DST)', () => {
    // Prepare
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2026-03-01T00:00:00Z'));
    const s = new LocalSiteSchedules(sites, async () => undefined);

    // Act
    const next = s.nextRuns();

    // Assess
    expect(next.map((n) => n.site)).toEqual(sites.map((x) => x.id));
    for (const n of next) expect(n.at.toISOString()).toBe('2026-03-01T22:00:00.000Z');
  });

  it("fires each site once at its time with exactly the Scheduler's input, which the handler accepts", async () => {
    // Prepare
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2026-11-21T21:59:00Z'));
    const inputs: SiteScheduleInput[] = [];
    const s = new LocalSiteSchedules(sites, async (input) => void inputs.push(input)).start();

    // Act
    await vi.advanceTimersByTimeAsync(2 * 60_000);
    await s.stop();

    // Assess
    expect(inputs.map((i) => i.site).sort()).toEqual(sites.map((x) => x.id).sort());
    for (const input of inputs) {
      expect(input).toEqual({ site: input.site, scheduledTime: '2026-11-21T22:00:00Z' });
      expect(usageMailInput.parse(input)).toEqual(input);
      expect(reportedDay(input.scheduledTime, 'Asia/Tokyo')).toBe('2026-11-21');
    }
  });

  it('reports a failed invocation without stopping the other sites', async () => {
    // Prepare
    const fired: { site: string; ok: boolean }[] = [];
    const s = new LocalSiteSchedules(
      sites,
      async (input) => {
        if (input.site === 'kawasaki') throw new Error('boom');
        return 'ok';
      },
      (f) => fired.push({ site: f.input.site, ok: f.error === undefined }),
    );

    // Act
    await Promise.all(sites.map((x) => s.fire(x.id, new Date('2026-11-21T22:00:00.123Z'))));

    // Assess
    expect(fired.filter((f) => !f.ok).map((f) => f.site)).toEqual(['kawasaki']);
    expect(fired.filter((f) => f.ok)).toHaveLength(sites.length - 1);
    expect(schedulerTime(new Date('2026-11-21T22:00:00.123Z'))).toBe('2026-11-21T22:00:00Z');
  });
});
