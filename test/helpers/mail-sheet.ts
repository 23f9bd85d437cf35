import { stringify } from 'csv-stringify/sync';
import iconv from 'iconv-lite';

/**
 * The back-office sheet of issue 20's loop: an order export for the `mail` processor's `notice` template
 * (config/sites.ts: id, 氏名, 品目, 数量, 受注日 and the recipient's `email`), as Japanese Excel saves it — CP932,
 * CRLF, a field quoted only when it must be.
 */
export const MAIL_SHEET_HEADER = ['id', '氏名', 'email', '品目', '数量', '受注日'] as const;

export interface MailSheetOptions {
  readonly rows: number;
  /** 1-based rows whose address is not valid (the mail processor refuses them: MAIL_INVALID_ADDRESS). */
  readonly invalid?: readonly number[];
  /** A column of the template left out of the file (the check names it; the run is refused up front). */
  readonly omit?: (typeof MAIL_SHEET_HEADER)[number];
}

/** The address a row mails to: unique per row, so `rowfleet mail list` tells the rows apart. */
export const rowAddress = (n: number) => `customer${n}@example.com`;
/** What a row's address looks like when it was typed wrong (no @). */
export const invalidAddress = (n: number) => `customer${n}.example.com`;

/** Rows of the sheet as cells, header first. */
export function mailSheetRows(o: MailSheetOptions): string[][] {
  const invalid = new Set(o.invalid ?? []);
  const rows: string[][] = [[...MAIL_SHEET_HEADER]];
  for (let n = 1; n <= o.rows; n++) {
    rows.push([
      `J-${String(n).padStart(5, '0')}`,
      `顧客 ${n} 号`,
      invalid.has(n) ? invalidAddress(n) : rowAddress(n),
      // A comma and a quote in some cells, as Excel writes them (quoted, the quote doubled).
      n % 7 === 0 ? `鋼板, "特注"` : 'コイル',
      String((n % 50) + 1),
      '2026/12/07',
    ]);
  }
  if (!o.omit) return rows;
  const drop = MAIL_SHEET_HEADER.indexOf(o.omit);
  return rows.map((r) => r.filter((_, i) => i !== drop));
}

/** Cells as Japanese Excel's "CSV (comma delimited)" writes them: CP932, CRLF, quotes only where needed. */
export function excelCsv(rows: readonly (readonly string[])[]): Buffer {
  return iconv.encode(stringify(rows as string[][], { record_delimiter: '\r\n' }), 'cp932');
}

export function mailSheet(o: MailSheetOptions): Buffer {
  return excelCsv(mailSheetRows(o));
}
