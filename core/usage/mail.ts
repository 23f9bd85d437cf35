import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { siteId } from '../../config/schema.ts';
import { setFields, sitePk, unlessConditionFails } from '../shared/dynamo.ts';
import { GetCommand, PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { getStage, type SiteConfig } from '../../config/index.ts';
import { dynamoClient } from '../aws/clients.ts';
import { requireEnv } from '../shared/env.ts';
import { errorMessage } from '../shared/errors.ts';
import { logger, withKeys, type Log } from '../shared/log.ts';
import { periodUsage, renderUsageMail, type UsageReport } from './mail-content.ts';
import {
  MailThrottledError,
  SesMailSender,
  sendWithRetry,
  type MailSender,
  type OutgoingMail,
  type RetryOptions,
} from './ses-sender.ts';
import { publishSiteMetrics } from '../shared/metrics.ts';
import { UsageStore } from './store.ts';
import { monthRange, monthToReport, reportedDay } from './days.ts';
import { ENV } from '../../config/env.ts';

/**
 * The input each site's EventBridge Scheduler schedule sends (lib/schedules.ts addSiteSchedules, and the local
 * scheduler): the site, and `<aws.scheduler.scheduled-time>` — the same on every retry of one firing.
 */
export const usageMailInput = z.object({
  site: siteId,
  scheduledTime: z.iso.datetime({ offset: true }),
});

export type UsageMailInput = z.infer<typeof usageMailInput>;

/**
 * The daily usage mail of one site. The site is a parameter of every function here — it comes from the
 * schedule's input (or the CLI's --site) and nowhere else; every key, every query, every recipient and every log
 * line is derived from it. Nothing in this module remembers a site between calls.
 */

/** What the usage mail needs; the usage-mail Lambda builds it once per sandbox ({@link usageMailDepsFromEnv}). */
export interface UsageMailDeps {
  readonly stage: string;
  /** From address (config: the stage's `mail.from`). */
  readonly from: string;
  readonly usage: UsageStore;
  readonly markers: MailMarkers;
  readonly sender: MailSender;
  /** Backoff of throttled sends. @default 5 attempts, 500 ms doubling, 8 s at most */
  readonly retry?: RetryOptions;
}

/** The usage-mail function's dependencies from STAGE and TABLE_NAME (counters and markers are in the job table). */
export function usageMailDepsFromEnv(env: NodeJS.ProcessEnv = process.env): UsageMailDeps {
  const stage = requireEnv(ENV.stage, env);
  const table = requireEnv(ENV.table, env);
  return {
    stage,
    from: getStage(stage).mail.from,
    usage: new UsageStore(table),
    markers: new MailMarkers(table),
    sender: new SesMailSender(),
  };
}

/** The three figures the mail's JSON summary carries. */
export interface MailTotals {
  readonly jobs: number;
  readonly rows: number;
  readonly failedRows: number;
}

export type UsageMailStatus = 'sent' | 'skipped' | 'failed';

/** Which mail: one site's usage mail of one day, whom it goes to and what it says (the marker keeps it). */
export interface UsageMailSummary {
  readonly site: string;
  readonly day: string;
  readonly to: readonly string[];
  readonly bcc: readonly string[];
  readonly subject: string;
  readonly totals: MailTotals;
}

export interface UsageMailResult extends UsageMailSummary {
  readonly status: UsageMailStatus;
  /** SES's message id (for `skipped`: the id of the mail sent before, when there was one). */
  readonly messageId?: string;
  /** Why it was skipped or failed. */
  readonly reason?: string;
}

/** A log whose every line names the site and the reported day. */
export function mailLogger(site: string, day: string, base = logger): Log {
  return withKeys({ site, day, mail: 'usage' }, base);
}

// ---------------------------------------------------------------------------------------------------------------
// The marker: at most one usage mail per site and reported day.

export type MailMarkerStatus = 'SENDING' | 'SENT' | 'FAILED' | 'RELEASED';

export interface MailMarker extends UsageMailSummary {
  readonly status: MailMarkerStatus;
  readonly claimId: string;
  readonly claimedAt: string;
  readonly messageId?: string;
  readonly sentAt?: string;
  readonly error?: string;
}

const markerSk = (day: string) => `MAIL#USAGE#${day}`;

/**
 * Mail markers in the site's partition (sk `MAIL#USAGE#<day>`). A sender first claims the day with a conditional
 * put; exactly one concurrent claimer wins, every other invocation (retry, double fire, manual run) is skipped.
 * A claim is given back (RELEASED) only when SES certainly did not take the mail (throttled throughout).
 */
export class MailMarkers {
  constructor(
    private readonly table: string,
    private readonly ddb: DynamoDBDocumentClient = dynamoClient(),
  ) {}

  /** Claims the site's mail of `day`; the claim id, or undefined when it is already claimed. */
  async claim(m: UsageMailSummary, now: Date = new Date()): Promise<string | undefined> {
    const claimId = randomUUID();
    const item: MailMarker = { ...m, status: 'SENDING', claimId, claimedAt: now.toISOString() };
    const claimed = await unlessConditionFails(() =>
      this.ddb.send(
        new PutCommand({
          TableName: this.table,
          Item: { pk: sitePk(m.site), sk: markerSk(m.day), ...item },
          ConditionExpression: 'attribute_not_exists(pk) OR #status = :released',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':released': 'RELEASED' },
        }),
      ),
    );
    return claimed ? claimId : undefined;
  }

  async get(site: string, day: string): Promise<MailMarker | undefined> {
    const r = await this.ddb.send(
      new GetCommand({
        TableName: this.table,
        Key: { pk: sitePk(site), sk: markerSk(day) },
        // Stryker disable next-line BooleanLiteral: dynalite (the emulator) always reads consistently; only AWS can tell a consistent read from an eventual one
        ConsistentRead: true,
      }),
    );
    if (!r.Item) return undefined;
    const { pk: _pk, sk: _sk, ...marker } = r.Item;
    return marker as MailMarker;
  }

  markSent(site: string, day: string, claimId: string, messageId: string, now = new Date()): Promise<void> {
    return this.update(site, day, claimId, { status: 'SENT', messageId, sentAt: now.toISOString() });
  }

  markFailed(site: string, day: string, claimId: string, error: string): Promise<void> {
    return this.update(site, day, claimId, { status: 'FAILED', error });
  }

  /** Gives the day back: a later invocation may send it. Only for a mail SES certainly did not take. */
  release(site: string, day: string, claimId: string, error: string): Promise<void> {
    return this.update(site, day, claimId, { status: 'RELEASED', error });
  }

  private async update(site: string, day: string, claimId: string, fields: Record<string, string>) {
    const { sets, names, values } = setFields(fields);
    await this.ddb.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { pk: sitePk(site), sk: markerSk(day) },
        UpdateExpression: `SET ${sets.join(', ')}`,
        ConditionExpression: 'claimId = :claim',
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: { ...values, ':claim': claimId },
      }),
    );
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Building and sending.

export interface PreparedMail {
  readonly report: UsageReport;
  readonly mail: OutgoingMail;
}

function totalsOf(report: UsageReport): MailTotals {
  const { jobs, rows, failedRows } = report.daily.total;
  return { jobs, rows, failedRows };
}

/** Reads the site's figures of `day` (and of the month that ends with it, on the 1st) and renders the mail. */
export async function prepareUsageMail(
  deps: Pick<UsageMailDeps, 'usage' | 'from'>,
  site: SiteConfig,
  day: string,
): Promise<PreparedMail> {
  const month = monthToReport(day);
  const [daily, monthly] = await Promise.all([
    deps.usage.offices(site.id, day, day),
    month ? deps.usage.offices(site.id, monthRange(month).from, monthRange(month).to) : undefined,
  ]);
  const report: UsageReport = {
    site: { id: site.id, name: site.name, timeZone: site.timeZone },
    day,
    daily: periodUsage(site, daily),
    ...(month && monthly ? { month: { month, ...periodUsage(site, monthly) } } : {}),
  };
  const rendered = renderUsageMail(report);
  return {
    report,
    mail: {
      from: deps.from,
      to: site.recipients.filter((r) => r.active).map((r) => r.address),
      bcc: [site.bcc],
      ...rendered,
      tags: { site: site.id, day },
    },
  };
}

/**
 * Sends the site's usage mail of `day` at most once: read and render, claim the day, send (throttling retried
 * with backoff), record the outcome. A permanent SES error is logged and reported as `failed`, never retried; a
 * mail throttled throughout gives its claim back and throws, so the schedule's retry can send it later.
 */
export async function sendUsageMail(
  deps: UsageMailDeps,
  site: SiteConfig,
  day: string,
): Promise<UsageMailResult> {
  const log = mailLogger(site.id, day);
  const { report, mail } = await prepareUsageMail(deps, site, day);
  const totals = totalsOf(report);
  const result: UsageMailSummary = {
    site: site.id,
    day,
    to: mail.to,
    bcc: mail.bcc,
    subject: mail.subject,
    totals,
  };
  if (mail.to.length === 0) {
    log.warn('usage mail not sent: the site has no active recipient');
    return { ...result, status: 'skipped', reason: 'NO_ACTIVE_RECIPIENTS' };
  }

  const claimId = await deps.markers.claim({ ...result });
  if (!claimId) {
    const before = await deps.markers.get(site.id, day);
    log.info('usage mail skipped: already sent or being sent for this day', {
      previous: before?.status,
      messageId: before?.messageId,
    });
    // Stryker disable OptionalChaining: the claim was refused because the marker exists; markers are never deleted
    return {
      site: site.id,
      day,
      status: 'skipped',
      reason: `ALREADY_${before?.status ?? 'CLAIMED'}`,
      messageId: before?.messageId,
      to: before?.to ?? mail.to,
      bcc: before?.bcc ?? mail.bcc,
      subject: before?.subject ?? mail.subject,
      totals: before?.totals ?? totals,
    };
    // Stryker restore OptionalChaining
  }

  let sent: { messageId: string; attempts: number };
  try {
    sent = await sendWithRetry(deps.sender, mail, log, deps.retry);
  } catch (err) {
    if (err instanceof MailThrottledError) {
      await deps.markers.release(site.id, day, claimId, err.message);
      log.error('usage mail throttled on every attempt: not sent, left to the next retry', {
        attempts: err.attempts,
      });
      throw err;
    }
    const reason = `${(err as Error).name ?? 'Error'}: ${errorMessage(err)}`;
    await deps.markers.markFailed(site.id, day, claimId, reason);
    publishSiteMetrics(deps.stage, site.id, { MailsFailed: 1 });
    log.error('usage mail refused by SES: not retried', { error: reason });
    return { ...result, status: 'failed', reason };
  }
  await deps.markers.markSent(site.id, day, claimId, sent.messageId);
  publishSiteMetrics(deps.stage, site.id, { MailsSent: 1 });
  log.info('usage mail sent', {
    messageId: sent.messageId,
    attempts: sent.attempts,
    to: mail.to.length,
    ...totals,
  });
  return { ...result, status: 'sent', messageId: sent.messageId };
}

/** The scheduled run: the reported day comes from the schedule's `scheduledTime`, never from the clock. */
export function sendScheduledUsageMail(
  deps: UsageMailDeps,
  site: SiteConfig,
  scheduledTime: string,
): Promise<UsageMailResult> {
  return sendUsageMail(deps, site, reportedDay(scheduledTime, site.timeZone));
}
