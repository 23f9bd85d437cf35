import { z } from 'zod';
import { getSite } from '../../config/index.ts';
import { siteId } from '../../config/schema.ts';
import {
  sendScheduledUsageMail,
  usageMailDepsFromEnv,
  type UsageMailDeps,
  type UsageMailResult,
} from '../../core/usage/mail.ts';

/** The input each site's EventBridge Scheduler schedule sends (lib/schedules.ts addSiteSchedules). */
export const usageMailInput = z.object({
  site: siteId,
  /** `<aws.scheduler.scheduled-time>`: the same on every retry of one firing. */
  scheduledTime: z.iso.datetime({ offset: true }),
});

export type UsageMailInput = z.infer<typeof usageMailInput>;

/**
 * Usage-mail Lambda (one schedule per site, 07:00 in the site's time zone): validates the schedule's input and
 * sends that site's mail for the previous day. An invalid input or an unknown site throws (the schedule retries,
 * then dead-letters it); a second invocation for the same day answers `skipped`.
 */
export function createUsageMailHandler(deps: UsageMailDeps) {
  return async (event: unknown): Promise<UsageMailResult> => {
    const parsed = usageMailInput.safeParse(event);
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(input)'}: ${i.message}`);
      throw new Error(`Invalid usage-mail input ${JSON.stringify(event)}: ${problems.join('; ')}`);
    }
    const site = getSite(parsed.data.site);
    return sendScheduledUsageMail(deps, site, parsed.data.scheduledTime);
  };
}

let cached: ReturnType<typeof createUsageMailHandler> | undefined;
export const handler = (event: unknown) => (cached ??= createUsageMailHandler(usageMailDepsFromEnv()))(event);
