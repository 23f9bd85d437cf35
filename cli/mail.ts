/** `rowfleet mail send|preview`: a site's usage mail against the local state (or an --endpoint). */
import { InvalidArgumentError } from 'commander';
import { getSite, type SiteConfig } from '../config/index.ts';
import { prepareUsageMail, sendUsageMail, type UsageMailResult } from '../core/usage/mail.ts';
import { isDay, reportedDay } from '../core/usage/days.ts';
import { attachRuntime, type AttachedRuntime } from '../local/attach.ts';
import type { StoredMail } from '../local/emulators/ses.ts';
import { RECORD_HEADER } from '../core/processors/mail.ts';
import { fetchEmulatorPage } from '../local/emulator-gate.ts';

export interface MailCommandOptions {
  readonly site: string;
  /** The reported day, YYYY-MM-DD. @default yesterday in the site's time zone */
  readonly day?: string;
  readonly stateDir: string;
  readonly endpoint?: string;
  readonly json?: boolean;
}

/** The day to report: the one given, else yesterday in the site's own time zone. */
export function dayToReport(site: SiteConfig, day: string | undefined, now: Date = new Date()): string {
  if (day === undefined) return reportedDay(now, site.timeZone);
  if (!isDay(day)) throw new InvalidArgumentError(`--day must be a date as YYYY-MM-DD, got "${day}"`);
  return day;
}

/** The JSON summary of `mail send --json` (last stdout line); `messageId` is null when there is none. */
export function mailSummary(r: UsageMailResult) {
  return {
    site: r.site,
    day: r.day,
    status: r.status,
    messageId: r.messageId ?? null,
    to: r.to,
    bcc: r.bcc,
    subject: r.subject,
    totals: r.totals,
    ...(r.reason ? { reason: r.reason } : {}),
  };
}

async function withRuntime<T>(o: MailCommandOptions, fn: (rt: AttachedRuntime) => Promise<T>): Promise<T> {
  const rt = await attachRuntime({ stateDir: o.stateDir, endpoint: o.endpoint });
  try {
    return await fn(rt);
  } finally {
    await rt.detach();
  }
}

/** Sends the site's mail of the day (at most once per site and day); the exit code: 1 when SES refused it. */
export async function mailSend(o: MailCommandOptions, out: NodeJS.WritableStream = process.stdout) {
  const site = getSite(o.site);
  const day = dayToReport(site, o.day);
  const r = await withRuntime(o, (rt) => sendUsageMail(rt.mailDeps, site, day));
  if (o.json) {
    out.write(JSON.stringify(mailSummary(r)) + '\n');
  } else {
    const t = r.totals;
    out.write(
      `${r.status}: ${r.subject}\n` +
        `  to: ${r.to.join(', ') || '(none)'}\n  bcc: ${r.bcc.join(', ')}\n` +
        `  jobs ${t.jobs}, records processed ${t.rows}, failed or rejected ${t.failedRows}\n` +
        (r.messageId ? `  message id: ${r.messageId}\n` : '') +
        (r.reason ? `  ${r.reason}\n` : ''),
    );
  }
  return r.status === 'failed' ? 1 : 0;
}

/** Renders the site's mail of the day without sending it (no marker is written). */
export async function mailPreview(
  o: MailCommandOptions & { readonly html?: boolean },
  out: NodeJS.WritableStream = process.stdout,
) {
  const site = getSite(o.site);
  const day = dayToReport(site, o.day);
  const { mail, report } = await withRuntime(o, (rt) => prepareUsageMail(rt.mailDeps, site, day));
  if (o.json) {
    const { jobs, rows, failedRows } = report.daily.total;
    out.write(
      JSON.stringify({
        site: site.id,
        day,
        from: mail.from,
        to: mail.to,
        bcc: mail.bcc,
        subject: mail.subject,
        totals: { jobs, rows, failedRows },
        text: mail.text,
        html: mail.html,
      }) + '\n',
    );
    return 0;
  }
  out.write(
    `From: ${mail.from}\nTo: ${mail.to.join(', ')}\nBcc: ${mail.bcc.join(', ')}\nSubject: ${mail.subject}\n\n` +
      (o.html ? mail.html : mail.text),
  );
  return 0;
}

/** One mail of `rowfleet mail list`: a bulk mail names its job and row (token, n); a usage mail names none. */
export interface ListedMail {
  readonly to: string;
  readonly subject: string;
  readonly messageId: string;
  readonly token: string | null;
  readonly n: number | null;
  readonly sentAt: string;
}

/** The mails the embedded SES took (kept in the state dir), oldest first; a bulk mail's row from its header. */
export function listedMails(emails: readonly StoredMail[], token?: string): ListedMail[] {
  return emails
    .map((m) => {
      // X-Rowfleet-Record: <site>#<token>#<n> (the row's idempotency key)
      const ref = m.headers?.find((h) => h.name.toLowerCase() === RECORD_HEADER.toLowerCase())?.value;
      const [, t, n] = ref?.split('#') ?? [];
      return {
        to: m.destination.to.join(', '),
        subject: m.subject,
        messageId: m.messageId,
        token: t ?? null,
        n: n === undefined ? null : Number(n),
        sentAt: new Date(m.atMs ?? m.at * 1000).toISOString(),
      };
    })
    .filter((m) => token === undefined || m.token === token);
}

/** `rowfleet mail list [--token T] [--json]`: the mails in the local SES (JSON: one array, one object per mail). */
export async function mailList(
  o: Pick<MailCommandOptions, 'stateDir' | 'json'> & { readonly token?: string },
  out: NodeJS.WritableStream = process.stdout,
) {
  const emails = await withRuntime({ ...o, site: '' }, async (rt) => {
    if (!rt.endpoints.ses) throw new InvalidArgumentError('mail list reads the embedded SES (no --endpoint)');
    const r = await fetchEmulatorPage(new URL('store', rt.endpoints.ses));
    return ((await r.json()) as { emails: StoredMail[] }).emails;
  });
  const mails = listedMails(emails, o.token);
  if (o.json) out.write(JSON.stringify(mails) + '\n');
  else
    for (const m of mails)
      out.write(
        `${m.sentAt}  ${m.to}  ${m.subject}  ${m.messageId}${m.token ? `  ${m.token}#${m.n}` : ''}\n`,
      );
  return 0;
}
