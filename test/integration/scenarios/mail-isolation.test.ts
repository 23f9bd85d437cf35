/**
 * The isolation proof. The system this replaces once mailed one site's usage to another site's users: background
 * jobs of all sites shared one Redis database and picked up each other's context. This file replays that shape —
 * every site's jobs and mails on one shared table, one SES, one warm handler instance, all at the same time,
 * interleaved at every I/O step, each mail fired several times — and fails if any mail crosses sites.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type SiteConfig } from '../../../config/index.ts';
import { MailMarkers, type UsageMailDeps, type UsageMailResult } from '../../../core/usage/mail.ts';
import { SesMailSender, type MailSender } from '../../../core/usage/ses-sender.ts';
import { UsageStore } from '../../../core/usage/store.ts';
import { addDays, localDay } from '../../../core/usage/days.ts';
import { createUsageMailHandler } from '../../../lambdas/usage-mail/handler.ts';
import { localContext } from '../../../lambdas/shared/middleware.ts';
import { RecordingLauncher, startTestAws, testDeps, type TestAws } from '../../helpers/aws.ts';
import { csvOf, runJobs, type JobSpec } from '../../helpers/pipeline-jobs.ts';
import { fetchEmulatorPage } from '../../../local/emulator-gate.ts';

const sites = loadConfig().sites;

interface Expected {
  jobs: number;
  rows: number;
  failedRows: number;
}

/**
 * Every site's jobs, chosen so that no two sites have the same figures: a mail with another site's figures
 * cannot pass for its own.
 */
const JOBS: Record<string, { specs: JobSpec[]; expected: Expected }> = {
  sakai: {
    specs: [
      { site: 'sakai', office: 'main', csv: csvOf(3) },
      { site: 'sakai', office: 'port', csv: csvOf(4, [2]) },
    ],
    expected: { jobs: 2, rows: 6, failedRows: 1 },
  },
  kawasaki: {
    specs: [
      { site: 'kawasaki', office: 'main', csv: csvOf(5) },
      { site: 'kawasaki', office: 'main', csv: '' }, // REJECTED: a job with no records
    ],
    expected: { jobs: 2, rows: 5, failedRows: 0 },
  },
  kashima: {
    specs: [{ site: 'kashima', office: 'main', csv: csvOf(7, [1, 6]) }],
    expected: { jobs: 1, rows: 5, failedRows: 2 },
  },
  mizushima: {
    specs: [
      { site: 'mizushima', office: 'main', csv: csvOf(2) },
      { site: 'mizushima', office: 'west', csv: csvOf(9) },
    ],
    expected: { jobs: 2, rows: 11, failedRows: 0 },
  },
  marifu: {
    specs: [{ site: 'marifu', office: 'main', csv: csvOf(13, [4, 8, 12]) }],
    expected: { jobs: 1, rows: 10, failedRows: 3 },
  },
};

interface StoredMail {
  messageId: string;
  destination: { to: string[]; cc: string[]; bcc: string[] };
  subject: string;
  body: { text?: string; html?: string };
}

const figureLine = (e: Expected) =>
  `ジョブ数 ${e.jobs}件 / 処理件数 ${e.rows.toLocaleString('ja-JP')}件 / 失敗・取込不可件数 ${e.failedRows}件`;

/**
 * Everything in `mail` that does not belong to `site`: recipients, BCC, subject, the total line, and any name,
 * office or address of another site anywhere in the mail. Empty when the mail is the site's own.
 */
function crossings(mail: StoredMail, site: SiteConfig, expected: Expected, day: string): string[] {
  const out: string[] = [];
  const active = site.recipients.filter((r) => r.active).map((r) => r.address);
  if (JSON.stringify([...mail.destination.to].sort()) !== JSON.stringify([...active].sort()))
    out.push(`To ${mail.destination.to.join(', ')} is not ${site.id}'s active recipients`);
  if (mail.destination.cc.length) out.push(`unexpected Cc ${mail.destination.cc.join(', ')}`);
  if (JSON.stringify(mail.destination.bcc) !== JSON.stringify([site.bcc]))
    out.push(`BCC ${mail.destination.bcc.join(', ')} is not ${site.id}'s`);
  if (mail.subject !== `【Rowfleet】${site.name} ご利用状況のお知らせ (${day})`)
    out.push(`subject "${mail.subject}" is not ${site.id}'s`);
  const text = mail.body.text ?? '';
  const html = mail.body.html ?? '';
  if (!text.includes(`・合計\n  ${figureLine(expected)}`))
    out.push(`text does not carry ${site.id}'s totals`);
  if (!html.includes(`<strong>${expected.rows.toLocaleString('ja-JP')}</strong>`))
    out.push(`HTML does not carry ${site.id}'s records processed`);
  const whole = [mail.subject, text, html, ...mail.destination.to, ...mail.destination.bcc].join('\n');
  for (const other of sites.filter((s) => s.id !== site.id)) {
    const marks = [
      other.name,
      ...other.offices.map((o) => o.name),
      ...other.recipients.map((r) => r.address),
      ...(other.bcc !== site.bcc ? [other.bcc] : []),
    ];
    for (const m of marks) if (whole.includes(m)) out.push(`mentions ${other.id}'s "${m}"`);
  }
  return out;
}

/** A small seeded PRNG, so that an interleaving that fails can be replayed. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

let aws: TestAws;
let day: string;
let results: UsageMailResult[];
let mails: StoredMail[];
const SEED = 20261122;

beforeAll(async () => {
  aws = await startTestAws();

  // Prepare: every site's jobs at once, on one shared table, bucket and queue set (finalize delivered twice).
  const launcher = new RecordingLauncher();
  const deps = testDeps(aws, { launcher, limits: { chunkMaxRecords: 4 } });
  const specs = Object.values(JOBS).flatMap((j) => j.specs);
  const jobs = await runJobs(deps, launcher, specs);
  const days = new Set(jobs.map((j) => localDay(new Date(j.finishedAt!), 'Asia/Tokyo')));
  if (days.size !== 1) throw new Error(`jobs finished on both sides of Tokyo midnight (${[...days]}); rerun`);
  day = [...days][0]!;

  // One warm handler instance for every site (one Lambda sandbox), with random delays at every I/O step so
  // the invocations interleave: one site's usage read lands while another's send is in flight.
  const random = prng(SEED);
  const jitter = () => new Promise((r) => setTimeout(r, Math.floor(random() * 20)));
  const usage = new UsageStore(aws.table);
  const markers = new MailMarkers(aws.table);
  const ses = new SesMailSender();
  const slowUsage = Object.assign(Object.create(usage) as UsageStore, {
    offices: async (...a: Parameters<UsageStore['offices']>) => {
      await jitter();
      const r = await usage.offices(...a);
      await jitter();
      return r;
    },
  });
  const slowMarkers = Object.assign(Object.create(markers) as MailMarkers, {
    claim: async (...a: Parameters<MailMarkers['claim']>) => {
      await jitter();
      return markers.claim(...a);
    },
  });
  const slowSender: MailSender = {
    send: async (mail) => {
      await jitter();
      const id = await ses.send(mail);
      await jitter();
      return id;
    },
  };
  const mailDeps: UsageMailDeps = {
    stage: 'local',
    from: 'no-reply@rowfleet.example.com',
    usage: slowUsage,
    markers: slowMarkers,
    sender: slowSender,
  };
  const handler = createUsageMailHandler(mailDeps);

  // Act: each site's schedule fires, the Scheduler retries it and an operator runs it by hand — 3 invocations
  // per site, all 15 started together in a shuffled order.
  const scheduledTime = new Date(`${addDays(day, 1)}T07:00:00+09:00`).toISOString().replace('.000Z', 'Z');
  const events = sites.flatMap((s) => Array.from({ length: 3 }, () => ({ site: s.id, scheduledTime })));
  for (let i = events.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [events[i], events[j]] = [events[j]!, events[i]!];
  }
  results = await Promise.all(events.map((e) => handler(e, localContext('usage-mail'))));
  const store = (await (await fetchEmulatorPage(`${aws.emulators.endpoints.ses}/store`)).json()) as {
    emails: StoredMail[];
  };
  mails = store.emails;
});

afterAll(async () => {
  await aws?.stop();
});

describe('Isolation: every site mailed at once over shared infrastructure', () => {
  it('sends exactly one mail per site, and each invocation answers for the site it was given', () => {
    // Assess
    expect(mails).toHaveLength(sites.length);
    for (const site of sites) {
      const own = results.filter((r) => r.site === site.id);
      expect(own).toHaveLength(3);
      expect(own.filter((r) => r.status === 'sent')).toHaveLength(1);
      expect(own.filter((r) => r.status === 'skipped')).toHaveLength(2);
      // a skip while the winner is still sending has no message id yet; none has another one
      expect(new Set(own.map((r) => r.messageId).filter(Boolean)).size).toBe(1);
      expect(own.every((r) => r.day === day)).toBe(true);
    }
  });

  it.each(sites.map((s) => [s.id, s] as const))(
    "mails %s's own recipients and BCC with its own figures, and nothing of any other site",
    (id, site) => {
      // Prepare
      const sent = results.find((r) => r.site === id && r.status === 'sent')!;
      const expected = JOBS[id]!.expected;

      // Act
      const mail = mails.find((m) => m.messageId === sent.messageId)!;

      // Assess
      expect(mail, `no mail stored for ${id}`).toBeDefined();
      expect(crossings(mail, site, expected, day)).toEqual([]);
      expect(sent.totals).toEqual(expected);
      expect(sent.to).toEqual(site.recipients.filter((r) => r.active).map((r) => r.address));
      expect(sent.bcc).toEqual([site.bcc]);
    },
  );

  it('never mails an inactive recipient', () => {
    // Prepare
    const inactive = sites.flatMap((s) => s.recipients.filter((r) => !r.active).map((r) => r.address));

    // Assess
    expect(inactive.length).toBeGreaterThan(0);
    for (const m of mails) for (const a of inactive) expect(m.destination.to).not.toContain(a);
  });

  it("catches a crossed mail: the check fails on sakai's mail sent to kawasaki's users or with kawasaki's figures", () => {
    // Prepare: the incident's outcome, forged from two real mails
    const sakai = sites.find((s) => s.id === 'sakai')!;
    const mailOf = (id: string) =>
      mails.find(
        (m) => m.messageId === results.find((r) => r.site === id && r.status === 'sent')!.messageId,
      )!;
    const sakaiMail = mailOf('sakai');
    const kawasakiMail = mailOf('kawasaki');
    const wrongRecipients: StoredMail = { ...sakaiMail, destination: kawasakiMail.destination };
    const wrongFigures: StoredMail = { ...sakaiMail, body: kawasakiMail.body };

    // Act
    const a = crossings(wrongRecipients, sakai, JOBS.sakai!.expected, day);
    const b = crossings(wrongFigures, sakai, JOBS.sakai!.expected, day);

    // Assess
    expect(a).toEqual(expect.arrayContaining([expect.stringMatching(/^To .* is not sakai's/)]));
    expect(a.join('\n')).toContain('mentions kawasaki\'s "kawasaki-ops@example.com"');
    expect(b).toEqual(expect.arrayContaining(["text does not carry sakai's totals"]));
    expect(b.join('\n')).toContain('mentions kawasaki\'s "川崎"');
  });
});
