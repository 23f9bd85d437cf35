import type { SiteConfig } from '../../config/index.ts';
import { addUsage, NO_OFFICE, NO_USAGE, type OfficeUsage, type UsageFigures } from './store.ts';
import { japaneseDate, japaneseMonth } from './days.ts';
import type { OfficeLine, PeriodUsage } from './wire.ts';
import type { MailContent } from './ses-sender.ts';
// The wire shapes are defined Node-free in ./wire.ts (the console reads them); their names stay importable here.
export type { OfficeLine, PeriodUsage };

/** Everything one site's usage mail says. Built only from that site's configuration and partition. */
export interface UsageReport {
  readonly site: Pick<SiteConfig, 'id' | 'name' | 'timeZone'>;
  /** The reported day, YYYY-MM-DD in the site's time zone. */
  readonly day: string;
  readonly daily: PeriodUsage;
  /** The month that ended with `day` (only in the mail sent on the 1st). */
  readonly month?: PeriodUsage & { readonly month: string };
}

/**
 * The site's offices in configuration order (zero when an office had no job), then any office recorded but no
 * longer configured, so the total always equals the sum of the lines.
 */
export function periodUsage(site: Pick<SiteConfig, 'offices'>, recorded: OfficeUsage): PeriodUsage {
  const lines: OfficeLine[] = site.offices.map((o) => ({
    id: o.id,
    name: o.name,
    figures: recorded.get(o.id) ?? NO_USAGE,
  }));
  const configured = new Set(site.offices.map((o) => o.id));
  for (const [id, figures] of [...recorded].sort(([a], [b]) => a.localeCompare(b))) {
    if (!configured.has(id)) lines.push({ id, name: id === NO_OFFICE ? '事業所未設定' : id, figures });
  }
  return { offices: lines, total: lines.reduce((t, l) => addUsage(t, l.figures), NO_USAGE) };
}

const number = new Intl.NumberFormat('ja-JP');
const n = (v: number) => number.format(v);

const LABELS = { jobs: 'ジョブ数', rows: '処理件数', failedRows: '失敗・取込不可件数' } as const;

export function usageMailSubject(site: Pick<SiteConfig, 'name'>, day: string): string {
  return `【Rowfleet】${site.name} ご利用状況のお知らせ (${day})`;
}

function textLine(label: string, f: UsageFigures): string {
  return `${label}\n  ${LABELS.jobs} ${n(f.jobs)}件 / ${LABELS.rows} ${n(f.rows)}件 / ${LABELS.failedRows} ${n(f.failedRows)}件`;
}

function textPeriod(title: string, p: PeriodUsage): string {
  const lines = [`■ ${title}`, ...p.offices.map((o) => textLine(`・${o.name}`, o.figures))];
  lines.push(textLine('・合計', p.total));
  if (p.total.rejectedJobs > 0)
    lines.push(`  （うち、ファイル全体を取り込めなかったジョブ ${n(p.total.rejectedJobs)}件）`);
  return lines.join('\n');
}

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const CELL = 'style="padding:4px 12px;border:1px solid #ccc;text-align:right"';
const NAME_CELL = 'style="padding:4px 12px;border:1px solid #ccc;text-align:left"';

function htmlPeriod(title: string, p: PeriodUsage): string {
  const row = (name: string, f: UsageFigures, strong = false) => {
    const wrap = (s: string) => (strong ? `<strong>${s}</strong>` : s);
    return `<tr><td ${NAME_CELL}>${wrap(escapeHtml(name))}</td><td ${CELL}>${wrap(n(f.jobs))}</td><td ${CELL}>${wrap(n(f.rows))}</td><td ${CELL}>${wrap(n(f.failedRows))}</td></tr>`;
  };
  const note =
    p.total.rejectedJobs > 0
      ? `<p>うち、ファイル全体を取り込めなかったジョブ ${n(p.total.rejectedJobs)}件</p>`
      : '';
  return [
    `<h2 style="font-size:16px">${escapeHtml(title)}</h2>`,
    '<table style="border-collapse:collapse">',
    `<thead><tr><th ${NAME_CELL}>事業所</th><th ${CELL}>${LABELS.jobs}</th><th ${CELL}>${LABELS.rows}</th><th ${CELL}>${LABELS.failedRows}</th></tr></thead>`,
    '<tbody>',
    ...p.offices.map((o) => row(o.name, o.figures)),
    row('合計', p.total, true),
    '</tbody></table>',
    note,
  ].join('\n');
}

/** The usage mail of one site and day: subject, text part and HTML part (Japanese). */
export function renderUsageMail(report: UsageReport): MailContent {
  const { site, day } = report;
  const date = japaneseDate(day);
  const month = report.month;
  const footer = `集計は ${site.timeZone} の暦日ごとに、その日に終了したジョブを数えています。\n${LABELS.rows}は正常に処理されたレコード、${LABELS.failedRows}は処理に失敗したレコードと取り込めなかったレコードの数です。\nこのメールは送信専用です。`;
  const text = [
    `${site.name} ご担当者様`,
    '',
    'いつも Rowfleet をご利用いただきありがとうございます。',
    `${date}のご利用状況をお知らせします。`,
    '',
    textPeriod(date, report.daily),
    ...(month ? ['', textPeriod(`${japaneseMonth(month.month)}の合計`, month)] : []),
    '',
    footer,
    '',
    '-- ',
    'Rowfleet',
    '',
  ].join('\n');
  const html = [
    '<!DOCTYPE html>',
    '<html lang="ja"><head><meta charset="utf-8"></head>',
    '<body style="font-family:sans-serif;font-size:14px;color:#222">',
    `<p>${escapeHtml(site.name)} ご担当者様</p>`,
    `<p>いつも Rowfleet をご利用いただきありがとうございます。<br>${escapeHtml(date)}のご利用状況をお知らせします。</p>`,
    htmlPeriod(date, report.daily),
    ...(month ? [htmlPeriod(`${japaneseMonth(month.month)}の合計`, month)] : []),
    `<p style="color:#666;font-size:12px">${footer.split('\n').map(escapeHtml).join('<br>')}</p>`,
    '<p>Rowfleet</p>',
    '</body></html>',
    '',
  ].join('\n');
  return { subject: usageMailSubject(site, day), text, html };
}
