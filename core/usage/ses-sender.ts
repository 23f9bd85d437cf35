import { SendEmailCommand, type SESv2Client } from '@aws-sdk/client-sesv2';
import { sesClient } from '../aws/clients.ts';
import type { Log } from '../shared/log.ts';
import { retry } from '../shared/retry.ts';

/** What a mail says: its subject, a text part and an HTML part (a template or the usage report renders it). */
export interface MailContent {
  readonly subject: string;
  readonly text: string;
  readonly html: string;
}

/** One mail as it goes to SES: its content (UTF-8) and envelope. */
export interface OutgoingMail extends MailContent {
  readonly from: string;
  readonly to: readonly string[];
  readonly bcc: readonly string[];
  /** SES message tags (name → value), e.g. site and day, for SES event publishing. */
  readonly tags?: Readonly<Record<string, string>>;
  /** Extra headers of the message (e.g. `X-Rowfleet-Record`, which row of which job a bulk mail is for). */
  readonly headers?: Readonly<Record<string, string>>;
}

export interface MailSender {
  /** Sends the mail; resolves to SES's message id. The signal aborts the request (its outcome is then unknown). */
  send(mail: OutgoingMail, signal?: AbortSignal): Promise<string>;
}

/** SES v2 SendEmail with simple (text + HTML) content. */
export class SesMailSender implements MailSender {
  constructor(private readonly ses: SESv2Client = sesClient()) {}

  async send(mail: OutgoingMail, signal?: AbortSignal): Promise<string> {
    const headers = Object.entries(mail.headers ?? {}).map(([Name, Value]) => ({ Name, Value }));
    const r = await this.ses.send(
      new SendEmailCommand({
        FromEmailAddress: mail.from,
        Destination: { ToAddresses: [...mail.to], BccAddresses: [...mail.bcc] },
        Content: {
          Simple: {
            Subject: { Data: mail.subject, Charset: 'UTF-8' },
            Body: {
              Text: { Data: mail.text, Charset: 'UTF-8' },
              Html: { Data: mail.html, Charset: 'UTF-8' },
            },
            ...(headers.length > 0 ? { Headers: headers } : {}),
          },
        },
        EmailTags: Object.entries(mail.tags ?? {}).map(([Name, Value]) => ({ Name, Value })),
      }),
      signal ? { abortSignal: signal } : undefined,
    );
    if (!r.MessageId) throw new Error('SES accepted the mail without a message id');
    return r.MessageId;
  }
}

/** SES errors that mean "not sent, slow down": the request was refused before any mail went out. */
const THROTTLING = new Set([
  'TooManyRequestsException',
  'ThrottlingException',
  'Throttling',
  'LimitExceededException',
]);

export function isThrottling(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } } | undefined;
  return THROTTLING.has(e?.name ?? '') || e?.$metadata?.httpStatusCode === 429;
}

/** SES kept throttling after every attempt: the mail was not sent. */
export class MailThrottledError extends Error {
  override readonly name = 'MailThrottledError';
  constructor(
    readonly attempts: number,
    options: { cause: unknown },
  ) {
    super(`SES throttled the mail ${attempts} times; it was not sent`, options);
  }
}

export interface RetryOptions {
  /** Attempts in all, the first included. @default 5 */
  readonly attempts?: number;
  /** First backoff ceiling in ms; it doubles per attempt (full jitter). @default 500 */
  readonly baseMs?: number;
  /** Largest backoff in ms. @default 8000 */
  readonly maxMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly random?: () => number;
  /** Passed to every send (a bulk mail's timeout or the worker's stop). */
  readonly signal?: AbortSignal;
}

/**
 * Sends once, retrying only throttling, with exponential backoff and full jitter. Any other error is thrown at
 * once: SES may or may not have taken the mail, and a mail must never go out twice.
 */
export async function sendWithRetry(
  sender: MailSender,
  mail: OutgoingMail,
  log: Log,
  o: RetryOptions = {},
): Promise<{ readonly messageId: string; readonly attempts: number }> {
  const attempts = o.attempts ?? 5;
  const base = o.baseMs ?? 500;
  const max = o.maxMs ?? 8000;
  const random = o.random ?? Math.random;
  let tried = 0;
  const send = async (attempt: number) => {
    tried = attempt;
    return { messageId: await sender.send(mail, o.signal), attempts: attempt };
  };
  try {
    return await retry(send, {
      attempts,
      delayMs: (attempt) => Math.round(random() * Math.min(max, base * 2 ** (attempt - 1))),
      retryIf: isThrottling,
      onRetry: (err, attempt, ms) =>
        log.warn('SES throttled the mail; retrying', { attempt, backoffMs: ms, error: (err as Error).name }),
      ...(o.sleep ? { sleep: o.sleep } : {}),
    });
  } catch (err) {
    // Only a throttling error outlives its attempts; any other was thrown at its first failure.
    if (isThrottling(err)) throw new MailThrottledError(tried, { cause: err });
    throw err;
  }
}
