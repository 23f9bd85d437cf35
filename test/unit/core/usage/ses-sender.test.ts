import { describe, expect, it, vi } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import { SendEmailCommand, SESv2Client, TooManyRequestsException } from '@aws-sdk/client-sesv2';
import {
  isThrottling,
  MailThrottledError,
  SesMailSender,
  sendWithRetry,
  type MailSender,
  type OutgoingMail,
} from '../../../../core/usage/ses-sender.ts';
import { mailLogger } from '../../../../core/usage/mail.ts';
import { caught } from '../../../helpers/streams.ts';

const MAIL: OutgoingMail = {
  from: 'no-reply@rowfleet.example.com',
  to: ['a@example.com', 'b@example.com'],
  bcc: ['ops@example.com'],
  subject: '【Rowfleet】堺 ご利用状況のお知らせ (2026-11-21)',
  text: 'text',
  html: '<p>html</p>',
  tags: { site: 'sakai', day: '2026-11-21' },
};

const throttled = () =>
  new TooManyRequestsException({ message: 'Too many requests', $metadata: { httpStatusCode: 429 } });
const rejected = () =>
  Object.assign(new Error('Email address is not verified.'), { name: 'MessageRejected' });

/** A sender that fails with the given errors first, then answers message ids. */
function scripted(failures: Error[]): MailSender & { calls: number } {
  const s = {
    calls: 0,
    async send() {
      s.calls++;
      const f = failures.shift();
      if (f) throw f;
      return `msg-${s.calls}`;
    },
  };
  return s;
}

describe('Function: sendWithRetry', () => {
  const log = mailLogger('sakai', '2026-11-21');

  it('retries throttling with exponential backoff (full jitter) until SES takes the mail', async () => {
    // Prepare
    const sender = scripted([throttled(), throttled(), throttled()]);
    const sleeps: number[] = [];

    // Act
    const r = await sendWithRetry(sender, MAIL, log, {
      baseMs: 100,
      maxMs: 300,
      random: () => 1,
      sleep: async (ms) => void sleeps.push(ms),
    });

    // Assess
    expect(r).toEqual({ messageId: 'msg-4', attempts: 4 });
    expect(sleeps).toEqual([100, 200, 300]); // doubling, capped at maxMs
  });

  it('does not retry a permanent error: it is thrown after one attempt', async () => {
    // Prepare
    const sender = scripted([rejected()]);
    const sleep = vi.fn(async () => {});

    // Act
    const err = await caught(() => sendWithRetry(sender, MAIL, log, { sleep }));

    // Assess
    expect(err.name).toBe('MessageRejected');
    expect(sender.calls).toBe(1);
    expect(sleep).not.toHaveBeenCalled();
  });

  it('gives up after the last attempt with MailThrottledError (the mail was not sent)', async () => {
    // Prepare
    const sender = scripted(Array.from({ length: 10 }, throttled));

    // Act
    const err = await caught(() => sendWithRetry(sender, MAIL, log, { attempts: 3, sleep: async () => {} }));

    // Assess
    expect(err).toBeInstanceOf(MailThrottledError);
    expect((err as MailThrottledError).attempts).toBe(3);
    expect(sender.calls).toBe(3);
  });

  it('recognises throttling by name or by HTTP 429 only', () => {
    // Act, Assess
    expect(isThrottling(throttled())).toBe(true);
    expect(isThrottling({ name: 'LimitExceededException' })).toBe(true);
    expect(isThrottling({ name: 'X', $metadata: { httpStatusCode: 429 } })).toBe(true);
    expect(isThrottling(rejected())).toBe(false);
    expect(isThrottling({ name: 'InternalFailure', $metadata: { httpStatusCode: 500 } })).toBe(false);
  });
});

describe('Class: SesMailSender', () => {
  it('sends one SES v2 SendEmail with To, BCC, a UTF-8 text and HTML part and the tags', async () => {
    // Prepare
    const ses = mockClient(SESv2Client);
    ses.on(SendEmailCommand).resolves({ MessageId: 'ses-1' });

    // Act
    const id = await new SesMailSender(new SESv2Client({ region: 'ap-northeast-1' })).send(MAIL);

    // Assess
    expect(id).toBe('ses-1');
    const calls = ses.commandCalls(SendEmailCommand);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.args[0].input).toEqual({
      FromEmailAddress: MAIL.from,
      Destination: { ToAddresses: MAIL.to, BccAddresses: MAIL.bcc },
      Content: {
        Simple: {
          Subject: { Data: MAIL.subject, Charset: 'UTF-8' },
          Body: { Text: { Data: 'text', Charset: 'UTF-8' }, Html: { Data: '<p>html</p>', Charset: 'UTF-8' } },
        },
      },
      EmailTags: [
        { Name: 'site', Value: 'sakai' },
        { Name: 'day', Value: '2026-11-21' },
      ],
    });
    ses.restore();
  });
});
