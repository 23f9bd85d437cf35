import { stringify } from 'csv-stringify/sync';

/**
 * The one CSV writer of everything Rowfleet writes (errors.csv, the retry file, the raw record of an error
 * line): the readers' dialect (csv.ts, scan.ts) in reverse. A cell holding a quote (doubled), the delimiter, a
 * CR or an LF — alone or as CRLF — is quoted, so a cell with Excel's Alt+Enter line break (a lone LF) or a lone
 * CR stays one cell; so is a first cell starting with U+FEFF (it would be read as a BOM). Records end with CRLF,
 * as Excel writes them. test/fuzz/csv-write.test.ts reads what it writes back with both readers, in UTF-8 and
 * CP932.
 */
export interface CsvWriteOptions {
  /** @default ',' */
  readonly delimiter?: string;
  /** Spreadsheet formula guard ({@link neutraliseCell}) on every cell: for files meant to be opened in Excel. */
  readonly guard?: boolean;
}

/** Cells csv-stringify would leave bare that must be quoted all the same (it quotes only its own record delimiter). */
const ALSO_QUOTED = /[\r\n]|^\uFEFF/;

const options = (delimiter: string, recordDelimiter: string) => ({
  delimiter,
  record_delimiter: recordDelimiter,
  quoted_match: ALSO_QUOTED,
});

/**
 * OWASP CSV injection: a cell that a spreadsheet would read as a formula gets a leading apostrophe. A cell that
 * already starts with apostrophes before such a character gets one more, so the guard can be taken off again
 * exactly ({@link unguardCell}): a resubmitted results.csv (core/intake/resubmit.ts) gives back the values as
 * they were, `'=1` included.
 */
export function neutraliseCell(value: string): string {
  return GUARDED.test(value) ? `'${value}` : value;
}

/** Cells the guard prefixes: a formula's first character, after any apostrophes. */
const GUARDED = /^'*[=+\-@\t\r]/;
/** Cells the guard wrote: one or more apostrophes before a formula's first character. */
const WAS_GUARDED = /^'+[=+\-@\t\r]/;

/**
 * The inverse of {@link neutraliseCell}: `unguardCell(neutraliseCell(v)) === v` for every `v`. A cell the guard
 * did not write (no apostrophe before a formula's first character) is left as it is, so a value a user typed in
 * Excel comes back unchanged.
 */
export function unguardCell(value: string): string {
  return WAS_GUARDED.test(value) ? value.slice(1) : value;
}

/*
 * The writer's two rules (the guard's above, the quoting's below), tested without a regular expression, for the rows
 * written a million at a time (core/work/sheet-rows.ts): a cell or a record's bytes that they pass is written
 * as it is. Conservative (any leading apostrophe fails); test/unit/core/work/sheet-rows.test.ts holds them to
 * the writer.
 */

/**
 * Whether the CSV writer here ({@link csvLine}) with the formula guard writes `v` as it is: no character it quotes
 * (a quote, the delimiter `d`, CR, LF, a leading U+FEFF), no first character the guard may prefix (an
 * apostrophe, `=`, `+`, `-`, `@`, a tab).
 */
export function plainCell(v: string, d: number): boolean {
  const len = v.length;
  if (len === 0) return true;
  const c0 = v.charCodeAt(0);
  if (c0 === 0x27 || c0 === 0x3d || c0 === 0x2b || c0 === 0x2d || c0 === 0x40 || c0 === 0x09 || c0 === 0xfeff)
    return false;
  for (let i = 0; i < len; i++) {
    const c = v.charCodeAt(i);
    if (c === 0x22 || c === d || c === 0x0d || c === 0x0a) return false;
  }
  return true;
}

/**
 * Whether a record's bytes `b[from, to)` are its `width` cells as the CSV writer with the formula guard writes
 * them: unquoted (no quote, no CR or LF: a blank line before it is not copied), `width - 1` delimiters `d`, no cell
 * starting with a character the guard may prefix (an apostrophe, `=`, `+`, `-`, `@`, a tab) or with U+FEFF. Its
 * fields were read from these bytes, split at the delimiters (core/source/scan.ts), so they are the same text.
 */
export function plainLine(b: Buffer, from: number, to: number, d: number, width: number): boolean {
  let cells = 1;
  let cellStart = true;
  for (let i = from; i < to; i++) {
    const c = b[i]!;
    if (c === d) {
      cells++;
      cellStart = true;
      continue;
    }
    if (c === 0x22 || c === 0x0d || c === 0x0a) return false;
    if (cellStart) {
      if (c === 0x27 || c === 0x3d || c === 0x2b || c === 0x2d || c === 0x40 || c === 0x09) return false;
      if (c === 0xef && b[i + 1] === 0xbb && b[i + 2] === 0xbf) return false;
      cellStart = false;
    }
  }
  return cells === width;
}

/** Per one-character delimiter: what makes a cell quoted (csv-stringify's rule with {@link ALSO_QUOTED}). */
const quotedBy = new Map<string, RegExp>();

function quoteRule(delimiter: string): RegExp {
  let r = quotedBy.get(delimiter);
  if (!r) {
    const d = delimiter.replace(/[\\\]^-]/g, '\\$&');
    r = new RegExp(`["\\r\\n${d}]|^\\uFEFF`);
    quotedBy.set(delimiter, r);
  }
  return r;
}

/**
 * One record as csv-stringify writes it with {@link options} and a one-character delimiter (the readers' dialect
 * has no other), without its record delimiter: a cell holding a quote, the delimiter, a CR or an LF, or starting
 * with U+FEFF, is quoted, its quotes doubled. Written here because results.csv is a million rows: csv-stringify's
 * per-cell options and casts were most of the finalize's time (test/unit/csv-write.test.ts holds the two alike).
 */
function csvLine(cells: readonly string[], delimiter: string, guard: boolean | undefined): string {
  const rule = quoteRule(delimiter);
  let line = '';
  for (let i = 0; i < cells.length; i++) {
    let v = cells[i]!;
    if (guard) v = neutraliseCell(v);
    if (i > 0) line += delimiter;
    if (v === '' || !rule.test(v)) line += v;
    else line += `"${v.includes('"') ? v.replaceAll('"', '""') : v}"`;
  }
  return line;
}

/** Records as CSV text, each ended by CRLF. */
export function csvText(records: readonly (readonly string[])[], o: CsvWriteOptions = {}): string {
  const delimiter = o.delimiter ?? ',';
  if (delimiter.length === 1) {
    let text = '';
    for (const r of records) text += csvLine(r, delimiter, o.guard) + '\r\n';
    return text;
  }
  const rows = o.guard ? records.map((r) => r.map(neutraliseCell)) : records;
  return stringify(rows as string[][], options(delimiter, '\r\n'));
}

/** {@link csvText} of one record (CRLF-ended), for writers that build their text a record at a time. */
export function csvTextLine(cells: readonly string[], o: CsvWriteOptions = {}): string {
  return csvText([cells], o);
}

/** One record as CSV text, without a record delimiter (the `raw` of an error line). */
export function csvRecord(fields: readonly string[], delimiter = ','): string {
  return stringify([fields as string[]], options(delimiter, ''));
}
