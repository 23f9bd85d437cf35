import { describe, expect, it } from 'vitest';
import { getSite, loadConfig, rawConfig } from '../../../../config/index.ts';
import { BadRequestError } from '../../../../core/shared/errors.ts';
import {
  createMailProcessor,
  RECORD_HEADER,
  templateColumns,
  templateOf,
} from '../../../../core/processors/mail.ts';
import { RecordError, type RowContext } from '../../../../core/processors/types.ts';
import type { MailSender, OutgoingMail } from '../../../../core/usage/ses-sender.ts';
import type { ChunkMessage } from '../../../../core/messages/chunk.ts';
import { splitPart } from '../../../../core/messages/part.ts';
import { validated } from '../../../../core/intake/operations.ts';
import type { EffectClaim } from '../../../../core/effects/claims.ts';
import { processChunk } from '../../../../core/work/process-chunk.ts';
import { RUNNING_JOB } from '../../../helpers/running-job.ts';

const TOKEN = '0f8fad5b-d9cb-469f-a165-70867728950e';

/** A sender that keeps the mails and answers as told. */
class FakeSender implements MailSender {
  readonly sent: OutgoingMail[] = [];
  constructor(private readonly answer: (mail: OutgoingMail) => Promise<string> = async () => 'msg-1') {}
  async send(mail: OutgoingMail): Promise<string> {
    this.sent.push(mail);
    return this.answer(mail);
  }
}

function ctx(site: string, header: string[], options: Record<string, string> = {}, n = 7): RowContext {
  return {
    site,
    token: TOKEN,
    header,
    options,
    idempotencyKey: `${site}#${TOKEN}#${n}`,
    signal: new AbortController().signal,
    attempt: 1,
  };
}

const HEADER = ['id', '氏名', '品目', '数量', '受注日', 'email'];
const row = (fields: string[], n = 7) => ({ n, line: n + 1, fields });
const fast = { retry: { sleep: async () => undefined, random: () => 0 } };

describe('Processor: mail', () => {
  it("sends one mail from the site's own sender with its template: text as written, HTML escaped", async () => {
    // Prepare
    const sender = new FakeSender(async () => 'ses-123');
    const mail = createMailProcessor({ sender: () => sender, ...fast });
    const fields = ['A-1', '<b>山田</b> & "太郎"', 'コイル', '3', '2026-11-20', 'yamada@example.com'];

    // Act
    const out = await mail.process(row(fields), ctx('sakai', HEADER));

    // Assess
    expect(sender.sent).toHaveLength(1);
    const m = sender.sent[0]!;
    expect(m.from).toBe('sakai@rowfleet.example.com');
    expect(m.to).toEqual(['yamada@example.com']);
    expect(m.subject).toBe('【堺】ご注文 A-1 のご案内');
    expect(m.text).toContain('<b>山田</b> & "太郎" 様');
    expect(m.html).toContain('<p>&lt;b&gt;山田&lt;/b&gt; &amp; &quot;太郎&quot; 様</p>');
    expect(m.html).not.toContain('<b>山田');
    expect(m.headers).toEqual({ [RECORD_HEADER]: `sakai#${TOKEN}#7` });
    expect(m.tags).toEqual({ site: 'sakai', job: TOKEN });
    expect(out).toHaveLength(1);
    expect(out[0]!.name).toBe('mail/7.json');
    expect(JSON.parse(String(out[0]!.data))).toMatchObject({
      to: 'yamada@example.com',
      subject: '【堺】ご注文 A-1 のご案内',
      messageId: 'ses-123',
    });
  });

  it('fails a row whose template names a column the file lacks (MAIL_TEMPLATE_FIELD), without sending', async () => {
    // Prepare: no 品目 column
    const sender = new FakeSender();
    const mail = createMailProcessor({ sender: () => sender, ...fast });
    const header = ['id', '氏名', '数量', '受注日', 'email'];

    // Act
    const err = await Promise.resolve(
      mail.process(row(['1', '山田', '3', '2026-11-20', 'a@example.com']), ctx('sakai', header)),
    ).catch((e: unknown) => e);

    // Assess
    expect(err).toBeInstanceOf(RecordError);
    expect((err as RecordError).code).toBe('MAIL_TEMPLATE_FIELD');
    expect((err as RecordError).message).toContain('{{品目}}');
    expect((err as RecordError).retryable).toBe(false);
    expect(sender.sent).toHaveLength(0);
  });

  it('refuses an invalid address or a missing recipient column before sending', async () => {
    // Prepare
    const sender = new FakeSender();
    const mail = createMailProcessor({ sender: () => sender, ...fast });

    // Act
    const bad = await Promise.resolve(
      mail.process(row(['1', '山田', 'x', '1', 'd', 'not an address']), ctx('sakai', HEADER)),
    ).catch((e: unknown) => e);
    const none = await Promise.resolve(
      mail.process(row(['1', '山田', 'x', '1', 'd']), ctx('sakai', HEADER.slice(0, 5))),
    ).catch((e: unknown) => e);

    // Assess
    expect((bad as RecordError).code).toBe('MAIL_INVALID_ADDRESS');
    expect((none as RecordError).code).toBe('MAIL_TEMPLATE_FIELD');
    expect((none as RecordError).message).toContain('"email"');
    expect(sender.sent).toHaveLength(0);
  });

  it('maps SES answers: a permanent refusal, throttling on every attempt, and no answer at all', async () => {
    // Prepare
    const refusal = Object.assign(new Error('Email address is not verified.'), {
      name: 'MessageRejected',
      $metadata: { httpStatusCode: 400 },
    });
    const throttled = Object.assign(new Error('Maximum sending rate exceeded.'), {
      name: 'TooManyRequestsException',
      $metadata: { httpStatusCode: 429 },
    });
    const reset = Object.assign(new Error('socket hang up'), { name: 'TimeoutError' });
    const fields = ['1', '山田', 'x', '1', 'd', 'a@example.com'];
    const outcome = async (err: Error) => {
      const sender = new FakeSender(() => Promise.reject(err));
      const mail = createMailProcessor({ sender: () => sender, ...fast });
      const e = await Promise.resolve(mail.process(row(fields), ctx('sakai', HEADER))).catch(
        (x: unknown) => x,
      );
      return { e, sends: sender.sent.length };
    };

    // Act
    const refused = await outcome(refusal);
    const throttledOut = await outcome(throttled);
    const unknown = await outcome(reset);

    // Assess: refused and throttled are certainly not sent (RecordError); no answer stays unknown
    expect((refused.e as RecordError).code).toBe('MAIL_REFUSED');
    expect(refused.sends).toBe(1);
    expect((throttledOut.e as RecordError).code).toBe('MAIL_THROTTLED');
    expect(throttledOut.sends).toBe(5);
    expect(unknown.e).not.toBeInstanceOf(RecordError);
    expect(unknown.sends).toBe(1);
  });

  it("keeps sites apart: each site's rows go out from its own sender, with its own template", async () => {
    // Prepare: rows of three sites interleaved through one processor (one worker process)
    const sender = new FakeSender();
    const mail = createMailProcessor({ sender: () => sender, ...fast });
    const sites = ['kawasaki', 'sakai', 'marifu', 'sakai', 'kawasaki', 'marifu'];

    // Act
    await Promise.all(
      sites.map((s, i) =>
        mail.process(
          row([`${s}-${i}`, '名前', 'x', '1', 'd', `${s}-${i}@example.com`], i + 1),
          ctx(s, HEADER),
        ),
      ),
    );

    // Assess
    expect(sender.sent).toHaveLength(6);
    for (const m of sender.sent) {
      const site = m.to[0]!.split('-')[0]!;
      const name = getSite(site).name;
      expect(m.from).toBe(`${site}@rowfleet.example.com`);
      expect(m.subject).toBe(`【${name}】ご注文 ${m.to[0]!.split('@')[0]} のご案内`);
      expect(m.headers?.[RECORD_HEADER]).toMatch(new RegExp(`^${site}#`));
      for (const other of loadConfig().sites.filter((x) => x.id !== site)) {
        expect(m.text).not.toContain(other.name);
        expect(m.from).not.toContain(other.id);
      }
    }
  });

  it('refuses a job naming a template its site does not have, or a site without bulk mail (400)', () => {
    // Prepare
    const mail = createMailProcessor();
    const noBulk = { ...getSite('sakai'), id: 'nomail', bulkMail: undefined };

    // Act
    const unknown = (() => {
      try {
        mail.checkJob!({ site: 'kawasaki', options: { template: 'welcome' } });
      } catch (e) {
        return e;
      }
    })();
    const missing = (() => {
      try {
        templateOf(noBulk, {});
      } catch (e) {
        return e;
      }
    })();

    // Assess
    expect(() => mail.checkJob!({ site: 'kawasaki', options: {} })).not.toThrow();
    expect(unknown).toBeInstanceOf(BadRequestError);
    expect((unknown as BadRequestError).code).toBe('UNKNOWN_TEMPLATE');
    expect((unknown as BadRequestError).message).toContain('kawasaki');
    expect((missing as BadRequestError).code).toBe('MAIL_NOT_CONFIGURED');
  });
});

/** Names every object has through its prototype: never a template, processor, site, office or option. */
const PROTOTYPE_NAMES = ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf'];

/** Claims in memory (effects.ts's semantics, enough for one delivery). */
function memoryClaims() {
  const items = new Map<number, EffectClaim>();
  const settle = (n: number, fields: Partial<EffectClaim>) => {
    items.set(n, { ...items.get(n)!, ...fields });
    return Promise.resolve();
  };
  return {
    items,
    claim: async (_s: string, _t: string, n: number, claimId: string, by: string) => {
      items.set(n, { status: 'CLAIMED', claimId, claimedAt: new Date().toISOString(), claimedBy: by });
      return { won: true as const };
    },
    done: (_s: string, _t: string, n: number) => settle(n, { status: 'DONE' }),
    failed: (_s: string, _t: string, n: number, _c: string, code: string, message: string) =>
      settle(n, { status: 'FAILED', code, message }),
    release: (_s: string, _t: string, n: number) => settle(n, { status: 'RELEASED' }),
  };
}

describe('Processor: mail, names and content from users', () => {
  it.each(PROTOTYPE_NAMES)(
    'knows no template "%s": a 4xx at the request, the record fails with its code, never IN_DOUBT',
    async (name) => {
      // Prepare
      const sender = new FakeSender();
      const mail = createMailProcessor({ sender: () => sender, ...fast });
      const job = { ...RUNNING_JOB, processor: 'mail', header: HEADER, options: { template: name } };
      const { msg, records } = {
        msg: {
          v: 2,
          site: 'sakai',
          token: job.token,
          chunk: 0,
          key: job.sourceKey,
          start: 0,
          end: 1,
          n: 1,
          line: 2,
          records: 1,
        } as ChunkMessage,
        records: [[1, 2, ['A-1', '山田', 'コイル', '3', '2026-11-20', 'yamada@example.com']]] as [
          number,
          number,
          string[],
        ][],
      };
      const claims = memoryClaims();

      // Act
      const checked = (() => {
        try {
          mail.checkJob!({ site: 'sakai', options: { template: name } });
        } catch (e) {
          return e;
        }
      })();
      const request = await validated('sakai', { processor: 'mail', template: name }).catch(
        (e: unknown) => e,
      );
      const done = await processChunk(job, msg, records, mail, {
        claims,
        limiter: { take: async () => undefined },
      });

      // Assess
      expect((checked as BadRequestError).code).toBe('UNKNOWN_TEMPLATE');
      expect(request).toBeInstanceOf(BadRequestError);
      expect((request as BadRequestError).status).toBe(400);
      expect(splitPart(done.part).meta.failures).toMatchObject([{ n: 1, code: 'UNKNOWN_TEMPLATE' }]);
      expect(claims.items.get(1)).toMatchObject({ status: 'FAILED', code: 'UNKNOWN_TEMPLATE' });
      expect(sender.sent).toHaveLength(0);
    },
  );

  it('fails a record whose template cannot compile with MAIL_TEMPLATE_INVALID (nothing sent), and refuses the request', async () => {
    // Prepare
    const site = getSite('sakai');
    const broken = {
      ...site,
      bulkMail: {
        from: site.bulkMail!.from,
        templates: { notice: { to: 'email', subject: '{{#if id}}unclosed', text: 'x', html: 'x' } },
      },
    };
    const sender = new FakeSender();
    const mail = createMailProcessor({ sender: () => sender, site: () => broken, ...fast });

    // Act
    const err = await Promise.resolve(
      mail.process(
        row(['A-1', '山田', 'コイル', '3', '2026-11-20', 'yamada@example.com']),
        ctx('sakai', HEADER),
      ),
    ).catch((e: unknown) => e);
    const refused = (() => {
      try {
        mail.checkJob!({ site: 'sakai', options: {} });
      } catch (e) {
        return e;
      }
    })();

    // Assess
    expect(err).toBeInstanceOf(RecordError);
    expect((err as RecordError).code).toBe('MAIL_TEMPLATE_INVALID');
    expect((err as RecordError).retryable).toBe(false);
    expect((refused as BadRequestError).code).toBe('MAIL_TEMPLATE_INVALID');
    expect(sender.sent).toHaveLength(0);
  });

  it('never lets a line break or another control character of a cell into the subject', async () => {
    // Prepare: the subject names {{id}}
    const sender = new FakeSender();
    const mail = createMailProcessor({ sender: () => sender, ...fast });
    const id = 'A-1\r\nBcc: victim@example.com\nX\rY\u0000Z\u2028W';

    // Act
    const out = await mail.process(
      row([id, '山田', 'コイル', '3', '2026-11-20', 'yamada@example.com']),
      ctx('sakai', HEADER),
    );

    // Assess
    const subject = sender.sent[0]!.subject;
    expect(subject).toBe('【堺】ご注文 A-1 Bcc: victim@example.com X Y Z W のご案内');
    expect(subject).not.toMatch(/[\r\n\0\u2028]/);
    expect(JSON.parse(String(out[0]!.data))).toMatchObject({ subject });
  });

  it.each([
    ['a local part of 65 octets', `${'a'.repeat(65)}@example.com`, 'local part is 65 octets'],
    ['a domain of 256 octets', `a@${`${'b'.repeat(62)}.`.repeat(4)}abcd`, 'domain is 256 octets'],
    [
      'an address of 255 octets',
      `${'a'.repeat(64)}@${`${'b'.repeat(62)}.`.repeat(2)}${'c'.repeat(60)}.com`,
      'it is 255 octets',
    ],
  ])(
    'fails an address longer than RFC 5321 allows (%s) with MAIL_ADDRESS_TOO_LONG, not sent',
    async (_what, to, why) => {
      // Prepare
      const sender = new FakeSender();
      const mail = createMailProcessor({ sender: () => sender, ...fast });

      // Act
      const err = await Promise.resolve(
        mail.process(row(['A-1', '山田', 'コイル', '3', '2026-11-20', to]), ctx('sakai', HEADER)),
      ).catch((e: unknown) => e);

      // Assess
      expect((err as RecordError).code).toBe('MAIL_ADDRESS_TOO_LONG');
      expect((err as RecordError).message).toContain(why);
      expect((err as RecordError).message.length).toBeLessThan(250);
      expect(sender.sent).toHaveLength(0);
    },
  );

  it('sends to an address of exactly the limits (local part 64, 254 octets in all)', async () => {
    // Prepare
    const sender = new FakeSender();
    const mail = createMailProcessor({ sender: () => sender, ...fast });
    const to = `${'a'.repeat(64)}@${`${'b'.repeat(62)}.`.repeat(2)}${'c'.repeat(59)}.com`;

    // Act
    await mail.process(row(['A-1', '山田', 'コイル', '3', '2026-11-20', to]), ctx('sakai', HEADER));

    // Assess
    expect(to).toHaveLength(254);
    expect(sender.sent[0]!.to).toEqual([to]);
  });
});

describe('Config: bulk mail', () => {
  it("refuses a site's sender outside the stage's SES identity (the workers may send only through it)", () => {
    // Prepare
    const raw = structuredClone(rawConfig) as typeof rawConfig;
    raw.sites[0] = {
      ...raw.sites[0]!,
      bulkMail: { ...raw.sites[0]!.bulkMail, from: 'news@elsewhere.example' },
    };

    // Act, Assess
    expect(() => loadConfig(raw)).toThrow(/site sakai sends bulk mail from news@elsewhere.example, outside/);
  });
});

describe('mail processor: what a job needs from the header', () => {
  it("names the template's row columns and the recipient column, not helpers, data or another context's paths", () => {
    // Prepare
    const t = {
      to: '宛先',
      subject: '{{[注文 番号]}} {{#if 至急}}至急{{/if}}',
      text: '{{氏名.姓}} {{lookup 表 キー}} {{@index}} {{#each 明細}}{{品目}}{{/each}}',
      html: '{{#with 会社}}{{名前}}{{/with}}<p>{{#unless 済}}{{備考}}{{/unless}}</p>',
    };

    // Act
    const columns = templateColumns(t);

    // Assess
    expect(columns.sort()).toEqual(
      ['注文 番号', '至急', '氏名', '表', 'キー', '明細', '会社', '済', '備考', '宛先'].sort(),
    );
  });

  it("needs the chosen template's columns; nothing for a site without bulk mail (its job check refuses it)", () => {
    // Prepare
    const p = createMailProcessor();
    const needs = p.needs as (job: { site: string; options: Record<string, string> }) => {
      columns: string[];
    };

    // Act
    const sakai = needs({ site: 'sakai', options: {} });

    // Assess
    expect([...sakai.columns].sort()).toEqual(['id', '氏名', '品目', '数量', '受注日', 'email'].sort());
  });
});
