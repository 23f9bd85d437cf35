import { describe, expect, it } from 'vitest';
import { createMailProcessor } from '../../../../core/processors/mail.ts';
import { jsonProcessor } from '../../../../core/processors/json.ts';
import { reportProcessor } from '../../../../core/processors/report.ts';
import {
  entryContentType,
  PREVIEW_TOKEN,
  RecordError,
  type RowContext,
} from '../../../../core/processors/types.ts';
import type { MailSender, OutgoingMail } from '../../../../core/usage/ses-sender.ts';

/**
 * The processors' previews (what the check shows of the first records): the same output as `process` by the same
 * code path, and no side effect.
 */

class FakeSender implements MailSender {
  readonly sent: OutgoingMail[] = [];
  async send(mail: OutgoingMail): Promise<string> {
    this.sent.push(mail);
    return 'ses-1';
  }
}

const HEADER = ['id', '氏名', '品目', '数量', '受注日', 'email'];
const TOKEN = '0f8fad5b-d9cb-469f-a165-70867728950e';
const row = (fields: string[], n = 3) => ({ n, line: n + 1, fields });

function runCtx(site: string, header: readonly string[], options: Record<string, string> = {}): RowContext {
  return {
    site,
    token: TOKEN,
    header,
    options,
    idempotencyKey: `${site}#${TOKEN}#3`,
    signal: new AbortController().signal,
    attempt: 1,
  };
}

describe('Preview: mail', () => {
  it('renders the subject, text and HTML the send would carry, and sends nothing', async () => {
    // Prepare
    const sender = new FakeSender();
    const mail = createMailProcessor({ sender: () => sender });
    const fields = ['A-1', '<b>山田</b> & "太郎"', 'コイル\r\n巻', '3', '2026-11-20', ' yamada@example.com '];

    // Act
    const preview = await mail.preview!(row(fields), {
      site: 'kawasaki',
      token: PREVIEW_TOKEN,
      header: HEADER,
      options: {},
    });
    const sentBefore = sender.sent.length;
    await mail.process(row(fields), runCtx('kawasaki', HEADER));

    // Assess
    expect(sentBefore).toBe(0);
    const m = sender.sent[0]!;
    expect(preview).toEqual({
      kind: 'mail',
      from: m.from,
      to: m.to[0],
      subject: m.subject,
      text: m.text,
      html: m.html,
    });
    expect(preview).toMatchObject({ from: 'kawasaki@rowfleet.example.com', to: 'yamada@example.com' });
    expect((preview as { html: string }).html).toContain('&lt;b&gt;山田&lt;/b&gt; &amp; &quot;太郎&quot;');
  });

  it('refuses a record as the send would, with its code (an invalid address), sending nothing', async () => {
    // Prepare
    const sender = new FakeSender();
    const mail = createMailProcessor({ sender: () => sender });
    const fields = ['A-1', '山田', 'コイル', '3', '2026-11-20', 'not-an-address'];

    // Act
    const refused = await Promise.resolve()
      .then(() =>
        mail.preview!(row(fields), { site: 'sakai', token: PREVIEW_TOKEN, header: HEADER, options: {} }),
      )
      .catch((err: unknown) => err);

    // Assess
    expect(refused).toBeInstanceOf(RecordError);
    expect((refused as RecordError).code).toBe('MAIL_INVALID_ADDRESS');
    expect(sender.sent).toEqual([]);
  });
});

describe('Preview: json and report', () => {
  for (const p of [jsonProcessor, reportProcessor]) {
    it(`${p.name}: the entries its process writes, as text with their content type`, () => {
      // Prepare
      const header = ['id', 'name', '__proto__'];
      const fields = ['1', '<鈴木, 花子>', 'x'];
      const ctx = { site: 'sakai', token: PREVIEW_TOKEN, header, options: {} };

      // Act
      const preview = p.preview(row(fields), ctx);
      const outputs = p.process(row(fields), ctx);

      // Assess
      expect(preview).toEqual({
        kind: 'entries',
        entries: outputs.map((o) => ({
          name: o.name,
          contentType: p.name === 'json' ? 'application/json' : 'text/html; charset=utf-8',
          text: o.data,
        })),
      });
      expect(outputs).toHaveLength(1);
    });
  }

  it('names content types by extension', () => {
    expect(['a.json', 'b.HTML', 'c.csv', 'd.txt', 'noext'].map((n) => entryContentType(n))).toEqual([
      'application/json',
      'text/html; charset=utf-8',
      'text/csv; charset=utf-8',
      'text/plain; charset=utf-8',
      'text/plain; charset=utf-8',
    ]);
  });
});
