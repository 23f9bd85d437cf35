import { getSite, getStage } from '../../config/index.ts';
import type { PipelineDeps } from '../deps.ts';
import { BadRequestError } from '../shared/errors.ts';
import { daysBetween, nextSendAt, reportedDay, withOffset } from '../usage/days.ts';
import { periodUsage } from '../usage/mail-content.ts';
import { prepareUsageMail } from '../usage/mail.ts';
import { addUsage, NO_USAGE, usageStoreOf, type UsageFigures } from '../usage/store.ts';
import { queryInput, USAGE_MAX_DAYS, usageQuery } from './query.ts';
import { parseOrBadRequest } from './request.ts';
import type { UsageAnswer } from './wire.ts';
// The wire shapes are defined Node-free in ./wire.ts (the console reads them); their names stay importable here.
export type { UsageAnswer };

/**
 * The usage of the caller's site (the site comes from the authorizer only) from `from` to `to` (YYYY-MM-DD in the
 * site's time zone, both included, at most USAGE_MAX_DAYS): the figures the daily usage mail reports — per day
 * and office, offices as the mail lists them (configured ones in order, then recorded ones no longer configured),
 * and in total — read from the site's own partition; and the mail its schedule sends next, rendered as the
 * usage-mail function would render it now (nothing is sent or marked).
 */
export async function usageView(
  deps: Pick<PipelineDeps, 'env' | 'usage'>,
  siteId: string,
  query: Readonly<Record<string, string | undefined>> | null,
  now = new Date(),
): Promise<UsageAnswer> {
  const { from, to } = parseOrBadRequest(usageQuery, queryInput(query));
  if (from > to) throw new BadRequestError('INVALID_REQUEST', `from (${from}) is after to (${to}).`);
  const days = daysBetween(from, to);
  if (days.length > USAGE_MAX_DAYS) {
    throw new BadRequestError(
      'INVALID_REQUEST',
      `The period has ${days.length} days; at most ${USAGE_MAX_DAYS} are answered at once.`,
    );
  }
  const site = getSite(siteId);
  const usage = usageStoreOf(deps);
  const recorded = await usage.byDay(site.id, from, to);
  const perDay = days.map((day) => ({ day, ...periodUsage(site, recorded.get(day) ?? new Map()) }));
  const period = new Map<string, UsageFigures>();
  for (const offices of recorded.values())
    for (const [office, f] of offices) period.set(office, addUsage(period.get(office) ?? NO_USAGE, f));

  const sendAt = nextSendAt(site.sendAtTime, site.timeZone, now);
  const day = reportedDay(sendAt, site.timeZone);
  const { mail } = await prepareUsageMail({ usage, from: getStage(deps.env.stage).mail.from }, site, day);
  return {
    site: { id: site.id, name: site.name, timeZone: site.timeZone },
    from,
    to,
    days: perDay,
    total: periodUsage(site, period),
    nextMail: {
      day,
      sendAt: withOffset(sendAt, site.timeZone),
      to: mail.to,
      subject: mail.subject,
      text: mail.text,
    },
  };
}
