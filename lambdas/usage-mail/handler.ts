import { parser } from '@aws-lambda-powertools/parser/middleware';
import type { Context } from 'aws-lambda';
import { getSite } from '../../config/index.ts';
import {
  sendScheduledUsageMail,
  usageMailDepsFromEnv,
  usageMailInput,
  type UsageMailDeps,
  type UsageMailInput,
  type UsageMailResult,
} from '../../core/usage/mail.ts';
import { lambda } from '../shared/middleware.ts';

/**
 * Usage-mail Lambda (one schedule per site, 07:00 in the site's time zone): the schedule's input is parsed
 * (Powertools parser, core's schema) and that site's mail for the previous day is sent. An invalid input or an
 * unknown site throws (the schedule retries, then dead-letters it); a second invocation for the same day
 * answers `skipped`.
 */
export function createUsageMailHandler(deps: UsageMailDeps) {
  return lambda(async (input: UsageMailInput): Promise<UsageMailResult> =>
    sendScheduledUsageMail(deps, getSite(input.site), input.scheduledTime),
  ).use(parser({ schema: usageMailInput }));
}

let cached: ReturnType<typeof createUsageMailHandler> | undefined;
export const handler = (event: unknown, context: Context) =>
  (cached ??= createUsageMailHandler(usageMailDepsFromEnv()))(event as UsageMailInput, context);
