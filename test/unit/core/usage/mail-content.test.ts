import { describe, expect, it } from 'vitest';
import { getSite, loadConfig } from '../../../../config/index.ts';
import { periodUsage, renderUsageMail, type UsageReport } from '../../../../core/usage/mail-content.ts';
import { NO_OFFICE, type UsageFigures } from '../../../../core/usage/store.ts';

const figures = (jobs: number, rows: number, failedRows: number, rejectedJobs = 0): UsageFigures => ({
  jobs,
  rows,
  failedRows,
  rejectedJobs,
});

function sakaiReport(withMonth: boolean): UsageReport {
  const sakai = getSite('sakai');
  const daily = periodUsage(
    sakai,
    new Map([
      ['main', figures(3, 1234, 5, 1)],
      ['port', figures(1, 10, 0)],
    ]),
  );
  return {
    site: sakai,
    day: withMonth ? '2026-11-30' : '2026-11-21',
    daily,
    ...(withMonth
      ? { month: { month: '2026-11', ...periodUsage(sakai, new Map([['main', figures(40, 98765, 43, 2)]])) } }
      : {}),
  };
}

describe('Function: renderUsageMail', () => {
  it('puts the site name and the reported day in the subject', () => {
    // Act
    const mail = renderUsageMail(sakaiReport(false));

    // Assess
    expect(mail.subject).toBe('【Rowfleet】堺 ご利用状況のお知らせ (2026-11-21)');
  });

  it('lists jobs, records processed and records failed or rejected per office and in total (text part)', () => {
    // Act
    const { text } = renderUsageMail(sakaiReport(false));

    // Assess
    expect(text).toContain('堺 ご担当者様');
    expect(text).toContain('2026年11月21日（土）のご利用状況');
    expect(text).toContain('・堺本社\n  ジョブ数 3件 / 処理件数 1,234件 / 失敗・取込不可件数 5件');
    expect(text).toContain('・堺港事務所\n  ジョブ数 1件 / 処理件数 10件 / 失敗・取込不可件数 0件');
    expect(text).toContain('・合計\n  ジョブ数 4件 / 処理件数 1,244件 / 失敗・取込不可件数 5件');
    expect(text).toContain('ファイル全体を取り込めなかったジョブ 1件');
    expect(text).not.toContain('の合計'); // no month on an ordinary day
  });

  it('has the same figures in an HTML table', () => {
    // Act
    const { html } = renderUsageMail(sakaiReport(false));

    // Assess
    expect(html).toMatch(/^<!DOCTYPE html>/);
    const rows = [...html.matchAll(/<tr>(.*?)<\/tr>/g)].map((m) =>
      [...m[1]!.matchAll(/<t[dh][^>]*>(?:<strong>)?(.*?)(?:<\/strong>)?<\/t[dh]>/g)].map((c) => c[1]),
    );
    expect(rows).toEqual([
      ['事業所', 'ジョブ数', '処理件数', '失敗・取込不可件数'],
      ['堺本社', '3', '1,234', '5'],
      ['堺港事務所', '1', '10', '0'],
      ['合計', '4', '1,244', '5'],
    ]);
  });

  it("adds the month's totals to the mail sent on the 1st", () => {
    // Act
    const { text, html } = renderUsageMail(sakaiReport(true));

    // Assess
    expect(text).toContain('■ 2026年11月の合計');
    expect(text).toContain('・合計\n  ジョブ数 40件 / 処理件数 98,765件 / 失敗・取込不可件数 43件');
    expect(html).toContain('2026年11月の合計');
    expect(html).toContain('98,765');
  });

  it('escapes names in the HTML part', () => {
    // Prepare
    const site = { id: 'x', name: '<b>A&B</b>', timeZone: 'Asia/Tokyo' };
    const report: UsageReport = {
      site,
      day: '2026-11-21',
      daily: periodUsage({ offices: [{ id: 'main', name: '"本社"' }] }, new Map()),
    };

    // Act
    const { html } = renderUsageMail(report);

    // Assess
    expect(html).toContain('&lt;b&gt;A&amp;B&lt;/b&gt;');
    expect(html).toContain('&quot;本社&quot;');
    expect(html).not.toContain('<b>A&B</b>');
  });

  it("names no other site: a site's mail holds only its own name and offices", () => {
    // Prepare
    const others = loadConfig().sites.filter((s) => s.id !== 'sakai');

    // Act
    const { subject, text, html } = renderUsageMail(sakaiReport(true));

    // Assess
    for (const other of others) {
      for (const part of [subject, text, html]) {
        expect(part).not.toContain(other.name);
        for (const office of other.offices) expect(part).not.toContain(office.name);
      }
    }
  });
});

describe('Function: periodUsage', () => {
  it('lists every configured office (zero when idle), then recorded offices no longer configured', () => {
    // Prepare
    const recorded = new Map([
      ['port', figures(2, 20, 1)],
      [NO_OFFICE, figures(1, 5, 0)],
      ['closed', figures(1, 7, 2)],
    ]);

    // Act
    const p = periodUsage(getSite('sakai'), recorded);

    // Assess
    expect(p.offices.map((o) => [o.id, o.name, o.figures.jobs])).toEqual([
      ['main', '堺本社', 0],
      ['port', '堺港事務所', 2],
      [NO_OFFICE, '事業所未設定', 1],
      ['closed', 'closed', 1],
    ]);
    expect(p.total).toEqual(figures(4, 32, 3));
  });
});
