import { pureProcessor, type RowContext, type RowInput, type RowOutput } from './types.ts';

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ESC[c]!);

function reportOf(row: RowInput, ctx: Pick<RowContext, 'site' | 'token' | 'header'>): RowOutput[] {
  const rows = ctx.header
    .map((h, i) => `<tr><th>${escapeHtml(h)}</th><td>${escapeHtml(row.fields[i] ?? '')}</td></tr>`)
    .join('\n');
  const html = `<!doctype html>
<html lang="ja"><head><meta charset="utf-8"><title>Record ${row.n}</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left}th{background:#f4f4f4}</style>
</head><body>
<h1>Record ${row.n}</h1>
<p>Site ${escapeHtml(ctx.site)} · job ${escapeHtml(ctx.token)} · line ${row.line}</p>
<table>
${rows}
</table>
</body></html>
`;
  return [{ name: `reports/${row.n}.html`, data: html }];
}

/**
 * `reports/<n>.html`: a readable one-page report of the record (the default processor). Synchronous and
 * CPU-bound, like `json` (its concurrency only binds under a simulated delay).
 */
export const reportProcessor = pureProcessor(
  'report',
  'reports/<n>.html: a readable HTML page per record',
  reportOf,
);
