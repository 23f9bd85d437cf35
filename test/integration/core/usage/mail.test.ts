import { beforeAll, describe, expect, it } from 'vitest';
import { TooManyRequestsException } from '@aws-sdk/client-sesv2';
import { getSite } from '../../../../config/index.ts';
import { MailMarkers, sendUsageMail, type UsageMailDeps } from '../../../../core/usage/mail.ts';
import {
  MailThrottledError,
  SesMailSender,
  type MailSender,
  type OutgoingMail,
} from '../../../../core/usage/ses-sender.ts';
import { NO_OFFICE, recordJobUsage, UsageStore, type UsageFigures } from '../../../../core/usage/store.ts';
import type { Job } from '../../../../core/jobs/store.ts';
import { localDay } from '../../../../core/usage/days.ts';
import { RecordingLauncher, testDeps, useTestAws } from '../../../helpers/aws.ts';
import { csvOf, runJobs } from '../../../helpers/pipeline-jobs.ts';
import { caught } from '../../../helpers/streams.ts';
import { fetchEmulatorPage } from '../../../../local/emulator-gate.ts';

const aws = useTestAws();
let usage: UsageStore;
let markers: MailMarkers;

beforeAll(async () => {
  usage = new UsageStore(aws.table);
  markers = new MailMarkers(aws.table);
});

interface StoredMail {
  messageId: string;
  destination: { to: string[]; bcc: string[] };
  subject: string;
  body: { text?: string; html?: string };
}

async function sentMails(): Promise<StoredMail[]> {
  const r = await fetchEmulatorPage(`${aws.emulators.endpoints.ses}/store`);
  return ((await r.json()) as { emails: StoredMail[] }).emails;
}

const f = (jobs: number, rows: number, failedRows: number, rejectedJobs = 0): UsageFigures => ({
  jobs,
  rows,
  failedRows,
  rejectedJobs,
});

function mailDeps(sender: MailSender = new SesMailSender()): UsageMailDeps {
  return {
    stage: 'local',
    from: 'no-reply@rowfleet.example.com',
    usage,
    markers,
    sender,
    retry: { baseMs: 1 },
  };
}

describe('UsageStore: exactly once per finished job', () => {
  it('counts a job once under 20 concurrent and 5 later duplicate recordings', async () => {
    // Prepare
    const add = () => usage.add('kashima', '2026-10-01', 'main', 'job-1', f(1, 7, 2));

    // Act
    const concurrent = await Promise.all(Array.from({ length: 20 }, add));
    const later = [];
    for (let i = 0; i < 5; i++) later.push(await add());
    const other = await usage.add('kashima', '2026-10-01', 'main', 'job-2', f(1, 3, 0));

    // Assess
    expect(concurrent.filter(Boolean)).toHaveLength(1);
    expect(later).toEqual([false, false, false, false, false]);
    expect(other).toBe(true);
    expect(await usage.offices('kashima', '2026-10-01', '2026-10-01')).toEqual(
      new Map([['main', f(2, 10, 2)]]),
    );
  });

  it("keeps each site's counters in its own partition and each day apart", async () => {
    // Prepare
    await usage.add('marifu', '2026-10-02', 'main', 'job-m', f(1, 5, 0));
    await usage.add('kawasaki', '2026-10-02', 'main', 'job-k', f(1, 9, 1));
    await usage.add('marifu', '2026-10-03', 'main', 'job-m2', f(1, 4, 0));

    // Act
    const marifuDay = await usage.offices('marifu', '2026-10-02', '2026-10-02');
    const marifuMonth = await usage.offices('marifu', '2026-10-01', '2026-10-31');
    const kawasaki = await usage.offices('kawasaki', '2026-10-01', '2026-10-31');
    const sakai = await usage.offices('sakai', '2026-10-01', '2026-10-31');

    // Assess
    expect(marifuDay).toEqual(new Map([['main', f(1, 5, 0)]]));
    expect(marifuMonth).toEqual(new Map([['main', f(2, 9, 0)]]));
    expect(kawasaki).toEqual(new Map([['main', f(1, 9, 1)]]));
    expect(sakai.size).toBe(0);
  });

  it('records finished jobs through the pipeline once, though every finalize is delivered twice', async () => {
    // Prepare
    const launcher = new RecordingLauncher();
    const deps = testDeps(aws, { launcher, limits: { chunkMaxRecords: 4 } });

    // Act
    const [partial, rejected, ok] = await runJobs(deps, launcher, [
      { site: 'mizushima', office: 'west', csv: csvOf(9, [2, 5]) },
      { site: 'mizushima', office: 'main', csv: '' },
      { site: 'mizushima', office: 'main', csv: csvOf(3) },
    ]);
    const again = await recordJobUsage(usage, partial!); // a redelivered finalize or split: no effect
    const day = localDay(new Date(partial!.finishedAt!), 'Asia/Tokyo');

    // Assess
    expect([partial!.state, rejected!.state, ok!.state]).toEqual(['PARTIAL', 'REJECTED', 'SUCCEEDED']);
    expect(again).toBe(false);
    expect(localDay(new Date(ok!.finishedAt!), 'Asia/Tokyo')).toBe(day);
    expect(await usage.offices('mizushima', day, day)).toEqual(
      new Map([
        ['main', f(2, 3, 0, 1)], // the REJECTED job counts as a job with no records
        ['west', f(1, 7, 2)],
      ]),
    );
  });
});

describe('Function: recordJobUsage', () => {
  const finished = (over: Partial<Job>): Job => ({
    site: 'kashima',
    token: `job-${Math.random()}`,
    state: 'PARTIAL',
    processor: 'json',
    sourceKey: 'k',
    upload: 'direct',
    chunksDone: 1,
    succeeded: 5,
    failed: 2,
    rejected: 1,
    receivedAt: '2026-07-01T00:00:00.000Z',
    finishedAt: '2026-07-01T15:30:00.000Z',
    ...over,
  });

  it("adds a finished job on its finish day in the site's time zone, to its office (or none), once", async () => {
    // Prepare
    const withOffice = finished({ office: 'main' });
    const noOffice = finished({});
    const dayBefore = finished({ office: 'main', finishedAt: '2026-07-01T14:59:59.000Z' });

    // Act
    const added = [await recordJobUsage(usage, withOffice), await recordJobUsage(usage, noOffice)];
    const again = await recordJobUsage(usage, withOffice);
    await recordJobUsage(usage, dayBefore);

    // Assess
    expect(added).toEqual([true, true]);
    expect(again).toBe(false);
    expect(await usage.offices('kashima', '2026-07-02', '2026-07-02')).toEqual(
      new Map([
        ['main', f(1, 5, 3)],
        [NO_OFFICE, f(1, 5, 3)],
      ]),
    );
    expect(await usage.offices('kashima', '2026-07-01', '2026-07-01')).toEqual(
      new Map([['main', f(1, 5, 3)]]),
    );
    expect(NO_OFFICE).toBe('_none');
  });

  it('adds a rejected file as one job with no records', async () => {
    // Prepare
    const job = finished({ site: 'kawasaki', state: 'REJECTED', succeeded: 0, failed: 0, rejected: 0 });

    // Act
    const added = await recordJobUsage(usage, job);

    // Assess
    expect(added).toBe(true);
    expect(await usage.offices('kawasaki', '2026-07-02', '2026-07-02')).toEqual(
      new Map([[NO_OFFICE, f(1, 0, 0, 1)]]),
    );
  });

  it('records nothing for a site that is not configured, or a job without a finish time', async () => {
    // Prepare
    const unknown = finished({ site: 'atlantis' });
    const unfinished = finished({ site: 'mizushima', finishedAt: undefined });

    // Act
    const added = [await recordJobUsage(usage, unknown), await recordJobUsage(usage, unfinished)];

    // Assess
    expect(added).toEqual([false, false]);
    expect((await usage.offices('atlantis', '2026-01-01', '2026-12-31')).size).toBe(0);
    expect((await usage.offices('mizushima', '2026-07-01', '2026-07-31')).size).toBe(0);
  });
});

describe('Usage mail: at most once per site and day', () => {
  it('sends exactly one mail when 10 invocations for the same site and day run at once', async () => {
    // Prepare
    await usage.add('marifu', '2026-09-10', 'main', 'job-a', f(1, 42, 3));
    const site = getSite('marifu');
    const deps = mailDeps();

    // Act
    const results = await Promise.all(
      Array.from({ length: 10 }, () => sendUsageMail(deps, site, '2026-09-10')),
    );
    const late = await sendUsageMail(deps, site, '2026-09-10');

    // Assess
    const sent = results.filter((r) => r.status === 'sent');
    expect(sent).toHaveLength(1);
    expect(results.filter((r) => r.status === 'skipped')).toHaveLength(9);
    expect(late).toMatchObject({ status: 'skipped', messageId: sent[0]!.messageId, reason: 'ALREADY_SENT' });
    expect(late.totals).toEqual({ jobs: 1, rows: 42, failedRows: 3 });
    const mails = (await sentMails()).filter(
      (m) => m.subject.includes('麻里布') && m.subject.includes('2026-09-10'),
    );
    expect(mails).toHaveLength(1);
    expect(mails[0]!.messageId).toBe(sent[0]!.messageId);
    expect(await markers.get('marifu', '2026-09-10')).toMatchObject({
      status: 'SENT',
      messageId: sent[0]!.messageId,
    });
  });

  it('sends nothing and claims nothing for a site with no active recipient', async () => {
    // Prepare
    const site = { ...getSite('mizushima'), recipients: [{ address: 'gone@example.com', active: false }] };
    let calls = 0;
    const sender: MailSender = {
      send: async () => {
        calls++;
        return 'never';
      },
    };

    // Act
    const r = await sendUsageMail(mailDeps(sender), site, '2026-09-09');

    // Assess
    expect(r).toMatchObject({ status: 'skipped', reason: 'NO_ACTIVE_RECIPIENTS', to: [] });
    expect(calls).toBe(0);
    expect(await markers.get('mizushima', '2026-09-09')).toBeUndefined();
  });

  it('answers a later invocation with the mail that was sent, though the recipients changed since', async () => {
    // Prepare
    const site = getSite('kashima');
    const first = await sendUsageMail(mailDeps(), site, '2026-09-08');
    const changed = { ...site, recipients: [{ address: 'new-ops@example.com', active: true }] };

    // Act
    const later = await sendUsageMail(mailDeps(), changed, '2026-09-08');

    // Assess
    expect(later).toMatchObject({
      status: 'skipped',
      reason: 'ALREADY_SENT',
      messageId: first.messageId,
      to: first.to,
      bcc: first.bcc,
      subject: first.subject,
      totals: first.totals,
    });
    expect(later.to).not.toContain('new-ops@example.com');
  });

  it('retries throttling with backoff and sends once', async () => {
    // Prepare
    const ses = new SesMailSender();
    let calls = 0;
    const sender: MailSender = {
      async send(mail: OutgoingMail) {
        calls++;
        if (calls <= 2) throw new TooManyRequestsException({ message: 'slow down', $metadata: {} });
        return ses.send(mail);
      },
    };

    // Act
    const r = await sendUsageMail(mailDeps(sender), getSite('kashima'), '2026-09-11');

    // Assess
    expect(r.status).toBe('sent');
    expect(calls).toBe(3);
    expect((await sentMails()).filter((m) => m.messageId === r.messageId)).toHaveLength(1);
  });

  it('gives the day back when SES throttles throughout, so a later retry sends it', async () => {
    // Prepare
    const site = getSite('kawasaki');
    const throttling: MailSender = {
      send: async () => {
        throw new TooManyRequestsException({ message: 'slow down', $metadata: {} });
      },
    };

    // Act
    const err = await caught(() => sendUsageMail(mailDeps(throttling), site, '2026-09-12'));
    const released = await markers.get('kawasaki', '2026-09-12');
    const retry = await sendUsageMail(mailDeps(), site, '2026-09-12');

    // Assess
    expect(err).toBeInstanceOf(MailThrottledError);
    expect(released?.status).toBe('RELEASED');
    expect(retry.status).toBe('sent');
    expect(await markers.get('kawasaki', '2026-09-12')).toMatchObject({ status: 'SENT' });
  });

  it('logs a permanent SES error as failed, never retries it, and skips later invocations', async () => {
    // Prepare
    let calls = 0;
    const refusing: MailSender = {
      send: async () => {
        calls++;
        throw Object.assign(new Error('Email address is not verified.'), { name: 'MessageRejected' });
      },
    };
    const site = getSite('sakai');

    // Act
    const first = await sendUsageMail(mailDeps(refusing), site, '2026-09-13');
    const second = await sendUsageMail(mailDeps(refusing), site, '2026-09-13');

    // Assess
    expect(first).toMatchObject({ status: 'failed', reason: expect.stringContaining('MessageRejected') });
    expect(second).toMatchObject({ status: 'skipped', reason: 'ALREADY_FAILED' });
    expect(calls).toBe(1);
    expect(await markers.get('sakai', '2026-09-13')).toMatchObject({ status: 'FAILED' });
  });
});

describe('Class: MailMarkers', () => {
  const marker = (site: string, day: string) => ({
    site,
    day,
    to: [`${site}-ops@example.com`],
    bcc: [],
    subject: `usage ${site} ${day}`,
    totals: { jobs: 1, rows: 2, failedRows: 0 },
  });

  it("claims a day once per site: another site's mail of the same day is its own", async () => {
    // Prepare
    const day = '2026-08-01';

    // Act
    const first = await markers.claim(marker('sakai', day));
    const again = await markers.claim(marker('sakai', day));
    const other = await markers.claim(marker('kawasaki', day));
    const nextDay = await markers.claim(marker('sakai', '2026-08-02'));

    // Assess
    expect(first).toEqual(expect.any(String));
    expect(again).toBeUndefined();
    expect(other).toEqual(expect.any(String));
    expect(nextDay).toEqual(expect.any(String));
    expect(await markers.get('sakai', day)).toMatchObject({
      status: 'SENDING',
      claimId: first,
      site: 'sakai',
    });
    expect(await markers.get('kawasaki', day)).toMatchObject({ claimId: other, site: 'kawasaki' });
  });

  it("records an outcome only for the claim that holds the day; another claim's answer is refused", async () => {
    // Prepare
    const day = '2026-08-03';
    const claimId = (await markers.claim(marker('kashima', day)))!;

    // Act
    const outcomes = await Promise.all([
      markers.markSent('kashima', day, 'someone-else', 'msg-x').catch((e: unknown) => e),
      markers.markFailed('kashima', day, 'someone-else', 'boom').catch((e: unknown) => e),
      markers.release('kashima', day, 'someone-else', 'throttled').catch((e: unknown) => e),
    ]);
    const meanwhile = await markers.get('kashima', day);
    await markers.markSent('kashima', day, claimId, 'msg-1');

    // Assess
    for (const o of outcomes) expect((o as Error).name).toBe('ConditionalCheckFailedException');
    expect(meanwhile).toMatchObject({ status: 'SENDING', claimId });
    expect(meanwhile?.messageId).toBeUndefined();
    expect(await markers.get('kashima', day)).toMatchObject({ status: 'SENT', messageId: 'msg-1' });
    expect(await markers.claim(marker('kashima', day))).toBeUndefined();
  });

  it('lets a later invocation claim a released day, and only a released one', async () => {
    // Prepare
    const day = '2026-08-04';
    const failedDay = '2026-08-05';
    const a = (await markers.claim(marker('sakai', day)))!;
    const b = (await markers.claim(marker('sakai', failedDay)))!;
    await markers.release('sakai', day, a, 'throttled');
    await markers.markFailed('sakai', failedDay, b, 'refused');

    // Act
    const reclaimed = await markers.claim(marker('sakai', day));
    const refused = await markers.claim(marker('sakai', failedDay));

    // Assess
    expect(reclaimed).toEqual(expect.any(String));
    expect(reclaimed).not.toBe(a);
    expect(refused).toBeUndefined();
    expect(await markers.get('sakai', failedDay)).toMatchObject({ status: 'FAILED', error: 'refused' });
  });
});
